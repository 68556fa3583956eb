#define BOOST_TEST_MODULE retention
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "core/pruner.hpp"
#include "store/db.hpp"
#include "store/keys.hpp"
#include "store/retention.hpp"
#include "tmpdir.hpp"

// store/retention.cpp and core/pruner.cpp, with an injected clock.

using namespace cllavio;
using namespace cllavio::store;
using cllavio::test::TmpDir;

namespace {

constexpr std::int64_t S = 1'000'000;
constexpr std::int64_t T0 = 1'800'000'000LL * S;

struct Fixture {
  TmpDir dir;
  std::int64_t now = T0;
  std::unique_ptr<Db> db;
  explicit Fixture(std::uint64_t map_mb = 16) {
    StoreOptions o;
    o.dir = dir / "store";
    o.map_size_mb = map_mb;
    o.sync = Sync::none;
    o.now_us = [this] { return now; };
    db = std::make_unique<Db>(o);
  }
  // A record at time `at` (its id), with a delivery state per recipient.
  std::uint64_t record(std::int64_t at, const std::string& org, const std::string& action = "accept",
                       int rcpts = 1) {
    MessageRecord r;
    r.id = static_cast<std::uint64_t>(at);
    r.org = org;
    r.action = action;
    r.queue_id = "Q" + std::to_string(at);
    r.sender = "s@" + (org.empty() ? std::string("none") : org) + ".example";
    for (int i = 0; i < rcpts; ++i) r.recipients.push_back("r" + std::to_string(i) + "@x.example");
    DeliveryState delivered;
    delivered.state = "delivered";
    delivered.dsn = "2.0.0";
    db->write([&](Tables& t) {
      t.records.append(r);
      for (const auto& rc : r.recipients) t.delivery.put(r.id, rc, delivered);
    });
    return r.id;
  }
  bool has(std::uint64_t id) { return db->read()->records.get(id).has_value(); }
};

RetentionRules rules(std::int64_t messages_s, std::int64_t rejects_s) {
  RetentionRules r;
  r.defaults.messages_s = messages_s;
  r.defaults.rejects_s = rejects_s;
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(boundary_kinds_and_org_overrides) {
  Fixture f;
  auto at_limit = f.record(T0 - 100 * S, "acme");
  auto older = f.record(T0 - 100 * S - 1, "acme", "accept", 2);
  auto rej_kept = f.record(T0 - 9 * S, "acme", "reject");
  auto rej_gone = f.record(T0 - 11 * S, "acme", "tempfail");
  auto beta_old = f.record(T0 - 150 * S, "beta");  // beta keeps 200 s
  auto none_old = f.record(T0 - 101 * S, "");       // no org: the defaults
  auto r = rules(100, 10);
  r.orgs["beta"] = r.defaults;
  r.orgs["beta"].messages_s = 200;
  auto run = prune(*f.db, r, T0);
  BOOST_TEST(f.has(at_limit));
  BOOST_TEST(!f.has(older));
  BOOST_TEST(f.has(rej_kept));
  BOOST_TEST(!f.has(rej_gone));
  BOOST_TEST(f.has(beta_old));
  BOOST_TEST(!f.has(none_old));
  BOOST_TEST(run.removed.messages == 2u);
  BOOST_TEST(run.removed.rejects == 1u);
  BOOST_TEST(run.removed.delivery_states == 4u);  // older 2, none_old 1, rej_gone 1
  auto v = f.db->read();
  BOOST_TEST(v->records.by_queue_id("Q" + std::to_string(older)).empty());
  BOOST_TEST(v->delivery.of(older).empty());
  for (const auto& [id, role] : v->records.by_address("r1@x.example")) BOOST_TEST(id != older);
  BOOST_TEST(v->delivery.of(at_limit).size() == 1u);
  auto status = nlohmann::json::parse(v->meta.get(keys::kPruneStatus).value());
  BOOST_TEST(status["removed"]["messages"].get<int>() == 2);
  BOOST_TEST(status["transactions"].get<int>() >= 1);
  BOOST_TEST(status.contains("longest_txn_ms"));
  BOOST_TEST(r.shortest().messages_s == 100);
}

BOOST_AUTO_TEST_CASE(small_transactions) {
  Fixture f;
  for (int i = 0; i < 100; ++i) f.record(T0 - 1000 * S + i, "acme", "accept", 1 + i % 3);
  auto r = rules(10, 10);
  std::size_t steps = 0;
  for (bool more = true; more; ++steps) {
    f.db->write([&](Tables& t) {
      auto s = prune_step(t, r, T0, 10);
      BOOST_TEST(s.removed.total() <= 10u);
      more = s.more;
    });
    BOOST_REQUIRE(steps < 200);
  }
  BOOST_TEST(steps >= 10u);
  BOOST_TEST(!f.db->read()->records.last_id());
  auto run = prune(*f.db, r, T0, 10);
  BOOST_TEST(run.removed.total() == 0u);
}

BOOST_AUTO_TEST_CASE(audit_dead_chains_expiries_and_what_never_goes) {
  Fixture f;
  f.now = T0 - 500 * S;
  f.db->write([&](Tables& t) {
    t.consent.set("acme", "a@x.example", policy::Consent{policy::ConsentState::unsubscribed, f.now, "cli"}, "t",
                  "consent.revoke");
    t.consent.set("beta", "b@x.example", policy::Consent{policy::ConsentState::unsubscribed, f.now, "cli"}, "t",
                  "consent.revoke");
    t.consent.put_tombstone("acme", std::string(32, 'h'), policy::Consent{policy::ConsentState::unsubscribed, f.now, "cli"});
    t.outbox.put("acme", "{\"e\":1}", 1 << 20);
    t.outbox.put("acme", "{\"e\":2}", 1 << 20);
  });
  f.db->write([&](Tables& t) {
    auto items = t.outbox.peek("acme", 1, 1 << 20);
    t.outbox.bury(items.at(0), "refused");
    t.delivery.chain("NEXT1", "r@x.example", 12345);  // no such record
    t.delivery.expired("acme", "old@x.example", f.now, 0, 3);
  });
  auto kept = f.record(T0 - 1 * S, "acme");
  f.db->write([&](Tables& t) {
    t.delivery.chain("NEXT2", "r@x.example", kept);
    t.delivery.expired("acme", "new@x.example", T0 - 1 * S, 0, 3);
  });
  f.now = T0;
  RetentionRules r;
  r.defaults = {100, 100, 100, 100};
  r.orgs["beta"] = {100, 1000, 100, 100};  // beta's audit stays
  auto run = prune(*f.db, r, T0);
  BOOST_TEST(run.removed.audit == 1u);
  BOOST_TEST(run.removed.dead_letters == 1u);
  BOOST_TEST(run.removed.chains == 1u);
  BOOST_TEST(run.removed.expiries == 1u);
  auto v = f.db->read();
  BOOST_TEST((v->consent.get("acme", "a@x.example").state == policy::ConsentState::unsubscribed));
  BOOST_TEST(v->consent.tombstone("acme", std::string(32, 'h')).has_value());
  BOOST_TEST(v->outbox.stats().queued == 1u);
  BOOST_TEST(v->outbox.stats().dead == 0u);
  BOOST_TEST(!v->delivery.chained("NEXT1", "r@x.example"));
  BOOST_TEST(v->delivery.chained("NEXT2", "r@x.example").value() == kept);
  std::vector<std::string> orgs;
  v->audit.scan(0, [&](const AuditEntry& e) {
    orgs.push_back(e.org);
    return true;
  });
  BOOST_TEST((orgs == std::vector<std::string>{"beta"}));
}

BOOST_AUTO_TEST_CASE(pruner_log_line_and_map_warnings) {
  Fixture f(1);
  std::vector<std::pair<conf::LogLevel, std::string>> lines;
  core::Logger log;
  log.capture([&](conf::LogLevel l, const std::string& s) { lines.emplace_back(l, s); });
  f.record(T0 - 1000 * S, "acme", "accept", 2);
  conf::Config c;
  c.retention.defaults.messages_s = 100;
  core::Pruner p(*f.db, log);
  p.run_once(c);
  BOOST_REQUIRE(!lines.empty());
  BOOST_TEST((lines[0].first == conf::LogLevel::notice));
  BOOST_TEST(lines[0].second.rfind("prune: removed 3 (messages 1, rejects 0, delivery states 2, audit 0, dead "
                                   "letters 0, chains 0, expiries 0) in 1 transactions, ",
                                   0) == 0u,
             lines[0].second);
  BOOST_TEST(lines[0].second.find("; store ") != std::string::npos);
  BOOST_TEST(lines[0].second.find(" of 1 MB") != std::string::npos);
  lines.clear();
  // Fill the 1 MB map past 80% with records the rules keep.
  std::int64_t at = T0 - 10 * S;
  for (int i = 0; p.check_map(T0).ratio() < 0.82; ++i) {
    MessageRecord r;
    r.id = static_cast<std::uint64_t>(at + i);
    r.org = "acme";
    r.action = "accept";
    r.reason = std::string(3000, 'x');
    f.db->write([&](Tables& t) { t.records.append(r); });
    BOOST_REQUIRE(i < 1000);
  }
  bool warned = false;
  for (auto& [l, s] : lines)
    if (l == conf::LogLevel::warning && s.find("store.map_size_mb") != std::string::npos) warned = true;
  BOOST_TEST(warned);
  std::size_t n = lines.size();
  p.check_map(T0 + S);  // still there: not repeated within 10 minutes
  BOOST_TEST(lines.size() == n);
  f.now = T0 + 1000 * S;  // everything is past its time now
  p.run_once(c);
  bool below = false;
  for (auto& [l, s] : lines)
    if (s.find("back below") != std::string::npos) below = true;
  BOOST_TEST(below);
}

BOOST_AUTO_TEST_CASE(retention_rules_from_config) {
  conf::Config c;
  c.retention.defaults.messages_s = 50;
  policy::OrgPolicy plain, own;
  own.retention.rejects_s = 5;
  c.policies.emplace("plain", plain);
  c.policies.emplace("own", own);
  auto r = core::retention_rules(c);
  BOOST_TEST(r.orgs.size() == 1u);
  BOOST_TEST(r.of("own").rejects_s == 5);
  BOOST_TEST(r.of("own").messages_s == 50);
  BOOST_TEST(r.of("plain").messages_s == 50);
  BOOST_TEST(r.shortest().rejects_s == 5);
}
