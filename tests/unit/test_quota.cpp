#define BOOST_TEST_MODULE quota
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <thread>

#include "policy/quota.hpp"

using namespace cllavio::policy;

namespace {
constexpr std::int64_t S = 1000000;  // one second in microseconds
const std::int64_t T0 = 1'790'000'000LL * S;

QuotaPolicy per_minute(std::uint64_t max) {
  QuotaPolicy p;
  p.messages = {{60, max}};
  return p;
}
}  // namespace

BOOST_AUTO_TEST_CASE(window_syntax) {
  BOOST_TEST(*parse_window("1m") == 60);
  BOOST_TEST(*parse_window("90s") == 90);
  BOOST_TEST(*parse_window("2h") == 7200);
  BOOST_TEST(*parse_window("31d") == 31 * 86400);
  for (const char* bad : {"", "m", "0m", "1", "1w", "-1m", "32d", "1.5h", "1 m"}) BOOST_TEST(!parse_window(bad), bad);
  BOOST_TEST(describe_window(60) == "minute");
  BOOST_TEST(describe_window(3600) == "hour");
  BOOST_TEST(describe_window(7200) == "2 hours");
  BOOST_TEST(describe_window(86400) == "day");
  BOOST_TEST(describe_window(90) == "90 seconds");
}

BOOST_AUTO_TEST_CASE(sliding_window_boundaries) {
  SlidingLog log;
  log.add(T0, 3);
  log.add(T0 + 30 * S, 2);
  // The window is (now - per, now]: an event leaves it exactly `per` after it happened.
  BOOST_TEST(log.messages(T0 + 60 * S - 1, 60 * S) == 2u);
  BOOST_TEST(log.recipients(T0 + 60 * S - 1, 60 * S) == 5u);
  BOOST_TEST(log.messages(T0 + 60 * S, 60 * S) == 1u);
  BOOST_TEST(log.recipients(T0 + 60 * S, 60 * S) == 2u);
  BOOST_TEST(log.messages(T0 + 90 * S, 60 * S) == 0u);
  // No burst at a fixed boundary: 2 per minute, sent at :59 and :59.5, none at :00 of the next minute.
  QuotaLedger ledger;
  auto p = per_minute(2);
  std::int64_t at;
  BOOST_TEST(!ledger.charge_message("a", p, 1, T0 + 59 * S, &at));
  BOOST_TEST(!ledger.charge_message("a", p, 1, T0 + 59 * S + S / 2, &at));
  auto refused = ledger.charge_message("a", p, 1, T0 + 61 * S, &at);
  BOOST_REQUIRE(refused);
  BOOST_TEST(*refused->retry_at_us == T0 + 119 * S);  // when the first one leaves the window
  BOOST_TEST(!ledger.charge_message("a", p, 1, T0 + 119 * S, &at));
}

BOOST_AUTO_TEST_CASE(fits_at_counts_recipients) {
  SlidingLog log;
  log.add(T0, 4);
  log.add(T0 + 10 * S, 4);
  log.add(T0 + 20 * S, 4);
  // 12 used, max 10, need 3: 5 must leave -> the first two events (8 recipients) -> T0+10s+60s.
  BOOST_TEST(*log.fits_at(true, T0 + 30 * S, 60 * S, 10, 3) == T0 + 70 * S);
  BOOST_TEST(*log.fits_at(true, T0 + 30 * S, 60 * S, 14, 3) == T0 + 60 * S);  // one must leave
  BOOST_TEST(*log.fits_at(true, T0 + 30 * S, 60 * S, 15, 3) == T0 + 30 * S);  // fits now
  BOOST_TEST(!log.fits_at(true, T0 + 30 * S, 60 * S, 2, 3));                  // never: need > max
  BOOST_TEST(*log.fits_at(false, T0 + 30 * S, 60 * S, 3, 1) == T0 + 60 * S);
}

BOOST_AUTO_TEST_CASE(clock_going_backwards_frees_nothing_early) {
  QuotaLedger ledger;
  auto p = per_minute(2);
  std::int64_t at;
  BOOST_TEST(!ledger.charge_message("a", p, 1, T0, &at));
  BOOST_TEST(!ledger.charge_message("a", p, 1, T0 - 3600 * S, &at));  // clock stepped back an hour
  BOOST_TEST(at == T0);                                                // counted at the last known time
  BOOST_TEST(ledger.charge_message("a", p, 1, T0 - 3600 * S, &at).has_value());
  BOOST_TEST(ledger.charge_message("a", p, 1, T0 + 59 * S, &at).has_value());
  BOOST_TEST(!ledger.charge_message("a", p, 1, T0 + 60 * S, &at));
}

BOOST_AUTO_TEST_CASE(long_idle_forgets_everything) {
  QuotaLedger ledger;
  QuotaPolicy p;
  p.messages = {{60, 1}, {86400, 100}};
  std::int64_t at;
  for (int i = 0; i < 50; ++i) BOOST_TEST(!ledger.charge_message("a", p, 1, T0 + i * 61 * S, &at));
  auto u = ledger.usage("a", p, T0 + 50 * 61 * S);
  BOOST_TEST(u[1].used == 50u);
  BOOST_TEST(!ledger.charge_message("a", p, 1, T0 + 400 * 86400 * S, &at));  // a year later
  u = ledger.usage("a", p, T0 + 400 * 86400 * S);
  BOOST_TEST(u[0].used == 1u);
  BOOST_TEST(u[1].used == 1u);
}

BOOST_AUTO_TEST_CASE(recipients_are_reserved_then_charged_or_released) {
  QuotaLedger ledger;
  QuotaPolicy p;
  p.recipients = {{3600, 5}};
  for (int i = 0; i < 3; ++i) BOOST_TEST(!ledger.reserve_recipient("a", p, T0));  // transaction 1
  for (int i = 0; i < 2; ++i) BOOST_TEST(!ledger.reserve_recipient("a", p, T0));  // transaction 2
  auto r = ledger.reserve_recipient("a", p, T0);
  BOOST_REQUIRE(r);
  BOOST_TEST(r->recipients);
  BOOST_TEST(!r->retry_at_us);  // held by reservations, not charges: no time to promise
  ledger.release_recipients("a", 2);  // transaction 2 aborted
  std::int64_t at;
  BOOST_TEST(!ledger.charge_message("a", p, 3, T0 + S, &at, 3));  // transaction 1 accepted
  BOOST_TEST(ledger.reserved("a") == 0u);
  BOOST_TEST(!ledger.reserve_recipient("a", p, T0 + 2 * S));
  BOOST_TEST(!ledger.reserve_recipient("a", p, T0 + 2 * S));
  auto full = ledger.reserve_recipient("a", p, T0 + 2 * S);
  BOOST_REQUIRE(full);
  BOOST_TEST(*full->retry_at_us == T0 + S + 3600 * S);
  // A message that was charged but then failed gives its recipients back.
  ledger.uncharge("a", at, 3);
  BOOST_TEST(!ledger.reserve_recipient("a", p, T0 + 2 * S));
}

BOOST_AUTO_TEST_CASE(uncharge_in_the_middle_keeps_counts_exact) {
  SlidingLog log;
  log.add(T0, 1);
  log.add(T0 + S, 2);
  log.add(T0 + 2 * S, 4);
  BOOST_TEST(log.remove(T0 + S, 2));
  BOOST_TEST(!log.remove(T0 + S, 2));
  BOOST_TEST(log.recipients(T0 + 2 * S, 60 * S) == 5u);
  log.expire(T0 + 61 * S, 60 * S);  // drops the first
  BOOST_TEST(log.size() == 1u);
  BOOST_TEST(log.recipients(T0 + 61 * S, 60 * S) == 4u);
  log.add(T0 + 61 * S, 8);
  BOOST_TEST(log.recipients(T0 + 61 * S, 60 * S) == 12u);
  BOOST_TEST(log.recipients(T0 + 62 * S, 60 * S) == 8u);
}

BOOST_AUTO_TEST_CASE(exact_under_concurrent_sessions) {
  QuotaLedger ledger;
  auto p = per_minute(37);
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 10; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        std::int64_t at;
        if (!ledger.charge_message("a", p, 1, T0, &at)) ++accepted;
      }
    });
  for (auto& t : threads) t.join();
  BOOST_TEST(accepted.load() == 37);
}

BOOST_AUTO_TEST_CASE(replies_say_what_and_when) {
  QuotaRefusal r{false, {3600, 1000}, T0 + 90 * S};
  // T0 = 2026-09-21T14:13:20Z; +90 s = 14:14:50 -> rounded up to 14:15
  Reply d = quota_reply("acme", r, QuotaAction::defer, T0);
  BOOST_TEST(d.rcode == "451");
  BOOST_TEST(d.xcode == "4.7.1");
  BOOST_TEST(d.text == "Sending quota of acme exceeded (1000 messages per hour); retry after 14:15 UTC");
  Reply rej = quota_reply("acme", r, QuotaAction::reject, T0);
  BOOST_TEST(rej.rcode == "550");
  BOOST_TEST(rej.text == "Sending quota of acme exceeded (1000 messages per hour)");
  QuotaRefusal tomorrow{true, {86400, 5000}, T0 + 86400 * S};
  BOOST_TEST(quota_reply("acme", tomorrow, QuotaAction::defer, T0).text ==
             "Sending quota of acme exceeded (5000 recipients per day); retry after 2026-09-22 14:14 UTC");
  QuotaRefusal down{true, {3600, 50}, std::nullopt, true};  // the shared ledger could not be asked
  for (QuotaAction act : {QuotaAction::defer, QuotaAction::reject}) {
    Reply u = quota_reply("acme", down, act, T0);
    BOOST_TEST(u.rcode == "451");  // temporary whatever the org's action
    BOOST_TEST(u.xcode == "4.3.0");
    BOOST_TEST(u.text == "Sending quota of acme cannot be checked now; try again later");
  }
  BOOST_TEST(too_many_recipients_reply(100).rcode == "452");
  BOOST_TEST(too_many_recipients_reply(100).xcode == "4.5.3");
}

BOOST_AUTO_TEST_CASE(reload_replaces_history_and_keeps_reservations) {
  QuotaLedger ledger;
  auto p = per_minute(2);
  p.recipients = {{60, 10}};
  BOOST_TEST(!ledger.reserve_recipient("a", p, T0));
  std::int64_t at;
  BOOST_TEST(!ledger.charge_message("a", p, 0, T0, &at));
  BOOST_TEST(!ledger.charge_message("a", p, 0, T0, &at));
  BOOST_TEST(ledger.charge_message("a", p, 0, T0, &at).has_value());
  ledger.reload("a", 7, {});  // cllavioctl quota reset
  BOOST_TEST(ledger.epoch("a") == 7u);
  BOOST_TEST(ledger.reserved("a") == 1u);
  BOOST_TEST(!ledger.charge_message("a", p, 1, T0, &at, 1));
}
