// SharedQuota's state (quota/shared_quota.cpp only; not part of the interface): the
// breaker, the transactions' reservations, the ordered replay list and the usage cache,
// all under one short mutex (`mu`) that is never held across a ledger call.
//
// The local fallback ledger is a shared_ptr replaced each time the breaker opens: a call
// that took it before finishes on it, and a transaction's local reservations go back to
// the instance that holds them. One probe runs at a time (`probe_mu`).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "quota/shared_quota.hpp"

namespace cllavio::quota {

struct SharedQuota::Impl {
  struct Txn {
    std::string org;
    std::uint64_t ledger = 0;  // reservations held in the shared ledger
    std::uint64_t local = 0;   // reservations held in local_ledger
    bool maybe_ledger = false; // a reserve call failed: the ledger may hold one its reply did not tell
    std::shared_ptr<core::LocalQuota> local_ledger;
  };
  struct Pending {
    bool uncharge = false;  // else a charge to replay
    core::TxnId txn;
    std::string org;
    policy::QuotaPolicy policy;  // the configured limits (a replay does not check them)
    std::int64_t at_us = 0;
    std::uint64_t rcpts = 0;
    bool local = false;      // also charged in the local fallback ledger
    bool replaying = false;  // the probe is writing it back now
    bool cancelled = false;  // uncharged while being replayed (an uncharge follows it)
  };
  struct Snapshot {
    bool open = false;
    SharedQuotaSettings settings;
    std::shared_ptr<core::LocalQuota> local;
  };

  Impl(SharedLedger& l, const store::Db* d, SharedQuotaSettings s, const core::Logger* lg, SharedQuotaObserver o)
      : ledger(l), db(d), log(lg), obs(std::move(o)), settings(s), local(std::make_shared<core::LocalQuota>(d)) {}

  SharedLedger& ledger;
  const store::Db* db;
  const core::Logger* log;
  const SharedQuotaObserver obs;

  mutable std::mutex mu;
  std::condition_variable cv;  // the probe thread: opened, pending work, settings, stop
  SharedQuotaSettings settings;
  bool open = false;
  int failures = 0;  // in a row
  std::chrono::steady_clock::time_point opened_at;
  std::shared_ptr<core::LocalQuota> local;
  std::map<core::TxnId, Txn> txns;
  std::map<std::uint64_t, Pending> pending;              // by sequence number: oldest first
  std::map<core::TxnId, std::uint64_t> pending_charges;  // txn -> its charge in `pending`
  std::uint64_t next_seq = 0;
  std::size_t pending_limit = 100000;  // set_pending_limit()
  std::uint64_t dropped = 0;
  std::uint64_t replayed_since_open = 0;
  std::map<std::string, std::vector<policy::WindowUsage>> last_usage;  // org -> the ledger's last answer

  std::mutex probe_mu;
  bool stop = false;
  std::thread thread;

  Snapshot snapshot() const {
    std::lock_guard lock(mu);
    return {open, settings, local};
  }

  void log_line(conf::LogLevel level, const std::string& text) const noexcept {
    if (log == nullptr) return;
    try {
      log->log(level, text);
    } catch (...) {
    }
  }

  // One ledger call, timed for the observer; the error's text when it failed (any
  // exception is a failure).
  template <class F>
  std::optional<std::string> call(std::string_view op, F&& f);
  void succeeded();
  void failed(const std::string& error);  // may open the breaker
  void remember_usage(const std::string& org, const std::vector<policy::WindowUsage>& usage);
  std::string add_pending_locked(Pending e);  // with mu held; returns a warning to log
  void add_pending(Pending e);
  void forget(const core::TxnId& txn, const std::shared_ptr<core::LocalQuota>& except = nullptr);
  std::optional<policy::QuotaRefusal> fallback_reserve(const Snapshot& st, const core::TxnId& txn,
                                                       const std::string& org, const policy::QuotaPolicy& p,
                                                       std::int64_t now_us);
  std::optional<policy::QuotaRefusal> fallback_charge(const Snapshot& st, const core::TxnId& txn,
                                                      const std::string& org, const policy::QuotaPolicy& p,
                                                      std::uint64_t rcpts, std::int64_t now_us,
                                                      std::int64_t& charged_at_us);
  bool probe();  // SharedQuota::probe_once
  void run();    // the probe thread
};

}  // namespace cllavio::quota
