#define BOOST_TEST_MODULE event
#include <boost/test/unit_test.hpp>

#include "core/event.hpp"

// The event model (core/event.cpp): what a record or an audit entry tells the API.

using namespace cllavio;

BOOST_AUTO_TEST_CASE(events_from_records) {
  store::MessageRecord r;
  r.id = 0x0006616200000001;
  r.org = "acme";
  r.action = "accept";
  r.queue_id = "Q1";
  r.sender = "news@acme.example";
  r.recipients = {"a@x.example"};
  r.recipient_count = 1;
  r.stream = "campaigns";
  r.tracking.status = "tracked";
  r.tracking.pixels = 1;
  r.tracking.links = {{1, "https://x.example/a"}};
  auto e = core::from_record(r);
  BOOST_REQUIRE(e.has_value());
  auto j = core::to_json(*e);
  BOOST_TEST(j["id"] == "evt_0006616200000001_accepted");
  BOOST_TEST(j["type"] == "message.accepted");
  BOOST_TEST(j["message"]["stream"] == "campaigns");
  BOOST_TEST(j["tracking"]["pixel"] == true);
  BOOST_TEST(j["tracking"]["tokens"][0]["url"] == "https://x.example/a");
  BOOST_TEST(j.dump().find("Subject") == std::string::npos);
  r.action = "tempfail";
  r.reason = "quota";
  BOOST_TEST(core::to_json(*core::from_record(r))["reason"] == "quota");
  r.reason = "store_error";
  BOOST_TEST(!core::from_record(r).has_value());  // the client retries; the retry is the event
  r.org.clear();
  r.action = "accept";
  BOOST_TEST(!core::from_record(r).has_value());
}

BOOST_AUTO_TEST_CASE(consent_events_from_audit_entries) {
  store::AuditEntry a;
  a.id = 0x0006616200000002;
  a.at_us = 1'700'000'000'000'000;
  a.org = "acme";
  a.address = "bob@x.example";
  a.from = "none";
  a.to = "granted";
  a.source = "cli";
  auto j = core::to_json(core::from_audit(a));
  BOOST_TEST(j["id"] == "evt_audit_0006616200000002");
  BOOST_TEST(j["type"] == "consent.changed");
  BOOST_TEST(j["consent"]["to"] == "granted");
  BOOST_TEST(core::to_text(core::from_audit(a)) == j.dump());
}

BOOST_AUTO_TEST_CASE(delivery_events_name_message_recipient_and_attempt) {
  store::MessageRecord r;
  r.id = 0x0006616200000003;
  r.org = "acme";
  r.queue_id = "4F1B2C3D4E";
  r.sender = "news@acme.example";
  r.recipients = {"Bob@X.example", "carol@y.example"};
  r.recipient_count = 2;
  r.stream = "campaigns";
  r.size = 1234;
  store::DeliveryState s;
  s.state = "deferred";
  s.attempts = 2;
  s.dsn = "4.2.2";
  s.reply = "452 4.2.2 Mailbox full \"quoted\" caf\xc3\xa9";
  s.relay = "mx[192.0.2.1]:25";
  s.delay_s = 3.5;
  s.at_us = 1'700'000'000'000'000;
  auto e = core::delivery_event(r, "Bob@X.example", s);
  auto j = core::to_json(e);
  BOOST_TEST(j["type"] == "message.deferred");
  BOOST_TEST(j["delivery"]["attempt"] == 2);
  BOOST_TEST(j["delivery"]["recipient"] == "Bob@X.example");
  BOOST_TEST(j["message"]["queue_id"] == "4F1B2C3D4E");
  std::string id = j["id"];
  BOOST_TEST(id.rfind("evt_0006616200000003_deferred_", 0) == 0);
  BOOST_TEST(id.substr(id.size() - 2) == "_2");
  // The recipient's hash is its normalized form: the same for Bob@x.example.
  BOOST_TEST(core::delivery_event(r, "Bob@x.example", s).id == e.id);
  s.attempts = 3;
  BOOST_TEST(core::delivery_event(r, "Bob@X.example", s).id != e.id);
  BOOST_TEST(core::delivery_event(r, "carol@y.example", s).id != core::delivery_event(r, "Bob@X.example", s).id);
  // The follower's fast path writes the same event as to_text (keys in another order).
  for (const char* state : {"deferred", "delivered", "bounced", "expired"}) {
    s.state = state;
    s.delay_s = std::string(state) == "expired" ? -1 : 3.5;
    auto fast = nlohmann::json::parse(core::delivery_event_text(r, core::message_text(r), "Bob@X.example", s));
    BOOST_TEST(fast == nlohmann::json::parse(core::to_text(core::delivery_event(r, "Bob@X.example", s))));
  }
}

BOOST_AUTO_TEST_CASE(record_event_text_is_to_text_of_from_record_byte_for_byte) {
  // The recorder's direct writer against the JSON model, for every shape of record:
  // tracked or not, skipped, no stream, and text that needs escaping, UTF-8 and bytes
  // that are not UTF-8 (replaced as to_text replaces them).
  store::MessageRecord base;
  base.id = 0x0006616200000001;
  base.org = "acme";
  base.action = "accept";
  base.queue_id = "Q1";
  base.message_id = "<m@acme.example>";
  base.sender = "news@acme.example";
  base.recipients = {"a@x.example", "b@y.example"};
  base.recipient_count = 2;
  base.size = 51234;
  base.received_at_us = 1795919047123456;
  std::vector<store::MessageRecord> cases{base};
  auto tracked = base;
  tracked.stream = "campaigns";
  tracked.recipient_count = 1500;
  tracked.tracking.status = "tracked";
  tracked.tracking.pixels = 1;
  for (std::uint32_t i = 1; i <= 50; ++i)
    tracked.tracking.links.push_back({i, "https://x.example/p/" + std::to_string(i) + "?a=1&b=\"2\""});
  tracked.tracking.links.push_back({51, "https://x.example/caf\xc3\xa9/\x01\t\\/\x7f"});
  tracked.tracking.links.push_back({4000000000u, "https://x.example/\xff\xfe-not-utf8"});
  cases.push_back(tracked);
  // Every byte that needs escaping at every offset around the 16-byte checks.
  auto offsets = tracked;
  std::uint32_t n = 100;
  for (char c : {'"', '\\', '\x01', '\x1f', '\x7f', '\x80', '\xff'})
    for (std::size_t at = 0; at < 40; ++at) {
      std::string url = "https://x.example/" + std::string(40, 'a');
      url[18 + at] = c;
      offsets.tracking.links.push_back({n++, url});
    }
  cases.push_back(offsets);
  auto skipped = base;
  skipped.tracking.status = "skipped";
  skipped.tracking.skipped = "dkim_signed";
  cases.push_back(skipped);
  auto unchanged = base;
  unchanged.tracking.status = "unchanged";
  unchanged.recipients = {};
  unchanged.sender = "";
  unchanged.message_id = "<\"quoted\"\r\n@x>";
  cases.push_back(unchanged);
  auto odd = tracked;
  odd.org = "o\xe2\x82\xac";
  odd.queue_id = "";
  cases.push_back(odd);
  for (auto r : cases) {
    for (const char* action : {"accept", "reject", "tempfail"}) {
      r.action = action;
      r.reason = r.action == "tempfail" ? "quota" : "";
      auto e = core::from_record(r);
      BOOST_TEST(core::record_event_text(r) == (e ? core::to_text(*e) : std::string()));
    }
  }
  base.org.clear();
  BOOST_TEST(core::record_event_text(base).empty());
  base.org = "acme";
  base.id = 0;
  BOOST_TEST(core::record_event_text(base).empty());
}
