#define BOOST_TEST_MODULE shared_quota_recovery
#include <boost/test/unit_test.hpp>

#include "shared_quota_fixture.hpp"

using namespace shared_quota_test;

// SharedQuota over an in-memory SharedLedger (shared_quota_fixture.hpp) once the ledger
// comes back: the replay of what was charged meanwhile, where reservations go back,
// usage, observers, the bounded replay list, the probe thread, the local fallback's
// store, and threads while the ledger flips up and down.

BOOST_AUTO_TEST_CASE(the_probe_replays_exactly_what_was_charged_and_uncharged_meanwhile) {
  Fixture f(settings(OnBackendError::local, 2, 1));
  auto q = limits(100, 100);
  // Charged in the ledger while it was up; given back while it is down.
  core::QuotaHold early(f.sq.get(), "acme");
  auto ce = early.charge(q, 4, kNow);
  BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(ce));
  BOOST_TEST(f.fake->live_charges() == 1u);
  f.open_breaker();
  std::get<core::QuotaCharge>(ce).rollback();
  BOOST_TEST(f.sq->pending() == 1u);

  core::QuotaHold a(f.sq.get(), "acme"), b(f.sq.get(), "beta");
  BOOST_TEST(!a.reserve(q, kNow + 10));
  BOOST_TEST(!a.reserve(q, kNow + 10));
  auto ca = a.charge(q, 2, kNow + 10);
  auto cb = b.charge(q, 3, kNow + 20);
  BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(ca));
  BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(cb));
  std::get<core::QuotaCharge>(ca).commit();
  std::get<core::QuotaCharge>(cb).commit();
  BOOST_TEST(f.sq->pending() == 3u);

  int before = f.fake->calls;
  BOOST_TEST(!f.sq->probe_once());  // still down: one ping
  BOOST_TEST(f.fake->calls == before + 1);
  BOOST_TEST(f.sq->pending() == 3u);

  f.fake->down = false;
  BOOST_TEST(f.sq->probe_once());
  BOOST_TEST(f.sq->up());
  BOOST_TEST(f.sq->pending() == 0u);
  BOOST_REQUIRE(f.fake->replays.size() == 2u);
  BOOST_TEST((f.fake->replays[0].txn == a.txn()));
  BOOST_TEST(f.fake->replays[0].org == "acme");
  BOOST_TEST(f.fake->replays[0].at_us == kNow + 10);
  BOOST_TEST(f.fake->replays[0].rcpts == 2u);
  BOOST_TEST((f.fake->replays[1].txn == b.txn()));
  BOOST_TEST(f.fake->replays[1].org == "beta");
  BOOST_TEST(f.fake->replays[1].at_us == kNow + 20);
  BOOST_TEST(f.fake->replays[1].rcpts == 3u);
  BOOST_REQUIRE(f.fake->uncharges.size() == 1u);
  BOOST_TEST((f.fake->uncharges[0] == early.txn()));
  BOOST_TEST(f.fake->live_charges() == 2u);  // a and b; the early one is gone
  BOOST_TEST(f.ev.replayed == 2u);
  BOOST_TEST(f.ev.states == (std::vector<bool>{false, true}), boost::test_tools::per_element());
  BOOST_REQUIRE(f.ev.notices.size() == 1u);
  BOOST_TEST(f.ev.notices[0].find("quota backend back after 0s; replayed 2 charges") != std::string::npos);
  // Up again: calls go to the ledger.
  int calls = f.fake->calls;
  core::QuotaHold c(f.sq.get(), "acme");
  BOOST_TEST(!c.reserve(q, kNow));
  BOOST_TEST(f.fake->calls == calls + 1);
  BOOST_TEST(f.sq->probe_once());  // closed, nothing to do: no ping
  BOOST_TEST(f.fake->calls == calls + 1);
}

BOOST_AUTO_TEST_CASE(a_fallback_charge_given_back_is_not_replayed) {
  Fixture f(settings(OnBackendError::local, 1, 1));
  auto q = limits(100, 100);
  f.open_breaker();
  core::QuotaHold a(f.sq.get(), "acme"), b(f.sq.get(), "acme");
  auto ca = a.charge(q, 2, kNow);
  auto cb = b.charge(q, 1, kNow + 1);
  BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(ca));
  BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(cb));
  std::get<core::QuotaCharge>(cb).commit();
  BOOST_TEST(f.sq->usage("acme", q, kNow + 2)[0].used == 2u);  // the local view while open
  std::get<core::QuotaCharge>(ca).rollback();
  BOOST_TEST(f.sq->usage("acme", q, kNow + 2)[0].used == 1u);
  BOOST_TEST(f.sq->pending() == 1u);
  f.fake->down = false;
  BOOST_TEST(f.sq->probe_once());
  BOOST_REQUIRE(f.fake->replays.size() == 1u);
  BOOST_TEST((f.fake->replays[0].txn == b.txn()));
  BOOST_TEST(f.fake->uncharges.empty());
}

BOOST_AUTO_TEST_CASE(a_replay_failure_keeps_the_breaker_open_and_the_rest_pending) {
  Fixture f(settings(OnBackendError::accept, 1, 1));
  auto q = limits(100, 100);
  f.open_breaker();
  std::vector<core::TxnId> txns;
  for (int i = 0; i < 3; ++i) {
    core::QuotaHold h(f.sq.get(), "acme");
    auto c = h.charge(q, 1, kNow + i);
    BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(c));
    std::get<core::QuotaCharge>(c).commit();
    txns.push_back(h.txn());
  }
  f.fake->down = false;
  f.fake->replay_failures_after = 1;
  BOOST_TEST(!f.sq->probe_once());
  BOOST_TEST(!f.sq->up());
  BOOST_TEST(f.sq->pending() == 2u);
  BOOST_REQUIRE(f.fake->replays.size() == 1u);
  BOOST_TEST((f.fake->replays[0].txn == txns[0]));
  BOOST_TEST(f.ev.states.size() == 1u);  // still down
  f.fake->replay_failures_after = -1;
  BOOST_TEST(f.sq->probe_once());
  BOOST_TEST(f.sq->pending() == 0u);
  BOOST_REQUIRE(f.fake->replays.size() == 3u);
  BOOST_TEST((f.fake->replays[1].txn == txns[1]));
  BOOST_TEST((f.fake->replays[2].txn == txns[2]));
  BOOST_TEST(f.ev.replayed == 3u);
  BOOST_REQUIRE(f.ev.notices.size() == 1u);
  BOOST_TEST(f.ev.notices[0].find("replayed 3 charges") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(reservations_go_back_where_they_were_made) {
  Fixture f(settings(OnBackendError::local, 1, 1));
  auto q = limits(100, 100);
  core::TxnId t;
  {
    core::QuotaHold h(f.sq.get(), "acme");
    t = h.txn();
    BOOST_TEST(!h.reserve(q, kNow));  // in the ledger
    BOOST_TEST(f.fake->ql.reserved("acme") == 1u);
    f.fake->down = true;
    BOOST_TEST(!h.reserve(q, kNow));  // fails: opens; local
    BOOST_TEST(!f.sq->up());
    BOOST_TEST(!h.reserve(q, kNow));  // local
    BOOST_TEST(f.sq->local_reserved("acme") == 2u);
    f.fake->down = false;
    BOOST_TEST(f.sq->probe_once());
    BOOST_TEST(!h.reserve(q, kNow));  // in the ledger again: it holds 2 there
    BOOST_TEST(f.fake->ql.reserved("acme") == 2u);
  }  // release: 2 in the ledger, 2 locally
  BOOST_TEST(f.fake->ql.reserved("acme") == 0u);
  BOOST_TEST(f.sq->local_reserved("acme") == 0u);
  auto lines = f.fake->lines();
  BOOST_TEST(lines.back() == "release " + id(t));
  BOOST_TEST(std::count(lines.begin(), lines.end(), "reserve " + id(t) + " 2") == 1);
  BOOST_TEST(f.sq->transactions() == 0u);
}

BOOST_AUTO_TEST_CASE(a_charge_in_the_ledger_gives_back_local_reservations) {
  Fixture f(settings(OnBackendError::local, 1, 1));
  auto q = limits(100, 100);
  core::QuotaHold h(f.sq.get(), "acme");
  f.open_breaker();
  BOOST_TEST(!h.reserve(q, kNow));
  BOOST_TEST(f.sq->local_reserved("acme") == 1u);
  f.fake->down = false;
  BOOST_TEST(f.sq->probe_once());
  auto c = h.charge(q, 1, kNow);
  BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(c));
  BOOST_TEST(f.sq->local_reserved("acme") == 0u);
  BOOST_TEST(f.fake->live_charges() == 1u);
}

BOOST_AUTO_TEST_CASE(reservations_are_released_locally_while_open) {
  Fixture f(settings(OnBackendError::local, 1, 1));
  auto q = limits(100, 100);
  {
    core::QuotaHold h(f.sq.get(), "acme");
    BOOST_TEST(!h.reserve(q, kNow));  // in the ledger
    f.open_breaker();
    int calls = f.fake->calls;
    BOOST_TEST(!h.reserve(q, kNow));  // local
    BOOST_TEST(f.sq->local_reserved("acme") == 1u);
    BOOST_TEST(f.fake->calls == calls);
  }
  BOOST_TEST(f.sq->local_reserved("acme") == 0u);
  BOOST_TEST(f.fake->ql.reserved("acme") == 1u);  // not reachable: its lease expires
  BOOST_TEST(f.sq->transactions() == 0u);
}

BOOST_AUTO_TEST_CASE(usage_is_the_ledgers_last_answer) {
  Fixture f(settings(OnBackendError::local, 1, 1));
  auto q = limits(100, 100);
  auto u0 = f.sq->usage("acme", q, kNow);
  BOOST_REQUIRE(u0.size() == 2u);
  BOOST_TEST(u0[0].used == 0u);
  for (int i = 0; i < 3; ++i) {
    core::QuotaHold h(f.sq.get(), "acme");
    auto c = h.charge(q, 2, kNow);
    std::get<core::QuotaCharge>(c).commit();
  }
  int calls = f.fake->calls;
  auto u = f.sq->usage("acme", q, kNow);
  BOOST_TEST(f.fake->calls == calls);  // no round trip
  BOOST_REQUIRE(u.size() == 2u);
  BOOST_TEST(!u[0].recipients);
  BOOST_TEST(u[0].used == 3u);
  BOOST_TEST(u[0].window.max == 100u);
  BOOST_TEST(u[1].recipients);
  BOOST_TEST(u[1].used == 6u);
  // Another host charged meanwhile: seen with the next reply.
  {
    std::lock_guard l(f.fake->mu);
    std::int64_t at;
    f.fake->ql.charge_message("acme", q, 5, kNow, &at);
  }
  BOOST_TEST(f.sq->usage("acme", q, kNow)[0].used == 3u);
  core::QuotaHold h(f.sq.get(), "acme");
  (void)h.reserve(q, kNow);
  BOOST_TEST(f.sq->usage("acme", q, kNow)[0].used == 4u);
  BOOST_TEST(f.sq->usage("acme", q, kNow)[1].used == 11u);
  // A window the ledger never reported: 0. Another org: 0.
  auto q2 = q;
  q2.messages.push_back({60, 5});
  BOOST_TEST(f.sq->usage("acme", q2, kNow)[1].used == 0u);
  BOOST_TEST(f.sq->usage("beta", q, kNow)[0].used == 0u);
}

BOOST_AUTO_TEST_CASE(observer_callbacks_fire) {
  Fixture f(settings(OnBackendError::local, 1, 2));
  auto q = limits(100, 100);
  {
    core::QuotaHold h(f.sq.get(), "acme");
    (void)h.reserve(q, kNow);
    f.fake->down = true;
    (void)h.reserve(q, kNow);
    (void)h.reserve(q, kNow);  // opens
    (void)h.reserve(q, kNow);  // open: no call
    f.fake->down = false;
    BOOST_TEST(f.sq->probe_once());
  }
  std::vector<std::string> want = {"reserve ok", "reserve fail", "reserve fail", "ping ok", "release ok"};
  BOOST_TEST(f.ev.ops == want, boost::test_tools::per_element());
  BOOST_TEST(f.ev.fallbacks == (std::vector<std::string>{"local", "local", "local"}), boost::test_tools::per_element());
  BOOST_TEST(f.ev.states == (std::vector<bool>{false, true}), boost::test_tools::per_element());
  BOOST_TEST(f.ev.replayed_calls == 1);
  BOOST_TEST(f.ev.replayed == 0u);
}

BOOST_AUTO_TEST_CASE(a_throwing_observer_or_an_unexpected_exception_is_contained) {
  struct Odd : FakeLedger {
    quota::LedgerReply charge(const core::TxnId&, const std::string&, const policy::QuotaPolicy&,
                              std::uint64_t) override {
      throw std::logic_error("bug");
    }
  };
  quota::SharedQuotaObserver obs;
  obs.call = [](std::string_view, double, bool) { throw std::runtime_error("observer"); };
  quota::SharedQuota sq(std::make_unique<Odd>(), nullptr, settings(OnBackendError::tempfail, 1, 5), nullptr, obs);
  auto q = limits(10, 10);
  core::QuotaHold h(&sq, "acme");
  BOOST_TEST(!h.reserve(q, kNow));
  auto c = h.charge(q, 1, kNow);  // a failure, answered by the mode
  BOOST_REQUIRE(std::holds_alternative<policy::QuotaRefusal>(c));
  BOOST_TEST(std::get<policy::QuotaRefusal>(c).unavailable);
}

BOOST_AUTO_TEST_CASE(the_replay_list_is_bounded) {
  Fixture f(settings(OnBackendError::accept, 1, 1));
  f.sq->set_pending_limit(3);
  auto q = limits(100, 100);
  f.open_breaker();
  std::vector<core::TxnId> txns;
  for (int i = 0; i < 5; ++i) {
    core::QuotaHold h(f.sq.get(), "acme");
    auto c = h.charge(q, 1, kNow + i);
    std::get<core::QuotaCharge>(c).commit();
    txns.push_back(h.txn());
  }
  BOOST_TEST(f.sq->pending() == 3u);
  BOOST_TEST(f.sq->pending_dropped() == 2u);
  BOOST_TEST(f.ev.warnings.size() == 2u);  // the breaker, then the first drop
  f.fake->down = false;
  BOOST_TEST(f.sq->probe_once());
  BOOST_REQUIRE(f.fake->replays.size() == 3u);
  BOOST_TEST((f.fake->replays[0].txn == txns[2]));  // the oldest went
}

BOOST_AUTO_TEST_CASE(a_failure_before_the_breaker_opens_is_replayed_by_the_thread) {
  Fixture f(settings(OnBackendError::accept, 1, 5));
  f.sq->start();
  auto q = limits(100, 100);
  core::QuotaHold h(f.sq.get(), "acme");
  f.fake->down = true;
  auto c = h.charge(q, 1, kNow);
  BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(c));
  std::get<core::QuotaCharge>(c).commit();
  BOOST_TEST(f.sq->up());
  BOOST_TEST(f.sq->pending() == 1u);
  f.fake->down = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (f.sq->pending() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  BOOST_TEST(f.sq->pending() == 0u);
  BOOST_TEST(f.fake->live_charges() == 1u);
  std::lock_guard l(f.ev.mu);
  BOOST_TEST(f.ev.states.empty());  // never opened
}

BOOST_AUTO_TEST_CASE(the_probe_thread_closes_the_breaker_and_stops_promptly) {
  {
    Fixture f(settings(OnBackendError::local, 1, 1));
    f.sq->start();
    f.open_breaker();
    f.fake->down = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!f.sq->up() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    BOOST_TEST(f.sq->up());
  }
  auto s = settings(OnBackendError::local, 1, 1);
  s.breaker_retry_ms = 600000;
  auto t0 = std::chrono::steady_clock::now();
  {
    Fixture f(s);
    f.sq->start();
    f.open_breaker();
  }
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)));
}

BOOST_AUTO_TEST_CASE(hold_and_charge_end_to_end_a_rollback_reaches_the_ledger) {
  Fixture f;
  auto q = limits(2, 10);
  core::QuotaHold h(f.sq.get(), "acme");
  BOOST_TEST(!h.reserve(q, kNow));
  {
    auto c = h.charge(q, 1, kNow);
    BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(c));
    BOOST_TEST(f.fake->live_charges() == 1u);
    BOOST_TEST(h.reserved() == 0u);
  }
  BOOST_REQUIRE(f.fake->uncharges.size() == 1u);
  BOOST_TEST((f.fake->uncharges[0] == h.txn()));
  BOOST_TEST(f.fake->live_charges() == 0u);
  BOOST_TEST(f.fake->ql.usage("acme", q, kNow)[0].used == 0u);
}

BOOST_AUTO_TEST_CASE(uncharge_without_a_transaction_id_stays_local) {
  Fixture f(settings(OnBackendError::local, 1, 1));
  auto q = limits(100, 100);
  f.open_breaker();
  core::QuotaHold h(f.sq.get(), "acme");
  auto c = h.charge(q, 2, kNow);
  std::int64_t at = std::get<core::QuotaCharge>(c).at_us();
  std::get<core::QuotaCharge>(c).commit();
  BOOST_TEST(f.sq->usage("acme", q, kNow)[0].used == 1u);
  f.sq->uncharge(core::TxnId{}, "acme", at, 2);
  BOOST_TEST(f.sq->usage("acme", q, kNow)[0].used == 0u);
  BOOST_TEST(f.sq->pending() == 1u);  // the charge by id is still to replay
  f.fake->down = false;
  int calls = f.fake->calls;
  BOOST_TEST(f.sq->probe_once());
  f.sq->uncharge(core::TxnId{}, "acme", at, 2);
  BOOST_TEST(f.fake->calls == calls + 2);  // ping and replay, nothing for the empty id
}

BOOST_AUTO_TEST_CASE(the_local_fallback_counts_the_charges_in_the_store) {
  test::TmpDir dir;
  store::StoreOptions o;
  o.dir = dir / "store";
  o.map_size_mb = 4;
  store::Db db(o);
  db.write([&](store::Tables& t) {  // this host's charges before the ledger went away
    t.quota.charge("acme", kNow - 1000, 1, 1, 0);
    t.quota.charge("acme", kNow - 500, 2, 1, 0);
  });
  Fixture f(settings(OnBackendError::local, 2, 1), &db);
  f.open_breaker();
  auto q = limits(6, 100);  // this host: 3 messages
  core::QuotaHold a(f.sq.get(), "acme");
  auto ca = a.charge(q, 1, kNow);
  BOOST_REQUIRE(std::holds_alternative<core::QuotaCharge>(ca));
  std::get<core::QuotaCharge>(ca).commit();
  core::QuotaHold b(f.sq.get(), "acme");
  auto r = b.charge(q, 1, kNow);
  BOOST_REQUIRE(std::holds_alternative<policy::QuotaRefusal>(r));
  BOOST_TEST(std::get<policy::QuotaRefusal>(r).window.max == 3u);
  BOOST_TEST(f.sq->usage("acme", q, kNow)[0].used == 3u);
}

namespace {

// 8 threads of hold / reserve / charge / commit or rollback while the ledger flips
// between up and down; the probe runs from the flipping thread or from start()'s thread.
// Afterwards (ledger up, replay done) the shared ledger holds every accepted message
// exactly once, and nothing is left held locally.
void hammer(OnBackendError mode, bool probe_thread) {
  auto s = settings(mode, 2, 2);
  s.breaker_retry_ms = 1;
  Fixture f(s);
  if (probe_thread) f.sq->start();
  auto q = limits(1000000, 1000000);
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> committed{0}, rolled_back{0}, refused{0}, over_quota{0};
  std::thread flipper([&] {
    std::mt19937 rng(7);
    while (!done) {
      f.fake->down = (rng() % 2) == 0;
      if (!probe_thread) (void)f.sq->probe_once();
      std::this_thread::sleep_for(std::chrono::microseconds(200 + rng() % 500));
    }
  });
  std::vector<std::thread> workers;
  for (int w = 0; w < 8; ++w)
    workers.emplace_back([&, w] {
      std::mt19937 rng(static_cast<unsigned>(w));
      for (int i = 0; i < 300; ++i) {
        core::QuotaHold h(f.sq.get(), w % 2 ? "acme" : "beta");
        int n = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < n; ++k) (void)h.reserve(q, kNow);
        if (rng() % 4 == 0) continue;  // ends uncharged
        auto c = h.charge(q, static_cast<std::uint64_t>(n), kNow);
        if (auto* charge = std::get_if<core::QuotaCharge>(&c)) {
          if (rng() % 3 == 0) {
            charge->rollback();
            ++rolled_back;
          } else {
            charge->commit();
            ++committed;
          }
        } else {
          if (!std::get<policy::QuotaRefusal>(c).unavailable) ++over_quota;  // never over these limits
          ++refused;
        }
      }
    });
  for (auto& t : workers) t.join();
  done = true;
  flipper.join();
  f.fake->down = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((!f.sq->up() || f.sq->pending() != 0) && std::chrono::steady_clock::now() < deadline) {
    if (!probe_thread) (void)f.sq->probe_once();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  BOOST_TEST(f.sq->up());
  BOOST_TEST(f.sq->pending() == 0u);
  BOOST_TEST(f.sq->pending_dropped() == 0u);
  BOOST_TEST(f.sq->transactions() == 0u);
  BOOST_TEST(f.sq->local_reserved("acme") == 0u);
  BOOST_TEST(f.sq->local_reserved("beta") == 0u);
  BOOST_TEST(committed > 0u);
  // The probe thread tells the observer just after it closes the breaker: wait for it.
  auto states = [&] {
    std::lock_guard l(f.ev.mu);
    return f.ev.states.size();
  };
  while (states() % 2 != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::lock_guard l(f.ev.mu);
  if (mode != OnBackendError::tempfail) BOOST_TEST(refused == 0u);
  BOOST_TEST(f.fake->live_charges() == committed.load());  // every accepted message, once
  BOOST_TEST(f.ev.states.size() % 2 == 0u);  // every opening closed again
  BOOST_TEST(over_quota == 0u);
  BOOST_TEST(f.ev.negative_seconds == 0);
  BOOST_TEST(f.ev.ops.size() > 0u);
  BOOST_TEST_MESSAGE(quota::to_string(mode) << (probe_thread ? " (probe thread)" : "") << ": committed "
                                            << committed << ", rolled back " << rolled_back << ", refused "
                                            << refused << ", breaker openings " << f.ev.states.size() / 2);
}

}  // namespace

BOOST_AUTO_TEST_CASE(threads_while_the_ledger_flips_up_and_down) {
  hammer(OnBackendError::local, false);
  hammer(OnBackendError::accept, false);
  hammer(OnBackendError::tempfail, false);
  hammer(OnBackendError::local, true);
  hammer(OnBackendError::accept, true);
}
