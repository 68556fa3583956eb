// SharedQuota over the real RedisLedger and a private redis-server: a paused server opens
// the breaker after `breaker_failures` timeouts, the local fallback takes the host's
// share, and after SIGCONT the probe replays exactly the messages accepted meanwhile
// (the calls that timed out may have run late in Redis too: the replay is idempotent).
#define BOOST_TEST_MODULE test_shared_quota_redis
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <csignal>

#include "quota/redis_ledger.hpp"
#include "quota/shared_quota.hpp"
#include "redis_server_fixture.hpp"

using namespace cllavio;
using cllavio::test::RedisServer;
using Clock = std::chrono::steady_clock;

namespace {

struct IgnoreSigpipe {
  IgnoreSigpipe() { ::signal(SIGPIPE, SIG_IGN); }
};

policy::QuotaPolicy per_hour(std::uint64_t msgs, std::uint64_t rcpts) {
  policy::QuotaPolicy p;
  p.messages.push_back({3600, msgs});
  p.recipients.push_back({3600, rcpts});
  return p;
}

// One message of `rcpts` recipients through a hold, committed unless `keep` is false.
bool send(quota::SharedQuota& sq, const std::string& org, const policy::QuotaPolicy& p, std::int64_t now_us,
          std::uint64_t rcpts, bool keep = true) {
  core::QuotaHold h(&sq, org);
  for (std::uint64_t i = 0; i < rcpts; ++i)
    if (h.reserve(p, now_us)) return false;
  auto c = h.charge(p, rcpts, now_us);
  auto* charge = std::get_if<core::QuotaCharge>(&c);
  if (charge == nullptr) return false;
  if (keep) charge->commit();
  return true;  // else rolled back here
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(IgnoreSigpipe);

BOOST_AUTO_TEST_CASE(a_paused_server_opens_the_breaker_and_the_replay_makes_the_count_exact) {
  RedisServer srv;
  auto raw = srv.raw();
  quota::RedisSettings rs;
  rs.url = srv.url();
  rs.timeout_ms = 300;
  rs.connect_timeout_ms = 2000;
  quota::SharedQuotaSettings s;
  s.on_error = quota::OnBackendError::local;
  s.hosts = 2;
  s.breaker_failures = 2;
  s.breaker_retry_ms = 60000;  // probes by hand
  quota::SharedQuota sq(std::make_unique<quota::RedisLedger>(rs), nullptr, s, nullptr);
  const std::string org = "outage";
  auto p = per_hour(20, 100);  // this host alone: 10 messages

  for (int i = 0; i < 4; ++i) BOOST_REQUIRE(send(sq, org, p, raw.time_us(), 2));
  BOOST_TEST(sq.usage(org, p, raw.time_us())[0].used == 4u);

  std::int64_t now = raw.time_us();
  srv.pause();
  auto t0 = Clock::now();
  BOOST_TEST(send(sq, org, p, now, 1));  // reserve times out: answered locally (the breaker's first failure)
  BOOST_TEST(!sq.up());                   // the charge timed out too: open
  auto opened_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  BOOST_TEST_MESSAGE("breaker open after " << opened_ms << " ms");
  t0 = Clock::now();
  BOOST_TEST(send(sq, org, p, now, 1, false));  // accepted, then given back: not replayed
  BOOST_TEST(sq.pending() == 1u);
  int accepted = 1;
  while (send(sq, org, p, now, 1)) ++accepted;  // no waiting on Redis now
  BOOST_TEST(send(sq, org, p, now, 1, false) == false);  // the share is used up
  auto open_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  BOOST_TEST(open_ms < 250);  // less than one timeout for all of them
  BOOST_TEST(accepted == 10);  // 20 / 2 in the local fallback (no store here: it starts from 0)
  BOOST_TEST(sq.pending() == 10u);

  BOOST_TEST(!sq.probe_once());  // still paused: the ping times out
  srv.resume();
  BOOST_TEST(sq.probe_once());
  BOOST_TEST(sq.up());
  BOOST_TEST(sq.pending() == 0u);
  auto u = sq.ledger().usage(org, p);
  BOOST_TEST(u[0].used == 14u);      // 4 before, 10 during the outage: each once
  BOOST_TEST(u[1].used == 8u + 10u);  // recipients
  // Closed again: Redis decides (6 more fit the shared 20).
  int more = 0;
  while (send(sq, org, p, raw.time_us(), 1)) ++more;
  BOOST_TEST(more == 6);
}
