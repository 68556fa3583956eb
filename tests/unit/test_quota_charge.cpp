#define BOOST_TEST_MODULE quota_charge
#include <boost/test/unit_test.hpp>

#include <set>

#include "core/quota.hpp"
#include "store/db.hpp"
#include "tmpdir.hpp"

// Quota charges as handles, a transaction's reservations, and the local ledger over the
// store (core/quota.cpp).

using namespace cllavio;

namespace {

constexpr std::int64_t kNow = 1'700'000'000'000'000;

policy::QuotaPolicy quota(std::uint64_t messages, std::uint64_t recipients) {
  policy::QuotaPolicy q;
  q.messages = {{3600, messages}};
  q.recipients = {{3600, recipients}};
  return q;
}

// Records every call, as a shared ledger (Redis) would receive them.
struct RecordingBackend : core::LocalQuota {
  std::vector<std::string> calls;
  std::set<std::pair<std::uint64_t, std::uint64_t>> txns;
  std::optional<policy::QuotaRefusal> reserve(const core::TxnId& t, const std::string& org,
                                              const policy::QuotaPolicy& p, std::int64_t now) override {
    calls.push_back("reserve");
    txns.insert({t.hi, t.lo});
    return LocalQuota::reserve(t, org, p, now);
  }
  void release(const core::TxnId& t, const std::string& org, std::uint64_t n) override {
    calls.push_back("release " + std::to_string(n));
    LocalQuota::release(t, org, n);
  }
  std::optional<policy::QuotaRefusal> charge(const core::TxnId& t, const std::string& org,
                                             const policy::QuotaPolicy& p, std::uint64_t rcpts, std::uint64_t reserved,
                                             std::int64_t now, std::int64_t& at) override {
    calls.push_back("charge " + std::to_string(rcpts) + " releasing " + std::to_string(reserved));
    txns.insert({t.hi, t.lo});
    return LocalQuota::charge(t, org, p, rcpts, reserved, now, at);
  }
  void uncharge(const core::TxnId& t, const std::string& org, std::int64_t at, std::uint64_t rcpts) override {
    calls.push_back("uncharge " + std::to_string(rcpts));
    LocalQuota::uncharge(t, org, at, rcpts);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(transaction_ids_are_distinct) {
  std::set<std::pair<std::uint64_t, std::uint64_t>> seen;
  for (int i = 0; i < 10000; ++i) {
    auto t = core::TxnId::make();
    seen.insert({t.hi, t.lo});
  }
  BOOST_TEST(seen.size() == 10000u);
}

BOOST_AUTO_TEST_CASE(reservations_go_back_when_the_transaction_ends_uncharged) {
  RecordingBackend b;
  auto q = quota(10, 3);
  {
    core::QuotaHold hold(&b, "acme");
    BOOST_TEST(!hold.reserve(q, kNow));
    BOOST_TEST(!hold.reserve(q, kNow));
    BOOST_TEST(b.ledger().reserved("acme") == 2u);
  }
  BOOST_TEST(b.ledger().reserved("acme") == 0u);
  BOOST_TEST(b.calls.back() == "release 2");
  BOOST_TEST(b.txns.size() == 1u);  // every call named the same transaction
}

BOOST_AUTO_TEST_CASE(a_charge_takes_the_reservations_and_rolls_back_unless_committed) {
  RecordingBackend b;
  auto q = quota(10, 3);
  core::QuotaHold hold(&b, "acme");
  hold.reserve(q, kNow);
  hold.reserve(q, kNow);
  auto charged = hold.charge(q, 2, kNow);
  BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(charged));
  auto charge = std::move(std::get<core::QuotaCharge>(charged));
  BOOST_TEST(charge.active());
  BOOST_TEST(charge.rcpts() == 2u);
  BOOST_TEST(charge.window_us() == 3600 * 1000000ll);
  BOOST_TEST(hold.reserved() == 0u);
  BOOST_TEST(b.ledger().usage("acme", q, kNow)[0].used == 1u);
  {
    core::QuotaCharge moved = std::move(charge);  // the handle moves; only one rolls back
    BOOST_TEST(!charge.active());
  }
  BOOST_TEST(b.ledger().usage("acme", q, kNow)[0].used == 0u);
  BOOST_TEST(b.calls.back() == "uncharge 2");
  // Committed: final.
  auto again = hold.charge(q, 1, kNow);
  std::get<core::QuotaCharge>(again).commit();
  BOOST_TEST(b.ledger().usage("acme", q, kNow)[0].used == 1u);
}

BOOST_AUTO_TEST_CASE(a_refused_charge_leaves_the_reservations_held) {
  RecordingBackend b;
  auto q = quota(1, 10);
  core::QuotaHold first(&b, "acme");
  std::get<core::QuotaCharge>(first.charge(q, 1, kNow)).commit();
  core::QuotaHold second(&b, "acme");
  second.reserve(q, kNow);
  auto refused = second.charge(q, 1, kNow);
  BOOST_REQUIRE(std::holds_alternative<policy::QuotaRefusal>(refused));
  BOOST_TEST(second.reserved() == 1u);
}

BOOST_AUTO_TEST_CASE(the_local_ledger_loads_charges_from_the_store_and_again_after_a_reset) {
  test::TmpDir dir;
  store::StoreOptions o;
  o.dir = dir / "store";
  o.map_size_mb = 4;
  store::Db db(o);
  db.write([&](store::Tables& t) {
    t.quota.charge("acme", kNow - 1000, 1, 1, 0);
    t.quota.charge("acme", kNow - 500, 2, 1, 0);
  });
  core::LocalQuota ledger(&db);
  auto q = quota(2, 10);
  core::QuotaHold hold(&ledger, "acme");
  BOOST_TEST(std::holds_alternative<policy::QuotaRefusal>(hold.charge(q, 1, kNow)));  // 2 of 2 since the restart
  db.write([&](store::Tables& t) { t.quota.reset("acme", "test"); });                 // cllavioctl quota reset
  BOOST_TEST(std::holds_alternative<core::QuotaCharge>(hold.charge(q, 1, kNow)));
}
