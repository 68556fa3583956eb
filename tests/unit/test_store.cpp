#define BOOST_TEST_MODULE store
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <chrono>
#include <set>
#include <thread>

#include "store/db.hpp"
#include "store/keys.hpp"
#include "tmpdir.hpp"

using namespace cllavio::store;
namespace policy = cllavio::policy;
using cllavio::test::TmpDir;

namespace {

MessageRecord rec(std::string qid, std::string org = "acme") {
  MessageRecord r;
  r.queue_id = std::move(qid);
  r.org = std::move(org);
  r.sender = "a@acme.example";
  r.recipients = {"b@x.example"};
  r.action = "accept";
  return r;
}

// Appends a record the way the recording pipeline does: an id, then one unit of work.
std::uint64_t append(Db& db, MessageRecord& r) {
  if (r.id == 0) r.id = db.allocate_id();
  db.write([&](Tables& t) { t.records.append(r); });
  return r.id;
}

StoreOptions opts(const TmpDir& dir, std::function<std::int64_t()> clock = {}) {
  StoreOptions o;
  o.dir = dir / "store";
  o.map_size_mb = 4;
  o.now_us = std::move(clock);
  return o;
}

// The "meta" database of a store written before, opened on a bare environment.
MDB_dbi open_meta(lmdb::Env& env) {
  lmdb::Txn txn(env, lmdb::Txn::read_write);
  MDB_dbi meta = lmdb::open_dbi(txn, "meta", 0);
  txn.commit();
  return meta;
}

}  // namespace

BOOST_AUTO_TEST_CASE(big_endian_keys_sort_numerically) {
  BOOST_TEST(lmdb::from_be64(lmdb::view(lmdb::be64(0x0102030405060708ull))) == 0x0102030405060708ull);
  auto a = lmdb::be64(255), b = lmdb::be64(256);
  BOOST_TEST((lmdb::view(a) < lmdb::view(b)));
  BOOST_CHECK_THROW(lmdb::from_be64("short"), lmdb::Error);
}

BOOST_AUTO_TEST_CASE(ids_are_unique_and_time_ordered_even_when_the_clock_goes_back) {
  TmpDir dir;
  std::int64_t now = 1'000'000;
  Db st(opts(dir, [&] { return now; }));
  auto r1 = rec("Q1");
  BOOST_TEST(append(st, r1) == 1'000'000u);
  auto r2 = rec("Q2");
  BOOST_TEST(append(st, r2) == 1'000'001u);  // same microsecond: last + 1
  now = 500;                                // clock went backwards
  auto r3 = rec("Q3");
  BOOST_TEST(append(st, r3) == 1'000'002u);
  now = 2'000'000;
  auto r4 = rec("Q4");
  BOOST_TEST(append(st, r4) == 2'000'000u);
  BOOST_TEST(r4.id == 2'000'000u);
}

BOOST_AUTO_TEST_CASE(get_scan_and_queue_index) {
  TmpDir dir;
  Db st(opts(dir));
  auto a = rec("AAAA"), b = rec("BBBB", "globex"), again = rec("AAAA"), none = rec("");
  append(st, a);
  append(st, b);
  append(st, again);
  append(st, none);
  BOOST_TEST(st.read()->records.get(b.id)->org == "globex");
  BOOST_TEST(!st.read()->records.get(12345));
  auto found = st.read()->records.by_queue_id("AAAA");
  BOOST_REQUIRE_EQUAL(found.size(), 2u);  // queue ids repeat over time: both, oldest first
  BOOST_TEST(found[0].id == a.id);
  BOOST_TEST(found[1].id == again.id);
  BOOST_TEST(st.read()->records.by_queue_id("ZZZZ").empty());
  BOOST_TEST(st.read()->records.by_queue_id("").empty());
  std::vector<std::uint64_t> ids;
  st.read()->records.scan([&](const MessageRecord& r) { ids.push_back(r.id); return true; });
  BOOST_TEST(ids == (std::vector<std::uint64_t>{a.id, b.id, again.id, none.id}));
  ids.clear();
  st.read()->records.scan([&](const MessageRecord& r) { ids.push_back(r.id); return ids.size() < 2; }, b.id);
  BOOST_TEST(ids == (std::vector<std::uint64_t>{b.id, again.id}));
}

BOOST_AUTO_TEST_CASE(data_survives_reopen) {
  TmpDir dir;
  std::uint64_t id;
  {
    Db st(opts(dir));
    auto r = rec("PERSIST");
    id = append(st, r);
  }
  Db st(opts(dir));
  BOOST_TEST(st.read()->records.get(id)->queue_id == "PERSIST");
  BOOST_TEST(st.stale_readers_cleared() == 0);
}

BOOST_AUTO_TEST_CASE(open_without_create_fails_clearly) {
  TmpDir dir;
  auto o = opts(dir);
  o.create = false;
  try {
    Db st(o);
    BOOST_FAIL("expected an error");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("no store at") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(map_full_throws_and_keeps_the_store_consistent) {
  TmpDir dir;
  auto o = opts(dir);
  o.map_size_mb = 1;
  Db st(o);
  std::size_t stored = 0;
  bool full = false;
  for (int i = 0; i < 100000 && !full; ++i) {
    auto r = rec("Q" + std::to_string(i));
    r.recipients.assign(20, std::string(100, 'r'));
    try {
      append(st, r);
      ++stored;
    } catch (const lmdb::Error& e) {
      BOOST_TEST(e.map_full());
      full = true;
    }
  }
  BOOST_TEST_REQUIRE(full);
  std::size_t seen = 0;
  st.read()->records.scan([&](const MessageRecord&) { ++seen; return true; });
  BOOST_TEST(seen == stored);  // the failed transaction left nothing behind
  BOOST_TEST(st.read()->records.by_queue_id("Q" + std::to_string(stored)).empty());
}

BOOST_AUTO_TEST_CASE(schema_version_mismatch_is_refused) {
  TmpDir dir;
  { Db st(opts(dir)); }
  {
    lmdb::Env env(dir / "store/cllavio.mdb", lmdb::EnvOptions{});
    lmdb::Txn txn(env, lmdb::Txn::read_write);
    auto meta = lmdb::open_dbi(txn, "meta", 0);
    lmdb::put(txn, meta, "schema", "99");
    txn.commit();
  }
  BOOST_CHECK_THROW(Db st(opts(dir)), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(transaction_leaving_scope_aborts) {
  TmpDir dir;
  { Db st(opts(dir)); }
  lmdb::Env env(dir / "store/cllavio.mdb", lmdb::EnvOptions{});
  {
    lmdb::Txn txn(env, lmdb::Txn::read_write);
    auto meta = lmdb::open_dbi(txn, "meta", 0);
    lmdb::put(txn, meta, "uncommitted", "x");
  }
  lmdb::Txn txn(env, lmdb::Txn::read_only);
  auto meta = lmdb::open_dbi(txn, "meta", 0);
  std::string_view v;
  BOOST_TEST(!lmdb::get(txn, meta, "uncommitted", v));
}

BOOST_AUTO_TEST_CASE(concurrent_appends_get_distinct_ids) {
  TmpDir dir;
  auto o = opts(dir);
  o.sync = Sync::none;
  Db st(o);
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::uint64_t> ids;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto r = rec("T" + std::to_string(t) + "_" + std::to_string(i));
        auto id = append(st, r);
        std::lock_guard lock(mu);
        ids.insert(id);
      }
    });
  for (auto& th : threads) th.join();
  BOOST_TEST(ids.size() == 1600u);
}

BOOST_AUTO_TEST_CASE(group_commit_batches_concurrent_writers_and_isolates_failures) {
  TmpDir dir;
  { Db st(opts(dir)); }
  lmdb::Env env(dir / "store/cllavio.mdb", lmdb::EnvOptions{});
  MDB_dbi meta = open_meta(env);
  GroupCommitter gc(env);
  constexpr int kThreads = 8, kEach = 100;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string key = "k" + std::to_string(t) + "_" + std::to_string(i);
        try {
          gc.run([&](lmdb::Txn& txn) {
            lmdb::put(txn, meta, key, "v");
            if (i % 10 == 3) throw std::runtime_error("bad piece");  // must vanish alone
          });
        } catch (const std::runtime_error&) {
          ++failures;
        }
      }
    });
  for (auto& th : threads) th.join();
  BOOST_TEST(failures == kThreads * kEach / 10);
  BOOST_TEST(gc.writes() == static_cast<std::uint64_t>(kThreads * kEach * 9 / 10));
  BOOST_TEST_MESSAGE("group commit: " << gc.writes() << " writes in " << gc.commits() << " commits");
  lmdb::Txn txn(env, lmdb::Txn::read_only);
  std::string_view v;
  int present = 0, absent = 0;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kEach; ++i) {
      bool found = lmdb::get(txn, meta, "k" + std::to_string(t) + "_" + std::to_string(i), v);
      (i % 10 == 3 ? absent : present) += found ? (i % 10 == 3 ? 0 : 1) : (i % 10 == 3 ? 1 : 0);
    }
  BOOST_TEST(present == kThreads * kEach * 9 / 10);
  BOOST_TEST(absent == kThreads * kEach / 10);
}

BOOST_AUTO_TEST_CASE(writers_arriving_during_a_commit_share_the_next_one) {
  TmpDir dir;
  { Db st(opts(dir)); }
  lmdb::Env env(dir / "store/cllavio.mdb", lmdb::EnvOptions{});
  MDB_dbi meta = open_meta(env);
  GroupCommitter gc(env);
  std::atomic<bool> leading{false};
  std::thread first([&] {
    gc.run([&](lmdb::Txn& txn) {
      lmdb::put(txn, meta, "first", "v");
      leading = true;
      while (gc.queued() < 7) std::this_thread::yield();  // hold the commit until all seven queued
    });
  });
  while (!leading) std::this_thread::yield();  // the first writer is the leader, mid-commit
  std::vector<std::thread> others;
  for (int i = 0; i < 7; ++i)
    others.emplace_back([&, i] {
      gc.run([&](lmdb::Txn& txn) { lmdb::put(txn, meta, "other" + std::to_string(i), "v"); });
    });
  first.join();
  for (auto& t : others) t.join();
  BOOST_TEST(gc.writes() == 8u);
  BOOST_TEST(gc.commits() == 2u);  // the first alone, then the seven that queued meanwhile together
}

BOOST_AUTO_TEST_CASE(a_piece_alone_in_its_batch_that_throws_leaves_nothing) {
  // Alone, a piece runs in the write transaction itself (no nested one): its writes
  // must still vanish with its exception, and the next piece commits normally.
  TmpDir dir;
  { Db st(opts(dir)); }
  lmdb::Env env(dir / "store/cllavio.mdb", lmdb::EnvOptions{});
  MDB_dbi meta = open_meta(env);
  GroupCommitter gc(env);
  BOOST_CHECK_THROW(gc.run([&](lmdb::Txn& txn) {
    lmdb::put(txn, meta, "lost", "v");
    throw std::runtime_error("bad piece");
  }),
                    std::runtime_error);
  BOOST_TEST(gc.commits() == 0u);
  BOOST_TEST(gc.writes() == 0u);
  gc.run([&](lmdb::Txn& txn) { lmdb::put(txn, meta, "kept", "v"); });
  BOOST_TEST(gc.commits() == 1u);
  lmdb::Txn r(env, lmdb::Txn::read_only);
  std::string_view v;
  BOOST_TEST(!lmdb::get(r, meta, "lost", v));
  BOOST_TEST(lmdb::get(r, meta, "kept", v));
}

BOOST_AUTO_TEST_CASE(a_failed_shared_transaction_fails_every_caller) {
  TmpDir dir;
  { Db st(opts(dir)); }
  lmdb::EnvOptions ro;
  ro.flags = MDB_RDONLY;
  lmdb::Env env(dir / "store/cllavio.mdb", ro);
  GroupCommitter gc(env);
  BOOST_CHECK_THROW(gc.run([](lmdb::Txn&) {}), lmdb::Error);  // no write transaction on a read-only env
  BOOST_TEST(gc.commits() == 0u);
}

BOOST_AUTO_TEST_CASE(read_only_stores_read_and_refuse_writes) {
  TmpDir dir;
  auto ro = opts(dir);
  ro.create = false;
  ro.read_only = true;
  BOOST_CHECK_THROW(Db st(ro), std::runtime_error);  // nothing there yet
  std::uint64_t id;
  {
    Db st(opts(dir));
    auto r = rec("RO1");
    id = append(st, r);
  }
  Db st(ro);
  BOOST_TEST(st.read()->records.get(id)->queue_id == "RO1");
  auto r = rec("RO2");
  BOOST_CHECK_THROW(append(st, r), lmdb::Error);
}

BOOST_AUTO_TEST_CASE(one_writing_daemon_per_store) {
  TmpDir dir;
  auto o = opts(dir);
  o.exclusive = true;
  Db first(o);
  try {
    Db second(o);
    BOOST_FAIL("a second exclusive store opened");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("another cllavio-milter is writing to") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(preallocated_ids_continue_after_reopen) {
  TmpDir dir;
  std::int64_t now = 5'000'000;
  std::uint64_t last;
  {
    Db st(opts(dir, [&] { return now; }));
    auto id = st.allocate_id();
    auto r = rec("PRE");
    r.id = id;
    BOOST_TEST(append(st, r) == id);
    last = id;
  }
  now = 1;  // the clock is now far behind the stored ids
  Db st(opts(dir, [&] { return now; }));
  BOOST_TEST(st.allocate_id() == last + 1);
  auto dup = rec("DUP");
  dup.id = last;
  BOOST_CHECK_THROW(append(st, dup), lmdb::Error);  // never overwrites a record
}

BOOST_AUTO_TEST_CASE(prefix_range_walks_one_prefix_and_erases_as_it_goes) {
  TmpDir dir;
  { Db st(opts(dir)); }
  lmdb::Env env(dir / "store/cllavio.mdb", lmdb::EnvOptions{});
  MDB_dbi meta = open_meta(env);
  lmdb::Txn txn(env, lmdb::Txn::read_write);
  for (const char* k : {"a\0" "1", "acme\0" "1", "acme\0" "2", "acme\0" "3", "acme2\0" "1", "b\0" "1"})
    lmdb::put(txn, meta, std::string(k, std::strlen(k) + 2), "v");
  std::vector<std::string> seen;
  for (const auto& e : lmdb::prefix_range(txn, meta, std::string("acme\0", 5))) seen.push_back(std::string(e.suffix()));
  BOOST_TEST(seen == (std::vector<std::string>{"1", "2", "3"}), boost::test_tools::per_element());
  seen.clear();
  for (const auto& e : lmdb::prefix_range(txn, meta, std::string("acme\0", 5), std::string("acme\0" "2", 6))) {
    seen.push_back(std::string(e.suffix()));
    e.erase();
  }
  BOOST_TEST(seen == (std::vector<std::string>{"2", "3"}), boost::test_tools::per_element());
  seen.clear();
  for (const auto& e : lmdb::prefix_range(txn, meta, "acme")) seen.push_back(std::string(e.key));
  BOOST_TEST(seen.size() == 2u);  // acme\01 and acme2\01 are left
  std::size_t none = 0;
  for (const auto& e : lmdb::prefix_range(txn, meta, "zzz")) none += e.key.size();
  BOOST_TEST(none == 0u);
}

BOOST_AUTO_TEST_CASE(records_are_indexed_by_address_in_their_transaction) {
  TmpDir dir;
  Db st(opts(dir));
  auto a = rec("A1");
  a.sender = "Alice@ACME.example";
  a.recipients = {"bob@x.example", "carol@x.example", "Alice@acme.example"};
  a.suppressed = {"dave@x.example"};
  append(st, a);
  auto b = rec("B1");
  b.sender = "";  // the null sender is not indexed
  b.recipients = {"bob@X.example"};
  append(st, b);
  auto v = st.read();
  auto bob = v->records.by_address("bob@x.example");
  BOOST_REQUIRE(bob.size() == 2u);
  BOOST_TEST(bob[0].first == a.id);
  BOOST_TEST(bob[1].first == b.id);
  BOOST_TEST(bob[0].second == keys::recipient);
  auto alice = v->records.by_address("Alice@acme.example");  // domain lowercase, local part as written
  BOOST_TEST(v->records.by_address("alice@acme.example").empty());
  BOOST_REQUIRE(alice.size() == 1u);
  BOOST_TEST(alice[0].second == (keys::sender | keys::recipient));
  BOOST_TEST(v->records.by_address("dave@x.example").at(0).second == keys::suppressed);
  BOOST_TEST(v->records.by_address("bob@x.exampl").empty());
  // A write that fails takes its index entries with it.
  auto c = rec("C1");
  c.recipients = {"erin@x.example"};
  c.id = st.allocate_id();
  BOOST_CHECK_THROW(st.write([&](Tables& t) {
    t.records.append(c);
    throw std::runtime_error("a later step failed");
  }),
                    std::runtime_error);
  BOOST_TEST(st.read()->records.by_address("erin@x.example").empty());
}

BOOST_AUTO_TEST_CASE(one_unit_of_work_writes_every_table_or_none) {
  TmpDir dir;
  Db st(opts(dir));
  auto r = rec("U1");
  r.id = st.allocate_id();
  st.write([&](Tables& t) {
    t.records.append(r);
    t.quota.charge("acme", 1000, r.id, 1, 0);
    BOOST_TEST(t.outbox.put("acme", R"({"id":"e1"})", 1 << 20));
    t.consent.set("acme", "b@x.example", {policy::ConsentState::granted, 1, "cli"}, "t", "consent.grant");
  });
  auto r2 = rec("U2");
  r2.id = st.allocate_id();
  BOOST_CHECK_THROW(st.write([&](Tables& t) {
    t.records.append(r2);
    t.quota.charge("acme", 2000, r2.id, 1, 0);
    t.outbox.put("acme", R"({"id":"e2"})", 1 << 20);
    t.records.append(r);  // the same id again: refused, and the whole unit with it
  }),
                    lmdb::Error);
  auto v = st.read();
  BOOST_TEST(v->records.get(r.id).has_value());
  BOOST_TEST(!v->records.get(r2.id).has_value());
  BOOST_TEST(v->quota.events("acme", 0).size() == 1u);
  BOOST_TEST(v->outbox.stats().queued == 1u);
  BOOST_TEST((v->consent.get("acme", "b@x.example").state == policy::ConsentState::granted));
  // An event on its own, without a record (delivery outcomes).
  st.write([&](Tables& t) { t.outbox.put("acme", R"({"id":"e3"})", 1 << 20); });
  BOOST_TEST(st.read()->outbox.peek("acme", 10, 1 << 20).size() == 2u);
}

namespace {

// The store written by the previous version (tests/data/store-v1.mdb.gz), unpacked into dir.
void unpack_v1_store(const TmpDir& dir) {
  std::filesystem::create_directories(dir / "store");
  std::string cmd = std::string("gzip -dc '") + CLLAVIO_SOURCE_DIR + "/tests/data/store-v1.mdb.gz' > '" +
                    (dir / "store/cllavio.mdb") + "'";
  BOOST_REQUIRE(std::system(cmd.c_str()) == 0);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_store_of_schema_1_is_read_as_it_is_and_migrated_by_a_writer) {
  TmpDir dir;
  unpack_v1_store(dir);
  auto ro = opts(dir);
  ro.create = false;
  ro.read_only = true;
  std::vector<MessageRecord> before;
  {
    Db old(ro);  // cllavioctl before the daemon restarted: reads it as it is
    BOOST_TEST(old.schema_version() == 1);
    old.read()->records.scan([&](const MessageRecord& r) {
      before.push_back(r);
      return true;
    });
    BOOST_TEST(old.read()->records.by_address("bob@example.net").empty());  // no index yet
  }
  BOOST_REQUIRE(before.size() == 4u);
  Db st(opts(dir));
  BOOST_REQUIRE(st.migrated().has_value());
  BOOST_TEST(st.migrated()->from == 1);
  BOOST_TEST(st.migrated()->records == 4u);
  BOOST_TEST(st.schema_version() == Db::kSchemaVersion);
  auto v = st.read();
  std::vector<MessageRecord> after;
  v->records.scan([&](const MessageRecord& r) {
    after.push_back(r);
    return true;
  });
  BOOST_TEST((after == before));
  // The index, built from every record's sender and recipients.
  auto bob = v->records.by_address("bob@example.net");
  BOOST_REQUIRE(bob.size() == 1u);
  BOOST_TEST(v->records.get(bob[0].first)->recipients.size() == 2u);
  BOOST_TEST(v->records.by_address("news@acme.example").size() == 1u);
  BOOST_TEST(v->records.by_address("Carol@example.net").size() == 1u);
  BOOST_TEST(v->records.by_address("frank@example.com").size() == 2u);
  // Everything else the old store held.
  BOOST_TEST((v->consent.get("acme", "Carol@example.net").state == policy::ConsentState::granted));
  BOOST_TEST((v->consent.get("acme", "dave@example.net").state == policy::ConsentState::unsubscribed));
  std::size_t audited = 0;
  v->audit.scan(0, [&](const AuditEntry&) { return ++audited, true; });
  BOOST_TEST(audited == 2u);
  BOOST_TEST(v->quota.events("quotaco", 0).size() == 1u);
  BOOST_TEST(v->outbox.stats().queued == 5u);
  BOOST_TEST(v->outbox.peek("acme", 10, 1 << 20).size() == 4u);
  BOOST_TEST(!v->records.by_queue_id(before[0].queue_id).empty());
  // New records continue after the old ids; reopening does not migrate again.
  auto r = rec("NEW");
  BOOST_TEST(append(st, r) > before.back().id);
}

BOOST_AUTO_TEST_CASE(reopening_a_current_store_does_not_migrate) {
  TmpDir dir;
  { Db st(opts(dir)); }
  Db st(opts(dir));
  BOOST_TEST(!st.migrated().has_value());
}
