// The milter's quota backend when quotas are shared by several hosts ([quota] backend =
// "redis"): a SharedLedger behind a circuit breaker, with what to do when it cannot be
// reached ([quota] on_backend_error) and a replay of local charges once it is back.
//
// - Closed breaker: every call goes to the ledger. A failure (LedgerError: down, slow,
//   broken) is handled by the mode, and `breaker_failures` failures in a row open it.
// - Open breaker: no call waits on the ledger; every call takes the mode's path at once.
//   A probe thread pings the ledger every `breaker_retry_ms`; when it answers, the
//   charges made meanwhile are replayed (SharedLedger::replay, idempotent ids), then the
//   breaker closes.
// - Modes: local: a local ledger (core::LocalQuota over the store, which holds every
//   charge this host made, rebuilt each time the breaker opens) with each limit divided
//   by `hosts` (rounded down); tempfail: a refusal with `unavailable` set (451 4.3.0);
//   accept: no limit. In local and accept modes the messages charged meanwhile are
//   replayed, so the shared count includes them after recovery.
//
//   A limit below `hosts` becomes 0 in local mode: that window refuses everything until
//   the ledger is back. Local refusals name the host's share (e.g. 500 of 1000 per hour).
// - A call that fails while the breaker is still closed is answered by the mode too; the
//   charges it made are replayed by the next probe (the probe thread also runs while
//   the breaker is closed when there is something to replay). Replays and uncharges are
//   kept in order, at most 100,000 (then the oldest is dropped, with a warning).
//
// Contract: thread-safe; a transaction's reservations are remembered per id (in the
// ledger, or locally when they were made in fallback) and given back where they were
// made (reservations in the ledger are released there only while the breaker is closed;
// otherwise their lease expires). Never throws from a QuotaBackend call. The observer's
// callbacks run on the calling thread and must not block; exceptions from them are
// swallowed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/log.hpp"
#include "core/quota.hpp"
#include "quota/ledger.hpp"

namespace cllavio::store {
class Db;
}

namespace cllavio::quota {

enum class OnBackendError { local, tempfail, accept };
std::string_view to_string(OnBackendError);  // "local" "tempfail" "accept"

struct SharedQuotaSettings {
  OnBackendError on_error = OnBackendError::local;
  unsigned hosts = 1;              // local fallback: each limit / hosts
  int breaker_failures = 3;        // failures in a row that open the breaker
  int breaker_retry_ms = 1000;     // probe interval while open
};

struct SharedQuotaObserver {
  std::function<void(std::string_view op, double seconds, bool ok)> call;  // every ledger call ("reserve"...)
  std::function<void(std::string_view mode)> fallback;  // a call answered by the mode ("local" "tempfail" "accept")
  std::function<void(bool up)> state;                   // breaker closed (up) / open
  std::function<void(std::uint64_t n)> replayed;        // charges written back after recovery
};

class SharedQuota : public core::QuotaBackend {
 public:
  // db: the store the local fallback rebuilds from (may be null in tests); log: where
  // state changes are logged loudly (warning when the breaker opens, notice when it closes).
  SharedQuota(std::unique_ptr<SharedLedger> ledger, const store::Db* db, SharedQuotaSettings s,
              const core::Logger* log, SharedQuotaObserver obs = {});
  ~SharedQuota() override;  // stops the probe thread

  void start();  // the probe thread (also works without: probe_once() from tests)
  void set_settings(SharedQuotaSettings s);  // SIGHUP

  std::optional<policy::QuotaRefusal> reserve(const core::TxnId&, const std::string& org,
                                              const policy::QuotaPolicy& p, std::int64_t now_us) override;
  void release(const core::TxnId&, const std::string& org, std::uint64_t n) override;
  std::optional<policy::QuotaRefusal> charge(const core::TxnId&, const std::string& org,
                                             const policy::QuotaPolicy& p, std::uint64_t rcpts,
                                             std::uint64_t reserved, std::int64_t now_us,
                                             std::int64_t& charged_at_us) override;
  void uncharge(const core::TxnId&, const std::string& org, std::int64_t charged_at_us, std::uint64_t rcpts) override;
  std::vector<policy::WindowUsage> usage(const std::string& org, const policy::QuotaPolicy& p,
                                         std::int64_t now_us) const override;

  bool up() const;                 // breaker closed
  std::size_t pending() const;     // local charges (and uncharges) waiting for the replay
  // One probe: when the breaker is open and the ledger answers, replay and close.
  // Returns up(). Called by the probe thread; public for tests.
  bool probe_once();
  SharedLedger& ledger() { return *ledger_; }

  // Test hooks (thread-safe reads of the state a unit test checks).
  std::size_t transactions() const;                         // transactions holding reservations here
  std::uint64_t local_reserved(const std::string& org) const;  // in the current local fallback ledger
  std::uint64_t pending_dropped() const;                    // entries dropped from a full replay list
  void set_pending_limit(std::size_t n);                    // default 100,000

 private:
  struct Impl;
  std::unique_ptr<SharedLedger> ledger_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cllavio::quota
