#define BOOST_TEST_MODULE retention_soak
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <chrono>
#include <cstdio>

#include "store/db.hpp"
#include "store/retention.hpp"
#include "tmpdir.hpp"

// The file stops growing: 20,000 realistic records through Db::write in batches, an
// injected clock advancing 100 ms per message, retention keeping about a tenth of them,
// the pruner every 20 simulated seconds. A control run without pruning fills the map.

using namespace cllavio::store;
using cllavio::test::TmpDir;

namespace {

constexpr std::int64_t S = 1'000'000;
constexpr std::int64_t T0 = 1'800'000'000LL * S;
constexpr int kMessages = 20000;
constexpr int kBatch = 20;
constexpr std::uint64_t kMapMb = 16;

MessageRecord make(std::uint64_t id, int i) {
  MessageRecord r;
  r.id = id;
  r.org = i % 3 == 0 ? "beta" : "acme";
  r.queue_id = "4F" + std::to_string(100000 + i);
  r.identified_by = "sasl";
  r.client_addr = "192.0.2." + std::to_string(i % 250);
  r.client_name = "client" + std::to_string(i % 250) + ".example";
  r.sasl_login = "news@" + r.org + ".example";
  r.sender = "news@" + r.org + ".example";
  for (int k = 0; k <= i % 3; ++k) r.recipients.push_back("user" + std::to_string((i * 7 + k) % 5000) + "@mail.example");
  r.recipient_count = r.recipients.size();
  r.message_id = "<" + std::to_string(i) + ".campaign@" + r.org + ".example>";
  r.size = 20000 + static_cast<std::uint64_t>(i % 5000);
  r.received_at_us = static_cast<std::int64_t>(id);
  r.action = "accept";
  r.stream = "default";
  r.tracking.status = "tracked";
  r.tracking.pixels = 1;
  for (std::uint32_t l = 0; l < 10; ++l)
    r.tracking.links.push_back({l, "https://www." + r.org + ".example/offers/2026/item-" + std::to_string(l) +
                                       "?utm_source=newsletter&utm_medium=email&utm_campaign=c" + std::to_string(i % 40)});
  return r;
}

std::uint64_t file_size(const Db& db) {
  struct stat st{};
  return ::stat(db.file().c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

struct Result {
  bool map_full = false;
  int written = 0;
  std::uint64_t half_bytes = 0, end_bytes = 0, kept = 0, removed = 0;
  double seconds = 0;
};

Result soak(bool pruning) {
  TmpDir dir;
  std::int64_t now = T0;
  StoreOptions o;
  o.dir = dir / "store";
  o.map_size_mb = kMapMb;
  o.sync = Sync::none;
  o.now_us = [&] { return now; };
  Db db(o);
  RetentionRules rules;
  rules.defaults.messages_s = 200;  // 2,000 messages at 100 ms each
  Result res;
  auto start = std::chrono::steady_clock::now();
  std::int64_t next_prune = T0 + 20 * S;
  try {
    for (int i = 0; i < kMessages; i += kBatch) {
      db.write([&](Tables& t) {
        for (int k = i; k < i + kBatch; ++k) {
          now = T0 + static_cast<std::int64_t>(k) * 100'000;
          MessageRecord r = make(db.allocate_id(), k);
          t.records.append(r);
          for (const auto& rc : r.recipients)
            t.delivery.put(r.id, rc, DeliveryState{"delivered", 0, "2.0.0", "250 2.0.0 Ok: queued as 4ABC", "mx.mail.example[198.51.100.7]:25", 0.4, now, r.queue_id});
        }
      });
      res.written = i + kBatch;
      if (pruning && now >= next_prune) {
        res.removed += prune(db, rules, now).removed.total();
        next_prune = now + 20 * S;
      }
      if (res.written == kMessages / 2) res.half_bytes = file_size(db);
    }
  } catch (const lmdb::Error& e) {
    if (e.code() != MDB_MAP_FULL) throw;
    res.map_full = true;
  }
  res.end_bytes = file_size(db);
  {
    auto v = db.read();
    v->records.scan([&](const MessageRecord&) {
      ++res.kept;
      return true;
    });
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return res;
}

}  // namespace

BOOST_AUTO_TEST_CASE(without_pruning_the_map_fills) {
  Result r = soak(false);
  std::printf("control (no pruning, %llu MB map): map full after %d of %d messages, file %llu bytes, %.1f s\n",
              static_cast<unsigned long long>(kMapMb), r.written, kMessages,
              static_cast<unsigned long long>(r.end_bytes), r.seconds);
  BOOST_TEST(r.map_full);
}

BOOST_AUTO_TEST_CASE(with_pruning_the_file_stops_growing) {
  Result r = soak(true);
  std::printf("pruning every 20 s (messages kept 200 s, %llu MB map): %d messages, file %llu bytes at half, "
              "%llu at the end, %llu records kept, %llu entries removed, %.1f s\n",
              static_cast<unsigned long long>(kMapMb), r.written, static_cast<unsigned long long>(r.half_bytes),
              static_cast<unsigned long long>(r.end_bytes), static_cast<unsigned long long>(r.kept),
              static_cast<unsigned long long>(r.removed), r.seconds);
  BOOST_TEST(!r.map_full);
  BOOST_TEST(r.written == kMessages);
  BOOST_TEST(r.kept <= 2300u);
  BOOST_TEST(r.kept >= 1900u);
  BOOST_TEST(static_cast<double>(r.end_bytes) <= 1.10 * static_cast<double>(r.half_bytes));
  BOOST_TEST(static_cast<double>(r.end_bytes) >= 0.90 * static_cast<double>(r.half_bytes));
}
