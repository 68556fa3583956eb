#define BOOST_TEST_MODULE shared_quota
#include <boost/test/unit_test.hpp>

#include "shared_quota_fixture.hpp"

using namespace shared_quota_test;

// SharedQuota over an in-memory SharedLedger (shared_quota_fixture.hpp): the closed
// path, the circuit breaker, the fallback modes. The replay after recovery,
// reservations, observers and threads: test_shared_quota_recovery.cpp.

BOOST_AUTO_TEST_CASE(mode_names) {
  BOOST_TEST(quota::to_string(OnBackendError::local) == "local");
  BOOST_TEST(quota::to_string(OnBackendError::tempfail) == "tempfail");
  BOOST_TEST(quota::to_string(OnBackendError::accept) == "accept");
}

BOOST_AUTO_TEST_CASE(the_closed_path_forwards_every_call_with_the_transaction_and_its_held_count) {
  Fixture f;
  auto q = limits(10, 10);
  core::TxnId t1, t2;
  {
    core::QuotaHold hold(f.sq.get(), "acme");
    t1 = hold.txn();
    BOOST_TEST(!hold.reserve(q, kNow));
    BOOST_TEST(!hold.reserve(q, kNow));
    BOOST_TEST(f.sq->transactions() == 1u);
    auto charged = hold.charge(q, 2, kNow);
    BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(charged));
    auto& c = std::get<core::QuotaCharge>(charged);
    BOOST_TEST(c.at_us() == kNow);  // the ledger's time
    BOOST_TEST(f.sq->transactions() == 0u);
    // c leaves scope uncommitted: rolled back
  }
  {
    core::QuotaHold hold(f.sq.get(), "acme");
    t2 = hold.txn();
    BOOST_TEST(!hold.reserve(q, kNow));
  }  // ends uncharged: released
  std::vector<std::string> want = {"reserve " + id(t1) + " 1", "reserve " + id(t1) + " 2", "charge " + id(t1) + " 2",
                                   "uncharge " + id(t1), "reserve " + id(t2) + " 1", "release " + id(t2)};
  BOOST_TEST(f.fake->lines() == want, boost::test_tools::per_element());
  BOOST_TEST(f.fake->live_charges() == 0u);
  BOOST_TEST(f.fake->ql.reserved("acme") == 0u);
  BOOST_TEST(f.sq->transactions() == 0u);
  BOOST_TEST(f.sq->up());
  BOOST_TEST(f.sq->pending() == 0u);
  BOOST_TEST(f.ev.fallbacks.empty());
}

BOOST_AUTO_TEST_CASE(refusals_from_the_ledger_are_not_failures) {
  Fixture f(settings(OnBackendError::accept, 1, 2));
  auto q = limits(1, 1);
  core::QuotaHold a(f.sq.get(), "acme");
  BOOST_TEST(!a.reserve(q, kNow));
  for (int i = 0; i < 5; ++i) {
    auto r = a.reserve(q, kNow);
    BOOST_REQUIRE(r);
    BOOST_TEST(!r->unavailable);
    BOOST_TEST(r->window.max == 1u);
  }
  auto ca = a.charge(q, 1, kNow);
  BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(ca));
  std::get<core::QuotaCharge>(ca).commit();
  core::QuotaHold b(f.sq.get(), "acme");
  BOOST_TEST(std::holds_alternative<policy::QuotaRefusal>(b.charge(q, 1, kNow)));
  BOOST_TEST(f.sq->up());
  BOOST_TEST(f.ev.fallbacks.empty());
}

BOOST_AUTO_TEST_CASE(the_breaker_opens_after_n_failures_and_then_the_ledger_is_left_alone) {
  Fixture f(settings(OnBackendError::accept, 1, 3));
  auto q = limits(1, 1);
  f.fake->down = true;
  core::QuotaHold hold(f.sq.get(), "acme");
  BOOST_TEST(!hold.reserve(q, kNow));  // failure 1, answered by accept
  BOOST_TEST(f.sq->up());
  BOOST_TEST(!hold.reserve(q, kNow));  // 2
  BOOST_TEST(f.sq->up());
  BOOST_TEST(!hold.reserve(q, kNow));  // 3: open
  BOOST_TEST(!f.sq->up());
  BOOST_TEST(f.fake->calls == 3);
  for (int i = 0; i < 50; ++i) {
    core::QuotaHold h(f.sq.get(), "acme");
    BOOST_TEST(!h.reserve(q, kNow));
    auto c = h.charge(q, 1, kNow + i);
    BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(c));
    BOOST_TEST(std::get<core::QuotaCharge>(c).at_us() == kNow + i);  // accept: the host's time
    std::get<core::QuotaCharge>(c).commit();
  }
  BOOST_TEST(f.fake->calls == 3);  // not one more call
  BOOST_TEST(f.ev.fallbacks.size() == 103u);
  BOOST_TEST(f.ev.fallbacks.back() == "accept");
  BOOST_TEST(f.sq->pending() == 50u);
  BOOST_REQUIRE(f.ev.states.size() == 1u);
  BOOST_TEST(f.ev.states[0] == false);
  BOOST_REQUIRE(f.ev.warnings.size() == 1u);  // once, loudly
  BOOST_TEST(f.ev.warnings[0].find("quota backend unreachable: connection refused; on_backend_error=accept") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_success_resets_the_failure_count) {
  Fixture f(settings(OnBackendError::accept, 1, 3));
  auto q = limits(100, 100);
  for (int i = 0; i < 5; ++i) {
    core::QuotaHold h(f.sq.get(), "acme");
    f.fake->down = true;
    (void)h.reserve(q, kNow);
    (void)h.reserve(q, kNow);
    f.fake->down = false;
    BOOST_TEST(!h.reserve(q, kNow));
  }
  BOOST_TEST(f.sq->up());
}

BOOST_AUTO_TEST_CASE(local_mode_enforces_the_hosts_share_rounded_down) {
  Fixture f(settings(OnBackendError::local, 2, 1));
  f.open_breaker();
  BOOST_REQUIRE(f.ev.warnings.size() == 1u);
  BOOST_TEST(f.ev.warnings[0].find("quota backend unreachable: connection refused; on_backend_error=local: each host "
                                   "enforces 1/2 of every limit") != std::string::npos);
  auto q = limits(5, 7);  // this host: 2 messages, 3 recipients
  core::QuotaHold a(f.sq.get(), "acme");
  BOOST_TEST(!a.reserve(q, kNow));
  BOOST_TEST(!a.reserve(q, kNow));
  BOOST_TEST(!a.reserve(q, kNow));
  auto r = a.reserve(q, kNow);
  BOOST_REQUIRE(r);
  BOOST_TEST(!r->unavailable);
  BOOST_TEST(r->recipients);
  BOOST_TEST(r->window.max == 3u);
  BOOST_TEST(f.sq->local_reserved("acme") == 3u);
  auto c1 = a.charge(q, 3, kNow);
  BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(c1));
  std::get<core::QuotaCharge>(c1).commit();
  BOOST_TEST(f.sq->local_reserved("acme") == 0u);  // the charge took them
  core::QuotaHold b(f.sq.get(), "acme");
  auto c2 = b.charge(q, 0, kNow + 1);
  BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(c2));
  std::get<core::QuotaCharge>(c2).commit();
  core::QuotaHold c(f.sq.get(), "acme");
  auto c3 = c.charge(q, 0, kNow + 2);
  BOOST_REQUIRE(std::holds_alternative<policy::QuotaRefusal>(c3));
  BOOST_TEST(std::get<policy::QuotaRefusal>(c3).window.max == 2u);
  BOOST_TEST(f.ev.fallbacks.back() == "local");
  BOOST_TEST(f.sq->pending() == 2u);
}

BOOST_AUTO_TEST_CASE(local_mode_with_more_hosts_than_the_limit_refuses_everything) {
  Fixture f(settings(OnBackendError::local, 3, 1));
  f.open_breaker();
  auto q = limits(2, 2);  // 2 / 3 = 0
  core::QuotaHold a(f.sq.get(), "acme");
  auto r = a.reserve(q, kNow);
  BOOST_REQUIRE(r);
  BOOST_TEST(r->window.max == 0u);
  BOOST_TEST(std::holds_alternative<policy::QuotaRefusal>(a.charge(q, 1, kNow)));
}

BOOST_AUTO_TEST_CASE(tempfail_mode_answers_451_4_3_0_and_changes_nothing) {
  Fixture f(settings(OnBackendError::tempfail, 2, 2));
  auto q = limits(10, 10);
  q.recipients.push_back({86400, 50});
  core::QuotaHold a(f.sq.get(), "acme");
  BOOST_TEST(!a.reserve(q, kNow));  // in the ledger while it is up
  f.fake->down = true;
  auto r = a.reserve(q, kNow);  // failure 1 (closed)
  BOOST_REQUIRE(r);
  BOOST_TEST(r->unavailable);
  BOOST_TEST(r->recipients);
  BOOST_TEST(r->window.per_s == 3600);
  auto reply = policy::quota_reply("acme", *r, policy::QuotaAction::reject, kNow);
  BOOST_TEST(reply.rcode == "451");
  BOOST_TEST(reply.xcode == "4.3.0");
  auto c = a.charge(q, 1, kNow);  // failure 2: open
  BOOST_REQUIRE(std::holds_alternative<policy::QuotaRefusal>(c));
  BOOST_TEST(std::get<policy::QuotaRefusal>(c).unavailable);
  BOOST_TEST(!std::get<policy::QuotaRefusal>(c).recipients);
  BOOST_TEST(!f.sq->up());
  BOOST_TEST(a.reserved() == 1u);  // the caller still holds its reservation
  BOOST_TEST(f.sq->transactions() == 1u);
  BOOST_TEST(f.sq->pending() == 1u);  // an uncharge, in case the failed charge happened after all
  BOOST_TEST(f.ev.fallbacks.size() == 2u);
  BOOST_TEST(f.ev.fallbacks.back() == "tempfail");
}

// A charge that ran in the ledger but whose reply was lost (Redis went away right after
// the script): the message is refused here (tempfail, or over the local share), so the
// charge must not stay in the shared count once the ledger is back.
BOOST_AUTO_TEST_CASE(a_refused_message_whose_charge_reply_was_lost_is_uncharged_after_recovery) {
  for (auto mode : {OnBackendError::tempfail, OnBackendError::local}) {
    BOOST_TEST_CONTEXT(quota::to_string(mode)) {
      Fixture f(settings(mode, 2, 1));
      auto q = limits(1, 10);  // local share: 1 / 2 = 0 messages
      core::QuotaHold a(f.sq.get(), "acme");
      BOOST_TEST(!a.reserve(q, kNow));
      f.fake->lose_charge_reply = true;
      auto c = a.charge(q, 1, kNow);
      BOOST_REQUIRE(std::holds_alternative<policy::QuotaRefusal>(c));
      BOOST_TEST(std::get<policy::QuotaRefusal>(c).unavailable == (mode == OnBackendError::tempfail));
      BOOST_TEST(!f.sq->up());
      BOOST_TEST(f.fake->live_charges() == 1u);  // it happened in the ledger
      f.fake->lose_charge_reply = false;
      BOOST_TEST(f.sq->probe_once());
      BOOST_TEST(f.fake->live_charges() == 0u);  // undone: the message was not accepted
      BOOST_TEST(f.sq->pending() == 0u);
      BOOST_TEST(f.ev.replayed == 0u);  // an uncharge is not a replayed charge
    }
  }
}

// A reserve that ran in the ledger but whose reply was lost: the transaction does not
// know it holds it; at its end the ledger is told to release it (while it answers), so
// the recipients do not stay reserved until the lease expires.
BOOST_AUTO_TEST_CASE(a_reservation_whose_reply_was_lost_is_released_at_the_end) {
  Fixture f(settings(OnBackendError::tempfail, 1, 3));
  auto q = limits(10, 10);
  {
    core::QuotaHold a(f.sq.get(), "acme");
    f.fake->lose_reserve_reply = true;
    auto r = a.reserve(q, kNow);
    BOOST_REQUIRE(r.has_value());  // answered by the mode: tempfail
    BOOST_TEST(r->unavailable);
    BOOST_TEST(a.reserved() == 0u);
    f.fake->lose_reserve_reply = false;
    BOOST_TEST(f.sq->up());           // one failure of three: still closed
    BOOST_TEST(f.fake->reserved_total() == 1u);  // held in the ledger all the same
  }
  BOOST_TEST(f.fake->reserved_total() == 0u);  // the hold's end released it there
  BOOST_TEST(f.sq->transactions() == 0u);
}

BOOST_AUTO_TEST_CASE(accept_mode_has_no_limit) {
  Fixture f(settings(OnBackendError::accept, 4, 1));
  f.open_breaker();
  auto q = limits(1, 1);
  for (int i = 0; i < 20; ++i) {
    core::QuotaHold h(f.sq.get(), "acme");
    BOOST_TEST(!h.reserve(q, kNow));
    BOOST_TEST(!h.reserve(q, kNow));
    auto c = h.charge(q, 2, kNow);
    BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(c));
    std::get<core::QuotaCharge>(c).commit();
  }
  BOOST_TEST(f.sq->pending() == 20u);
  BOOST_TEST(f.sq->transactions() == 0u);
}

