// The shared quota ledger in Redis (or Valkey): one Lua script per operation, loaded
// once per connection's server (EVALSHA, loaded again on NOSCRIPT), over a bounded pool
// of hiredis connections shared by libmilter's threads.
//
// Keys: all of an org's keys share the hash tag {ORG} (one Redis Cluster slot):
//   PREFIX{ORG}:log   sorted set, one member per charged message, scored by charge time (us)
//   PREFIX{ORG}:gone  sorted set, charges given back (uncharge), same members and scores
//   PREFIX{ORG}:res   sorted set, transactions holding reservations, scored by lease expiry (us)
//   PREFIX{ORG}:h     hash: totals (cumulative recipients, last charge time, reserved) and
//                     per-transaction fields (its charge, its reserved count)
// Every write prunes what no window can see any more and sets the keys to expire after
// the org's longest window plus the lease. Times come from Redis TIME. Counts are exact
// (cumulative sums: O(log n) per window); about 310 bytes of Redis memory per charged
// message in the longest window (test_redis_ledger measures it).
//
// Contract: thread-safe; a call checks out a connection (waiting at most timeout_ms for
// one), runs one script with socket timeouts of timeout_ms and throws LedgerError on
// any failure, discarding that connection (the next call connects again, within
// connect_timeout_ms). Blocks at most checkout + connect + one call, plus one more call
// when the server lost the script (NOSCRIPT -> EVAL) and one immediate retry on a new
// connection when a pooled one was found closed (EOF/reset, never after a timeout).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "quota/ledger.hpp"

namespace cllavio::quota {

struct RedisSettings {
  std::string url = "redis://127.0.0.1:6379/0";  // or "unix:/path/redis.sock" (optionally "?db=N")
  int timeout_ms = 50;           // per call (socket send/receive), and the wait for a free connection
  int connect_timeout_ms = 200;  // per connection attempt
  int pool_size = 8;             // connections at most
  std::string password;          // AUTH when not empty ([redis] password in the secrets file)
  std::string key_prefix = "cllavio:quota:";
  int lease_s = 600;             // a reservation lives this long after the transaction's last RCPT
};

struct RedisEndpoint {
  std::string host;       // tcp
  int port = 6379;
  std::string unix_path;  // unix socket (host empty)
  int db = 0;
};

// "redis://HOST[:PORT][/DB]", "redis://[V6]:PORT/DB", "unix:/path[?db=N]"; nullopt and
// *error set otherwise. (Passwords are not taken from the URL: secrets file only.)
std::optional<RedisEndpoint> parse_redis_url(std::string_view url, std::string* error);

class RedisLedger : public SharedLedger {
 public:
  explicit RedisLedger(RedisSettings settings);  // throws std::invalid_argument on a bad url; connects lazily
  ~RedisLedger() override;
  RedisLedger(const RedisLedger&) = delete;
  RedisLedger& operator=(const RedisLedger&) = delete;

  LedgerReply reserve(const core::TxnId& txn, const std::string& org, const policy::QuotaPolicy& p,
                      std::uint64_t held) override;
  void release(const core::TxnId& txn, const std::string& org) override;
  LedgerReply charge(const core::TxnId& txn, const std::string& org, const policy::QuotaPolicy& p,
                     std::uint64_t rcpts) override;
  void uncharge(const core::TxnId& txn, const std::string& org) override;
  void replay(const core::TxnId& txn, const std::string& org, const policy::QuotaPolicy& p, std::int64_t at_us,
              std::uint64_t rcpts) override;
  std::vector<policy::WindowUsage> usage(const std::string& org, const policy::QuotaPolicy& p,
                                         std::uint64_t* reserved = nullptr) override;
  std::uint64_t reset(const std::string& org) override;
  void ping() override;
  // CONFIG GET name (for cllavioctl doctor: maxmemory-policy); throws LedgerError when the
  // server refuses it (a renamed CONFIG, an ACL) or is unreachable.
  std::string config_get(const std::string& name);

  const RedisSettings& settings() const;
  std::string key(const std::string& org, std::string_view which) const;  // PREFIX{ORG}:which

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cllavio::quota
