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
