// Sending quotas as the milter uses them: a ledger behind an interface, the
// reservations one transaction holds, and a charge that rolls back unless committed.
//
// QuotaBackend is what a ledger offers (reserve / release / charge / uncharge), each
// call naming the transaction (a 128-bit id made at MAIL FROM) so that a shared ledger
// can make every call idempotent; LocalQuota is the in-process one (policy::QuotaLedger,
// rebuilt from the store's charges).
//
// QuotaHold is one transaction's side of it: recipients reserved at RCPT TO are given
// back when it ends, however it ends, unless charge() turned them into a QuotaCharge.
// A QuotaCharge is like an LMDB Txn: it is undone when it leaves scope unless commit()
// was called, so there is exactly one place where a charge becomes final (the session,
// once the message is accepted).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "policy/quota.hpp"

namespace cllavio::store {
class Db;
}

namespace cllavio::core {

struct TxnId {
  std::uint64_t hi = 0, lo = 0;
  static TxnId make();  // random (a per-thread generator seeded from the system)
  std::string hex() const;  // 32 lowercase hex digits
  static std::optional<TxnId> parse(std::string_view hex32);
  bool empty() const { return hi == 0 && lo == 0; }
  friend bool operator==(const TxnId&, const TxnId&) = default;
  friend bool operator<(const TxnId& a, const TxnId& b) { return a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo; }
};

class QuotaBackend {
 public:
  virtual ~QuotaBackend() = default;
  // One more recipient for a transaction in flight, when it fits every recipient window.
  virtual std::optional<policy::QuotaRefusal> reserve(const TxnId& txn, const std::string& org,
                                                      const policy::QuotaPolicy& p, std::int64_t now_us) = 0;
  virtual void release(const TxnId& txn, const std::string& org, std::uint64_t n) = 0;
  // One message of `rcpts` recipients when it fits every message window; the
  // transaction's `reserved` recipients are given back in the same step. On refusal
  // nothing changes. Sets charged_at_us.
  virtual std::optional<policy::QuotaRefusal> charge(const TxnId& txn, const std::string& org,
                                                     const policy::QuotaPolicy& p, std::uint64_t rcpts,
                                                     std::uint64_t reserved, std::int64_t now_us,
                                                     std::int64_t& charged_at_us) = 0;
  // The charged message was not accepted after all. `txn` may be empty (a record
  // written before transaction ids were kept): a shared ledger then cannot find it.
  virtual void uncharge(const TxnId& txn, const std::string& org, std::int64_t charged_at_us, std::uint64_t rcpts) = 0;
  // The org's use of each window of p (messages first, then recipients), for metrics:
  // the ledger's view, which for a shared ledger is its last answer (no round trip).
  virtual std::vector<policy::WindowUsage> usage(const std::string& org, const policy::QuotaPolicy& p,
                                                 std::int64_t now_us) const = 0;
};

class QuotaCharge {
 public:
  QuotaCharge() = default;  // nothing charged
  QuotaCharge(QuotaBackend* backend, TxnId txn, std::string org, std::int64_t at_us, std::uint64_t rcpts,
              std::int64_t window_us)
      : backend_(backend), txn_(txn), org_(std::move(org)), at_us_(at_us), rcpts_(rcpts), window_us_(window_us) {}
  QuotaCharge(QuotaCharge&& o) noexcept { *this = std::move(o); }
  QuotaCharge& operator=(QuotaCharge&& o) noexcept;
  QuotaCharge(const QuotaCharge&) = delete;
  QuotaCharge& operator=(const QuotaCharge&) = delete;
  ~QuotaCharge() { rollback(); }

  bool active() const { return backend_ != nullptr; }
  std::int64_t at_us() const { return at_us_; }
  std::uint64_t rcpts() const { return rcpts_; }
  std::int64_t window_us() const { return window_us_; }  // the org's longest window (older charges are pruned)
  const TxnId& txn() const { return txn_; }
  void commit() { backend_ = nullptr; }
  void rollback() noexcept;

 private:
  QuotaBackend* backend_ = nullptr;
  TxnId txn_;
  std::string org_;
  std::int64_t at_us_ = 0;
  std::uint64_t rcpts_ = 0;
  std::int64_t window_us_ = 0;
};

class QuotaHold {
 public:
  QuotaHold(QuotaBackend* backend, std::string org) : backend_(backend), txn_(TxnId::make()), org_(std::move(org)) {}
  QuotaHold(const QuotaHold&) = delete;
  QuotaHold& operator=(const QuotaHold&) = delete;
  ~QuotaHold();

  std::optional<policy::QuotaRefusal> reserve(const policy::QuotaPolicy& p, std::int64_t now_us);
  // The message's charge, or why it does not fit (then the reservations stay held).
  std::variant<QuotaCharge, policy::QuotaRefusal> charge(const policy::QuotaPolicy& p, std::uint64_t rcpts,
                                                         std::int64_t now_us);
  std::uint64_t reserved() const { return reserved_; }
  const TxnId& txn() const { return txn_; }

 private:
  QuotaBackend* backend_;
  TxnId txn_;
  std::string org_;
  std::uint64_t reserved_ = 0;
  bool asked_ = false;  // a reserve was attempted since the last charge: release at the end
};

// The in-process ledger. With a store, an org's charged messages are loaded the first
// time it is used and again after `cllavioctl quota reset` (the store's per-org epoch).
class LocalQuota : public QuotaBackend {
 public:
  explicit LocalQuota(const store::Db* db = nullptr) : db_(db) {}
  std::optional<policy::QuotaRefusal> reserve(const TxnId&, const std::string& org, const policy::QuotaPolicy& p,
                                              std::int64_t now_us) override;
  void release(const TxnId&, const std::string& org, std::uint64_t n) override;
  std::optional<policy::QuotaRefusal> charge(const TxnId&, const std::string& org, const policy::QuotaPolicy& p,
                                             std::uint64_t rcpts, std::uint64_t reserved, std::int64_t now_us,
                                             std::int64_t& charged_at_us) override;
  void uncharge(const TxnId&, const std::string& org, std::int64_t charged_at_us, std::uint64_t rcpts) override;
  std::vector<policy::WindowUsage> usage(const std::string& org, const policy::QuotaPolicy& p,
                                         std::int64_t now_us) const override {
    return ledger_.usage(org, p, now_us);
  }
  const policy::QuotaLedger& ledger() const { return ledger_; }

 private:
  void refresh(const std::string& org, const policy::QuotaPolicy& p, std::int64_t now_us);
  const store::Db* db_;
  policy::QuotaLedger ledger_;
  std::mutex mu_;
  std::map<std::string, std::uint64_t> loaded_;  // org -> store epoch loaded into the ledger
};

}  // namespace cllavio::core
