// The main file's [quota] (where the quota ledger lives) and [redis] keys, and the
// secrets file's [redis] password: declared here, applied by the loader like every key.
#include "conf/schemas.hpp"

namespace cllavio::conf {

namespace {

const QuotaBackendSettings kQuota{};
const RedisSettings kRedis{};

Key<Config> redis_url_key() {
  Key<Config> k{"redis.url", "string", toml_quote(kRedis.url), "redis://HOST[:PORT][/DB] | unix:/PATH[?db=N]",
                "The Redis (or Valkey) server of the shared quota ledger. An IP address is better than a name "
                "(name resolution is not covered by `connect_timeout_ms`). The password goes in the secrets file.",
                false, {}, {}};
  k.reset = [](Config& c) {
    c.redis.url = kRedis.url;
    c.redis.endpoint = *parse_redis_url(kRedis.url, nullptr);
  };
  k.set = [](const toml::node& n, Config& c, const KeyContext&, Reporter& rep) {
    const auto* s = n.as_string();
    if (s == nullptr) return rep.error(n, "expected a string, found " + toml_type_name(n));
    std::string err;
    auto ep = parse_redis_url(s->get(), &err);
    if (!ep) return rep.error(n, err);
    c.redis.url = s->get();
    c.redis.endpoint = *ep;
  };
  return k;
}

}  // namespace

std::vector<Key<Config>> quota_backend_keys() {
  std::vector<Key<Config>> keys;
  keys.push_back(enum_key<Config, QuotaBackendKind>(
      "quota.backend", [](Config& c) -> QuotaBackendKind& { return c.quota.backend; }, kQuota.backend,
      {{"local", QuotaBackendKind::local}, {"redis", QuotaBackendKind::redis}},
      "Where organizations' quotas are counted: `local` (this host's store; each host counts alone) or "
      "`redis` (one ledger shared by every host that names the same Redis; docs/quotas.md). Takes effect at "
      "start."));
  keys.push_back(enum_key<Config, OnBackendError>(
      "quota.on_backend_error", [](Config& c) -> OnBackendError& { return c.quota.on_backend_error; },
      kQuota.on_backend_error,
      {{"local", OnBackendError::local}, {"tempfail", OnBackendError::tempfail}, {"accept", OnBackendError::accept}},
      "With `backend = \"redis\"`, while Redis cannot be reached or is too slow: `local` counts on this host "
      "with each limit divided by `hosts` (and logs it loudly), `tempfail` answers `451 4.3.0` to mail of "
      "orgs with quotas, `accept` lets it pass uncounted. In `local` and `accept` the messages sent "
      "meanwhile are written to Redis once it is back."));
  keys.push_back(int_key<Config, int>(
      "quota.hosts", [](Config& c) -> int& { return c.quota.hosts; }, kQuota.hosts, 1, 1000,
      "How many hosts share the quotas: with `on_backend_error = \"local\"` each enforces limit / hosts "
      "(rounded down) while Redis is unreachable."));
  keys.push_back(int_key<Config, int>(
      "quota.breaker_failures", [](Config& c) -> int& { return c.quota.breaker_failures; }, kQuota.breaker_failures,
      1, 100,
      "Redis failures (errors, timeouts) in a row after which the milter stops asking it (the circuit "
      "breaker opens) and takes `on_backend_error`'s path at once."));
  keys.push_back(int_key<Config, int>(
      "quota.breaker_retry_ms", [](Config& c) -> int& { return c.quota.breaker_retry_ms; }, kQuota.breaker_retry_ms,
      100, 600000, "While the breaker is open, Redis is probed (PING) this often; when it answers, the charges "
      "made meanwhile are written back and the breaker closes."));
  keys.push_back(redis_url_key());
  keys.push_back(int_key<Config, int>(
      "redis.timeout_ms", [](Config& c) -> int& { return c.redis.timeout_ms; }, kRedis.timeout_ms, 1, 10000,
      "Longest wait for one Redis call (and for a free connection): an RCPT TO waits at most about this "
      "long on Redis."));
  keys.push_back(int_key<Config, int>(
      "redis.connect_timeout_ms", [](Config& c) -> int& { return c.redis.connect_timeout_ms; },
      kRedis.connect_timeout_ms, 1, 60000, "Longest wait for a new connection to Redis."));
  keys.push_back(int_key<Config, int>(
      "redis.pool_size", [](Config& c) -> int& { return c.redis.pool_size; }, kRedis.pool_size, 1, 256,
      "Connections to Redis at most, shared by the milter's threads."));
  keys.push_back(string_key<Config>(
      "redis.key_prefix", [](Config& c) -> std::string& { return c.redis.key_prefix; }, kRedis.key_prefix,
      "Prefix of the ledger's keys (`PREFIX{ORG}:log`...); hosts that share quotas use the same one.",
      [](std::string& v, const KeyContext&) -> std::string {
        if (v.size() > 64) return "redis.key_prefix is longer than 64 bytes";
        for (char ch : v)
          if (static_cast<unsigned char>(ch) <= ' ' || ch == '{' || ch == '}' || static_cast<unsigned char>(ch) >= 0x7f)
            return "redis.key_prefix may not hold spaces, braces or control bytes";
        return {};
      }));
  keys.push_back(int_key<Config, int>(
      "redis.lease_s", [](Config& c) -> int& { return c.redis.lease_s; }, kRedis.lease_s, 1, 86400,
      "Recipients reserved at RCPT TO are held this long after the transaction's last RCPT (a host that dies "
      "does not hold quota longer). Keep it above the time a message takes to arrive "
      "(Postfix's milter_content_timeout)."));
  return keys;
}

Key<SecretsFile> redis_password_key() {
  return string_key<SecretsFile>("redis.password", [](SecretsFile& s) -> std::string& { return s.redis_password; },
                                 "", "Password of the Redis server (`AUTH`), with `[quota] backend = \"redis\"`.");
}

}  // namespace cllavio::conf
