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
