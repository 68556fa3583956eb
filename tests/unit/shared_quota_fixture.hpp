// The test fixture of SharedQuota (quota/shared_quota.cpp): an in-memory SharedLedger
// that records every call and can be switched down, an observer that records what
// SharedQuota reports, and a Fixture that wires them. Shared by test_shared_quota.cpp
// (the closed path, the breaker, the fallback modes) and test_shared_quota_recovery.cpp
// (the replay after recovery, reservations, observers, threads).
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "core/log.hpp"
#include "quota/shared_quota.hpp"
#include "store/db.hpp"
#include "tmpdir.hpp"

namespace shared_quota_test {

using namespace cllavio;  // brought along by `using namespace shared_quota_test`
using quota::OnBackendError;

constexpr std::int64_t kNow = 1'700'000'000'000'000;

inline policy::QuotaPolicy limits(std::uint64_t messages, std::uint64_t recipients) {
  policy::QuotaPolicy q;
  q.messages = {{3600, messages}};
  q.recipients = {{3600, recipients}};
  return q;
}

inline std::string id(const core::TxnId& t) { return t.hex().substr(0, 8); }

// The shared ledger's semantics in memory (policy::QuotaLedger for the windows), every
// call recorded, and a switch that makes every call throw LedgerError.
struct FakeLedger : quota::SharedLedger {
  struct Replay {
    core::TxnId txn;
    std::string org;
    std::int64_t at_us;
    std::uint64_t rcpts;
  };
  std::atomic<bool> down{false};
  std::atomic<bool> lose_charge_reply{false};  // charge, then throw (a reply lost on the way)
  std::atomic<bool> lose_reserve_reply{false};  // reserve, then throw
  std::atomic<int> calls{0};
  std::atomic<std::int64_t> clock{kNow};
  int replay_failures_after = -1;  // replays that succeed before the rest throw (-1: no limit)

  mutable std::mutex mu;
  policy::QuotaLedger ql;
  std::map<core::TxnId, std::pair<std::string, std::uint64_t>> held;  // txn -> org, reserved
  struct Charged {
    std::string org;
    std::int64_t at;
    std::uint64_t rcpts;
  };
  std::map<core::TxnId, Charged> charged;
  std::vector<std::string> log;  // "reserve TXN HELD", "charge TXN RCPTS", ...
  std::vector<Replay> replays;
  std::vector<core::TxnId> uncharges;

  void enter(const std::string& line) {
    ++calls;
    if (down) throw quota::LedgerError("connection refused");
    log.push_back(line);
  }
  std::vector<std::string> lines() const {
    std::lock_guard l(mu);
    return log;
  }
  std::uint64_t reserved_total() const {
    std::lock_guard l(mu);
    std::uint64_t n = 0;
    for (const auto& [t, h] : held) n += h.second;
    return n;
  }
  std::size_t live_charges() const {
    std::lock_guard l(mu);
    return charged.size();
  }

  quota::LedgerReply reserve(const core::TxnId& t, const std::string& org, const policy::QuotaPolicy& p,
                             std::uint64_t h) override {
    std::lock_guard l(mu);
    enter("reserve " + id(t) + " " + std::to_string(h));
    quota::LedgerReply r;
    auto& cur = held[t];
    cur.first = org;
    while (cur.second < h) {
      if ((r.refused = ql.reserve_recipient(org, p, clock))) break;
      ++cur.second;
    }
    if (cur.second == 0) held.erase(t);
    r.at_us = clock;
    r.usage = ql.usage(org, p, clock);
    if (lose_reserve_reply) throw quota::LedgerError("timeout (after the script ran)");
    return r;
  }
  void release(const core::TxnId& t, const std::string& org) override {
    std::lock_guard l(mu);
    enter("release " + id(t));
    if (auto it = held.find(t); it != held.end()) {
      ql.release_recipients(org, it->second.second);
      held.erase(it);
    }
  }
  quota::LedgerReply charge(const core::TxnId& t, const std::string& org, const policy::QuotaPolicy& p,
                            std::uint64_t rcpts) override {
    std::lock_guard l(mu);
    enter("charge " + id(t) + " " + std::to_string(rcpts));
    quota::LedgerReply r;
    if (auto it = charged.find(t); it != charged.end()) {
      r.at_us = it->second.at;
    } else {
      std::uint64_t h = held.count(t) ? held[t].second : 0;
      r.refused = ql.charge_message(org, p, rcpts, clock, &r.at_us, h);
      if (!r.refused) {
        charged[t] = {org, r.at_us, rcpts};
        held.erase(t);
      }
    }
    r.usage = ql.usage(org, p, clock);
    if (lose_charge_reply) throw quota::LedgerError("connection reset by peer (after the script ran)");
    return r;
  }
  void uncharge(const core::TxnId& t, const std::string& org) override {
    std::lock_guard l(mu);
    enter("uncharge " + id(t));
    uncharges.push_back(t);
    if (auto it = charged.find(t); it != charged.end()) {
      ql.uncharge(org, it->second.at, it->second.rcpts);
      charged.erase(it);
    }
  }
  void replay(const core::TxnId& t, const std::string& org, const policy::QuotaPolicy& p, std::int64_t at,
              std::uint64_t rcpts) override {
    std::lock_guard l(mu);
    if (replay_failures_after == 0) {
      ++calls;
      throw quota::LedgerError("timeout");
    }
    enter("replay " + id(t) + " " + std::to_string(rcpts));
    if (replay_failures_after > 0) --replay_failures_after;
    replays.push_back({t, org, at, rcpts});
    if (charged.count(t)) return;
    policy::QuotaPolicy unlimited = p;
    unlimited.messages.clear();
    std::int64_t when = 0;
    ql.charge_message(org, unlimited, rcpts, at, &when);
    charged[t] = {org, when, rcpts};
  }
  std::vector<policy::WindowUsage> usage(const std::string& org, const policy::QuotaPolicy& p,
                                         std::uint64_t* reserved) override {
    std::lock_guard l(mu);
    enter("usage");
    if (reserved) *reserved = ql.reserved(org);
    return ql.usage(org, p, clock);
  }
  std::uint64_t reset(const std::string&) override {
    std::lock_guard l(mu);
    enter("reset");
    return 0;
  }
  void ping() override {
    std::lock_guard l(mu);
    enter("ping");
  }
};

struct Events {
  std::mutex mu;
  std::vector<std::string> ops;  // observer.call: "reserve ok", "charge fail"
  std::vector<std::string> fallbacks;
  std::vector<bool> states;
  std::uint64_t replayed = 0;
  int replayed_calls = 0;
  std::vector<std::string> warnings, notices;
  int negative_seconds = 0;
};

struct Fixture {
  FakeLedger* fake;
  Events ev;
  core::Logger logger;
  std::unique_ptr<quota::SharedQuota> sq;

  explicit Fixture(quota::SharedQuotaSettings s = {}, const store::Db* db = nullptr) {
    logger.capture([this](conf::LogLevel level, const std::string& line) {
      std::lock_guard l(ev.mu);
      if (level == conf::LogLevel::warning) ev.warnings.push_back(line);
      if (level == conf::LogLevel::notice) ev.notices.push_back(line);
    });
    quota::SharedQuotaObserver obs;
    obs.call = [this](std::string_view op, double seconds, bool ok) {
      std::lock_guard l(ev.mu);  // Boost.Test is not thread-safe: checked afterwards
      if (seconds < 0) ++ev.negative_seconds;
      ev.ops.push_back(std::string(op) + (ok ? " ok" : " fail"));
    };
    obs.fallback = [this](std::string_view mode) {
      std::lock_guard l(ev.mu);
      ev.fallbacks.emplace_back(mode);
    };
    obs.state = [this](bool up) {
      std::lock_guard l(ev.mu);
      ev.states.push_back(up);
    };
    obs.replayed = [this](std::uint64_t n) {
      std::lock_guard l(ev.mu);
      ev.replayed += n;
      ++ev.replayed_calls;
    };
    auto f = std::make_unique<FakeLedger>();
    fake = f.get();
    sq = std::make_unique<quota::SharedQuota>(std::move(f), db, s, &logger, std::move(obs));
  }

  // Down until the breaker opens (each failing call answered by the mode).
  void open_breaker() {
    fake->down = true;
    const auto q = limits(1000, 1000);
    for (int i = 0; i < 20 && sq->up(); ++i) {
      core::QuotaHold h(sq.get(), "probe-org");
      (void)h.reserve(q, kNow);
    }
    BOOST_REQUIRE(!sq->up());
  }
};

inline quota::SharedQuotaSettings settings(OnBackendError mode, unsigned hosts = 1, int failures = 3) {
  quota::SharedQuotaSettings s;
  s.on_error = mode;
  s.hosts = hosts;
  s.breaker_failures = failures;
  s.breaker_retry_ms = 20;
  return s;
}

}  // namespace shared_quota_test
