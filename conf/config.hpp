// The validated configuration: one immutable snapshot per load.
//
// Contract: a Config is only ever built by load_config() (conf/loader.hpp), which
// applies the schema defaults (conf/schemas.cpp), validates every key and
// resolves relative paths against the main file's folder. The daemon shares it
// as std::shared_ptr<const Config>; each milter connection pins one snapshot, and
// SIGHUP swaps in a new one only if it loads without error.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "conf/redis_url.hpp"
#include "conf/socket_spec.hpp"
#include "policy/decision.hpp"
#include "policy/org_policy.hpp"
#include "policy/org_index.hpp"
#include "tracking/rewrite.hpp"
#include "tracking/token.hpp"

namespace cllavio::conf {

enum class OnError { accept, tempfail };
enum class LogTarget { syslog, stderr_stream };
// syslog priorities, most verbose first.
enum class LogLevel { debug, info, notice, warning, error };
// LMDB durability per write transaction (see docs/configuration.md).
enum class StoreSync { full, meta, none };

struct MilterSettings {
  SocketSpec socket;
  unsigned socket_mode = 0;
  std::optional<std::string> user;   // drop privileges to this user when started as root
  std::optional<std::string> group;  // group owning the unix socket (and store files)
  OnError on_error = OnError::accept;
  int timeout_s = 0;                 // libmilter I/O timeout towards the MTA
  int backlog = 0;
  int shutdown_timeout_s = 0;        // SIGTERM: wait this long for messages in flight
};

struct StoreSettings {
  std::string path;                  // directory holding cllavio.mdb
  std::uint64_t map_size_mb = 0;
  StoreSync sync = StoreSync::meta;
  int reject_records_per_minute = 0;  // records of rejected MAIL FROMs kept per minute
};

struct OrgsSettings {
  std::string dir;
  policy::UnknownOrg unknown = policy::UnknownOrg::accept;
};

struct LogSettings {
  LogTarget target = LogTarget::syslog;
  LogLevel level = LogLevel::info;
};

struct SecretsSettings {
  std::string file;                  // "" when there is none
};

// [api]: where events go (docs/api.md). url "" = no API: events stay in the outbox.
// The defaults written here are the schema's defaults too (conf/schemas.cpp reads them).
struct ApiSettings {
  std::string url;                   // https://api.cllavio.example (no trailing slash)
  std::string ca_file;               // private CA; "" = the system's trust store
  int batch_max = 100;               // events per request
  int batch_max_kb = 512;            // bytes per request
  int linger_ms = 200;               // wait this long for more events before sending a partial batch
  std::uint64_t max_outbox_mb = 256; // outbox bound: beyond it new events are dropped (counted, logged)
  int consent_poll_s = 60;           // API poll interval: consent changes and erasure requests; 0 = off
  int timeout_ms = 10000;            // per request (connect + transfer)
  // From the secrets file.
  std::string signing_secret;
  std::map<std::string, std::string> org_keys;  // org id -> Bearer key
};

// [delivery]: outcomes from Postfix's log (docs/delivery.md). log "" = off.
struct DeliverySettings {
  std::string log;                   // a file path, "journal" or "journal:DIR"
  bool suppress_hard_bounces = true;
  int soft_bounce_limit = 3;         // expiries without a delivery that suppress; 0 = never
  int soft_bounce_window_days = 14;
  int join_wait_s = 30;              // a line whose record is not there yet waits this long
  int max_age_days = 7;              // a queue id joins records at most this old
  std::vector<std::string> filter_relays;  // relay= of content filters that re-inject into this Postfix
  bool enabled() const { return !log.empty(); }
};

// [retention]: how long the store keeps what (docs/privacy.md); org files may override
// the durations for their org.
struct RetentionSettings {
  policy::Retention defaults;
  int prune_interval_s = 60;          // how often the pruner runs
};

// [metrics]: the Prometheus endpoint (docs/metrics.md). listen "" = off.
struct MetricsSettings {
  std::string listen;                 // "HOST:PORT" or "[V6]:PORT"; loopback is the recommendation
  std::string host;                   // parsed from listen
  int port = 0;
};

// [quota] backend and [redis]: where the quota ledger lives (docs/quotas.md).
enum class QuotaBackendKind { local, redis };
enum class OnBackendError { local, tempfail, accept };

struct QuotaBackendSettings {
  QuotaBackendKind backend = QuotaBackendKind::local;
  OnBackendError on_backend_error = OnBackendError::local;
  int hosts = 1;                     // local fallback: each limit / hosts
  int breaker_failures = 3;          // failures in a row that stop asking Redis
  int breaker_retry_ms = 1000;       // then Redis is probed this often
};

struct RedisSettings {
  std::string url = "redis://127.0.0.1:6379/0";
  RedisEndpoint endpoint;            // parsed from url
  int timeout_ms = 50;
  int connect_timeout_ms = 200;
  int pool_size = 8;
  std::string key_prefix = "cllavio:quota:";
  int lease_s = 600;
  std::string password;              // from the secrets file
};

struct Config {
  std::string file;                  // absolute path of the main file
  MilterSettings milter;
  StoreSettings store;
  OrgsSettings orgs_settings;
  LogSettings log;
  SecretsSettings secrets;
  ApiSettings api;
  DeliverySettings delivery;
  RetentionSettings retention;
  MetricsSettings metrics;
  QuotaBackendSettings quota;
  RedisSettings redis;
  tracking::RewriteLimits tracking_limits;
  policy::OrgIndex orgs;
  std::map<std::string, tracking::TrackingPolicy> tracking;  // org id -> its [tracking] (when some stream tracks)
  std::map<std::string, policy::OrgPolicy> policies;         // org id -> streams and quota (every org)
  std::shared_ptr<const tracking::TokenCodec> tokens;         // from the secrets file's keys

  // The org's streams and quota; an empty policy (one default stream, no quota) when unknown.
  const policy::OrgPolicy& policy_for(const std::string& org) const {
    static const policy::OrgPolicy none = [] {
      policy::OrgPolicy p;
      p.streams.fallback.name = "default";
      return p;
    }();
    auto it = policies.find(org);
    return it == policies.end() ? none : it->second;
  }
  bool suppress_hard_bounces(const std::string& org) const {
    return policy_for(org).suppress_hard_bounces.value_or(delivery.suppress_hard_bounces);
  }
  // The org's retention: its org file's [retention] over the main file's.
  policy::Retention retention_for(const std::string& org) const {
    return policy_for(org).retention.over(retention.defaults);
  }
  // Something in this configuration may reply to RCPT TO / edit messages (negotiation).
  bool any_rcpt_checks = false;
  bool any_modifications = false;

  // The org's tracking policy (host, pixel, text links; opens/clicks of the default
  // stream); a disabled one when it has none.
  const tracking::TrackingPolicy& tracking_for(const std::string& org) const {
    static const tracking::TrackingPolicy off;
    auto it = tracking.find(org);
    return it == tracking.end() ? off : it->second;
  }
};

std::string_view to_string(OnError);
std::string_view to_string(LogLevel);

}  // namespace cllavio::conf
