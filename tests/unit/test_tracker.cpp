#define BOOST_TEST_MODULE tracker
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "delivery/tracker.hpp"
#include "store/db.hpp"
#include "store/keys.hpp"
#include "tmpdir.hpp"

// The join of Postfix's log lines to records (delivery/tracker.cpp): states, events,
// suppression, pending lines, chains, rejections after the milter.

using namespace cllavio;

namespace {

constexpr std::int64_t kT0 = 1796119200ll * 1'000'000;  // 2026-12-01T10:00:00Z

// A Postfix line at kT0 + secs, in the RFC 3339 form rsyslog writes.
std::string at(int secs, const std::string& prog, const std::string& text) {
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "2026-12-01T10:%02d:%02d.000000+00:00", secs / 60, secs % 60);
  return std::string(stamp) + " mx postfix/" + prog + "[4242]: " + text;
}
std::string rcpt_line(int secs, const std::string& qid, const std::string& to, const std::string& dsn,
                      const std::string& status, const std::string& reply, const std::string& extra = "") {
  return at(secs, "smtp",
            qid + ": to=<" + to + ">, " + extra + "relay=mx.example[192.0.2.1]:25, delay=1.5, delays=0.1/0/0.4/1, dsn=" +
                dsn + ", status=" + status + " (" + reply + ")");
}

struct Fixture {
  test::TmpDir dir;
  std::int64_t now = kT0 + 5'000'000;
  std::unique_ptr<store::Db> db;
  delivery::TrackerSettings settings;
  std::unique_ptr<delivery::Tracker> tracker;
  delivery::BatchResult last;

  Fixture() {
    store::StoreOptions o;
    o.dir = dir / "store";
    o.map_size_mb = 8;
    o.now_us = [this] { return now; };
    db = std::make_unique<store::Db>(o);
    tracker = std::make_unique<delivery::Tracker>(settings);
  }
  void reset_tracker() { tracker = std::make_unique<delivery::Tracker>(settings); }

  std::uint64_t record(const std::string& qid, std::vector<std::string> rcpts, std::int64_t at_us = kT0,
                       const std::string& org = "acme", std::int64_t charged_at = 0) {
    store::MessageRecord r;
    r.id = static_cast<std::uint64_t>(at_us) + next_++;
    r.queue_id = qid;
    r.org = org;
    r.sender = "news@acme.example";
    r.recipients = std::move(rcpts);
    r.recipient_count = r.recipients.size();
    r.action = "accept";
    r.received_at_us = at_us;
    r.quota_charged_at_us = charged_at;
    db->write([&](store::Tables& t) {
      t.records.append(r);
      if (charged_at) t.quota.charge(org, charged_at, r.id, r.recipient_count, 0);
    });
    return r.id;
  }
  void feed(const std::vector<std::string>& lines) {
    db->write([&](store::Tables& t) {
      last = delivery::BatchResult{};
      tracker->retry_pending(t, now, last);
      for (const auto& l : lines) tracker->apply(t, l, now, last);
    });
  }
  std::optional<store::DeliveryState> state(std::uint64_t id, const std::string& rcpt) {
    return db->read()->delivery.get(id, rcpt);
  }
  // Every queued event as JSON, oldest first.
  std::vector<nlohmann::json> events() {
    std::vector<nlohmann::json> out;
    auto v = db->read();
    for (const auto& org : v->outbox.orgs())
      for (const auto& item : v->outbox.peek(org, 1000, 1 << 24)) out.push_back(nlohmann::json::parse(item.json));
    return out;
  }
  std::vector<std::string> event_types() {
    std::vector<std::string> out;
    for (const auto& e : events()) out.push_back(e["type"]);
    return out;
  }
  policy::ConsentState consent(const std::string& a) { return db->read()->consent.get("acme", a).state; }

 private:
  std::uint64_t next_ = 0;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(each_recipient_gets_its_state_and_one_event_per_change, Fixture) {
  auto id = record("4F1B2C3D4E", {"a@ok.example", "b@full.example", "c@gone.example"});
  feed({rcpt_line(1, "4F1B2C3D4E", "a@ok.example", "2.0.0", "sent", "250 2.0.0 Ok: queued as ABC123"),
        rcpt_line(2, "4F1B2C3D4E", "b@full.example", "4.2.2", "deferred",
                  "host mx.example[192.0.2.1] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)"),
        rcpt_line(3, "4F1B2C3D4E", "c@gone.example", "5.1.1", "bounced",
                  "host mx.example[192.0.2.1] said: 550 5.1.1 User unknown (in reply to RCPT TO command)"),
        rcpt_line(60, "4F1B2C3D4E", "b@full.example", "4.2.2", "deferred", "452 4.2.2 Mailbox full")});
  BOOST_TEST(last.applied == 4u);
  BOOST_TEST(state(id, "a@ok.example")->state == "delivered");
  BOOST_TEST(state(id, "a@ok.example")->relay == "mx.example[192.0.2.1]:25");
  BOOST_TEST(state(id, "b@full.example")->state == "deferred");
  BOOST_TEST(state(id, "b@full.example")->attempts == 2u);
  BOOST_TEST(state(id, "c@gone.example")->state == "bounced");
  BOOST_TEST(state(id, "c@gone.example")->dsn == "5.1.1");
  auto ev = events();
  std::vector<std::string> want{"message.delivered", "message.deferred", "message.bounced", "consent.changed",
                                "message.deferred"};
  BOOST_TEST(event_types() == want, boost::test_tools::per_element());
  BOOST_TEST(ev[0]["delivery"]["recipient"] == "a@ok.example");
  BOOST_TEST(ev[0]["delivery"]["status"] == "delivered");
  BOOST_TEST(ev[0]["delivery"]["delay_s"] == 1.5);
  BOOST_TEST(ev[0]["message"]["queue_id"] == "4F1B2C3D4E");
  BOOST_TEST(ev[0]["occurred_at"] == "2026-12-01T10:00:01.000000Z");
  BOOST_TEST(ev[1]["id"] != ev[4]["id"]);  // one deferred event per attempt
  BOOST_TEST(ev[4]["delivery"]["attempt"] == 2);
  BOOST_TEST(ev[3]["consent"]["to"] == "bounced");
  BOOST_TEST(ev[3]["consent"]["source"] == "bounce");
  BOOST_TEST((consent("c@gone.example") == policy::ConsentState::bounced));
  BOOST_TEST((consent("b@full.example") == policy::ConsentState::none));  // a full mailbox suppresses nothing
  BOOST_TEST(last.notices.size() == 1u);
  // What the follower counts after the commit (cllavio_delivery_total): one per state stored.
  std::vector<std::pair<std::string, std::string>> outcomes{
      {"acme", "delivered"}, {"acme", "deferred"}, {"acme", "bounced"}, {"acme", "deferred"}};
  BOOST_TEST((last.outcomes == outcomes));
}

BOOST_FIXTURE_TEST_CASE(the_first_final_state_wins_and_replays_change_nothing, Fixture) {
  auto id = record("4F1B2C3D4E", {"a@ok.example"});
  auto sent = rcpt_line(1, "4F1B2C3D4E", "a@ok.example", "2.0.0", "sent", "250 Ok");
  feed({sent, rcpt_line(2, "4F1B2C3D4E", "a@ok.example", "5.1.1", "bounced", "550 5.1.1 unknown"), sent});
  BOOST_TEST(state(id, "a@ok.example")->state == "delivered");
  BOOST_TEST(events().size() == 1u);
  BOOST_TEST((consent("a@ok.example") == policy::ConsentState::none));
}

BOOST_FIXTURE_TEST_CASE(blocks_and_content_rejections_suppress_nothing, Fixture) {
  record("4F1B2C3D4E", {"a@x.example", "b@x.example", "c@x.example"});
  feed({rcpt_line(1, "4F1B2C3D4E", "a@x.example", "5.7.1", "bounced", "554 5.7.1 Blocked (in reply to RCPT TO command)"),
        rcpt_line(1, "4F1B2C3D4E", "b@x.example", "5.6.0", "bounced", "554 5.6.0 content rejected"),
        rcpt_line(1, "4F1B2C3D4E", "c@x.example", "5.0.0", "bounced", "550 5.0.0 rejected (in reply to MAIL FROM command)")});
  BOOST_TEST(event_types().size() == 3u);
  for (auto a : {"a@x.example", "b@x.example", "c@x.example"}) BOOST_TEST((consent(a) == policy::ConsentState::none));
}

BOOST_FIXTURE_TEST_CASE(an_org_that_keeps_hard_bounces_gets_no_suppression, Fixture) {
  settings.suppress_hard_bounces = [](const std::string& org) { return org != "acme"; };
  reset_tracker();
  record("4F1B2C3D4E", {"c@gone.example"});
  feed({rcpt_line(3, "4F1B2C3D4E", "c@gone.example", "5.1.1", "bounced", "550 5.1.1 User unknown")});
  BOOST_TEST((consent("c@gone.example") == policy::ConsentState::none));
  BOOST_TEST(event_types().size() == 1u);
}

BOOST_FIXTURE_TEST_CASE(an_unsubscribed_address_stays_unsubscribed_after_a_hard_bounce, Fixture) {
  db->write([](store::Tables& t) {
    t.consent.set("acme", "c@gone.example", {policy::ConsentState::unsubscribed, 1, "cli"}, "test", "consent.unsubscribe");
  });
  record("4F1B2C3D4E", {"c@gone.example"});
  feed({rcpt_line(3, "4F1B2C3D4E", "c@gone.example", "5.1.1", "bounced", "550 5.1.1 User unknown")});
  BOOST_TEST((consent("c@gone.example") == policy::ConsentState::unsubscribed));
}

BOOST_FIXTURE_TEST_CASE(a_line_before_its_record_waits_then_joins, Fixture) {
  auto line = rcpt_line(4, "5A5A5A5A5A", "a@ok.example", "2.0.0", "sent", "250 Ok");
  feed({line, rcpt_line(5, "5A5A5A5A5A", "a@ok.example", "5.1.1", "bounced", "550 5.1.1 unknown")});
  BOOST_TEST(last.pended == 2u);
  BOOST_TEST(db->read()->delivery.pending().size() == 2u);
  BOOST_TEST(db->read()->delivery.pending_count() == 2u);
  auto id = record("5A5A5A5A5A", {"a@ok.example"}, kT0 + 4'000'000);
  now += 500'000;
  feed({});
  BOOST_TEST(last.applied == 1u);  // the sent line, first; the bounce after it changes nothing
  BOOST_TEST(last.ignored == 1u);
  BOOST_TEST(db->read()->delivery.pending().empty());
  BOOST_TEST(state(id, "a@ok.example")->state == "delivered");
}

BOOST_FIXTURE_TEST_CASE(a_waiting_line_is_dropped_after_join_wait_and_old_lines_do_not_wait, Fixture) {
  feed({rcpt_line(4, "5A5A5A5A5A", "a@ok.example", "2.0.0", "sent", "250 Ok")});
  BOOST_TEST(last.pended == 1u);
  now += settings.join_wait_us + 1;
  feed({rcpt_line(4, "6B6B6B6B6B", "a@ok.example", "2.0.0", "sent", "250 Ok")});  // old by now: not ours
  BOOST_TEST(last.dropped == 1u);
  BOOST_TEST(last.pended == 0u);
  BOOST_TEST(last.ignored == 1u);
  BOOST_TEST(db->read()->delivery.pending().empty());
}

BOOST_FIXTURE_TEST_CASE(a_queue_id_joins_its_newest_record_within_max_age_and_only_its_recipients, Fixture) {
  auto old_id = record("4F1B2C3D4E", {"a@ok.example"}, kT0 - settings.max_age_us - 1'000'000);
  auto id = record("4F1B2C3D4E", {"a@ok.example"}, kT0 - 1'000'000);
  feed({rcpt_line(1, "4F1B2C3D4E", "a@ok.example", "2.0.0", "sent", "250 Ok"),
        rcpt_line(1, "4F1B2C3D4E", "stranger@ok.example", "2.0.0", "sent", "250 Ok")});
  BOOST_TEST(state(id, "a@ok.example")->state == "delivered");
  BOOST_TEST(!state(old_id, "a@ok.example"));
  BOOST_TEST(last.ignored == 1u);
  BOOST_TEST(!state(id, "stranger@ok.example"));
}

BOOST_FIXTURE_TEST_CASE(expiry_ends_every_open_recipient_and_a_4xx_bounce_is_an_expiry, Fixture) {
  auto id = record("4F1B2C3D4E", {"a@ok.example", "b@full.example", "c@slow.example"});
  feed({rcpt_line(1, "4F1B2C3D4E", "a@ok.example", "2.0.0", "sent", "250 Ok"),
        rcpt_line(2, "4F1B2C3D4E", "b@full.example", "4.2.2", "deferred", "452 4.2.2 Mailbox full"),
        at(90, "qmgr", "4F1B2C3D4E: from=<news@acme.example>, status=expired, returned to sender"),
        rcpt_line(91, "4F1B2C3D4E", "c@slow.example", "4.4.1", "bounced", "connect timed out")});
  BOOST_TEST(state(id, "a@ok.example")->state == "delivered");
  BOOST_TEST(state(id, "b@full.example")->state == "expired");
  BOOST_TEST(state(id, "b@full.example")->reply == "452 4.2.2 Mailbox full");  // the last reply stays
  BOOST_TEST(state(id, "c@slow.example")->state == "expired");
  std::vector<std::string> want{"message.delivered", "message.deferred", "message.expired", "message.expired"};
  BOOST_TEST(event_types() == want, boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(repeated_expiries_without_a_delivery_suppress_the_address, Fixture) {
  const std::string addr = "slow@far.example";
  auto expire = [&](const std::string& qid, int secs) {
    record(qid, {addr}, kT0 + secs * 1'000'000ll);
    feed({at(secs + 1, "qmgr", qid + ": from=<news@acme.example>, status=expired, returned to sender")});
  };
  expire("AAAA000001", 1);
  expire("AAAA000002", 2);
  record("AAAA000003", {addr}, kT0 + 3'000'000);
  feed({rcpt_line(4, "AAAA000003", addr, "2.0.0", "sent", "250 Ok")});  // a delivery: counting starts again
  expire("AAAA000004", 5);
  expire("AAAA000005", 6);
  BOOST_TEST((consent(addr) == policy::ConsentState::none));
  expire("AAAA000006", 7);
  BOOST_TEST((consent(addr) == policy::ConsentState::bounced));
  auto a = db->read();
  bool audited = false;
  a->audit.scan(0, [&](const store::AuditEntry& e) {
    audited = audited || (e.action == "consent.bounce" && e.detail.find("expired 3 times") != std::string::npos);
    return true;
  });
  BOOST_TEST(audited);
}

BOOST_FIXTURE_TEST_CASE(a_message_refused_after_the_milter_ends_rejected_with_its_charge_given_back, Fixture) {
  const std::int64_t charged = kT0 + 10;
  auto id = record("4F1B2C3D4E", {"a@ok.example", "b@ok.example"}, kT0, "acme", charged);
  feed({at(2, "cleanup",
           "4F1B2C3D4E: milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: 5.7.1 Spam detected; "
           "from=<news@acme.example> to=<a@ok.example> proto=ESMTP helo=<client>")});
  auto r = db->read()->records.get(id);
  BOOST_TEST(r->action == "reject");
  BOOST_TEST(r->reason.find("5.7.1 Spam detected") != std::string::npos);
  BOOST_TEST(r->quota_charged_at_us == 0);
  BOOST_TEST(db->read()->quota.events("acme", 0).empty());
  BOOST_REQUIRE(last.uncharges.size() == 1u);
  BOOST_TEST(last.uncharges[0].rcpts == 2u);
  BOOST_TEST(last.uncharges[0].at_us == charged);
  auto ev = events();
  BOOST_REQUIRE(ev.size() == 1u);
  BOOST_TEST(ev[0]["type"] == "message.rejected");
  BOOST_TEST(ev[0]["reason"] == "after_milter");
  // Lines after that are not deliveries of an accepted message.
  feed({rcpt_line(3, "4F1B2C3D4E", "a@ok.example", "2.0.0", "sent", "250 Ok")});
  BOOST_TEST(!state(id, "a@ok.example"));
}

BOOST_FIXTURE_TEST_CASE(a_forwarded_recipient_is_followed_under_its_new_queue_id, Fixture) {
  auto id = record("4F1B2C3D4E", {"team@acme.example"});
  feed({at(1, "local",
           "4F1B2C3D4E: to=<team@acme.example>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent "
           "(forwarded as 7C7C7C7C7C)"),
        at(2, "smtp",
           "7C7C7C7C7C: to=<alice@else.example>, orig_to=<team@acme.example>, relay=mx.else[192.0.2.9]:25, "
           "delay=0.9, delays=0/0/0.4/0.5, dsn=5.1.1, status=bounced (550 5.1.1 no such user)")});
  auto s = state(id, "team@acme.example");
  BOOST_REQUIRE(s);
  BOOST_TEST(s->state == "bounced");
  BOOST_TEST(s->queue_id == "7C7C7C7C7C");
  feed({at(3, "qmgr", "7C7C7C7C7C: removed")});
  BOOST_TEST(!db->read()->delivery.chained("7C7C7C7C7C", "team@acme.example"));
}

BOOST_FIXTURE_TEST_CASE(queued_as_through_a_filter_relay_is_not_yet_a_delivery, Fixture) {
  settings.filter_relays = {"127.0.0.1[127.0.0.1]:10025"};
  reset_tracker();
  auto id = record("4F1B2C3D4E", {"a@ok.example", "b@ok.example"});
  feed({at(1, "smtp",
           "4F1B2C3D4E: to=<a@ok.example>, relay=127.0.0.1[127.0.0.1]:10025, delay=0.1, delays=0/0/0/0.1, "
           "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 8D8D8D8D8D)"),
        rcpt_line(2, "8D8D8D8D8D", "a@ok.example", "2.0.0", "sent", "250 Ok"),
        rcpt_line(3, "4F1B2C3D4E", "b@ok.example", "2.0.0", "sent", "250 2.0.0 Ok: queued as 9E9E9E9E9E")});
  BOOST_TEST(state(id, "a@ok.example")->queue_id == "8D8D8D8D8D");
  BOOST_TEST(state(id, "b@ok.example")->state == "delivered");  // another MTA's "queued as": delivered
  BOOST_TEST(event_types().size() == 2u);
}

BOOST_FIXTURE_TEST_CASE(notifications_probes_and_other_programs_are_ignored, Fixture) {
  record("4F1B2C3D4E", {"a@ok.example"});
  feed({at(1, "bounce", "4F1B2C3D4E: sender non-delivery notification: 1A1A1A1A1A"),
        at(1, "smtp",
           "4F1B2C3D4E: to=<a@ok.example>, relay=mx[192.0.2.1]:25, delay=0, delays=0/0/0/0, dsn=2.1.5, "
           "status=deliverable (250 2.1.5 Ok)"),
        "2026-12-01T10:00:01+00:00 mx dovecot[12]: imap-login: Login: user=<a@ok.example>",
        "garbage \x01\x02"});
  BOOST_TEST(last.applied == 0u);
  BOOST_TEST(events().empty());
}

BOOST_FIXTURE_TEST_CASE(a_notification_queue_id_is_ours_again_once_removed, Fixture) {
  // Postfix reuses short queue ids: once the notification's queue file is removed, a
  // message of ours may get the same id, and its lines must join again.
  record("4F1B2C3D4E", {"a@ok.example"});
  feed({at(1, "bounce", "4F1B2C3D4E: sender non-delivery notification: 1A1A1A1A1A"),
        rcpt_line(2, "1A1A1A1A1A", "news@acme.example", "2.0.0", "sent", "250 2.0.0 Ok"),
        at(2, "qmgr", "1A1A1A1A1A: removed")});
  BOOST_TEST(last.applied == 0u);
  BOOST_TEST(last.pended == 0u);
  auto id = record("1A1A1A1A1A", {"b@ok.example"}, kT0 + 3'000'000);
  feed({rcpt_line(4, "1A1A1A1A1A", "b@ok.example", "2.0.0", "sent", "250 2.0.0 Ok")});
  BOOST_TEST(last.applied == 1u);
  BOOST_TEST(state(id, "b@ok.example")->state == "delivered");
}

BOOST_AUTO_TEST_CASE(syslog_stamps_take_the_year_that_is_not_in_the_future) {
  delivery::LogTime t;
  t.month = 12;
  t.day = 31;
  t.hour = 23;
  // On 2027-01-01 a "Dec 31" line is from 2026, not from the end of 2027.
  setenv("TZ", "UTC", 1);
  tzset();
  std::int64_t jan1_2027 = 1798761600ll * 1'000'000;
  BOOST_TEST(delivery::to_unix_us(t, jan1_2027) == (1798761600ll - 3600) * 1'000'000);
  t.second = 30;  // the same minute (cached) and the next one
  BOOST_TEST(delivery::to_unix_us(t, jan1_2027) == (1798761600ll - 3600 + 30) * 1'000'000);
  t.minute = 1;
  t.second = 0;
  BOOST_TEST(delivery::to_unix_us(t, jan1_2027) == (1798761600ll - 3600 + 60) * 1'000'000);
  // ... and the same stamp seen on another day is computed again.
  t.month = 1;
  t.day = 1;
  t.hour = 0;
  t.minute = 0;
  BOOST_TEST(delivery::to_unix_us(t, jan1_2027) == 1798761600ll * 1'000'000);
  delivery::LogTime r;
  r.year = 2026;
  r.month = 12;
  r.day = 1;
  r.hour = 11;
  r.has_offset = true;
  r.offset_minutes = 60;
  r.micros = 5;
  BOOST_TEST(delivery::to_unix_us(r, 0) == kT0 + 5);
  BOOST_TEST(delivery::to_unix_us(delivery::LogTime{}, 0) == 0);
}
