#define BOOST_TEST_MODULE recorder
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "core/recorder.hpp"
#include "tmpdir.hpp"

// The recording pipeline (core/recorder.cpp): record, quota charge and event in one write.

using namespace cllavio;

namespace {

struct Fixture {
  test::TmpDir dir;
  std::unique_ptr<store::Db> db;
  core::Logger log;
  std::vector<std::string> lines;
  std::uint64_t max_outbox = 1 << 20;
  int woken = 0;
  std::unique_ptr<core::Recorder> rec;
  core::LocalQuota ledger;
  policy::QuotaPolicy q;

  Fixture() {
    store::StoreOptions o;
    o.dir = dir / "store";
    o.map_size_mb = 4;
    db = std::make_unique<store::Db>(o);
    log.capture([this](conf::LogLevel, const std::string& l) { lines.push_back(l); });
    rec = std::make_unique<core::Recorder>(*db, log, [this] { return max_outbox; }, [this] { ++woken; });
    q.messages = {{60, 100}};
  }
  store::MessageRecord message(std::string action = "accept") {
    store::MessageRecord r;
    r.org = "acme";
    r.queue_id = "Q" + std::to_string(lines.size() + woken);
    r.sender = "news@acme.example";
    r.recipients = {"bob@x.example"};
    r.recipient_count = 1;
    r.action = std::move(action);
    return r;
  }
  core::QuotaCharge charge() {
    core::QuotaHold hold(&ledger, "acme");
    return std::move(std::get<core::QuotaCharge>(hold.charge(q, 1, 1'700'000'000'000'000)));
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(an_accepted_message_is_recorded_with_its_charge_and_its_event, Fixture) {
  auto r = message();
  auto c = charge();
  std::uint64_t id = rec->record(r, c);
  c.commit();
  BOOST_TEST(id == r.id);
  auto v = db->read();
  BOOST_TEST(v->records.get(id)->queue_id == r.queue_id);
  BOOST_TEST(v->records.by_address("bob@x.example").size() == 1u);
  auto ev = v->quota.events("acme", 0);
  BOOST_REQUIRE(ev.size() == 1u);
  BOOST_TEST(ev[0].first == c.at_us());
  auto queued = v->outbox.peek("acme", 10, 1 << 20);
  BOOST_REQUIRE(queued.size() == 1u);
  BOOST_TEST(nlohmann::json::parse(queued[0].json)["id"] == "evt_" + store::format_id(id) + "_accepted");
  BOOST_TEST(woken == 1);
}

BOOST_FIXTURE_TEST_CASE(a_refused_message_writes_no_charge_and_a_failed_write_writes_nothing, Fixture) {
  auto r = message("reject");
  r.reason = "quota";
  rec->record(r, charge());
  BOOST_TEST(db->read()->quota.events("acme", 0).empty());
  BOOST_TEST(db->read()->outbox.stats().queued == 1u);  // message.rejected
  auto dup = message();
  dup.id = r.id;  // the store never overwrites a record: the whole write fails
  BOOST_CHECK_THROW(rec->record(dup, charge()), store::lmdb::Error);
  BOOST_TEST(db->read()->quota.events("acme", 0).empty());
  BOOST_TEST(db->read()->outbox.stats().queued == 1u);
}

BOOST_FIXTURE_TEST_CASE(an_event_without_a_record_and_a_full_outbox, Fixture) {
  core::Event e;
  e.id = "evt_test_1";
  e.type = "message.delivered";
  e.org = "acme";
  e.occurred_at_us = 1;
  BOOST_TEST(rec->event(e));
  BOOST_TEST(db->read()->outbox.stats().queued == 1u);
  std::size_t records = 0;
  db->read()->records.scan([&](const store::MessageRecord&) { return ++records, true; });
  BOOST_TEST(records == 0u);
  max_outbox = 10;  // full: mail flows on, the event is counted and logged
  BOOST_TEST(!rec->event(e));
  auto r = message();
  rec->record(r, core::QuotaCharge());
  BOOST_TEST(db->read()->records.get(r.id).has_value());
  BOOST_TEST(db->read()->outbox.stats().dropped == 2u);
  BOOST_TEST(lines.size() == 2u);
  BOOST_TEST(lines.back().find("OUTBOX FULL: event of message") != std::string::npos);
}

// A message whose compact tokens resolve only through its event: a full outbox fails the
// whole write (no record, no charge, no event) so the session can tempfail it.
BOOST_FIXTURE_TEST_CASE(a_required_event_that_cannot_be_queued_writes_nothing, Fixture) {
  max_outbox = 10;
  auto r = message();
  auto c = charge();
  BOOST_CHECK_THROW(rec->record(r, c, true), core::OutboxFull);
  std::size_t records = 0;
  db->read()->records.scan([&](const store::MessageRecord&) { return ++records, true; });
  BOOST_TEST(records == 0u);
  BOOST_TEST(db->read()->quota.events("acme", 0).empty());
  BOOST_TEST(db->read()->outbox.stats().queued == 0u);
  // The same message without the requirement is recorded, its event dropped.
  auto again = message();
  rec->record(again, core::QuotaCharge(), false);
  BOOST_TEST(db->read()->records.get(again.id).has_value());
  BOOST_TEST(db->read()->outbox.stats().dropped == 1u);
}
