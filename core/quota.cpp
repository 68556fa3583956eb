#include "core/quota.hpp"

#include <random>

#include "store/db.hpp"

namespace cllavio::core {

TxnId TxnId::make() {
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }());
  return TxnId{rng(), rng()};
}

std::string TxnId::hex() const {
  static const char* d = "0123456789abcdef";
  std::string s(32, '0');
  for (int i = 0; i < 16; ++i) {
    s[static_cast<std::size_t>(15 - i)] = d[(hi >> (4 * i)) & 15];
    s[static_cast<std::size_t>(31 - i)] = d[(lo >> (4 * i)) & 15];
  }
  return s;
}

std::optional<TxnId> TxnId::parse(std::string_view h) {
  if (h.size() != 32) return std::nullopt;
  TxnId t;
  for (std::size_t i = 0; i < 32; ++i) {
    char c = h[i];
    std::uint64_t v;
    if (c >= '0' && c <= '9') v = static_cast<std::uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f') v = static_cast<std::uint64_t>(c - 'a' + 10);
    else return std::nullopt;
    std::uint64_t& w = i < 16 ? t.hi : t.lo;
    w = (w << 4) | v;
  }
  return t;
}

QuotaCharge& QuotaCharge::operator=(QuotaCharge&& o) noexcept {
  if (this != &o) {
    rollback();
    backend_ = o.backend_;
    txn_ = o.txn_;
    org_ = std::move(o.org_);
    at_us_ = o.at_us_;
    rcpts_ = o.rcpts_;
    window_us_ = o.window_us_;
    o.backend_ = nullptr;
  }
  return *this;
}

void QuotaCharge::rollback() noexcept {
  if (backend_ == nullptr) return;
  try {
    backend_->uncharge(txn_, org_, at_us_, rcpts_);  // only accepted mail counts
  } catch (...) {
  }
  backend_ = nullptr;
}

QuotaHold::~QuotaHold() {
  // Also after a reserve that failed or was refused: a shared ledger may hold what a lost
  // reply did not tell (it ignores transactions it does not know).
  if (backend_ == nullptr || (reserved_ == 0 && !asked_)) return;
  try {
    backend_->release(txn_, org_, reserved_);
  } catch (...) {
  }
}

std::optional<policy::QuotaRefusal> QuotaHold::reserve(const policy::QuotaPolicy& p, std::int64_t now_us) {
  if (backend_ == nullptr) return std::nullopt;
  asked_ = true;
  auto refused = backend_->reserve(txn_, org_, p, now_us);
  if (!refused) ++reserved_;
  return refused;
}

std::variant<QuotaCharge, policy::QuotaRefusal> QuotaHold::charge(const policy::QuotaPolicy& p, std::uint64_t rcpts,
                                                                  std::int64_t now_us) {
  if (backend_ == nullptr) return QuotaCharge();
  std::int64_t at = 0;
  if (auto refused = backend_->charge(txn_, org_, p, rcpts, reserved_, now_us, at)) return *refused;
  reserved_ = 0;  // charged, or given back by the charge
  asked_ = false;
  return QuotaCharge(backend_, txn_, org_, at, rcpts, p.longest_s() * 1000000);
}

void LocalQuota::refresh(const std::string& org, const policy::QuotaPolicy& p, std::int64_t now_us) {
  if (db_ == nullptr) return;
  std::uint64_t epoch = db_->read()->quota.epoch(org);
  std::lock_guard lock(mu_);
  auto it = loaded_.find(org);
  if (it != loaded_.end() && it->second == epoch) return;
  ledger_.reload(org, epoch, db_->read()->quota.events(org, now_us - p.longest_s() * 1000000));
  loaded_[org] = epoch;
}

std::optional<policy::QuotaRefusal> LocalQuota::reserve(const TxnId&, const std::string& org,
                                                        const policy::QuotaPolicy& p, std::int64_t now_us) {
  refresh(org, p, now_us);
  return ledger_.reserve_recipient(org, p, now_us);
}

void LocalQuota::release(const TxnId&, const std::string& org, std::uint64_t n) { ledger_.release_recipients(org, n); }

std::optional<policy::QuotaRefusal> LocalQuota::charge(const TxnId&, const std::string& org,
                                                       const policy::QuotaPolicy& p, std::uint64_t rcpts,
                                                       std::uint64_t reserved, std::int64_t now_us,
                                                       std::int64_t& charged_at_us) {
  refresh(org, p, now_us);
  return ledger_.charge_message(org, p, rcpts, now_us, &charged_at_us, reserved);
}

void LocalQuota::uncharge(const TxnId&, const std::string& org, std::int64_t charged_at_us, std::uint64_t rcpts) {
  ledger_.uncharge(org, charged_at_us, rcpts);
}

}  // namespace cllavio::core
