// cllavioctl consent / quota / audit: the admin's side of recipient consent and quotas.
// Every change is written with its audit entry in one store transaction and logged to
// syslog (facility mail), so who changed what stays on record.
#include <syslog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "core/event.hpp"
#include "policy/address.hpp"
#include "quota/from_config.hpp"
#include "store/db.hpp"
#include "store/message_record.hpp"

namespace cllavio::cli {

namespace {

constexpr auto kReplace = nlohmann::ordered_json::error_handler_t::replace;

std::string actor() {
  std::string a = "cllavioctl uid=" + std::to_string(::getuid());
  if (const char* sudo = std::getenv("SUDO_USER")) a += " sudo_user=" + store::printable(sudo);
  return a;
}

void to_syslog(const std::string& line) {
  ::openlog("cllavioctl", LOG_PID, LOG_MAIL);
  ::syslog(LOG_NOTICE, "%s", line.c_str());
  ::closelog();
}

bool known_org(const conf::Config& cfg, const std::string& org) {
  if (cfg.policies.count(org) || cfg.policies.empty()) return true;  // empty: org files could not be read
  std::fprintf(stderr, "cllavioctl: no organization '%s' in the configuration\n", store::printable(org).c_str());
  return false;
}

nlohmann::ordered_json consent_json(const std::string& org, const std::string& addr, const policy::Consent& c) {
  nlohmann::ordered_json j{{"org", org}, {"address", addr}, {"state", policy::to_string(c.state)}};
  j["at"] = c.at_us ? nlohmann::ordered_json(store::format_time_us(c.at_us)) : nlohmann::ordered_json(nullptr);
  j["source"] = c.source;
  return j;
}

// Consent changes made here go to the Cllavio API as consent.changed events, queued in
// the same transaction as their audit entry.
void queue_consent_event(store::Tables& t, const store::AuditEntry& e, const conf::Config& cfg) {
  if (!t.outbox.put(e.org, core::to_text(core::from_audit(e)), cfg.api.max_outbox_mb << 20))
    std::fprintf(stderr, "cllavioctl: warning: outbox full, consent.changed event not queued\n");
}

int usage_consent() {
  std::fprintf(stderr,
               "usage: cllavioctl [-c FILE] consent grant|revoke|unsubscribe ORG ADDRESS [--source SOURCE]\n"
               "       cllavioctl [-c FILE] consent show ORG ADDRESS\n"
               "       cllavioctl [-c FILE] consent import ORG FILE.csv     (address,state[,timestamp])\n"
               "       cllavioctl [-c FILE] consent export ORG\n");
  return kExitUsage;
}

int consent_import(store::Db& db, const conf::Config& cfg, const std::string& org, const std::string& file) {
  std::ifstream in(file);
  if (!in) {
    std::fprintf(stderr, "cllavioctl: cannot read %s\n", file.c_str());
    return kExitNotFound;
  }
  std::vector<store::ConsentTable::ImportRow> rows;
  std::string line;
  std::size_t n = 0, bad = 0;
  const std::int64_t now = store::realtime_us();
  while (std::getline(in, line)) {
    ++n;
    auto parsed = policy::parse_consent_row(line);
    std::optional<std::int64_t> at = now;
    if (auto* row = std::get_if<policy::ConsentRow>(&parsed); row && !row->timestamp.empty())
      at = store::parse_time_us(row->timestamp);
    if (auto* why = std::get_if<std::string>(&parsed)) {
      std::fprintf(stderr, "%s:%zu: %s\n", file.c_str(), n, store::printable(*why).c_str());
      ++bad;
    } else if (auto& row = std::get<policy::ConsentRow>(parsed); row.address.empty()) {
      continue;  // blank, comment or header line
    } else if (!at) {
      std::fprintf(stderr, "%s:%zu: timestamp must be RFC 3339 UTC (2026-11-29T10:00:00Z) or unix seconds: %s\n",
                   file.c_str(), n, store::printable(row.timestamp).c_str());
      ++bad;
    } else {
      rows.push_back({row.address, policy::Consent{row.state, *at, "import"}});
    }
  }
  store::ConsentTable::ImportResult r;
  db.write([&](store::Tables& t) {
    r = t.consent.import(org, rows, actor(), "consent.import");
    for (const auto& e : r.audited) queue_consent_event(t, e, cfg);
  });
  to_syslog("consent import org=" + org + " file=" + store::printable(file) + " changed=" + std::to_string(r.changed) +
            " unchanged=" + std::to_string(r.unchanged) + " older=" + std::to_string(r.older) +
            " bad_lines=" + std::to_string(bad) + " by " + actor());
  nlohmann::ordered_json j{{"org", org}, {"changed", r.changed}, {"unchanged", r.unchanged},
                           {"kept_newer", r.older}, {"bad_lines", bad}};
  std::printf("%s\n", j.dump().c_str());
  return bad == 0 ? kExitOk : kExitNotFound;
}

}  // namespace

int cmd_consent(const std::string& config_path, const Args& args) {
  if (args.size() < 2) return usage_consent();
  const std::string& op = args[0];
  const std::string& org = args[1];
  auto cfg = load(config_path, true);
  if (!cfg) return kExitUnavailable;
  if (!known_org(*cfg, org)) return kExitUsage;
  bool change = op == "grant" || op == "revoke" || op == "unsubscribe";
  if (change || op == "show") {
    std::string source = "cli";
    if (args.size() == 5 && args[3] == "--source") source = args[4];
    if (args.size() != 3 && !(change && args.size() == 5 && args[3] == "--source")) return usage_consent();
    std::string addr = policy::consent_address(args[2]);
    if (addr.empty()) {
      std::fprintf(stderr, "cllavioctl: not an address: %s\n", store::printable(args[2]).c_str());
      return kExitUsage;
    }
    auto st = open_store(config_path, change);
    if (!st) return kExitUnavailable;
    if (op == "show") {
      std::printf("%s\n",
                  consent_json(org, addr, st->read()->consent.get(org, addr)).dump(-1, ' ', false, kReplace).c_str());
      return kExitOk;
    }
    policy::ConsentState to = op == "grant" ? policy::ConsentState::granted
                              : op == "revoke" ? policy::ConsentState::revoked
                                               : policy::ConsentState::unsubscribed;
    store::ConsentTable::Change ch;
    st->write([&](store::Tables& t) {
      ch = t.consent.set(org, addr, policy::Consent{to, store::realtime_us(), source}, actor(), "consent." + op);
      if (ch.audit) queue_consent_event(t, *ch.audit, *cfg);
    });
    std::string line = "consent org=" + org + " address=<" + store::printable(addr) + "> " +
                       std::string(policy::to_string(ch.before.state)) + " -> " + std::string(policy::to_string(to)) +
                       " source=" + store::printable(source) + " by " + actor();
    if (ch.changed) to_syslog(line);
    std::printf("%s: %s -> %s%s\n", store::printable(addr).c_str(), std::string(policy::to_string(ch.before.state)).c_str(),
                std::string(policy::to_string(to)).c_str(), ch.changed ? "" : " (unchanged)");
    return kExitOk;
  }
  if (op == "import" && args.size() == 3) {
    auto st = open_store(config_path, true);
    if (!st) return kExitUnavailable;
    return consent_import(*st, *cfg, org, args[2]);
  }
  if (op == "export" && args.size() == 2) {
    auto st = open_store(config_path, false);
    if (!st) return kExitUnavailable;
    std::printf("address,state,timestamp,source\n");
    st->read()->consent.scan(org, [](const std::string& a, const policy::Consent& c) {
      std::printf("%s,%s,%s,%s\n", store::printable(a).c_str(), std::string(policy::to_string(c.state)).c_str(),
                  c.at_us ? store::format_time_us(c.at_us).c_str() : "", store::printable(c.source).c_str());
      return true;
    });
    return kExitOk;
  }
  return usage_consent();
}

int cmd_quota(const std::string& config_path, const Args& args) {
  bool json = args.size() == 3 && args[2] == "--json";
  if (args.size() < 2 || (args.size() > 2 && !json) || (args[0] != "show" && args[0] != "reset")) {
    std::fprintf(stderr, "usage: cllavioctl [-c FILE] quota show ORG [--json] | quota reset ORG\n");
    return kExitUsage;
  }
  const std::string& org = args[1];
  auto cfg = load(config_path, true);
  if (!cfg) return kExitUnavailable;
  if (!known_org(*cfg, org)) return kExitUsage;
  auto st = open_store(config_path, args[0] == "reset");
  if (!st) return kExitUnavailable;
  // [quota] backend = "redis": the shared ledger is the count; the store keeps this
  // host's charges (the local fallback's), reset with it.
  std::unique_ptr<quota::RedisLedger> shared;
  if (cfg->quota.backend == conf::QuotaBackendKind::redis) {
    try {
      shared = std::make_unique<quota::RedisLedger>(quota::redis_settings(*cfg));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cllavioctl: [redis] url: %s\n", e.what());
      return kExitUnavailable;
    }
  }
  if (args[0] == "reset") {
    std::uint64_t shared_removed = 0;
    if (shared) {
      try {
        shared_removed = shared->reset(org);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "cllavioctl: quota reset: Redis at %s: %s (nothing reset)\n", cfg->redis.url.c_str(),
                     e.what());
        return kExitUnavailable;
      }
    }
    std::size_t removed = 0;
    st->write([&](store::Tables& t) { removed = t.quota.reset(org, actor()); });
    to_syslog("quota reset org=" + org + " removed=" + std::to_string(removed) +
              (shared ? " shared_removed=" + std::to_string(shared_removed) : std::string()) + " by " + actor());
    if (shared)
      std::printf("%s: quota reset (%llu charged messages forgotten in Redis, %zu in this host's store)\n", org.c_str(),
                  (unsigned long long)shared_removed, removed);
    else
      std::printf("%s: quota reset (%zu charged messages forgotten)\n", org.c_str(), removed);
    return kExitOk;
  }
  const policy::QuotaPolicy& q = cfg->policy_for(org).quota;
  std::int64_t now = store::realtime_us();
  std::vector<policy::WindowUsage> usage;
  std::uint64_t reserved = 0;
  if (shared) {
    try {
      usage = shared->usage(org, q, &reserved);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cllavioctl: quota show: Redis at %s: %s\n", cfg->redis.url.c_str(), e.what());
      return kExitUnavailable;
    }
  } else {
    policy::QuotaLedger ledger;
    ledger.reload(org, 0, st->read()->quota.events(org, now - q.longest_s() * 1000000));
    usage = ledger.usage(org, q, now);
  }
  nlohmann::ordered_json windows = nlohmann::ordered_json::array();
  for (const auto& u : usage) {
    windows.push_back({{"kind", u.recipients ? "recipients" : "messages"},
                       {"per", policy::describe_window(u.window.per_s)},
                       {"used", u.used},
                       {"max", u.window.max}});
    if (!json)
      std::printf("%-10s per %-10s %10llu / %llu\n", u.recipients ? "recipients" : "messages",
                  policy::describe_window(u.window.per_s).c_str(), (unsigned long long)u.used,
                  (unsigned long long)u.window.max);
  }
  if (json) {
    nlohmann::ordered_json j{{"org", org}, {"backend", shared ? "redis" : "local"}, {"windows", windows},
                             {"max_recipients_per_message", q.max_recipients_per_message},
                             {"action", q.action == policy::QuotaAction::reject ? "reject" : "defer"}};
    if (shared) j["reserved"] = reserved;
    std::printf("%s\n", j.dump().c_str());
  } else if (windows.empty()) {
    std::printf("%s: no quota configured\n", org.c_str());
  } else if (shared) {
    std::printf("(shared in Redis at %s; %llu recipients reserved by transactions in flight)\n",
                cfg->redis.url.c_str(), (unsigned long long)reserved);
  }
  return kExitOk;
}

int cmd_audit(const std::string& config_path, const Args& args) {
  bool json = false;
  std::int64_t since = 0;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--since" && i + 1 < args.size()) {
      auto t = parse_since(args[++i]);
      if (!t) {
        std::fprintf(stderr, "cllavioctl audit: --since takes 24h, 7d, ... or an RFC 3339 time\n");
        return kExitUsage;
      }
      since = *t;
    } else {
      std::fprintf(stderr, "usage: cllavioctl [-c FILE] audit [--since 24h|7d|2026-11-29T00:00:00Z] [--json]\n");
      return kExitUsage;
    }
  }
  auto st = open_store(config_path);
  if (!st) return kExitUnavailable;
  st->read()->audit.scan(since, [&](const store::AuditEntry& e) {
    if (json) {
      nlohmann::ordered_json j{{"at", store::format_time_us(e.at_us)}, {"actor", e.actor}, {"action", e.action},
                               {"org", e.org}, {"address", e.address}, {"from", e.from}, {"to", e.to},
                               {"source", e.source}, {"detail", e.detail}};
      std::printf("%s\n", j.dump(-1, ' ', false, kReplace).c_str());
    } else {
      std::string what = e.address.empty() ? e.detail : "<" + e.address + "> " + e.from + " -> " + e.to;
      std::printf("%s %-20s %-12s %s (%s)\n", store::format_time_us(e.at_us).substr(0, 19).c_str(), e.action.c_str(),
                  e.org.c_str(), store::printable(what).c_str(), store::printable(e.actor).c_str());
    }
    return true;
  });
  return kExitOk;
}

}  // namespace cllavio::cli
