// A quota ledger shared by several hosts (Redis), as SharedQuota (quota/shared_quota.hpp)
// uses it: the operations of core::QuotaBackend with the time taken from the ledger
// (Redis TIME, not the hosts' clocks), each idempotent per transaction id.
//
// Contract: every call may throw LedgerError (unreachable, timeout, protocol or script
// error); then either nothing or all of the operation happened, and repeating it with
// the same transaction id is safe (never counts twice). Implementations are shared by
// libmilter's threads (thread-safe). Window semantics are policy::QuotaLedger's: a
// charge counts in a window of `per` from its time until `per` later; recipients are
// reserved at RCPT TO (leases that expire) and counted with their message at its charge.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/quota.hpp"
#include "policy/quota.hpp"

namespace cllavio::quota {

struct LedgerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct LedgerReply {
  std::optional<policy::QuotaRefusal> refused;  // nothing changed when set
  std::int64_t at_us = 0;                       // the ledger's time (for charge: the charge's time)
  // Each window of the policy after the operation, messages first, then recipients
  // (as policy::QuotaLedger::usage), charged messages/recipients only.
  std::vector<policy::WindowUsage> usage;
};

class SharedLedger {
 public:
  virtual ~SharedLedger() = default;
  // The transaction now holds `held` reserved recipients (held >= 1; a retry with the
  // same `held` changes nothing); refused when the increase does not fit a recipient
  // window (charged recipients + every live reservation). Renews the lease.
  virtual LedgerReply reserve(const core::TxnId& txn, const std::string& org, const policy::QuotaPolicy& p,
                              std::uint64_t held) = 0;
  // Drops the transaction's reservation (all of it). Idempotent.
  virtual void release(const core::TxnId& txn, const std::string& org) = 0;
  // One message of `rcpts` recipients when it fits every message window; drops the
  // transaction's reservation in the same step. A retry of a charge that happened
  // returns the first one's time (and no refusal).
  virtual LedgerReply charge(const core::TxnId& txn, const std::string& org, const policy::QuotaPolicy& p,
                             std::uint64_t rcpts) = 0;
  // The transaction's charge no longer counts. Idempotent; unknown transactions are ignored.
  virtual void uncharge(const core::TxnId& txn, const std::string& org) = 0;
  // A charge made while the ledger could not be reached, at a host's time: added unless
  // the transaction is already there, without a limit check. Idempotent.
  virtual void replay(const core::TxnId& txn, const std::string& org, const policy::QuotaPolicy& p,
                      std::int64_t at_us, std::uint64_t rcpts) = 0;
  // Read-only: the windows' use now and the live reserved recipients.
  virtual std::vector<policy::WindowUsage> usage(const std::string& org, const policy::QuotaPolicy& p,
                                                 std::uint64_t* reserved = nullptr) = 0;
  // Forgets the org (charges and reservations); returns the charged messages forgotten.
  virtual std::uint64_t reset(const std::string& org) = 0;
  virtual void ping() = 0;  // a cheap round trip (the circuit breaker's probe)
};

}  // namespace cllavio::quota
