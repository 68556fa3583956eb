#define BOOST_TEST_MODULE store
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "store/store.hpp"
#include "tmpdir.hpp"

using namespace cllavio::store;
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
  Store st(opts(dir, [&] { return now; }));
  auto r1 = rec("Q1");
  BOOST_TEST(st.append(r1) == 1'000'000u);
  auto r2 = rec("Q2");
  BOOST_TEST(st.append(r2) == 1'000'001u);  // same microsecond: last + 1
  now = 500;                                // clock went backwards
  auto r3 = rec("Q3");
  BOOST_TEST(st.append(r3) == 1'000'002u);
  now = 2'000'000;
  auto r4 = rec("Q4");
  BOOST_TEST(st.append(r4) == 2'000'000u);
  BOOST_TEST(r4.id == 2'000'000u);
}

BOOST_AUTO_TEST_CASE(get_scan_and_queue_index) {
  TmpDir dir;
  Store st(opts(dir));
  auto a = rec("AAAA"), b = rec("BBBB", "globex"), again = rec("AAAA"), none = rec("");
  st.append(a);
  st.append(b);
  st.append(again);
  st.append(none);
  BOOST_TEST(st.get(b.id)->org == "globex");
  BOOST_TEST(!st.get(12345));
  auto found = st.find_by_queue_id("AAAA");
  BOOST_REQUIRE_EQUAL(found.size(), 2u);  // queue ids repeat over time: both, oldest first
  BOOST_TEST(found[0].id == a.id);
  BOOST_TEST(found[1].id == again.id);
  BOOST_TEST(st.find_by_queue_id("ZZZZ").empty());
  BOOST_TEST(st.find_by_queue_id("").empty());
  std::vector<std::uint64_t> ids;
  st.scan([&](const MessageRecord& r) { ids.push_back(r.id); return true; });
  BOOST_TEST(ids == (std::vector<std::uint64_t>{a.id, b.id, again.id, none.id}));
  ids.clear();
  st.scan([&](const MessageRecord& r) { ids.push_back(r.id); return ids.size() < 2; }, b.id);
  BOOST_TEST(ids == (std::vector<std::uint64_t>{b.id, again.id}));
}

BOOST_AUTO_TEST_CASE(data_survives_reopen) {
  TmpDir dir;
  std::uint64_t id;
  {
    Store st(opts(dir));
    auto r = rec("PERSIST");
    id = st.append(r);
  }
  Store st(opts(dir));
  BOOST_TEST(st.get(id)->queue_id == "PERSIST");
  BOOST_TEST(st.stale_readers_cleared() == 0);
}

BOOST_AUTO_TEST_CASE(open_without_create_fails_clearly) {
  TmpDir dir;
  auto o = opts(dir);
  o.create = false;
  try {
    Store st(o);
    BOOST_FAIL("expected an error");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("no store at") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(map_full_throws_and_keeps_the_store_consistent) {
  TmpDir dir;
  auto o = opts(dir);
  o.map_size_mb = 1;
  Store st(o);
  std::size_t stored = 0;
  bool full = false;
  for (int i = 0; i < 100000 && !full; ++i) {
    auto r = rec("Q" + std::to_string(i));
    r.recipients.assign(20, std::string(100, 'r'));
    try {
      st.append(r);
      ++stored;
    } catch (const lmdb::Error& e) {
      BOOST_TEST(e.map_full());
      full = true;
    }
  }
  BOOST_TEST_REQUIRE(full);
  std::size_t seen = 0;
  st.scan([&](const MessageRecord&) { ++seen; return true; });
  BOOST_TEST(seen == stored);  // the failed transaction left nothing behind
  BOOST_TEST(st.find_by_queue_id("Q" + std::to_string(stored)).empty());
}

BOOST_AUTO_TEST_CASE(schema_version_mismatch_is_refused) {
  TmpDir dir;
  { Store st(opts(dir)); }
  {
    lmdb::Env env(dir / "store/cllavio.mdb", lmdb::EnvOptions{});
    lmdb::Txn txn(env, lmdb::Txn::read_write);
    auto meta = lmdb::open_dbi(txn, "meta", 0);
    lmdb::put(txn, meta, "schema", "99");
    txn.commit();
  }
  BOOST_CHECK_THROW(Store st(opts(dir)), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(transaction_leaving_scope_aborts) {
  TmpDir dir;
  { Store st(opts(dir)); }
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
  Store st(o);
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::uint64_t> ids;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto r = rec("T" + std::to_string(t) + "_" + std::to_string(i));
        auto id = st.append(r);
        std::lock_guard lock(mu);
        ids.insert(id);
      }
    });
  for (auto& th : threads) th.join();
  BOOST_TEST(ids.size() == 1600u);
}

BOOST_AUTO_TEST_CASE(group_commit_batches_concurrent_writers_and_isolates_failures) {
  TmpDir dir;
  { Store st(opts(dir)); }
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
  { Store st(opts(dir)); }
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

BOOST_AUTO_TEST_CASE(a_failed_shared_transaction_fails_every_caller) {
  TmpDir dir;
  { Store st(opts(dir)); }
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
  BOOST_CHECK_THROW(Store st(ro), std::runtime_error);  // nothing there yet
  std::uint64_t id;
  {
    Store st(opts(dir));
    auto r = rec("RO1");
    id = st.append(r);
  }
  Store st(ro);
  BOOST_TEST(st.get(id)->queue_id == "RO1");
  auto r = rec("RO2");
  BOOST_CHECK_THROW(st.append(r), lmdb::Error);
}

BOOST_AUTO_TEST_CASE(one_writing_daemon_per_store) {
  TmpDir dir;
  auto o = opts(dir);
  o.exclusive = true;
  Store first(o);
  try {
    Store second(o);
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
    Store st(opts(dir, [&] { return now; }));
    auto id = st.allocate_id();
    auto r = rec("PRE");
    r.id = id;
    BOOST_TEST(st.append(r) == id);
    last = id;
  }
  now = 1;  // the clock is now far behind the stored ids
  Store st(opts(dir, [&] { return now; }));
  BOOST_TEST(st.allocate_id() == last + 1);
  auto dup = rec("DUP");
  dup.id = last;
  BOOST_CHECK_THROW(st.append(dup), lmdb::Error);  // never overwrites a record
}
