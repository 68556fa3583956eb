// delivery::parse_line over the line shapes Postfix 3.7 writes (per-recipient results,
// qmgr expiry and removal, bounce notices, cleanup rejections), the prefixes of syslog,
// postlogd and rsyslog's RFC 3339 format, and lines it must leave alone (other programs,
// smtpd rejections, NOQUEUE, warnings, garbage). Every field is asserted exactly.
#define BOOST_TEST_MODULE logline
#include <boost/test/unit_test.hpp>

#include <string>

#include "delivery/logline.hpp"

using namespace cllavio::delivery;
using sv = std::string_view;

namespace {

// Nothing but the prefix fields is set on a line of kind other.
void check_other(const LogLine& l) {
  BOOST_TEST((l.kind == LineKind::other));
  for (sv f : {l.queue_id, l.to, l.orig_to, l.relay, l.dsn, l.status, l.reply, l.next_queue_id, l.from, l.action,
               l.stage, l.reason})
    BOOST_TEST(f.empty());
  BOOST_TEST(l.delay_s == -1);
}

}  // namespace

BOOST_AUTO_TEST_CASE(sent_with_space_padded_day) {
  auto l = parse_line(
      "Dec  1 03:59:52 mail postfix/smtp[12345]: 4F1B2C3D4E: to=<alice@example.com>, "
      "relay=mx.example.com[192.0.2.10]:25, delay=0.52, delays=0.1/0.01/0.21/0.2, dsn=2.0.0, "
      "status=sent (250 2.0.0 Ok: queued as 3F2A1B0C9D)");
  BOOST_TEST((l.kind == LineKind::recipient));
  BOOST_TEST(l.time.year == 0);
  BOOST_TEST(l.time.month == 12);
  BOOST_TEST(l.time.day == 1);
  BOOST_TEST(l.time.hour == 3);
  BOOST_TEST(l.time.minute == 59);
  BOOST_TEST(l.time.second == 52);
  BOOST_TEST(l.time.micros == 0);
  BOOST_TEST(!l.time.has_offset);
  BOOST_TEST(l.host == "mail");
  BOOST_TEST(l.service == "postfix/smtp");
  BOOST_TEST(l.program == "smtp");
  BOOST_TEST(l.queue_id == "4F1B2C3D4E");
  BOOST_TEST(l.to == "alice@example.com");
  BOOST_TEST(l.orig_to == "");
  BOOST_TEST(l.relay == "mx.example.com[192.0.2.10]:25");
  BOOST_TEST(l.delay_s == 0.52);
  BOOST_TEST(l.dsn == "2.0.0");
  BOOST_TEST(l.status == "sent");
  BOOST_TEST(l.reply == "250 2.0.0 Ok: queued as 3F2A1B0C9D");
  BOOST_TEST(l.next_queue_id == "3F2A1B0C9D");
  BOOST_TEST(l.from == "");
  BOOST_TEST(l.action == "");
}

BOOST_AUTO_TEST_CASE(zero_padded_day_of_postlogd) {
  auto l = parse_line("Jan 09 23:00:01 mx1.example.net postfix/qmgr[812]: 4F1B2C3D4E: removed");
  BOOST_TEST((l.kind == LineKind::removed));
  BOOST_TEST(l.time.month == 1);
  BOOST_TEST(l.time.day == 9);
  BOOST_TEST(l.time.hour == 23);
  BOOST_TEST(l.host == "mx1.example.net");
  BOOST_TEST(l.queue_id == "4F1B2C3D4E");
  auto two = parse_line("Sep 30 00:00:00 h postfix/qmgr[1]: 4F1B2C3D4E: removed");
  BOOST_TEST(two.time.month == 9);
  BOOST_TEST(two.time.day == 30);
}

BOOST_AUTO_TEST_CASE(rfc3339_stamps) {
  auto l = parse_line("2026-12-01T03:59:52.123456+00:00 mail postfix/qmgr[812]: 4F1B2C3D4E: removed");
  BOOST_TEST((l.kind == LineKind::removed));
  BOOST_TEST(l.time.year == 2026);
  BOOST_TEST(l.time.month == 12);
  BOOST_TEST(l.time.day == 1);
  BOOST_TEST(l.time.hour == 3);
  BOOST_TEST(l.time.minute == 59);
  BOOST_TEST(l.time.second == 52);
  BOOST_TEST(l.time.micros == 123456);
  BOOST_TEST(l.time.has_offset);
  BOOST_TEST(l.time.offset_minutes == 0);
  BOOST_TEST(l.host == "mail");

  auto z = parse_line("2026-02-28T23:59:60Z mail postfix/qmgr[812]: 4F1B2C3D4E: removed");
  BOOST_TEST((z.kind == LineKind::removed));
  BOOST_TEST(z.time.second == 60);
  BOOST_TEST(z.time.micros == 0);
  BOOST_TEST(z.time.has_offset);
  BOOST_TEST(z.time.offset_minutes == 0);

  auto neg = parse_line("2026-07-04T12:00:00.5-05:30 mail postfix/qmgr: 4F1B2C3D4E: removed");
  BOOST_TEST((neg.kind == LineKind::removed));
  BOOST_TEST(neg.time.micros == 500000);
  BOOST_TEST(neg.time.offset_minutes == -330);
  BOOST_TEST(neg.service == "postfix/qmgr");

  auto nano = parse_line("2026-07-04T12:00:00.123456789+02:00 mail postfix/qmgr[1]: 4F1B2C3D4E: removed");
  BOOST_TEST(nano.time.micros == 123456);
  BOOST_TEST(nano.time.offset_minutes == 120);
}

BOOST_AUTO_TEST_CASE(unreadable_stamps_are_other) {
  for (const char* bad : {"Dex  1 03:59:52 mail postfix/qmgr[1]: 4F1B2C3D4E: removed",
                          "Dec 32 03:59:52 mail postfix/qmgr[1]: 4F1B2C3D4E: removed",
                          "Dec  0 03:59:52 mail postfix/qmgr[1]: 4F1B2C3D4E: removed",
                          "Dec  1 24:59:52 mail postfix/qmgr[1]: 4F1B2C3D4E: removed",
                          "Dec  1 03:5:52 mail postfix/qmgr[1]: 4F1B2C3D4E: removed",
                          "Dec  103:59:52 mail postfix/qmgr[1]: 4F1B2C3D4E: removed",
                          "2026-13-01T03:59:52Z mail postfix/qmgr[1]: 4F1B2C3D4E: removed",
                          "2026-12-01T03:59:52 mail postfix/qmgr[1]: 4F1B2C3D4E: removed",
                          "2026-12-01 03:59:52Z mail postfix/qmgr[1]: 4F1B2C3D4E: removed",
                          "2026-12-01T03:59:52.Z mail postfix/qmgr[1]: 4F1B2C3D4E: removed",
                          "2026-12-01T03:59:52+0100 mail postfix/qmgr[1]: 4F1B2C3D4E: removed",
                          "Dec  1 03:59:52 postfix/qmgr[1]: 4F1B2C3D4E: removed",
                          "Dec  1 03:59:52 mail postfix/qmgr[]: 4F1B2C3D4E: removed",
                          "Dec  1 03:59:52 mail postfix/qmgr[1] 4F1B2C3D4E: removed"}) {
    BOOST_TEST_CONTEXT(bad) {
      auto l = parse_line(bad);
      check_other(l);
    }
  }
  BOOST_TEST(parse_line("Dex  1 03:59:52 mail postfix/qmgr[1]: 4F1B2C3D4E: removed").time.month == 0);
  BOOST_TEST(parse_line("Dex  1 03:59:52 mail postfix/qmgr[1]: 4F1B2C3D4E: removed").host.empty());
}

BOOST_AUTO_TEST_CASE(service_names) {
  auto sub = parse_line(
      "Dec  1 03:59:52 mail postfix/submission/smtpd[77]: 4F1B2C3D4E: client=laptop.example[198.51.100.4]");
  check_other(sub);
  BOOST_TEST(sub.service == "postfix/submission/smtpd");
  BOOST_TEST(sub.program == "smtpd");
  BOOST_TEST(sub.host == "mail");

  auto out = parse_line(
      "Dec  1 03:59:52 mail postfix-out/smtp[9]: 4Xk9Lm2pQzz1B: to=<a@b.example>, relay=none, delay=0.01, "
      "delays=0/0/0/0, dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for "
      "name=b.example type=A: Host not found)");
  BOOST_TEST((out.kind == LineKind::recipient));
  BOOST_TEST(out.service == "postfix-out/smtp");
  BOOST_TEST(out.program == "smtp");
  BOOST_TEST(out.queue_id == "4Xk9Lm2pQzz1B");
  BOOST_TEST(out.relay == "none");
  BOOST_TEST(out.reply ==
             "Host or domain name not found. Name service error for name=b.example type=A: Host not found");
  BOOST_TEST(out.next_queue_id == "");

  auto relay = parse_line("Dec  1 03:59:52 mail postfix/relay/smtp[9]: 4F1B2C3D4E: removed");
  BOOST_TEST(relay.program == "smtp");
  check_other(relay);  // "removed" comes from qmgr or postsuper only
}

BOOST_AUTO_TEST_CASE(other_programs_are_other) {
  for (const char* l : {"Dec  1 03:59:52 mail dovecot: imap-login: Login: user=<a@b>, method=PLAIN",
                        "Dec  1 03:59:52 mail dovecot[55]: lmtp(a@b)<1><x>: saved mail to INBOX",
                        "Dec  1 03:59:52 mail postfixadmin/smtp[1]: 4F1B2C3D4E: removed",
                        "Dec  1 03:59:52 mail postfix[1]: 4F1B2C3D4E: removed",
                        "Dec  1 03:59:52 mail opendkim[1]: 4F1B2C3D4E: DKIM-Signature field added",
                        "Dec  1 03:59:52 mail xpostfix/qmgr[1]: 4F1B2C3D4E: removed"}) {
    BOOST_TEST_CONTEXT(l) { check_other(parse_line(l)); }
  }
  auto d = parse_line("Dec  1 03:59:52 mail dovecot: imap-login: Login: user=<a@b>");
  BOOST_TEST(d.service == "dovecot");
  BOOST_TEST(d.program == "dovecot");
  BOOST_TEST(d.time.month == 12);
}

BOOST_AUTO_TEST_CASE(fields_in_any_order_and_unknown_fields) {
  auto l = parse_line(
      "Dec  1 03:59:52 mail postfix/smtp[1]: 4F1B2C3D4E: to=<a@b.example>, status=deferred (host mx.b.example"
      "[192.0.2.1] said: 451 4.7.1 Try again later (in reply to RCPT TO command)), conn_use=2, dsn=4.7.1, "
      "tls=TLSv1.3/TLS_AES_256_GCM_SHA384, relay=mx.b.example[192.0.2.1]:25, future_key=a, b=c, delay=310, "
      "orig_to=<alias@b.example>");
  BOOST_TEST((l.kind == LineKind::recipient));
  BOOST_TEST(l.to == "a@b.example");
  BOOST_TEST(l.orig_to == "alias@b.example");
  BOOST_TEST(l.status == "deferred");
  BOOST_TEST(l.reply == "host mx.b.example[192.0.2.1] said: 451 4.7.1 Try again later (in reply to RCPT TO command)");
  BOOST_TEST(l.dsn == "4.7.1");
  BOOST_TEST(l.relay == "mx.b.example[192.0.2.1]:25");
  BOOST_TEST(l.delay_s == 310);
}

BOOST_AUTO_TEST_CASE(replies_with_parens_commas_and_equals) {
  auto l = parse_line(
      "Dec  1 03:59:52 mail postfix/smtp[1]: 4F1B2C3D4E: to=<a@b.example>, relay=127.0.0.1[127.0.0.1]:10024, "
      "conn_use=3, delay=0.9, delays=0.1/0/0/0.8, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): "
      "250 2.0.0 Ok: queued as 4C8D9E0F1A, id=12, x=(y, z))");
  BOOST_TEST((l.kind == LineKind::recipient));
  BOOST_TEST(l.reply ==
             "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 4C8D9E0F1A, id=12, x=(y, z)");
  BOOST_TEST(l.next_queue_id == "4C8D9E0F1A");

  // An inner ')' that closes nothing (a smiley) is part of the text.
  auto s = parse_line(
      "Dec  1 03:59:52 mail postfix/smtp[1]: 4F1B2C3D4E: to=<a@b.example>, relay=x[192.0.2.1]:25, delay=1, "
      "dsn=5.0.0, status=bounced (host x[192.0.2.1] said: 550 go away :-) bye (in reply to RCPT TO command))");
  BOOST_TEST(s.reply == "host x[192.0.2.1] said: 550 go away :-) bye (in reply to RCPT TO command)");
}

BOOST_AUTO_TEST_CASE(truncated_reply_is_the_rest) {
  auto l = parse_line(
      "Dec  1 03:59:52 mail postfix/smtp[1]: 4F1B2C3D4E: to=<a@b.example>, relay=x[192.0.2.1]:25, delay=1, "
      "delays=0/0/0/1, dsn=5.1.1, status=bounced (host x[192.0.2.1] said: 550 5.1.1 <a@b.example>: Recipient "
      "address rejected: User unkn");
  BOOST_TEST((l.kind == LineKind::recipient));
  BOOST_TEST(l.reply == "host x[192.0.2.1] said: 550 5.1.1 <a@b.example>: Recipient address rejected: User unkn");
  auto empty = parse_line("Dec  1 03:59:52 mail postfix/smtp[1]: 4F1B2C3D4E: to=<a@b>, dsn=5.1.1, status=bounced (");
  BOOST_TEST((empty.kind == LineKind::recipient));
  BOOST_TEST(empty.reply == "");
  auto none = parse_line("Dec  1 03:59:52 mail postfix/smtp[1]: 4F1B2C3D4E: to=<a@b>, dsn=5.1.1, status=bounced");
  BOOST_TEST((none.kind == LineKind::recipient));
  BOOST_TEST(none.reply == "");
  BOOST_TEST(none.delay_s == -1);
}

BOOST_AUTO_TEST_CASE(forwarded_and_queued_as) {
  auto f = parse_line(
      "Dec  1 03:59:52 mail postfix/local[4242]: 5A6B7C8D9E: to=<carol@example.com>, orig_to=<sales@example.com>, "
      "relay=local, delay=0.03, delays=0.01/0.01/0/0.01, dsn=2.0.0, status=sent (forwarded as 6B7C8D9E0F)");
  BOOST_TEST((f.kind == LineKind::recipient));
  BOOST_TEST(f.program == "local");
  BOOST_TEST(f.orig_to == "sales@example.com");
  BOOST_TEST(f.relay == "local");
  BOOST_TEST(f.next_queue_id == "6B7C8D9E0F");

  auto q = parse_line(
      "Dec  1 03:59:52 mail postfix/smtp[1]: 5A6B7C8D9E: to=<a@b.example>, relay=mx[192.0.2.1]:25, delay=0.2, "
      "delays=0/0/0.1/0.1, dsn=2.0.0, status=sent (250 Ok: queued as 4SPdNH1Wb2zJrVX)");
  BOOST_TEST(q.next_queue_id == "4SPdNH1Wb2zJrVX");
  auto upper = parse_line(
      "Dec  1 03:59:52 mail postfix/smtp[1]: 5A6B7C8D9E: to=<a@b.example>, relay=mx[192.0.2.1]:25, dsn=2.0.0, "
      "status=sent (250 2.0.0 Message Queued As ab12-cd; thanks)");
  BOOST_TEST(upper.next_queue_id == "ab12");
  auto plain = parse_line(
      "Dec  1 03:59:52 mail postfix/smtp[1]: 5A6B7C8D9E: to=<a@b.example>, relay=mx[192.0.2.1]:25, dsn=2.0.0, "
      "status=sent (250 2.0.0 OK 1733025592 m12si123abc.1 - gsmtp)");
  BOOST_TEST(plain.next_queue_id == "");
}

BOOST_AUTO_TEST_CASE(empty_recipient_and_status_variants) {
  auto e = parse_line(
      "Dec  1 03:59:52 mail postfix/local[1]: 5A6B7C8D9E: to=<>, relay=local, delay=0, dsn=2.0.0, status=sent "
      "(delivered to mailbox)");
  BOOST_TEST((e.kind == LineKind::recipient));
  BOOST_TEST(e.to == "");
  BOOST_TEST(e.delay_s == 0);
  for (sv st : {"sent", "deferred", "bounced", "expired", "SOFTBOUNCE", "deliverable", "undeliverable"}) {
    std::string line = "Dec  1 03:59:52 mail postfix/smtp[1]: 5A6B7C8D9E: to=<a@b>, relay=none, dsn=4.0.0, status=";
    line.append(st).append(" (why)");
    auto l = parse_line(line);
    BOOST_TEST_CONTEXT(st) {
      BOOST_TEST((l.kind == LineKind::recipient));
      BOOST_TEST(l.status == st);
      BOOST_TEST(l.reply == "why");
    }
  }
  check_other(parse_line("Dec  1 03:59:52 mail postfix/smtp[1]: 5A6B7C8D9E: to=<a@b>, relay=none, status=lost (x)"));
  check_other(parse_line("Dec  1 03:59:52 mail postfix/smtp[1]: 5A6B7C8D9E: to=<a@b>, relay=none, dsn=2.0.0"));
  check_other(parse_line("Dec  1 03:59:52 mail postfix/smtp[1]: 5A6B7C8D9E: to=a@b, relay=none, status=sent (x)"));
}

BOOST_AUTO_TEST_CASE(administrative_expiry_and_qmgr_expiry) {
  auto r = parse_line(
      "Dec  1 03:59:52 mail postfix/retry[3]: 5A6B7C8D9E: to=<a@b.example>, relay=none, delay=1200, "
      "delays=1200/0.01/0/0, dsn=4.7.0, status=deferred (message is administratively expired)");
  BOOST_TEST((r.kind == LineKind::recipient));
  BOOST_TEST(r.program == "retry");
  BOOST_TEST(r.reply == "message is administratively expired");

  auto x = parse_line(
      "Dec  1 03:59:52 mail postfix/qmgr[812]: 5A6B7C8D9E: from=<newsletter@shop.example>, status=expired, "
      "returned to sender");
  BOOST_TEST((x.kind == LineKind::expired));
  BOOST_TEST(x.queue_id == "5A6B7C8D9E");
  BOOST_TEST(x.from == "newsletter@shop.example");
  BOOST_TEST(x.status == "expired");
  BOOST_TEST(x.to == "");
  auto null_sender = parse_line(
      "Dec  1 03:59:52 mail postfix/qmgr[812]: 5A6B7C8D9E: from=<>, status=expired, returned to sender");
  BOOST_TEST((null_sender.kind == LineKind::expired));
  BOOST_TEST(null_sender.from == "");
}

BOOST_AUTO_TEST_CASE(removed_by_qmgr_and_postsuper) {
  auto q = parse_line("Dec  1 03:59:52 mail postfix/qmgr[812]: 4SPdNH1Wb2zJrVX: removed");
  BOOST_TEST((q.kind == LineKind::removed));
  BOOST_TEST(q.queue_id == "4SPdNH1Wb2zJrVX");
  auto p = parse_line("Dec  1 03:59:52 mail postfix/postsuper[4100]: 5A6B7C8D9E: removed");
  BOOST_TEST((p.kind == LineKind::removed));
  BOOST_TEST(p.program == "postsuper");
  check_other(parse_line("Dec  1 03:59:52 mail postfix/postsuper[4100]: Deleted: 1 message"));
  check_other(parse_line("Dec  1 03:59:52 mail postfix/qmgr[812]: 5A6B7C8D9E: removed from queue"));
}

BOOST_AUTO_TEST_CASE(notifications) {
  for (const char* notice : {"sender non-delivery notification", "postmaster non-delivery notification",
                             "sender delay notification", "postmaster delay notification",
                             "sender delivery status notification"}) {
    std::string line = "Dec  1 03:59:52 mail postfix/bounce[5150]: 5A6B7C8D9E: ";
    line.append(notice).append(": 7A8B9C0D1E");
    auto l = parse_line(line);
    BOOST_TEST_CONTEXT(notice) {
      BOOST_TEST((l.kind == LineKind::notification));
      BOOST_TEST(l.queue_id == "5A6B7C8D9E");
      BOOST_TEST(l.next_queue_id == "7A8B9C0D1E");
      BOOST_TEST(l.program == "bounce");
    }
  }
  check_other(parse_line("Dec  1 03:59:52 mail postfix/bounce[5150]: 5A6B7C8D9E: sender non-delivery notification: "));
  check_other(parse_line("Dec  1 03:59:52 mail postfix/smtp[5150]: 5A6B7C8D9E: sender non-delivery notification: "
                         "7A8B9C0D1E"));
  check_other(parse_line("Dec  1 03:59:52 mail postfix/bounce[5150]: 5A6B7C8D9E: undeliverable postmaster "
                         "notification discarded"));
}

BOOST_AUTO_TEST_CASE(cleanup_milter_reject) {
  auto l = parse_line(
      "Dec  1 03:59:52 mail postfix/cleanup[6001]: 5A6B7C8D9E: milter-reject: END-OF-MESSAGE from "
      "localhost[127.0.0.1]: 5.7.1 Spam; from=<a@b> to=<c@d> proto=ESMTP helo=<x>");
  BOOST_TEST((l.kind == LineKind::rejected));
  BOOST_TEST(l.queue_id == "5A6B7C8D9E");
  BOOST_TEST(l.action == "milter-reject");
  BOOST_TEST(l.stage == "END-OF-MESSAGE");
  BOOST_TEST(l.reason == "5.7.1 Spam");
  BOOST_TEST(l.from == "a@b");
  BOOST_TEST(l.to == "");

  // The milter's reply is the sender's text as far as we know: ';' and "; from=<" inside it.
  auto tricky = parse_line(
      "Dec  1 03:59:52 mail postfix/cleanup[6001]: 5A6B7C8D9E: milter-reject: END-OF-MESSAGE from "
      "client.example[2001:db8::1]: 5.7.1 No; from=<evil@x> nope; from=<real@example.com> "
      "to=<c@d> proto=ESMTP helo=<client.example>");
  BOOST_TEST(tricky.reason == "5.7.1 No; from=<evil@x> nope");
  BOOST_TEST(tricky.from == "real@example.com");

  auto discard = parse_line(
      "Dec  1 03:59:52 mail postfix/cleanup[6001]: 5A6B7C8D9E: milter-discard: END-OF-MESSAGE from "
      "localhost[127.0.0.1]: milter triggers DISCARD action; from=<a@b> to=<c@d> proto=ESMTP helo=<x>");
  BOOST_TEST((discard.kind == LineKind::rejected));
  BOOST_TEST(discard.action == "milter-discard");
  BOOST_TEST(discard.reason == "milter triggers DISCARD action");
}

BOOST_AUTO_TEST_CASE(cleanup_header_and_body_checks) {
  auto h = parse_line(
      "Dec  1 03:59:52 mail postfix/cleanup[6001]: 5A6B7C8D9E: reject: header Subject: buy now from "
      "localhost[127.0.0.1]; from=<a@b> to=<c@d> proto=ESMTP helo=<x>: 5.7.1 message content rejected");
  BOOST_TEST((h.kind == LineKind::rejected));
  BOOST_TEST(h.action == "reject");
  BOOST_TEST(h.stage == "header");
  BOOST_TEST(h.reason == "5.7.1 message content rejected");
  BOOST_TEST(h.from == "a@b");

  auto b = parse_line(
      "Dec  1 03:59:52 mail postfix/cleanup[6001]: 5A6B7C8D9E: reject: body Click here: win; from=<x> helo=<y>: "
      "z from mail.example[192.0.2.1]; from=<news@shop.example> to=<c@d> proto=ESMTP helo=<mail.example>: "
      "5.7.1 Rejected: looks like spam");
  BOOST_TEST(b.stage == "body");
  BOOST_TEST(b.reason == "5.7.1 Rejected: looks like spam");
  BOOST_TEST(b.from == "news@shop.example");

  auto local = parse_line(
      "Dec  1 03:59:52 mail postfix/cleanup[6001]: 5A6B7C8D9E: discard: header Subject: test from local; "
      "from=<root@mail.example> to=<ops@example.com>: dropped by header_checks");
  BOOST_TEST((local.kind == LineKind::rejected));
  BOOST_TEST(local.action == "discard");
  BOOST_TEST(local.stage == "header");
  BOOST_TEST(local.reason == "dropped by header_checks");
  BOOST_TEST(local.from == "root@mail.example");

  auto silent = parse_line(
      "Dec  1 03:59:52 mail postfix/cleanup[6001]: 5A6B7C8D9E: discard: body secret from localhost[127.0.0.1]; "
      "from=<a@b> to=<c@d> proto=ESMTP helo=<x>");
  BOOST_TEST((silent.kind == LineKind::rejected));
  BOOST_TEST(silent.reason == "");

  auto mime = parse_line(
      "Dec  1 03:59:52 mail postfix/cleanup[6001]: 5A6B7C8D9E: reject: mime-error nesting exceeds safety limit: "
      "x from localhost[127.0.0.1]; from=<a@b> to=<c@d>");
  BOOST_TEST(mime.stage == "mime-error");
  BOOST_TEST(mime.reason == "");

  // Other header_checks actions are not rejections.
  check_other(parse_line("Dec  1 03:59:52 mail postfix/cleanup[6001]: 5A6B7C8D9E: warning: header Subject: x from "
                         "localhost[127.0.0.1]; from=<a@b> to=<c@d> proto=ESMTP helo=<x>"));
  check_other(parse_line("Dec  1 03:59:52 mail postfix/cleanup[6001]: 5A6B7C8D9E: hold: header Subject: x from "
                         "localhost[127.0.0.1]; from=<a@b> to=<c@d> proto=ESMTP helo=<x>"));
}

BOOST_AUTO_TEST_CASE(lines_that_say_nothing_about_a_fate) {
  for (const char* l : {
           "Dec  1 03:59:52 mail postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[192.0.2.5]: 554 5.7.1 "
           "<spam@x>: Relay access denied; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
           "Dec  1 03:59:52 mail postfix/smtpd[7]: 5A6B7C8D9E: reject: RCPT from unknown[192.0.2.5]: 550 5.1.1 "
           "<c@d>: Recipient address rejected: User unknown; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
           "Dec  1 03:59:52 mail postfix/smtpd[7]: 5A6B7C8D9E: milter-reject: END-OF-MESSAGE from x[192.0.2.5]: "
           "5.7.1 no; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
           "Dec  1 03:59:52 mail postfix/smtpd[7]: NOQUEUE: to=<a@b>, relay=none, dsn=5.0.0, status=bounced (x)",
           "Dec  1 03:59:52 mail postfix/smtpd[7]: warning: hostname x.example does not resolve to address 192.0.2.5",
           "Dec  1 03:59:52 mail postfix/smtpd[7]: connect from unknown[192.0.2.5]",
           "Dec  1 03:59:52 mail postfix/smtpd[7]: disconnect from unknown[192.0.2.5] ehlo=1 mail=1 rcpt=1 data=1 "
           "quit=1 commands=5",
           "Dec  1 03:59:52 mail postfix/smtpd[7]: 5A6B7C8D9E: client=unknown[192.0.2.5]",
           "Dec  1 03:59:52 mail postfix/cleanup[7]: 5A6B7C8D9E: message-id=<20261201035952.ABC@example.com>",
           "Dec  1 03:59:52 mail postfix/qmgr[7]: 5A6B7C8D9E: from=<a@b>, size=1234, nrcpt=1 (queue active)",
           "Dec  1 03:59:52 mail postfix/pickup[7]: 5A6B7C8D9E: uid=0 from=<root>",
           "Dec  1 03:59:52 mail postfix/smtp[7]: 5A6B7C8D9E: host mx[192.0.2.1] said: 451 4.3.0 try later (in "
           "reply to end of DATA command)",
           "Dec  1 03:59:52 mail postfix/smtp[7]: 5a6b7c8d9e: to=<a@b>, relay=none, dsn=5.0.0, status=bounced (x)",
           "Dec  1 03:59:52 mail postfix/smtp[7]: 5A6B7: to=<a@b>, relay=none, dsn=5.0.0, status=bounced (x)",
           "Dec  1 03:59:52 mail postfix/smtp[7]: 4Xk9Lm2pQaz1B: to=<a@b>, relay=none, dsn=5.0.0, status=bounced (x)",
           "Dec  1 03:59:52 mail postfix/smtp[7]: 4Xk9Lzz1B: to=<a@b>, relay=none, dsn=5.0.0, status=bounced (x)",
           "Dec  1 03:59:52 mail postfix/smtp[7]: 5A6B7C8D9E:to=<a@b>, relay=none, dsn=5.0.0, status=bounced (x)",
           "Dec  1 03:59:52 mail postfix/master[1]: daemon started -- version 3.7.11, configuration /etc/postfix",
       }) {
    BOOST_TEST_CONTEXT(l) { check_other(parse_line(l)); }
  }
}

BOOST_AUTO_TEST_CASE(garbage_empty_and_binary) {
  check_other(parse_line(""));
  check_other(parse_line("\n"));
  check_other(parse_line("Dec"));
  check_other(parse_line("Dec  1 03:59:52"));
  check_other(parse_line("Dec  1 03:59:52 "));
  check_other(parse_line("Dec  1 03:59:52 mail"));
  check_other(parse_line("Dec  1 03:59:52 mail postfix/smtp[1]:"));
  check_other(parse_line("Dec  1 03:59:52 mail postfix/smtp[1]: "));
  check_other(parse_line("Dec  1 03:59:52 mail postfix/smtp[1]: 5A6B7C8D9E:"));
  check_other(parse_line("2026-12-01T03:59:52"));
  std::string bin("Dec  1 03:59:52 mail postfix/qmgr[1]: 5A6B\0C8D9E: removed", 53);
  check_other(parse_line(bin));
  std::string high = "\xff\xfe\x00\x01 postfix/qmgr[1]: 5A6B7C8D9E: removed";
  check_other(parse_line(high));
  std::string nul(100, '\0');
  check_other(parse_line(nul));
}

BOOST_AUTO_TEST_CASE(long_line_of_2000_bytes) {
  std::string head =
      "Dec  1 03:59:52 mail postfix/smtp[1]: 5A6B7C8D9E: to=<a@b.example>, relay=mx[192.0.2.1]:25, delay=2.5, "
      "delays=0/0/1/1.5, dsn=5.1.1, status=bounced (host mx[192.0.2.1] said: 550-5.1.1 ";
  std::string text;
  while (head.size() + text.size() + 14 <= 1999) text += "blah (x), y=z ";
  text.append(1999 - head.size() - text.size(), 'a');
  std::string line = head + text + ")";
  BOOST_TEST(line.size() == 2000u);
  auto l = parse_line(line);
  BOOST_TEST((l.kind == LineKind::recipient));
  BOOST_TEST(l.reply == "host mx[192.0.2.1] said: 550-5.1.1 " + text);
  BOOST_TEST(l.reply.data() + l.reply.size() == line.data() + 1999);
  BOOST_TEST(l.delay_s == 2.5);
}
