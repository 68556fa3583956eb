#define BOOST_TEST_MODULE tables
#include <boost/test/unit_test.hpp>

#include <filesystem>

#include "store/db.hpp"
#include "tmpdir.hpp"

// The consent, audit and quota tables (store/consent_audit.cpp, store/quota_outbox.cpp).

using namespace cllavio::store;
using cllavio::policy::Consent;
using cllavio::policy::ConsentState;
using cllavio::test::TmpDir;

namespace {

StoreOptions opts(const TmpDir& dir, bool read_only = false) {
  StoreOptions o;
  o.dir = dir / "store";
  o.map_size_mb = 4;
  o.read_only = read_only;
  o.create = !read_only;
  return o;
}

Consent c(ConsentState s, std::int64_t at, std::string src = "cli") { return Consent{s, at, std::move(src)}; }

// One consent change in its own unit of work, as cllavioctl makes it.
ConsentTable::Change set(Db& db, const std::string& org, const std::string& addr, const Consent& to,
                         const std::string& actor, const std::string& action) {
  ConsentTable::Change ch;
  db.write([&](Tables& t) { ch = t.consent.set(org, addr, to, actor, action); });
  return ch;
}

ConsentTable::ImportResult import(Db& db, const std::string& org, const std::vector<ConsentTable::ImportRow>& rows) {
  ConsentTable::ImportResult r;
  db.write([&](Tables& t) { r = t.consent.import(org, rows, "t", "consent.import"); });
  return r;
}

std::vector<AuditEntry> audit_log(const Db& db, std::int64_t since = 0) {
  std::vector<AuditEntry> log;
  db.read()->audit.scan(since, [&](const AuditEntry& e) {
    log.push_back(e);
    return true;
  });
  return log;
}

// A charged message: its record and its quota event in one unit of work.
void charge(Db& db, std::int64_t at, std::uint64_t rcpts, std::int64_t prune_before) {
  MessageRecord r;
  r.org = "acme";
  r.action = "accept";
  r.id = db.allocate_id();
  db.write([&](Tables& t) {
    t.records.append(r);
    t.quota.charge("acme", at, r.id, rcpts, prune_before);
  });
}

}  // namespace

BOOST_AUTO_TEST_CASE(consent_set_read_and_audited) {
  TmpDir dir;
  Db st(opts(dir));
  BOOST_TEST((st.read()->consent.get("acme", "bob@example.net").state == ConsentState::none));
  auto ch = set(st, "acme", "bob@example.net", c(ConsentState::granted, 100), "tester", "consent.grant");
  BOOST_TEST(ch.changed);
  BOOST_TEST((ch.before.state == ConsentState::none));
  BOOST_REQUIRE(ch.audit.has_value());
  BOOST_TEST(ch.audit->to == "granted");
  BOOST_TEST((st.read()->consent.get("acme", "bob@example.net") == c(ConsentState::granted, 100)));
  BOOST_TEST((st.read()->consent.get("globex", "bob@example.net").state == ConsentState::none));  // per org
  // The same state again: no change, no audit entry.
  auto same = set(st, "acme", "bob@example.net", c(ConsentState::granted, 200), "tester", "consent.grant");
  BOOST_TEST(!same.changed);
  BOOST_TEST(!same.audit.has_value());
  set(st, "acme", "bob@example.net", c(ConsentState::unsubscribed, 300, "unsubscribe"), "api", "consent.unsubscribe");
  auto log = audit_log(st);
  BOOST_REQUIRE(log.size() == 2u);
  BOOST_TEST(log[0].action == "consent.grant");
  BOOST_TEST(log[0].from == "none");
  BOOST_TEST(log[0].to == "granted");
  BOOST_TEST(log[0].id == ch.audit->id);
  BOOST_TEST(log[1].actor == "api");
  BOOST_TEST(log[1].from == "granted");
  BOOST_TEST(log[1].to == "unsubscribed");
  BOOST_TEST(log[1].source == "unsubscribe");
  BOOST_TEST(log[0].id < log[1].id);
  BOOST_TEST(audit_log(st, static_cast<std::int64_t>(log[1].id)).size() == 1u);
}

BOOST_AUTO_TEST_CASE(import_keeps_newer_stored_states_and_exports_per_org) {
  TmpDir dir;
  Db st(opts(dir));
  set(st, "acme", "late@example.net", c(ConsentState::unsubscribed, 5000), "t", "consent.unsubscribe");
  std::vector<ConsentTable::ImportRow> rows = {
      {"a@example.net", c(ConsentState::granted, 1000, "import")},
      {"late@example.net", c(ConsentState::granted, 1000, "import")},  // older than the unsubscribe: kept
      {"b@example.net", c(ConsentState::revoked, 1000, "import")},
  };
  auto r = import(st, "acme", rows);
  BOOST_TEST(r.changed == 2u);
  BOOST_TEST(r.older == 1u);
  BOOST_TEST(r.audited.size() == 2u);  // one entry per changed address (and one for the import)
  BOOST_TEST(audit_log(st).size() == 4u);
  BOOST_TEST(import(st, "acme", rows).unchanged == 2u);
  BOOST_TEST((st.read()->consent.get("acme", "late@example.net").state == ConsentState::unsubscribed));
  set(st, "globex", "z@example.net", c(ConsentState::granted, 1), "t", "consent.grant");
  std::vector<std::string> seen;
  st.read()->consent.scan("acme", [&](const std::string& a, const Consent&) {
    seen.push_back(a);
    return true;
  });
  BOOST_TEST(seen == (std::vector<std::string>{"a@example.net", "b@example.net", "late@example.net"}),
             boost::test_tools::per_element());
  // The API sync's cursor goes with its changes.
  std::string cursor = "42";
  st.write([&](Tables& t) { t.consent.import("acme", {}, "api", "consent.api", &cursor); });
  BOOST_TEST(st.read()->consent.cursor("acme") == "42");
  BOOST_TEST(st.read()->consent.cursor("globex").empty());
}

BOOST_AUTO_TEST_CASE(quota_events_commit_with_the_record_and_prune_and_reset) {
  TmpDir dir;
  Db st(opts(dir));
  for (int i = 0; i < 5; ++i) charge(st, 1000 + i, 2, 0);
  auto ev = st.read()->quota.events("acme", 0);
  BOOST_REQUIRE(ev.size() == 5u);
  BOOST_TEST(ev[0].first == 1000);
  BOOST_TEST(ev[0].second == 2u);
  BOOST_TEST(st.read()->quota.events("acme", 1003).size() == 2u);
  BOOST_TEST(st.read()->quota.events("acm", 0).empty());  // org prefixes do not leak into each other
  // A failing record write takes its quota event with it.
  BOOST_CHECK_THROW(st.write([&](Tables& t) {
    t.quota.charge("acme", 2000, 1, 1, 0);
    throw std::runtime_error("later step failed");
  }),
                    std::runtime_error);
  BOOST_TEST(st.read()->quota.events("acme", 0).size() == 5u);
  // Pruning: events before the horizon go as new ones are written.
  charge(st, 3000, 1, 1003);
  BOOST_TEST(st.read()->quota.events("acme", 0).size() == 3u);
  BOOST_TEST(st.read()->quota.epoch("acme") == 0u);
  std::size_t removed = 0;
  st.write([&](Tables& t) { removed = t.quota.reset("acme", "t"); });
  BOOST_TEST(removed == 3u);
  BOOST_TEST(st.read()->quota.events("acme", 0).empty());
  BOOST_TEST(st.read()->quota.epoch("acme") == 1u);
  bool audited = false;
  for (const auto& e : audit_log(st)) audited = audited || (e.action == "quota.reset" && e.org == "acme");
  BOOST_TEST(audited);
}

BOOST_AUTO_TEST_CASE(read_only_open_of_a_store_without_the_tables_reads_empty) {
  TmpDir dir;
  {  // a store written before these tables existed: only the message log
    std::filesystem::create_directories(dir / "store");
    lmdb::EnvOptions eo;
    lmdb::Env env(dir / "store/cllavio.mdb", eo);
    lmdb::Txn txn(env, lmdb::Txn::read_write);
    for (const char* name : {"meta", "messages"}) lmdb::open_dbi(txn, name, MDB_CREATE);
    lmdb::open_dbi(txn, "by_queue", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED);
    lmdb::put(txn, lmdb::open_dbi(txn, "meta", 0), "schema", "1");
    txn.commit();
  }
  Db ro(opts(dir, true));
  auto v = ro.read();
  BOOST_TEST((v->consent.get("acme", "a@b.example").state == ConsentState::none));
  BOOST_TEST(v->quota.events("acme", 0).empty());
  BOOST_TEST(v->outbox.stats().queued == 0u);
  BOOST_TEST(v->records.by_address("a@b.example").empty());
  BOOST_CHECK_THROW(set(ro, "acme", "a@b.example", c(ConsentState::granted, 1), "t", "x"), lmdb::Error);
}

// The scrape-time outbox figures (no scan) agree with the CLI's full stats().
BOOST_AUTO_TEST_CASE(outbox_quick_stats_match_the_full_stats) {
  TmpDir dir;
  StoreOptions o = opts(dir);
  std::int64_t now = 1'000'000;
  o.now_us = [&] { return now; };
  Db db(o);
  BOOST_TEST(db.read()->outbox.quick_stats().queued == 0u);
  BOOST_TEST(db.read()->outbox.quick_stats().oldest_at_us == 0);
  now = 5'000'000;
  db.write([&](Tables& t) { t.outbox.put("globex", "{\"n\":1}", 1 << 20); });
  now = 7'000'000;
  db.write([&](Tables& t) {
    t.outbox.put("acme", "{\"n\":2}", 1 << 20);  // acme's keys sort first, but globex's event is older
    t.outbox.put("acme", "{\"n\":3}", 1 << 20);
    t.outbox.put("acme\x01", "{\"n\":4}", 1 << 20);  // an org id that is acme's prefix plus a byte
  });
  db.write([&](Tables& t) { t.outbox.bury(t.outbox.peek("acme", 1, 1 << 20).front(), "HTTP 400"); });
  OutboxStats quick = db.read()->outbox.quick_stats(), full = db.read()->outbox.stats();
  BOOST_TEST(quick.queued == 3u);
  BOOST_TEST(quick.dead == 1u);
  BOOST_TEST(quick.oldest_at_us == 5'000'000);
  BOOST_TEST(quick.queued == full.queued);
  BOOST_TEST(quick.dead == full.dead);
  BOOST_TEST(quick.oldest_at_us == full.oldest_at_us);
  db.write([&](Tables& t) { t.outbox.ack(t.outbox.peek("globex", 10, 1 << 20)); });
  BOOST_TEST(db.read()->outbox.quick_stats().oldest_at_us == 7'000'000);
}
