// The Redis quota ledger against a real, private redis-server: the same answers as
// policy::QuotaLedger, idempotent retries, leases, window edges, exact limits under
// concurrency, NOSCRIPT recovery, keys and expiry, and failures (paused or stopped
// server, AUTH, pool exhaustion) within the configured timeouts.
#define BOOST_TEST_MODULE test_redis_ledger
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "quota/redis_client.hpp"
#include "quota/redis_ledger.hpp"
#include "quota/redis_scripts.hpp"
#include "redis_server_fixture.hpp"

using namespace cllavio;
using namespace cllavio::quota;
using cllavio::test::RedisServer;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::int64_t kUs = 1000000;

RedisSettings settings_for(const RedisServer& srv, int timeout_ms = 2000) {
  RedisSettings s;
  s.url = srv.url();
  s.timeout_ms = timeout_ms;  // generous: 2 CPUs shared with other builds
  s.connect_timeout_ms = 2000;
  s.pool_size = 8;
  return s;
}

// One server for the tests that do not stop, pause or configure it.
RedisServer& shared_server() {
  static RedisServer srv;
  return srv;
}

policy::QuotaPolicy per_hour(std::uint64_t msgs, std::uint64_t rcpts = 0) {
  policy::QuotaPolicy p;
  if (msgs) p.messages.push_back({3600, msgs});
  if (rcpts) p.recipients.push_back({3600, rcpts});
  return p;
}

std::uint64_t used(const std::vector<policy::WindowUsage>& u, std::size_t i) { return u.at(i).used; }

long long ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

// As the daemon does (milter/daemon.cpp): a write to a closed socket is an error, not a signal.
struct IgnoreSigpipe {
  IgnoreSigpipe() { ::signal(SIGPIPE, SIG_IGN); }
};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(IgnoreSigpipe);

BOOST_AUTO_TEST_CASE(parse_urls) {
  std::string err;
  auto a = parse_redis_url("redis://127.0.0.1:6380/2", &err);
  BOOST_REQUIRE(a);
  BOOST_TEST(a->host == "127.0.0.1");
  BOOST_TEST(a->port == 6380);
  BOOST_TEST(a->db == 2);
  auto b = parse_redis_url("redis://redis.example", &err);
  BOOST_REQUIRE(b);
  BOOST_TEST(b->host == "redis.example");
  BOOST_TEST(b->port == 6379);
  BOOST_TEST(b->db == 0);
  auto c = parse_redis_url("redis://[::1]:7000/15", &err);
  BOOST_REQUIRE(c);
  BOOST_TEST(c->host == "::1");
  BOOST_TEST(c->port == 7000);
  BOOST_TEST(c->db == 15);
  auto d = parse_redis_url("unix:/run/redis/redis.sock?db=3", &err);
  BOOST_REQUIRE(d);
  BOOST_TEST(d->unix_path == "/run/redis/redis.sock");
  BOOST_TEST(d->host.empty());
  BOOST_TEST(d->db == 3);
  auto e = parse_redis_url("unix:/tmp/r.sock", &err);
  BOOST_REQUIRE(e);
  BOOST_TEST(e->db == 0);

  for (const char* bad : {"", "http://x", "redis://", "redis://:6379", "redis://h:0", "redis://h:65536",
                          "redis://h:12x", "redis://h/abc", "redis://h/-1", "redis://h/70000", "redis://::1:6379",
                          "redis://[::1", "redis://[::1]x", "redis://user:pw@h:6379", "unix:", "unix:relative.sock",
                          "unix:/tmp/r.sock?db=", "unix:/tmp/r.sock?x=1"}) {
    err.clear();
    BOOST_TEST(!parse_redis_url(bad, &err), bad);
    BOOST_TEST(!err.empty(), bad);
  }
  RedisSettings bad_url;
  bad_url.url = "redis://h:0";
  BOOST_CHECK_THROW(RedisLedger{bad_url}, std::invalid_argument);
}

// Drives policy::QuotaLedger and the Redis ledger through the same sequence, at the
// times Redis answered, and compares every answer, the usage and the reservations.
BOOST_AUTO_TEST_CASE(same_answers_as_the_local_ledger) {
  RedisLedger redis(settings_for(shared_server()));
  policy::QuotaLedger local;
  policy::QuotaPolicy p;
  p.messages = {{3600, 16}, {120, 10}};
  p.recipients = {{3600, 90}, {600, 70}};
  const std::string org = "equiv";
  redis.reset(org);
  std::mt19937 rng(20261202);
  int refused_r = 0, refused_m = 0, charged = 0, uncharged = 0;

  auto same_refusal = [](const std::optional<policy::QuotaRefusal>& a, const std::optional<policy::QuotaRefusal>& b) {
    BOOST_REQUIRE_EQUAL(a.has_value(), b.has_value());
    if (!a) return;
    BOOST_TEST(a->recipients == b->recipients);
    BOOST_TEST(a->window.per_s == b->window.per_s);
    BOOST_TEST(a->window.max == b->window.max);
    BOOST_TEST(a->retry_at_us.has_value() == b->retry_at_us.has_value());
    if (a->retry_at_us && b->retry_at_us) BOOST_TEST(*a->retry_at_us == *b->retry_at_us);
  };
  auto compare = [&](const LedgerReply& r) {
    auto lu = local.usage(org, p, r.at_us);
    BOOST_REQUIRE_EQUAL(lu.size(), r.usage.size());
    for (std::size_t i = 0; i < lu.size(); ++i) {
      BOOST_TEST(lu[i].recipients == r.usage[i].recipients);
      BOOST_TEST(lu[i].used == r.usage[i].used, "window " << i << ": local " << lu[i].used << " redis "
                                                          << r.usage[i].used);
    }
    std::uint64_t reserved = 0;
    redis.usage(org, p, &reserved);
    BOOST_TEST(reserved == local.reserved(org));
  };

  for (int t = 0; t < 70; ++t) {
    core::TxnId txn = core::TxnId::make();
    std::uint64_t want = 1 + rng() % 6, held = 0;
    for (std::uint64_t k = 1; k <= want; ++k) {
      LedgerReply r = redis.reserve(txn, org, p, k);
      auto lr = local.reserve_recipient(org, p, r.at_us);
      same_refusal(r.refused, lr);
      compare(r);
      if (r.refused) {
        ++refused_r;
        break;
      }
      held = k;
    }
    if (held == 0) continue;
    int what = static_cast<int>(rng() % 10);
    if (what == 0) continue;  // still in flight: its reservation stays
    if (what == 1) {
      redis.release(txn, org);
      local.release_recipients(org, held);
      continue;
    }
    LedgerReply c = redis.charge(txn, org, p, held);
    std::int64_t local_at = 0;
    auto lc = local.charge_message(org, p, held, c.at_us, &local_at, held);
    same_refusal(c.refused, lc);
    compare(c);
    if (c.refused) {
      ++refused_m;
      if (rng() % 2) continue;  // retried later (never, here): the reservation stays
      redis.release(txn, org);
      local.release_recipients(org, held);
      continue;
    }
    ++charged;
    BOOST_TEST(local_at == c.at_us);
    if (what >= 7) {
      redis.uncharge(txn, org);
      local.uncharge(org, local_at, held);
      ++uncharged;
    }
  }
  LedgerReply last = redis.reserve(core::TxnId::make(), org, p, 1);
  local.reserve_recipient(org, p, last.at_us);
  compare(last);
  BOOST_TEST_MESSAGE("equivalence: " << charged << " charged, " << uncharged << " uncharged, " << refused_m
                                     << " message refusals, " << refused_r << " recipient refusals");
  BOOST_TEST(refused_m > 0);  // the sequence reached both kinds of limit
  BOOST_TEST(refused_r > 0);
  BOOST_TEST(uncharged > 0);
}

BOOST_AUTO_TEST_CASE(retries_are_idempotent) {
  RedisLedger l(settings_for(shared_server()));
  auto p = per_hour(100, 100);
  const std::string org = "idem";
  l.reset(org);
  core::TxnId a = core::TxnId::make();
  LedgerReply r1 = l.reserve(a, org, p, 3);
  LedgerReply r2 = l.reserve(a, org, p, 3);
  BOOST_TEST(!r1.refused);
  BOOST_TEST(!r2.refused);
  std::uint64_t reserved = 0;
  l.usage(org, p, &reserved);
  BOOST_TEST(reserved == 3u);
  l.reserve(a, org, p, 2);  // fewer than held: nothing changes
  l.usage(org, p, &reserved);
  BOOST_TEST(reserved == 3u);

  LedgerReply c1 = l.charge(a, org, p, 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  LedgerReply c2 = l.charge(a, org, p, 3);
  BOOST_TEST(!c1.refused);
  BOOST_TEST(!c2.refused);
  BOOST_TEST(c1.at_us == c2.at_us);
  BOOST_TEST(used(c2.usage, 0) == 1u);
  BOOST_TEST(used(c2.usage, 1) == 3u);
  l.usage(org, p, &reserved);
  BOOST_TEST(reserved == 0u);  // the charge took the reservation
  BOOST_TEST(!l.reserve(a, org, p, 3).refused);  // a late retry of the reserve: nothing held
  l.usage(org, p, &reserved);
  BOOST_TEST(reserved == 0u);

  l.uncharge(a, org);
  l.uncharge(a, org);
  auto u = l.usage(org, p);
  BOOST_TEST(used(u, 0) == 0u);
  BOOST_TEST(used(u, 1) == 0u);
  l.uncharge(core::TxnId::make(), org);  // unknown: ignored
  l.uncharge(core::TxnId{}, org);

  core::TxnId b = core::TxnId::make();
  l.reserve(b, org, p, 4);
  l.release(b, org);
  l.release(b, org);
  l.usage(org, p, &reserved);
  BOOST_TEST(reserved == 0u);

  core::TxnId c = core::TxnId::make();
  std::int64_t at = l.charge(c, org, p, 2).at_us;
  l.replay(c, org, p, at - 1000, 2);  // already there: not added again
  u = l.usage(org, p);
  BOOST_TEST(used(u, 0) == 1u);
  BOOST_TEST(used(u, 1) == 2u);
}

BOOST_AUTO_TEST_CASE(leases_expire) {
  RedisSettings s = settings_for(shared_server());
  s.lease_s = 1;
  RedisLedger l(s);
  auto p = per_hour(0, 5);
  const std::string org = "lease";
  l.reset(org);
  core::TxnId a = core::TxnId::make();
  BOOST_TEST(!l.reserve(a, org, p, 5).refused);
  LedgerReply full = l.reserve(core::TxnId::make(), org, p, 1);
  BOOST_REQUIRE(full.refused);
  BOOST_TEST(full.refused->recipients);
  BOOST_TEST(!full.refused->retry_at_us);  // reservations, not charges, fill the window
  std::uint64_t reserved = 0;
  l.usage(org, p, &reserved);
  BOOST_TEST(reserved == 5u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1150));
  l.usage(org, p, &reserved);
  BOOST_TEST(reserved == 0u);  // read-only usage already leaves the dead lease out
  BOOST_TEST(!l.reserve(core::TxnId::make(), org, p, 5).refused);
  l.usage(org, p, &reserved);
  BOOST_TEST(reserved == 5u);
}

BOOST_AUTO_TEST_CASE(window_edges) {
  RedisLedger l(settings_for(shared_server()));
  auto raw = shared_server().raw();
  policy::QuotaPolicy p;
  p.messages = {{10, 2}};
  p.recipients = {{10, 5}};
  const std::string org = "edges";
  l.reset(org);
  std::int64_t now = raw.time_us();
  core::TxnId out = core::TxnId::make(), in = core::TxnId::make();
  l.replay(out, org, p, now - 10 * kUs - 300000, 4);  // just outside the 10 s window
  auto u = l.usage(org, p);
  BOOST_TEST(used(u, 0) == 0u);
  BOOST_TEST(used(u, 1) == 0u);
  std::int64_t t_in = now - 10 * kUs + 1500000;  // just inside (for 1.5 s)
  l.replay(in, org, p, t_in, 3);
  u = l.usage(org, p);
  BOOST_TEST(used(u, 0) == 1u);
  BOOST_TEST(used(u, 1) == 3u);

  LedgerReply r = l.reserve(core::TxnId::make(), org, p, 3);  // 3 charged + 3 > 5
  BOOST_REQUIRE(r.refused);
  BOOST_TEST(r.refused->recipients);
  BOOST_REQUIRE(r.refused->retry_at_us);
  BOOST_TEST(*r.refused->retry_at_us == t_in + 10 * kUs);

  core::TxnId c = core::TxnId::make();
  LedgerReply c1 = l.charge(c, org, p, 1);
  BOOST_TEST(!c1.refused);
  LedgerReply c2 = l.charge(core::TxnId::make(), org, p, 1);  // 2 messages in 10 s already
  BOOST_REQUIRE(c2.refused);
  BOOST_TEST(!c2.refused->recipients);
  BOOST_REQUIRE(c2.refused->retry_at_us);
  BOOST_TEST(*c2.refused->retry_at_us == t_in + 10 * kUs);
  BOOST_TEST(used(c2.usage, 0) == 2u);

  std::this_thread::sleep_for(std::chrono::microseconds(t_in + 10 * kUs - raw.time_us() + 50000));
  LedgerReply c3 = l.charge(core::TxnId::make(), org, p, 1);  // the replayed one left the window
  BOOST_TEST(!c3.refused);
  BOOST_TEST(used(c3.usage, 0) == 2u);
  BOOST_TEST(used(c3.usage, 1) == 2u);
}

BOOST_AUTO_TEST_CASE(exact_limit_under_concurrency) {
  RedisLedger l(settings_for(shared_server()));
  auto p = per_hour(50);
  const std::string org = "race";
  l.reset(org);
  std::atomic<int> ok{0}, refused{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        try {
          (l.charge(core::TxnId::make(), org, p, 1).refused ? refused : ok)++;
        } catch (const LedgerError&) {
          ++errors;
        }
      }
    });
  for (auto& t : threads) t.join();
  BOOST_TEST(errors.load() == 0);
  BOOST_TEST(ok.load() == 50);
  BOOST_TEST(refused.load() == 150);
  BOOST_TEST(used(l.usage(org, p), 0) == 50u);
}

BOOST_AUTO_TEST_CASE(noscript_is_recovered) {
  RedisLedger l(settings_for(shared_server()));
  auto raw = shared_server().raw();
  auto p = per_hour(10);
  const std::string org = "noscript";
  l.reset(org);
  BOOST_TEST(!l.charge(core::TxnId::make(), org, p, 1).refused);
  BOOST_TEST(raw.cmd({"SCRIPT", "FLUSH"}).str == "OK");
  LedgerReply r = l.charge(core::TxnId::make(), org, p, 1);
  BOOST_TEST(!r.refused);
  BOOST_TEST(used(r.usage, 0) == 2u);
  BOOST_TEST(raw.cmd({"SCRIPT", "FLUSH"}).str == "OK");
  BOOST_TEST(used(l.usage(org, p), 0) == 2u);
  // EVAL cached the script under the SHA1 the ledger computed: the next call is an EVALSHA.
  auto exists = raw.cmd({"SCRIPT", "EXISTS", detail::sha1_hex(detail::script_text(detail::Op::usage)),
                         detail::sha1_hex(detail::script_text(detail::Op::charge))});
  BOOST_REQUIRE_EQUAL(exists.elements.size(), 2u);
  BOOST_TEST(exists.elements[0] == "1");
  BOOST_TEST(exists.elements[1] == "0");  // flushed, not used since
}

// Retry times skip uncharged messages (policy::SlidingLog removes them), and a replay
// from a host whose clock is ahead counts from the ledger's now, not from the future.
BOOST_AUTO_TEST_CASE(retry_skips_uncharged_and_replay_is_clamped) {
  RedisLedger l(settings_for(shared_server()));
  auto raw = shared_server().raw();
  policy::QuotaPolicy p;
  p.messages = {{3600, 2}};
  p.recipients = {{3600, 5}};
  const std::string org = "tombstones";
  l.reset(org);
  core::TxnId a = core::TxnId::make(), b = core::TxnId::make();
  l.charge(a, org, p, 2);
  std::int64_t t_b = l.charge(b, org, p, 2).at_us;
  l.uncharge(a, org);
  BOOST_TEST(!l.charge(core::TxnId::make(), org, p, 2).refused);
  LedgerReply m = l.charge(core::TxnId::make(), org, p, 1);
  BOOST_REQUIRE(m.refused);
  BOOST_REQUIRE(m.refused->retry_at_us);
  BOOST_TEST(*m.refused->retry_at_us == t_b + 3600 * kUs);
  LedgerReply r = l.reserve(core::TxnId::make(), org, p, 2);  // 4 charged + 2 > 5
  BOOST_REQUIRE(r.refused);
  BOOST_REQUIRE(r.refused->retry_at_us);
  BOOST_TEST(*r.refused->retry_at_us == t_b + 3600 * kUs);

  const std::string org2 = "future";
  l.reset(org2);
  std::int64_t before = raw.time_us();
  l.replay(core::TxnId::make(), org2, p, before + 3600 * kUs, 1);
  std::int64_t at = l.charge(core::TxnId::make(), org2, p, 1).at_us;
  BOOST_TEST(at >= before);
  BOOST_TEST(at < before + 60 * kUs);
  BOOST_TEST(used(l.usage(org2, p), 0) == 2u);
}

BOOST_AUTO_TEST_CASE(keys_tags_and_expiry) {
  RedisSettings s = settings_for(shared_server());
  s.lease_s = 600;
  RedisLedger l(s);
  auto raw = shared_server().raw();
  policy::QuotaPolicy p;
  p.messages = {{60, 10}, {7200, 100}};
  p.recipients = {{3600, 100}};
  const std::string org = "tags";
  l.reset(org);
  BOOST_TEST(l.key(org, "log") == "cllavio:quota:{tags}:log");
  core::TxnId a = core::TxnId::make();
  l.reserve(core::TxnId::make(), org, p, 2);
  l.charge(a, org, p, 1);
  l.uncharge(a, org);
  const std::int64_t expect_ms = (7200 + 600) * 1000;
  for (const char* which : {"log", "gone", "res", "h"}) {
    std::string k = l.key(org, which);
    BOOST_TEST(k.find("{tags}") != std::string::npos);
    long long pttl = raw.cmd({"PTTL", k}).integer;
    BOOST_TEST(pttl > expect_ms - 60000, which << " PTTL " << pttl);
    BOOST_TEST(pttl <= expect_ms + 1, which << " PTTL " << pttl);
  }
  auto keys = raw.cmd({"KEYS", "cllavio:quota:{tags}:*"});
  BOOST_TEST(keys.elements.size() == 4u);
}

BOOST_AUTO_TEST_CASE(reset_forgets_the_org) {
  RedisLedger l(settings_for(shared_server()));
  auto raw = shared_server().raw();
  auto p = per_hour(10, 100);
  const std::string org = "reset";
  l.reset(org);
  core::TxnId a = core::TxnId::make();
  l.charge(a, org, p, 2);
  l.charge(core::TxnId::make(), org, p, 2);
  l.charge(core::TxnId::make(), org, p, 2);
  l.uncharge(a, org);
  l.reserve(core::TxnId::make(), org, p, 3);
  BOOST_TEST(l.reset(org) == 2u);
  BOOST_TEST(raw.cmd({"EXISTS", l.key(org, "log"), l.key(org, "gone"), l.key(org, "res"), l.key(org, "h")}).integer ==
             0);
  std::uint64_t reserved = 9;
  auto u = l.usage(org, p, &reserved);
  BOOST_TEST(used(u, 0) == 0u);
  BOOST_TEST(used(u, 1) == 0u);
  BOOST_TEST(reserved == 0u);
  BOOST_TEST(l.reset(org) == 0u);
}

BOOST_AUTO_TEST_CASE(paused_server_times_out_then_recovers) {
  RedisServer srv;
  RedisLedger l(settings_for(srv, 200));
  auto p = per_hour(100);
  const std::string org = "pause";
  BOOST_TEST(!l.charge(core::TxnId::make(), org, p, 1).refused);
  srv.pause();
  auto t0 = Clock::now();
  BOOST_CHECK_THROW(l.charge(core::TxnId::make(), org, p, 1), LedgerError);
  long long ms = ms_since(t0);
  BOOST_TEST_MESSAGE("paused server: LedgerError after " << ms << " ms (timeout_ms 200)");
  BOOST_TEST(ms < 1000);
  BOOST_TEST(ms >= 150);
  srv.resume();
  LedgerReply r = l.charge(core::TxnId::make(), org, p, 1);  // a new connection
  BOOST_TEST(!r.refused);
  // The call that timed out ran after SIGCONT (the contract: all or nothing): 2 or 3.
  BOOST_TEST(used(r.usage, 0) >= 2u);
  BOOST_TEST(used(r.usage, 0) <= 3u);
  l.ping();
}

// Connections the server closed while they sat in the pool (restart, `timeout`, a NAT):
// the call runs again once on a new connection instead of failing.
BOOST_AUTO_TEST_CASE(closed_idle_connections_are_replaced) {
  RedisServer srv;
  RedisLedger l(settings_for(srv));
  auto p = per_hour(100);
  std::vector<std::thread> threads;  // fill the pool with several idle connections
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { l.charge(core::TxnId::make(), "idle", p, 1); });
  for (auto& t : threads) t.join();
  auto raw = srv.raw();
  BOOST_TEST(raw.cmd({"CLIENT", "KILL", "TYPE", "normal"}).integer >= 1);  // all but raw itself
  LedgerReply r = l.charge(core::TxnId::make(), "idle", p, 1);
  BOOST_TEST(!r.refused);
  BOOST_TEST(used(r.usage, 0) == 5u);
  BOOST_TEST(raw.cmd({"CLIENT", "KILL", "TYPE", "normal"}).integer >= 1);
  l.ping();
}

BOOST_AUTO_TEST_CASE(stopped_server_fails_fast) {
  RedisServer srv;
  RedisLedger l(settings_for(srv, 200));
  l.ping();
  srv.stop();
  auto t0 = Clock::now();
  BOOST_CHECK_THROW(l.ping(), LedgerError);  // the pooled connection: EOF
  BOOST_CHECK_THROW(l.charge(core::TxnId::make(), "gone", per_hour(1), 1), LedgerError);  // refused
  try {
    l.ping();
    BOOST_FAIL("ping to a stopped server succeeded");
  } catch (const LedgerError& e) {
    BOOST_TEST_MESSAGE("stopped server: " << e.what());
    BOOST_TEST(std::string(e.what()).find("127.0.0.1") != std::string::npos);
  }
  BOOST_TEST(ms_since(t0) < 1000);
}

BOOST_AUTO_TEST_CASE(password_auth) {
  const std::string pw = "s3cret-pw-for-test";
  RedisServer::Options o;
  o.password = pw;
  RedisServer srv(o);
  RedisSettings s = settings_for(srv);
  s.password = pw;
  RedisLedger good(s);
  good.ping();
  BOOST_TEST(!good.charge(core::TxnId::make(), "auth", per_hour(5), 1).refused);
  s.password = "wrong-password-xyz";
  RedisLedger bad(s);
  try {
    bad.ping();
    BOOST_FAIL("a wrong password was accepted");
  } catch (const LedgerError& e) {
    BOOST_TEST_MESSAGE("wrong password: " << e.what());
    BOOST_TEST(std::string(e.what()).find("wrong-password-xyz") == std::string::npos);
  }
  s.password.clear();
  RedisLedger none(s);
  BOOST_CHECK_THROW(none.charge(core::TxnId::make(), "auth", per_hour(5), 1), LedgerError);  // NOAUTH
}

BOOST_AUTO_TEST_CASE(unix_socket_and_db) {
  RedisServer::Options o;
  o.tcp = false;
  o.unix_socket = true;
  RedisServer srv(o);
  RedisSettings s;
  s.url = "unix:" + srv.socket_path() + "?db=3";
  s.timeout_ms = 2000;
  RedisLedger l(s);
  auto p = per_hour(5);
  BOOST_TEST(!l.charge(core::TxnId::make(), "sock", p, 1).refused);
  auto raw = srv.raw();
  BOOST_TEST(raw.cmd({"EXISTS", l.key("sock", "log")}).integer == 0);  // db 0
  raw.cmd({"SELECT", "3"});
  BOOST_TEST(raw.cmd({"EXISTS", l.key("sock", "log")}).integer == 1);
}

BOOST_AUTO_TEST_CASE(pool_exhaustion) {
  std::string err;
  auto ep = parse_redis_url(shared_server().url(), &err);
  BOOST_REQUIRE(ep);
  detail::RedisPool pool(*ep, 200, 2000, 1, "");
  {
    detail::RedisConn held = pool.checkout();
    auto t0 = Clock::now();
    try {
      (void)pool.checkout();
      BOOST_FAIL("a second connection from a pool of one");
    } catch (const LedgerError& e) {
      BOOST_TEST(std::string(e.what()).find("no free connection") != std::string::npos);
    }
    long long ms = ms_since(t0);
    BOOST_TEST(ms >= 190);
    BOOST_TEST(ms < 1000);
    BOOST_TEST(held.call({"PING"})->type == REDIS_REPLY_STATUS);
  }
  detail::RedisConn again = pool.checkout();  // given back at scope exit
  BOOST_TEST(again.call({"PING"})->type == REDIS_REPLY_STATUS);
}

BOOST_AUTO_TEST_CASE(memory_per_charged_message) {
  RedisLedger l(settings_for(shared_server()));
  auto raw = shared_server().raw();
  policy::QuotaPolicy p;
  p.messages = {{3600, 1000000}, {86400, 1000000}};
  p.recipients = {{86400, 100000000}};
  const std::string org = "memory";
  l.reset(org);
  const int n = 10000;
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) BOOST_REQUIRE(!l.charge(core::TxnId::make(), org, p, 1 + i % 5).refused);
  long long ms = ms_since(t0);
  long long bytes = 0;
  for (const char* which : {"log", "gone", "res", "h"}) {
    long long b = raw.cmd({"MEMORY", "USAGE", l.key(org, which), "SAMPLES", "0"}).integer;
    BOOST_TEST_MESSAGE("memory: " << which << " " << b << " bytes");
    bytes += b;
  }
  BOOST_TEST_MESSAGE("memory: " << bytes << " bytes for " << n << " charged messages = " << bytes / n
                                << " bytes per message; " << ms * 1000 / n << " us per charge");
  BOOST_TEST(used(l.usage(org, p), 0) == static_cast<std::uint64_t>(n));
  BOOST_TEST(bytes / n > 50);
  BOOST_TEST(bytes / n < 1000);
  l.reset(org);
}
