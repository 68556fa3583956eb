#define BOOST_TEST_MODULE export
#include <boost/test/unit_test.hpp>

#include "store/db.hpp"
#include "store/export.hpp"
#include "tmpdir.hpp"

// Export by address (store/export.cpp).

using namespace cllavio::store;
using cllavio::policy::Consent;
using cllavio::policy::ConsentState;
using cllavio::test::TmpDir;
using ojson = nlohmann::ordered_json;

namespace {

StoreOptions opts(const TmpDir& dir) {
  StoreOptions o;
  o.dir = dir / "store";
  o.map_size_mb = 8;
  o.sync = Sync::none;
  return o;
}

MessageRecord record(Db& db, const std::string& org, const std::string& from, std::vector<std::string> rcpts) {
  MessageRecord r;
  r.id = db.allocate_id();
  r.org = org;
  r.queue_id = "Q" + std::to_string(r.id % 100000);
  r.sender = from;
  r.recipients = std::move(rcpts);
  r.recipient_count = r.recipients.size();
  r.action = "accept";
  r.received_at_us = static_cast<std::int64_t>(r.id);
  return r;
}

ojson export_of(const Db& db, const std::string& addr, std::vector<std::string> orgs, bool all = false) {
  auto v = db.read();
  return export_address(*v, addr, orgs, all);
}

// A store where alice@example.net is the sender of one acme message, a recipient of another
// (tracked, with delivery states), unsubscribed at acme and bounced at globex.
struct Populated {
  TmpDir dir;
  Db db{opts(dir)};
  MessageRecord sent, received, globex, other;
  Populated() {
    sent = record(db, "acme", "alice@Example.NET", {"carol@example.org"});
    received = record(db, "acme", "news@acme.test", {"alice@example.net", "dave@example.org"});
    received.tracking.status = "tracked";
    received.tracking.links = {{0, "https://acme.test/a"}, {1, "https://acme.test/b"}};
    received.tracking.pixels = 1;
    globex = record(db, "globex", "info@globex.test", {"alice@example.net"});
    other = record(db, "acme", "news@acme.test", {"dave@example.org"});
    db.write([&](Tables& t) {
      for (auto* r : {&sent, &received, &globex, &other}) t.records.append(*r);
      DeliveryState d;
      d.state = "deferred";
      d.attempts = 1;
      d.dsn = "4.2.2";
      d.reply = "mailbox full";
      d.relay = "mx.example.net[192.0.2.1]:25";
      d.at_us = received.received_at_us + 1000000;
      d.queue_id = received.queue_id;
      t.delivery.put(received.id, "alice@example.net", d);
      d.state = "delivered";
      d.dsn = "2.0.0";
      t.delivery.put(received.id, "dave@example.org", d);
      t.delivery.put(sent.id, "carol@example.org", d);
      t.consent.set("acme", "alice@example.net", Consent{ConsentState::granted, 100, "cli"}, "tester", "consent.grant");
      t.consent.set("acme", "alice@example.net", Consent{ConsentState::unsubscribed, 200, "unsubscribe"}, "tester",
                    "consent.unsubscribe");
      t.consent.set("globex", "alice@example.net", Consent{ConsentState::bounced, 300, "delivery"}, "tracker",
                    "consent.bounce");
      t.consent.set("acme", "dave@example.org", Consent{ConsentState::granted, 100, "cli"}, "tester", "consent.grant");
      t.delivery.expired("globex", "alice@example.net", 5000000, 0, 5);
      t.delivery.expired("globex", "alice@example.net", 6000000, 0, 5);
      t.audit.append(AuditEntry{0, 0, "tester", "note", "acme", "", "", "", "cli", "asked about alice@example.net"});
    });
  }
};

std::vector<std::string> strings(const ojson& a) {
  std::vector<std::string> out;
  for (const auto& s : a) out.push_back(s.get<std::string>());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sender_and_recipient_in_one_org) {
  Populated p;
  ojson j = export_of(p.db, "alice@EXAMPLE.net", {"acme"});
  BOOST_TEST(j["address"] == "alice@example.net");
  BOOST_TEST((strings(j["orgs"]) == std::vector<std::string>{"acme"}));
  // Stable key order.
  std::vector<std::string> fields;
  for (auto it = j.begin(); it != j.end(); ++it) fields.push_back(it.key());
  BOOST_TEST((fields == std::vector<std::string>{"address", "orgs", "messages", "consent", "suppression", "audit"}));

  BOOST_REQUIRE_EQUAL(j["messages"].size(), 2u);  // not globex's, not the one it is absent from
  const ojson& m0 = j["messages"][0];
  const ojson& m1 = j["messages"][1];
  BOOST_TEST(m0["id"] == format_id(p.sent.id));  // oldest first
  BOOST_TEST((strings(m0["roles"]) == std::vector<std::string>{"sender"}));
  BOOST_TEST(m0["delivery"].empty());  // its states are the recipients', not the sender's
  BOOST_TEST(m0["tracking"]["status"] == "");
  BOOST_TEST(m0["tracking"]["links"].empty());
  BOOST_TEST(m1["id"] == format_id(p.received.id));
  BOOST_TEST((strings(m1["roles"]) == std::vector<std::string>{"recipient"}));
  BOOST_TEST(m1["received_at"] == format_time_us(p.received.received_at_us));
  BOOST_TEST(m1["tracking"]["status"] == "tracked");
  BOOST_REQUIRE_EQUAL(m1["tracking"]["links"].size(), 2u);
  BOOST_TEST(m1["tracking"]["links"][1]["url"] == "https://acme.test/b");
  BOOST_TEST(m1["tracking"]["links"][1]["index"] == 1);
  BOOST_REQUIRE_EQUAL(m1["delivery"].size(), 1u);  // only this address's state, not dave's
  const ojson& d = m1["delivery"][0];
  BOOST_TEST(d["recipient"] == "alice@example.net");
  BOOST_TEST(d["state"] == "deferred");
  BOOST_TEST(d["attempts"] == 1);
  BOOST_TEST(d["dsn"] == "4.2.2");
  BOOST_TEST(d["reply"] == "mailbox full");
  BOOST_TEST(d["relay"] == "mx.example.net[192.0.2.1]:25");
  BOOST_TEST(d["delay_s"].is_null());
  BOOST_TEST(d["at"] == format_time_us(p.received.received_at_us + 1000000));
  BOOST_TEST(d["queue_id"] == p.received.queue_id);

  // Consent: acme only, its current state; the history is in the audit entries.
  BOOST_REQUIRE_EQUAL(j["consent"].size(), 1u);
  BOOST_TEST(j["consent"][0]["org"] == "acme");
  BOOST_TEST(j["consent"][0]["state"] == "unsubscribed");
  BOOST_TEST(j["consent"][0]["at"] == format_time_us(200));
  BOOST_TEST(j["consent"][0]["source"] == "unsubscribe");
  BOOST_REQUIRE_EQUAL(j["suppression"].size(), 1u);
  BOOST_TEST(j["suppression"][0]["state"] == "unsubscribed");
  BOOST_TEST(j["suppression"][0]["since"] == format_time_us(200));
  // Audit: the grant, the unsubscribe, and the note naming it in its detail; not dave's, not globex's.
  BOOST_REQUIRE_EQUAL(j["audit"].size(), 3u);
  BOOST_TEST(j["audit"][0]["action"] == "consent.grant");
  BOOST_TEST(j["audit"][0]["to"] == "granted");
  BOOST_TEST(j["audit"][1]["action"] == "consent.unsubscribe");
  BOOST_TEST(j["audit"][1]["from"] == "granted");
  BOOST_TEST(j["audit"][2]["action"] == "note");
  BOOST_TEST(j["audit"][2]["at"].get<std::string>().back() == 'Z');
}

BOOST_AUTO_TEST_CASE(every_org_and_bounces) {
  Populated p;
  ojson j = export_of(p.db, "alice@example.net", {}, true);
  BOOST_TEST((strings(j["orgs"]) == std::vector<std::string>{"acme", "globex"}));
  BOOST_REQUIRE_EQUAL(j["messages"].size(), 3u);
  BOOST_TEST(j["messages"][2]["org"] == "globex");
  BOOST_TEST(j["messages"][2]["delivery"][0]["state"] == "pending");
  BOOST_REQUIRE_EQUAL(j["consent"].size(), 2u);
  BOOST_TEST(j["consent"][1]["org"] == "globex");
  BOOST_TEST(j["consent"][1]["state"] == "bounced");
  // unsubscribed at acme, bounced at globex, and globex's expiry count.
  BOOST_REQUIRE_EQUAL(j["suppression"].size(), 3u);
  BOOST_TEST(j["suppression"][0]["org"] == "acme");
  BOOST_TEST(j["suppression"][1]["org"] == "globex");
  BOOST_TEST(j["suppression"][1]["state"] == "bounced");
  BOOST_TEST(j["suppression"][1]["source"] == "delivery");
  BOOST_TEST(j["suppression"][2]["org"] == "globex");
  BOOST_TEST(j["suppression"][2]["expiries"] == 2);
  BOOST_TEST(j["suppression"][2]["latest"] == format_time_us(6000000));
  BOOST_TEST(j["audit"].size() == 4u);

  // Only globex asked: its record, consent and audit entry.
  ojson g = export_of(p.db, "alice@example.net", {"globex"});
  BOOST_TEST((strings(g["orgs"]) == std::vector<std::string>{"globex"}));
  BOOST_TEST(g["messages"].size() == 1u);
  BOOST_TEST(g["consent"].size() == 1u);
  BOOST_TEST(g["audit"].size() == 1u);
  BOOST_TEST(g["audit"][0]["action"] == "consent.bounce");
}

BOOST_AUTO_TEST_CASE(records_of_no_org_only_with_all_orgs) {
  TmpDir dir;
  Db db(opts(dir));
  MessageRecord r = record(db, "", "x@example.net", {"bob@example.net"});
  db.write([&](Tables& t) { t.records.append(r); });
  BOOST_TEST(export_of(db, "bob@example.net", {"acme"})["messages"].empty());
  ojson j = export_of(db, "bob@example.net", {}, true);
  BOOST_REQUIRE_EQUAL(j["messages"].size(), 1u);
  BOOST_TEST(j["orgs"].empty());  // no org holds it
}

BOOST_AUTO_TEST_CASE(unknown_address_gives_empty_lists) {
  Populated p;
  for (const std::string addr : {"nobody@example.net", "not an address", ""}) {
    ojson j = export_of(p.db, addr, {"acme"});
    for (const char* k : {"orgs", "messages", "consent", "suppression", "audit"}) {
      BOOST_TEST(j[k].is_array());
      BOOST_TEST(j[k].empty(), addr << ": " << k);
    }
    ojson all = export_of(p.db, addr, {}, true);
    BOOST_TEST(all["messages"].empty());
    BOOST_TEST(all["audit"].empty());
  }
  // An empty store (no audit or consent rows yet).
  TmpDir dir;
  Db db(opts(dir));
  ojson j = export_of(db, "alice@example.net", {}, true);
  BOOST_TEST(j["messages"].empty());
  BOOST_TEST(j["consent"].empty());
}

BOOST_AUTO_TEST_CASE(dump_survives_invalid_utf8) {
  TmpDir dir;
  Db db(opts(dir));
  MessageRecord r = record(db, "acme", "bob@example.net", {"carol@example.net"});
  r.client_name = "bad\xff\xfe";
  db.write([&](Tables& t) { t.records.append(r); });
  ojson j = export_of(db, "bob@example.net", {"acme"});
  BOOST_CHECK_NO_THROW(j.dump(2, ' ', false, ojson::error_handler_t::replace));
}
