#include "milter/daemon.hpp"

#include <curl/curl.h>
#include <systemd/sd-daemon.h>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "conf/loader.hpp"
#include "core/erasure.hpp"
#include "events/consent_sync.hpp"
#include "events/erasure_sync.hpp"
#include "milter/metrics_wiring.hpp"
#include "milter/privileges.hpp"
#include "milter/quota_wiring.hpp"
#include "milter/shell.hpp"

namespace cllavio::milter {

namespace {

constexpr int kExitUsage = 64;        // EX_USAGE
constexpr int kExitUnavailable = 69;  // EX_UNAVAILABLE: socket or store cannot be opened

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: cllavio-milter [-c FILE] [-n]\n"
               "  -c FILE  main configuration file (default %s)\n"
               "  -n       validate the configuration and exit (0 valid, 78 invalid)\n"
               "  -V       print the version and exit\n",
               conf::kDefaultConfigPath);
}

store::Sync to_store_sync(conf::StoreSync s) {
  switch (s) {
    case conf::StoreSync::meta: return store::Sync::meta;
    case conf::StoreSync::none: return store::Sync::none;
    case conf::StoreSync::full: break;
  }
  return store::Sync::full;
}

// Settings that only take effect at start; a reload that changes them says so.
void warn_restart_only(const conf::Config& old_cfg, const conf::Config& new_cfg, const core::Logger& log) {
  auto warn = [&](const char* key) {
    log.warning(std::string("reload: ") + key + " changed; it takes effect after a restart");
  };
  if (!(old_cfg.milter.socket == new_cfg.milter.socket)) warn("milter.socket");
  if (old_cfg.milter.socket_mode != new_cfg.milter.socket_mode) warn("milter.socket_mode");
  if (old_cfg.milter.user != new_cfg.milter.user) warn("milter.user");
  if (old_cfg.milter.group != new_cfg.milter.group) warn("milter.group");
  if (old_cfg.milter.timeout_s != new_cfg.milter.timeout_s) warn("milter.timeout_s");
  if (old_cfg.milter.backlog != new_cfg.milter.backlog) warn("milter.backlog");
  if (old_cfg.store.path != new_cfg.store.path) warn("store.path");
  if (old_cfg.store.map_size_mb != new_cfg.store.map_size_mb) warn("store.map_size_mb");
  if (old_cfg.store.sync != new_cfg.store.sync) warn("store.sync");
  if (old_cfg.delivery.log != new_cfg.delivery.log) warn("delivery.log");
  if (old_cfg.metrics.listen != new_cfg.metrics.listen) warn("metrics.listen");
  if (old_cfg.quota.backend != new_cfg.quota.backend) warn("quota.backend");
  const conf::RedisSettings &a = old_cfg.redis, &b = new_cfg.redis;
  if (a.url != b.url || a.timeout_ms != b.timeout_ms || a.connect_timeout_ms != b.connect_timeout_ms ||
      a.pool_size != b.pool_size || a.key_prefix != b.key_prefix || a.lease_s != b.lease_s || a.password != b.password)
    warn("[redis]");
}

// The smtpd_milters value for the ready line. A socket in Debian's queue directory is
// named relative to it for the chrooted smtpd (Debian's master.cf chroots smtpd/cleanup).
std::string postfix_hint(const std::string& postfix_form) {
  constexpr std::string_view spool = "unix:/var/spool/postfix/";
  if (postfix_form.starts_with(spool))
    return postfix_form + ", or unix:" + postfix_form.substr(spool.size()) + " for a chrooted smtpd";
  return postfix_form;
}

// systemd (Type=notify): READY=1 once the socket listens and the store is open,
// RELOADING=1 ... READY=1 around a SIGHUP reload, STOPPING=1 when the drain starts.
// Without $NOTIFY_SOCKET (not under systemd) these do nothing.
void notify(const char* state) { sd_notify(0, state); }

void reload(Runtime& rt, const std::string& path) {
  notify("RELOADING=1");
  struct Ready {
    ~Ready() { notify("READY=1"); }
  } ready;  // also after a failed reload: the previous configuration serves
  auto result = conf::load_config(path);
  if (!result.config) {
    for (const auto& d : result.errors) rt.log.error("reload: " + d.str());
    rt.log.error("reload failed: " + std::to_string(result.errors.size()) +
                 " problem(s); the previous configuration stays in force");
    return;
  }
  auto old_cfg = rt.config();
  warn_restart_only(*old_cfg, *result.config, rt.log);
  rt.log.configure(result.config->log.target, result.config->log.level);
  if (rt.metrics) refresh_metric_labels(*rt.metrics, *result.config);  // new orgs get labels; counts stay
  reload_quota_backend(rt, *result.config);
  rt.set_config(result.config);
  rt.log.notice("reloaded " + result.config->file + ": " + std::to_string(result.config->orgs.orgs().size()) +
                " organization(s); new connections use it");
}

// Waits up to `ms` for one of the signals in `set`; returns it, or 0 on timeout.
int wait_signal(const sigset_t& set, long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000};
  siginfo_t info;
  int sig = sigtimedwait(&set, &info, &ts);
  return sig < 0 ? 0 : sig;
}

// SIGTERM: refuse new connections, wait for the messages in flight (and for the
// replies to their end of message) at most timeout_s, then leave. A second
// SIGTERM/SIGINT cuts the wait short.
//
// MAIL gets no reply when no org refuses senders (SMFIP_NR_MAIL): Postfix has sent it,
// and told the client 250, before we read it. So for a short grace after the signal new
// transactions still start normally (and are then waited for like the others); only
// after it do they get [milter] on_error, and the drain never ends inside it.
constexpr auto kMailGrace = std::chrono::milliseconds(500);

[[noreturn]] void drain_and_exit(Runtime& rt, const sigset_t& set, int timeout_s) {
  rt.stopping.store(true);
  notify("STOPPING=1");
  auto cfg = rt.config();
  if (cfg->milter.socket.kind == conf::SocketSpec::Kind::unix_path)
    ::unlink(cfg->milter.socket.path.c_str());  // new connection attempts fail right away
  auto now = [] { return std::chrono::steady_clock::now(); };
  auto deadline = now() + std::chrono::seconds(timeout_s);
  // After the last end of message, its reply is written within microseconds; a
  // connection that stays idle afterwards is not waited for longer than this.
  auto reply_grace = std::chrono::seconds(1);
  std::chrono::steady_clock::time_point quiet_since{};
  const auto grace_end = now() + kMailGrace;
  bool forced = false;
  for (;;) {
    int messages = rt.in_flight.load();
    int replies = rt.replies_pending.load();
    if (!rt.draining.load() && now() >= grace_end) {
      rt.draining.store(true);
      continue;  // read the counts again: a transaction may have started just before
    }
    if (rt.draining.load() && messages == 0 && replies == 0) break;
    if (messages == 0) {
      if (quiet_since == std::chrono::steady_clock::time_point{}) quiet_since = now();
      if (rt.draining.load() && now() - quiet_since > reply_grace) break;
    } else {
      quiet_since = {};
    }
    if (now() >= deadline) {
      rt.log.warning("shutdown: " + std::to_string(messages) + " message(s) still in flight after " +
                     std::to_string(timeout_s) + " s; Postfix applies milter_default_action to them");
      break;
    }
    int sig = wait_signal(set, 50);
    if (sig == SIGTERM || sig == SIGINT) {
      rt.log.warning("second stop signal: exiting now with " + std::to_string(messages) + " message(s) in flight");
      forced = true;
      break;
    }
    if (sig == SIGHUP) rt.log.notice("shutting down: reload ignored");
  }
  // A prune run under way (small steps, bounded per run) commits before the last sync.
  if (rt.pruner) rt.pruner->stop();
  if (rt.metrics_listener) rt.metrics_listener->stop();
  try {
    rt.db->sync();
  } catch (const std::exception& e) {
    rt.log.error(std::string("store sync at shutdown failed: ") + e.what());
  }
  const auto& gc = rt.db->committer();
  rt.log.notice(std::string(forced ? "stopped (forced)" : "stopped") + ": store wrote " +
                std::to_string(gc.writes()) + " record(s) in " + std::to_string(gc.commits()) + " commit(s)");
  // libmilter's threads still exist: leave without running static destructors
  // under their feet. Everything was committed and synced.
  _exit(0);
}

delivery::TrackerSettings tracker_settings(std::shared_ptr<const conf::Config> cfg) {
  const conf::DeliverySettings& d = cfg->delivery;
  delivery::TrackerSettings s;
  s.join_wait_us = std::int64_t{d.join_wait_s} * 1'000'000;
  s.max_age_us = std::int64_t{d.max_age_days} * 86400 * 1'000'000;
  s.filter_relays = d.filter_relays;
  s.soft_bounce_limit = static_cast<unsigned>(d.soft_bounce_limit);
  s.soft_bounce_window_us = std::int64_t{d.soft_bounce_window_days} * 86400 * 1'000'000;
  s.max_outbox_bytes = cfg->api.max_outbox_mb << 20;
  s.suppress_hard_bounces = [cfg](const std::string& org) { return cfg->suppress_hard_bounces(org); };
  return s;
}

// [delivery]: the log follower thread (it reads the log as milter.user: after the privilege drop).
void start_follower(Runtime& rt, const conf::Config& cfg) {
  const std::string& log = cfg.delivery.log;
  std::unique_ptr<delivery::LineSource> source;
  if (log == "journal" || log.rfind("journal:", 0) == 0) {
    std::int64_t since = store::realtime_us() - std::int64_t{cfg.delivery.max_age_days} * 86400 * 1'000'000;
    source = delivery::make_journal_source(log == "journal" ? "" : log.substr(8), since);
  } else {
    source = delivery::make_file_source(log);
  }
  delivery::FollowerHooks hooks;
  hooks.settings = [&rt] { return tracker_settings(rt.config()); };
  hooks.uncharge = [&rt](const delivery::Uncharge& u) {
    rt.quota->uncharge(core::TxnId::parse(u.txn).value_or(core::TxnId{}), u.org, u.at_us, u.rcpts);
  };
  hooks.on_events = [&rt] {
    if (rt.forwarder) rt.forwarder->wake();
  };
  if (rt.metrics)
    hooks.outcome = [&rt](const std::string& org, const std::string& state) { rt.metrics->delivery(org, state); };
  rt.follower = std::make_unique<delivery::Follower>(*rt.db, std::move(source), rt.log, std::move(hooks));
  rt.follower->start();
}

// THE ONE PLACE where erasure requests from the API (events/erasure_sync.hpp) are
// erased: inside the poller's write transaction, beside the page's cursor. Until
// core::erase_subject (core/erasure.hpp) is merged this refuses every request, so none
// is taken as done: the page is rolled back, its cursor stays, the refusal is logged at
// every poll and the requests are applied once the real erase is wired here, as
//   return [&rt](store::Tables& t, const store::EraseRequest& req) {
//     return core::erase_subject(t, req, rt.config()->api.max_outbox_mb << 20).report;
//   };
// with a Tables& form of core::erase_subject (store::erase_address plus the queued
// subject.erased events): the Db& form runs its own Db::write, which cannot be nested in
// the poller's transaction (the cursor must commit with the erasures).
events::EraseFn make_api_erase(Runtime& rt) {
  return [&rt](store::Tables& t, const store::EraseRequest& req) {
    return core::erase_subject(t, req, rt.config()->api.max_outbox_mb << 20).report;
  };
}

// Owns SIGHUP/SIGTERM/SIGINT (blocked in every other thread).
void signal_loop(Runtime& rt, const std::string& path, sigset_t set) {
  for (;;) {
    int sig = wait_signal(set, 3600 * 1000);
    if (sig == 0) continue;
    if (sig == SIGHUP) {
      reload(rt, path);
      continue;
    }
    rt.log.notice(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                  ": no new connections; finishing messages in flight");
    drain_and_exit(rt, set, rt.config()->milter.shutdown_timeout_s);
  }
}

}  // namespace

int daemon_main(int argc, char** argv) {
  tune_allocator();
  std::string config_path = conf::kDefaultConfigPath;
  bool check_only = false;
  int opt;
  while ((opt = getopt(argc, argv, "c:nVh")) != -1) {
    switch (opt) {
      case 'c': config_path = optarg; break;
      case 'n': check_only = true; break;
      case 'V': std::printf("cllavio-milter %s\n", CLLAVIO_VERSION); return 0;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return kExitUsage;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return kExitUsage;
  }
  if (check_only) return conf::check_config(config_path, stdout, stderr);

  auto loaded = conf::load_config(config_path);
  if (!loaded.config) {
    for (const auto& d : loaded.errors) std::fprintf(stderr, "%s\n", d.str().c_str());
    std::fprintf(stderr, "cllavio-milter: configuration invalid, not starting\n");
    return conf::kExitConfig;
  }
  const conf::Config& cfg = *loaded.config;

  // Signals are handled by our own thread; block them before any thread exists
  // (libmilter's threads inherit the mask). See main.cpp for libmilter's own.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  static Runtime rt;  // outlives every libmilter thread (the process ends with _exit)
  rt.log.configure(cfg.log.target, cfg.log.level);
  rt.set_config(loaded.config);
  rt.log.notice(std::string("starting cllavio-milter ") + CLLAVIO_VERSION + ": config " + cfg.file + ", " +
                std::to_string(cfg.orgs.orgs().size()) + " organization(s)");

  // [metrics]: counted from the first connection on; served once privileges are dropped.
  if (!cfg.metrics.listen.empty()) {
    rt.metrics = std::make_unique<metrics::Metrics>();
    refresh_metric_labels(*rt.metrics, cfg);
  }

  Account acct;
  if (std::string err = resolve_account(cfg.milter.user, cfg.milter.group, acct); !err.empty()) {
    rt.log.error(err);
    return conf::kExitConfig;
  }
  bool is_unix = cfg.milter.socket.kind == conf::SocketSpec::Kind::unix_path;
  if (is_unix) {
    // 0750 with the socket's group lets Postfix reach the socket, and nobody but root write here.
    std::string dir = std::filesystem::path(cfg.milter.socket.path).parent_path().string();
    std::string err = ensure_private_dir(dir, acct.group_gid ? 0750 : 0755, acct.group_gid);
    if (err.empty()) err = check_socket_free(cfg.milter.socket.path);
    if (!err.empty()) {
      rt.log.error(err);
      return kExitUnavailable;
    }
  }
  if (std::string err = open_milter(rt); !err.empty()) {
    rt.log.error(err);
    return kExitUnavailable;
  }
  if (is_unix) {
    if (std::string err = secure_socket(cfg.milter.socket.path, cfg.milter.socket_mode, acct); !err.empty()) {
      rt.log.error(err);
      return kExitUnavailable;
    }
  }

  if (std::string err = ensure_private_dir(cfg.store.path, 0700, std::nullopt); !err.empty()) {
    rt.log.error("store: " + err);
    return kExitUnavailable;
  }
  try {
    store::StoreOptions so;
    so.dir = cfg.store.path;
    so.map_size_mb = cfg.store.map_size_mb;
    so.sync = to_store_sync(cfg.store.sync);
    so.exclusive = true;
    rt.open(std::make_unique<store::Db>(so));
    if (rt.db->stale_readers_cleared() > 0)
      rt.log.notice("store: cleared " + std::to_string(rt.db->stale_readers_cleared()) +
                    " stale reader slot(s) left by a crashed process");
    if (const auto& m = rt.db->migrated())
      rt.log.notice("store: migrated from schema " + std::to_string(m->from) + " to " +
                    std::to_string(store::Db::kSchemaVersion) + " (address index built for " +
                    std::to_string(m->records) + " record(s))");
  } catch (const std::exception& e) {
    rt.log.error(std::string("cannot open the store: ") + e.what());
    return kExitUnavailable;
  }

  if (cfg.milter.user) {
    if (geteuid() == 0) {
      if (std::string err = drop_privileges(*cfg.milter.user, acct); !err.empty()) {
        rt.log.error("cannot drop privileges: " + err);
        return kExitUnavailable;
      }
    } else if (acct.uid && geteuid() != *acct.uid) {
      rt.log.notice("not started as root: running as uid " + std::to_string(geteuid()) + ", milter.user ignored");
    }
  }

  // The listener binds after the privilege drop (a port >= 1024 then, or CAP_NET_BIND_SERVICE).
  if (rt.metrics) {
    add_store_gauges(rt);
    if (std::string err = start_metrics_listener(rt, cfg); !err.empty()) {
      rt.log.error("[metrics] listen = \"" + cfg.metrics.listen + "\": " + err);
      return kExitUnavailable;
    }
    rt.log.notice("metrics: serving http://" + cfg.metrics.listen + "/metrics");
  }

  // [quota] backend = "redis": the shared ledger replaces the local one before any connection.
  if (std::string err = start_quota_backend(rt, cfg); !err.empty()) {
    rt.log.error("quota: " + err);
    return kExitUnavailable;
  }

  // The API threads never run in a milter callback; they need no privileges (the CA
  // file must be readable by milter.user). Queued events from before a restart go first.
  curl_global_init(CURL_GLOBAL_DEFAULT);
  auto current = [] { return rt.config(); };
  // With metrics, every API answer is counted by status class (cllavio_api_requests_total).
  auto transport = [] {
    auto t = events::make_curl_transport();
    if (!rt.metrics) return t;
    return events::observe_transport(std::move(t), [](const events::HttpResult& r) { rt.metrics->api_request(r.status); });
  };
  rt.forwarder = std::make_unique<events::Forwarder>(*rt.db, transport(), rt.log);
  rt.forwarder->start(current);
  // Consent changes and erasure requests made at the API come back (api.consent_poll_s).
  rt.api_sync = std::make_unique<events::ApiPoller>(*rt.db, transport(), rt.log);
  rt.api_sync->add(std::make_unique<events::ConsentFeed>());
  rt.api_sync->add(std::make_unique<events::ErasureFeed>(make_api_erase(rt)));
  rt.api_sync->on_applied([] {
    if (rt.forwarder) rt.forwarder->wake();  // subject.erased events to send
  });
  rt.api_sync->start(current);
  rt.pruner = std::make_unique<core::Pruner>(*rt.db, rt.log);
  rt.pruner->check_map(store::realtime_us());  // a nearly full map is said at startup
  rt.pruner->start(current);                  // [retention]
  if (cfg.api.url.empty())
    rt.log.notice("no [api] url: events stay in the outbox (cllavioctl outbox stats)");
  if (cfg.delivery.enabled()) start_follower(rt, cfg);

  std::thread signals(signal_loop, std::ref(rt), cfg.file, set);
  signals.detach();
  rt.log.notice("ready: listening on " + cfg.milter.socket.libmilter() + " (Postfix: smtpd_milters = " +
                postfix_hint(cfg.milter.socket.postfix()) + "), store " + rt.db->file());
  notify("READY=1");

  run_milter();  // returns only when libmilter gives up
  rt.log.error("libmilter stopped serving (see its syslog messages); exiting");
  std::fflush(nullptr);
  _exit(1);
}

}  // namespace cllavio::milter
