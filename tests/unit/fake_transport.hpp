// Shared by the API tests (test_forwarder.cpp, test_consent_sync.cpp): a Transport that
// answers from a script and records every request, a store in a temp folder, and a
// logger whose lines are kept.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/log.hpp"
#include "events/transport.hpp"
#include "store/db.hpp"
#include "tmpdir.hpp"

namespace cllavio::test {

struct FakeTransport : events::Transport {
  struct Call {
    std::string url, body;
    std::vector<std::string> headers;
  };
  std::vector<Call>* calls = nullptr;
  std::function<events::HttpResult(const std::string& body)> answer;
  events::HttpResult post(const std::string& url, const std::vector<std::string>& headers, const std::string& body,
                          const conf::ApiSettings&) override {
    calls->push_back({url, body, headers});
    return answer(body);
  }
  events::HttpResult get(const std::string& url, const std::vector<std::string>& headers,
                         const conf::ApiSettings&) override {
    calls->push_back({url, "", headers});
    return answer("GET " + url);
  }
};

struct ApiFixture {
  TmpDir dir;
  std::unique_ptr<store::Db> st;
  std::vector<FakeTransport::Call> calls;
  FakeTransport* fake = nullptr;
  std::vector<std::string> logs;
  core::Logger log;

  ApiFixture() {
    store::StoreOptions o;
    o.dir = dir / "store";
    o.map_size_mb = 8;
    st = std::make_unique<store::Db>(o);
    log.capture([this](conf::LogLevel, const std::string& l) { logs.push_back(l); });
  }
  // The transport to hand over (once); `fake` keeps pointing at it.
  std::unique_ptr<events::Transport> transport() {
    auto t = std::make_unique<FakeTransport>();
    fake = t.get();
    fake->calls = &calls;
    fake->answer = [](const std::string&) { return events::HttpResult{200, "{}", "", -1}; };
    return t;
  }
  static std::string header(const FakeTransport::Call& c, const std::string& name) {
    for (const auto& h : c.headers)
      if (h.rfind(name + ": ", 0) == 0) return h.substr(name.size() + 2);
    return {};
  }
};

}  // namespace cllavio::test
