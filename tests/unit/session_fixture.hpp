// Shared by the session tests (test_session.cpp, test_session_policy.cpp): a recording
// MilterActions fake, Services over an in-memory store, a captured log, and the
// configurations the tests start from.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config_fixture.hpp"
#include "core/quota.hpp"
#include "core/recorder.hpp"
#include "milter/session.hpp"
#include "store/lmdb.hpp"

namespace session_test {

using namespace cllavio;
using milter::Connection;
using milter::Step;


// Records what a session asks the MTA to change.
struct RecordingActions : core::MilterActions {
  std::vector<std::string> calls;
  std::string body;
  bool fail = false;
  bool replace_body(std::string_view b) override {
    calls.push_back("replace_body");
    body = std::string(b);
    return !fail;
  }
  bool change_header(std::string_view n, int i, std::string_view v) override {
    calls.push_back("change " + std::string(n) + " " + std::to_string(i) + " " + std::string(v));
    return !fail;
  }
  bool remove_header(std::string_view n, int i) override {
    calls.push_back("remove " + std::string(n) + " " + std::to_string(i));
    return !fail;
  }
  bool add_header(std::string_view n, std::string_view v) override {
    if (throw_on_add) throw std::runtime_error("add_header exploded");
    calls.push_back("add " + std::string(n) + " " + std::string(v));
    return !fail;
  }
  bool throw_on_add = false;
  bool delete_recipient(std::string_view r) override {
    calls.push_back("delrcpt " + std::string(r));
    return !fail;
  }
};

// Services with an in-memory store and captured log lines.
struct Fixture {
  RecordingActions actions;
  std::vector<store::MessageRecord> stored;
  std::vector<std::string> lines;
  std::atomic<int> in_flight{0};
  core::Logger log;
  int fail_with = 0;  // MDB_* code the fake store throws, 0 = succeed
  bool outbox_full = false;  // events cannot be queued (only a write that requires one fails)
  std::uint64_t next_id = 100;

  Fixture() {
    log.configure(conf::LogTarget::stderr_stream, conf::LogLevel::info);
    log.capture([this](conf::LogLevel, const std::string& line) { lines.push_back(line); });
  }

  std::shared_ptr<const conf::Config> config(policy::UnknownOrg unknown = policy::UnknownOrg::accept,
                                             conf::OnError on_error = conf::OnError::accept) {
    auto cfg = std::make_shared<conf::Config>();
    policy::Org acme;
    acme.id = "acme";
    acme.domains = {"acme.example"};
    acme.sasl_users = {"@acme.example"};
    acme.networks = {*policy::parse_network("192.0.2.0/24")};
    cfg->orgs = policy::OrgIndex({acme});
    cfg->orgs_settings.unknown = unknown;
    cfg->milter.on_error = on_error;
    return cfg;
  }

  std::atomic<bool> draining{false};
  int reject_budget = 1000;  // rejects the fake rate limit still lets through

  milter::Services services() {
    return {[this](store::MessageRecord& r, const core::QuotaCharge& charge, bool event_required) -> std::uint64_t {
              if (fail_with != 0) throw store::lmdb::Error("mdb_put", fail_with);
              if (event_required && outbox_full) throw core::OutboxFull("OUTBOX FULL: compact");
              charges.push_back(charge.active() && r.action == "accept" ? charge.rcpts() : 0);
              if (r.id == 0) r.id = next_id++;
              stored.push_back(r);
              return r.id;
            },
            &log,
            [] { return std::int64_t{1'700'000'000'000'000}; },
            &in_flight,
            &draining,
            [this](int) { return reject_budget-- > 0; },
            [this] { return next_id++; },
            [this](const std::string& org, const std::string& addr) {
              auto it = consents.find(org + " " + addr);
              return it == consents.end() ? policy::ConsentState::none : it->second;
            },
            &quota};
  }
  std::map<std::string, policy::ConsentState> consents;  // "org address" -> state
  core::LocalQuota quota;                                // in memory only
  const policy::QuotaLedger& ledger = quota.ledger();
  std::vector<std::uint64_t> charges;                    // per record: recipients charged with it (0: none)

  std::string log_text() const {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }
  bool logged(const std::string& needle) const { return log_text().find(needle) != std::string::npos; }
};


inline void send_html(Connection& c, std::string_view extra_header = {}) {
  c.mail("<news@acme.example>", "news@acme.example");
  c.rcpt("<bob@example.net>");
  c.header("Content-Type", " text/html;\n\tcharset=utf-8");  // folded as Postfix sends it
  if (!extra_header.empty()) c.header("X-Cllavio-Track", extra_header);
  c.body("<html><body><a href=\"https://example.com/a?x=1&amp;y=2\">A</a></body></html>\r\n");
}


}  // namespace session_test
