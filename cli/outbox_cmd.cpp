// cllavioctl outbox: what waits for the Cllavio API, what it refused, and sending now.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include <curl/curl.h>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "core/log.hpp"
#include "events/forwarder.hpp"
#include "store/db.hpp"
#include "store/message_record.hpp"

namespace cllavio::cli {

namespace {

int usage_outbox() {
  std::fprintf(stderr,
               "usage: cllavioctl [-c FILE] outbox stats [--json]\n"
               "       cllavioctl [-c FILE] outbox list [--dead] [--limit N]\n"
               "       cllavioctl [-c FILE] outbox retry-dead\n"
               "       cllavioctl [-c FILE] outbox flush\n");
  return kExitUsage;
}

}  // namespace

int cmd_outbox(const std::string& config_path, const Args& args) {
  if (args.empty()) return usage_outbox();
  const std::string& op = args[0];
  bool writes = op == "retry-dead" || op == "flush";
  if (op != "stats" && op != "list" && !writes) return usage_outbox();
  bool json = false, dead = false;
  std::size_t limit = 100;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--json" && op == "stats") {
      json = true;
    } else if (args[i] == "--dead" && op == "list") {
      dead = true;
    } else if (args[i] == "--limit" && op == "list" && i + 1 < args.size()) {
      try {
        limit = std::stoul(args[++i]);
      } catch (...) {
        return usage_outbox();
      }
    } else {
      return usage_outbox();
    }
  }
  auto st = open_store(config_path, writes);
  if (!st) return kExitUnavailable;
  if (op == "stats") {
    auto s = st->read()->outbox.stats();
    double age = s.oldest_at_us ? (store::realtime_us() - s.oldest_at_us) / 1e6 : 0;
    nlohmann::ordered_json j{{"queued", s.queued},   {"queued_bytes", s.queued_bytes},
                             {"oldest_age_s", age},  {"dead", s.dead},
                             {"dropped", s.dropped}, {"last_error", s.last_error.empty() ? nlohmann::ordered_json(nullptr)
                                                                                         : nlohmann::ordered_json(s.last_error)}};
    if (json) {
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    } else {
      std::printf("queued %llu (%llu bytes), oldest %.0f s; dead %llu; dropped %llu; last error: %s\n",
                  (unsigned long long)s.queued, (unsigned long long)s.queued_bytes, age, (unsigned long long)s.dead,
                  (unsigned long long)s.dropped, s.last_error.empty() ? "none" : store::printable(s.last_error).c_str());
    }
    return kExitOk;
  }
  if (op == "list") {
    for (const auto& it : st->read()->outbox.list(dead, limit)) {
      if (dead) {
        auto tab = it.json.find('\t');  // event, then the API's refusal
        std::printf("%llu %s %s\n  refused: %s\n", (unsigned long long)it.seq, store::printable(it.org).c_str(),
                    store::printable(it.json.substr(0, tab)).c_str(),
                    tab == std::string::npos ? "" : store::printable(it.json.substr(tab + 1)).c_str());
      } else {
        std::printf("%llu %s %s\n", (unsigned long long)it.seq, store::printable(it.org).c_str(),
                    store::printable(it.json).c_str());
      }
    }
    return kExitOk;
  }
  if (op == "retry-dead") {
    std::size_t n = 0;
    st->write([&](store::Tables& t) { n = t.outbox.retry_dead(); });
    std::printf("%zu dead event(s) queued again\n", n);
    return kExitOk;
  }
  // flush: send what is queued now, from this process, with the daemon's settings.
  auto cfg = load(config_path);
  if (!cfg) return kExitUnavailable;
  if (cfg->api.url.empty()) {
    std::fprintf(stderr, "cllavioctl: no [api] url configured: nothing to send to\n");
    return kExitUnavailable;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  core::Logger log;  // its lines go to stderr
  log.configure(conf::LogTarget::stderr_stream, conf::LogLevel::info);
  events::Forwarder fwd(*st, events::make_curl_transport(), log);
  auto r = fwd.send_pending(cfg->api);
  nlohmann::ordered_json j{{"delivered", r.delivered}, {"dead", r.buried}, {"requests", r.batches},
                           {"remaining", st->read()->outbox.stats().queued},
                           {"error", r.error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.error)}};
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  return r.retry ? kExitUnavailable : kExitOk;
}

}  // namespace cllavio::cli
