#define BOOST_TEST_MODULE maintenance
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "store/db.hpp"
#include "store/keys.hpp"
#include "store/maintenance.hpp"
#include "tmpdir.hpp"

// The store as a file: stats() and compact() (store/maintenance.cpp).

using namespace cllavio::store;
using cllavio::policy::Consent;
using cllavio::policy::ConsentState;
using cllavio::test::TmpDir;

namespace {

StoreOptions opts(const TmpDir& dir, std::int64_t* clock = nullptr) {
  StoreOptions o;
  o.dir = dir / "store";
  o.map_size_mb = 64;
  o.sync = Sync::none;
  if (clock) o.now_us = [clock] { return (*clock)++; };
  return o;
}

std::map<std::string, TableStats> by_name(const StoreStats& s) {
  std::map<std::string, TableStats> m;
  for (const auto& t : s.tables) m[t.name] = t;
  return m;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

MessageRecord record(Db& db, const std::string& org, const std::string& from, const std::string& rcpt) {
  MessageRecord r;
  r.id = db.allocate_id();
  r.org = org;
  r.queue_id = "Q" + std::to_string(r.id);
  r.sender = from;
  r.recipients = {rcpt};
  r.recipient_count = 1;
  r.action = "accept";
  r.received_at_us = static_cast<std::int64_t>(r.id);
  r.client_name = std::string(300, 'c');  // some bulk
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(stats_counts_and_oldest) {
  TmpDir dir;
  std::int64_t clock = 1'000'000'000'000'000;  // 2001-09-09
  Db db(opts(dir, &clock));
  const std::int64_t t0 = clock;
  std::vector<MessageRecord> recs;
  for (int i = 0; i < 3; ++i) recs.push_back(record(db, i == 2 ? "globex" : "acme", "a@x.test", "b@y.test"));
  db.write([&](Tables& t) {
    for (const auto& r : recs) t.records.append(r);
    t.quota.charge("globex", 500, recs[2].id, 1, 0);
    t.quota.charge("acme", 700, recs[0].id, 1, 0);
    t.quota.charge("acme", 900, recs[1].id, 1, 0);
    t.consent.set("acme", "b@y.test", Consent{ConsentState::granted, 1, "cli"}, "t", "consent.grant");
    DeliveryState d;
    d.state = "delivered";
    t.delivery.put(recs[1].id, "b@y.test", d);
    t.delivery.put(recs[0].id, "b@y.test", d);
    t.delivery.pend(1, 5, "a log line");
    t.outbox.put("acme", "{\"e\":1}", 1 << 20);
    t.outbox.put("globex", "{\"e\":2}", 1 << 20);
  });
  auto first_dead = db.read()->outbox.peek("acme", 1, 1 << 20);
  db.write([&](Tables& t) { t.outbox.bury(first_dead.at(0), "refused"); });
  db.write([&](Tables& t) { t.meta.put(keys::kPruneStatus, "{\"removed\":0}"); });

  StoreStats s = stats(db);
  BOOST_TEST(s.file == db.file());
  BOOST_TEST(s.schema == Db::kSchemaVersion);
  BOOST_TEST(s.last_prune == "{\"removed\":0}");
  BOOST_TEST(s.map.map_bytes == 64ull << 20);
  BOOST_TEST(s.map.used_bytes > 0u);
  std::vector<std::string> names;
  for (const auto& t : s.tables) names.push_back(t.name);
  BOOST_TEST((names == std::vector<std::string>{"meta", "messages", "by_queue", "by_address", "by_org", "consent",
                                                "erased", "audit", "quota", "outbox", "outbox_dead", "delivery",
                                                "delivery_pending", "delivery_chain", "delivery_expiries"}));
  auto m = by_name(s);
  BOOST_TEST(m["messages"].entries == 3u);
  BOOST_TEST(m["messages"].pages >= 1u);
  BOOST_TEST(m["messages"].oldest_us.value_or(0) == static_cast<std::int64_t>(recs[0].id));
  BOOST_TEST(m["by_queue"].entries == 3u);
  BOOST_TEST(m["by_address"].entries == 6u);
  BOOST_TEST(m["by_org"].entries == 3u);
  BOOST_TEST(m["by_org"].oldest_us.value_or(0) == static_cast<std::int64_t>(recs[0].id));
  BOOST_TEST(m["consent"].entries == 1u);
  BOOST_TEST(!m["consent"].oldest_us.has_value());
  BOOST_TEST(m["erased"].entries == 0u);
  BOOST_TEST(m["erased"].pages == 0u);
  BOOST_TEST(m["audit"].entries == 1u);
  BOOST_TEST(m["audit"].oldest_us.value_or(0) >= t0);
  BOOST_TEST(m["quota"].entries == 3u);
  BOOST_TEST(m["quota"].oldest_us.value_or(0) == 500);  // globex's, though acme sorts first
  BOOST_TEST(m["outbox"].entries == 1u);
  BOOST_TEST(m["outbox"].oldest_us.value_or(0) >= t0);
  BOOST_TEST(m["outbox_dead"].entries == 1u);
  BOOST_TEST(m["outbox_dead"].oldest_us.value_or(0) >= t0);
  BOOST_TEST(m["delivery"].entries == 2u);
  BOOST_TEST(m["delivery"].oldest_us.value_or(0) == static_cast<std::int64_t>(recs[0].id));
  BOOST_TEST(m["delivery_pending"].entries == 1u);
  BOOST_TEST(m["delivery_chain"].entries == 0u);
  BOOST_TEST(!m["delivery_chain"].oldest_us.has_value());
}

BOOST_AUTO_TEST_CASE(stats_of_an_empty_store) {
  TmpDir dir;
  Db db(opts(dir));
  StoreStats s = stats(db);
  BOOST_TEST(s.last_prune == "");
  for (const auto& t : s.tables) {
    BOOST_TEST(!t.oldest_us.has_value(), t.name);
    if (t.name != "meta") BOOST_TEST(t.entries == 0u, t.name);
  }
}

BOOST_AUTO_TEST_CASE(compact_shrinks_keeps_data_and_forgets_deleted_bytes) {
  TmpDir dir;
  const std::string victim = "victim.person@erased.example";
  std::vector<MessageRecord> recs;
  MessageRecord kept;
  {
    Db db(opts(dir));
    for (int batch = 0; batch < 20; ++batch)
      db.write([&](Tables& t) {
        for (int i = 0; i < 100; ++i) {
          recs.push_back(record(db, "acme", victim, "r" + std::to_string(i) + "@example.net"));
          t.records.append(recs.back());
        }
      });
    kept = record(db, "acme", "keeper@example.net", "bob@example.net");
    db.write([&](Tables& t) { t.records.append(kept); });
    for (std::size_t i = 0; i < recs.size(); i += 200)
      db.write([&](Tables& t) {
        for (std::size_t j = i; j < i + 200 && j < recs.size(); ++j) t.records.remove(recs[j].id);
      });
    BOOST_TEST(db.read()->records.by_address(victim).empty());
  }
  const std::string file = dir / "store/cllavio.mdb";
  ::chmod(file.c_str(), 0640);
  bool in_free_pages = file_bytes(file).find(victim) != std::string::npos;
  BOOST_TEST_MESSAGE("deleted address in the file's free pages before compact: " << in_free_pages);
  BOOST_WARN(in_free_pages);

  CompactResult r = compact(dir / "store");
  BOOST_TEST(r.after_bytes < r.before_bytes);
  BOOST_TEST(std::filesystem::file_size(file) == r.after_bytes);
  BOOST_TEST(!std::filesystem::exists(file + ".compact"));
  BOOST_TEST(file_bytes(file).find(victim) == std::string::npos);
  struct stat st{};
  BOOST_REQUIRE(::stat(file.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0640u);  // the old file's mode

  // Still a store: it opens (as a writer too) and has its record.
  Db db(opts(dir));
  auto got = db.read()->records.get(kept.id);
  BOOST_REQUIRE(got.has_value());
  BOOST_TEST(got->sender == "keeper@example.net");
  BOOST_TEST(db.read()->records.by_address("bob@example.net").size() == 1u);
  BOOST_TEST(db.read()->records.last_id() == kept.id);
  MessageRecord more = record(db, "acme", "x@example.net", "y@example.net");
  db.write([&](Tables& t) { t.records.append(more); });
  BOOST_TEST(db.read()->records.get(more.id).has_value());
}

BOOST_AUTO_TEST_CASE(compact_refuses_while_the_daemon_runs) {
  TmpDir dir;
  StoreOptions o = opts(dir);
  o.exclusive = true;
  {
    Db daemon(o);
    MessageRecord r = record(daemon, "acme", "a@example.net", "b@example.net");
    daemon.write([&](Tables& t) { t.records.append(r); });
    try {
      compact(dir / "store");
      BOOST_FAIL("compact ran beside the daemon");
    } catch (const std::runtime_error& e) {
      std::string what = e.what();
      BOOST_TEST(what.find("cllavio-milter is running") != std::string::npos, what);
      BOOST_TEST(what.find(dir / "store/cllavio.mdb-writer") != std::string::npos, what);
    }
    BOOST_TEST(!std::filesystem::exists(dir / "store/cllavio.mdb.compact"));
  }
  // Stopped: it runs, and a stale copy from an interrupted run is no obstacle.
  std::ofstream(dir / "store/cllavio.mdb.compact") << "stale";
  BOOST_CHECK_NO_THROW(compact(dir / "store"));
  Db again(o);
  BOOST_TEST(again.read()->records.last_id() != 0u);
}

BOOST_AUTO_TEST_CASE(compact_without_a_store) {
  TmpDir dir;
  BOOST_CHECK_THROW(compact(dir / "nothing"), std::runtime_error);
}
