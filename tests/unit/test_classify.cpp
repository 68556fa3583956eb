// delivery::classify_bounce over the replies Postfix logs for real receivers: the enhanced
// code from dsn= or from the reply, blocks of the sending server (5.7.x, rejections at
// connect/HELO/MAIL FROM) that must never suppress a recipient, content and mailbox-full
// bounces, and the few clear phrasings that make a generic 5.0.0 an invalid address.
#define BOOST_TEST_MODULE classify
#include <boost/test/unit_test.hpp>

#include "delivery/classify.hpp"

using namespace cllavio::delivery;

namespace {

struct Case {
  const char* dsn;
  const char* reply;
  BounceClass want;
};

void check(std::initializer_list<Case> cases) {
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("dsn=" << c.dsn << " reply=" << c.reply) {
      BOOST_TEST(to_string(classify_bounce(c.dsn, c.reply)) == to_string(c.want));
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(invalid_addresses_by_code) {
  check({
      {"5.1.1",
       "host mx.b.example[192.0.2.1] said: 550 5.1.1 <a@b.example>: Recipient address rejected: User unknown in "
       "virtual mailbox table (in reply to RCPT TO command)",
       BounceClass::invalid_address},
      {"", "550 5.1.1 <a@b.example>: Recipient address rejected: User unknown", BounceClass::invalid_address},
      {"5.1.1",
       "host gmail-smtp-in.l.google.com[142.250.102.26] said: 550-5.1.1 The email account that you tried to reach "
       "does not exist. Please try 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 "
       "unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a1si2 - gsmtp (in reply to RCPT TO "
       "command)",
       BounceClass::invalid_address},
      {"", "host x[192.0.2.1] said: 550-5.1.1 no mailbox here by that name (in reply to RCPT TO command)",
       BounceClass::invalid_address},
      {"5.1.2", "Host or domain name not found. Name service error for name=nowhere.example type=MX: Host not found",
       BounceClass::invalid_address},
      {"5.1.3", "bad address syntax", BounceClass::invalid_address},
      {"5.1.6", "host x said: 551 5.1.6 recipient has moved", BounceClass::invalid_address},
      {"5.2.1", "host x said: 550 5.2.1 The email account that you tried to reach is disabled",
       BounceClass::invalid_address},
      {"5.1.1", "unknown user: \"bob\"", BounceClass::invalid_address},  // local(8)
      {"5.1.1", "", BounceClass::invalid_address},
  });
}

BOOST_AUTO_TEST_CASE(null_mx) {
  check({
      {"5.1.10", "Domain b.example does not accept mail (nullMX)", BounceClass::invalid_address},
      {"", "Domain b.example does not accept mail (nullMX)", BounceClass::invalid_address},
      {"5.0.0", "host x said: 556 Domain has a null MX", BounceClass::invalid_address},
      {"4.4.3", "Domain b.example does not accept mail (nullMX)", BounceClass::other},
  });
}

BOOST_AUTO_TEST_CASE(generic_codes_need_clear_text) {
  check({
      {"5.0.0", "host x[192.0.2.1] said: 550 User unknown (in reply to RCPT TO command)",
       BounceClass::invalid_address},
      {"5.0.0", "host x[192.0.2.1] said: 550 <a@b>... No such user (in reply to RCPT TO command)",
       BounceClass::invalid_address},
      {"5.0.0", "host x said: 550 Recipient unknown", BounceClass::invalid_address},
      {"5.0.0", "host x said: 550 mailbox a@b does not exist", BounceClass::invalid_address},
      {"", "550 UNKNOWN USER", BounceClass::invalid_address},
      {"", "host x said: 550 unknown recipient (in reply to RCPT TO command)", BounceClass::invalid_address},
      {"5.0.0", "host x said: 550 Requested action not taken: mailbox unavailable (in reply to RCPT TO command)",
       BounceClass::other},
      {"5.0.0", "host x said: 550 Rejected (in reply to RCPT TO command)", BounceClass::other},
      {"5.5.0", "host x said: 550 5.5.0 Requested action not taken: mailbox unavailable", BounceClass::other},
      // Temporary: never an invalid address.
      {"4.0.0", "host x said: 450 User unknown (in reply to RCPT TO command)", BounceClass::other},
      {"4.1.1", "host x said: 450 4.1.1 <a@b>: Recipient address rejected: unverified address", BounceClass::other},
      // A specific code that is none of ours wins over the text.
      {"5.4.4", "Host or domain name not found. Name service error for name=b type=A: Host not found; user unknown",
       BounceClass::other},
  });
}

BOOST_AUTO_TEST_CASE(blocks_say_nothing_about_the_recipient) {
  check({
      {"5.7.1",
       "host x[192.0.2.1] said: 554 5.7.1 Service unavailable; Client host [198.51.100.9] blocked using "
       "zen.spamhaus.org (in reply to RCPT TO command)",
       BounceClass::block},
      {"5.0.0", "host x[192.0.2.1] said: 554 Your IP is on a block list (in reply to MAIL FROM command)",
       BounceClass::block},
      {"5.1.8", "host x said: 553 5.1.8 <n@shop.example>: Sender address rejected: Domain not found (in reply to "
                "MAIL FROM command)",
       BounceClass::block},
      {"5.0.0", "host x said: 550 user unknown (in reply to MAIL FROM command)", BounceClass::block},
      {"5.7.1", "host x said: 550 5.7.1 Message rejected as spam (in reply to end of DATA command)",
       BounceClass::block},
      {"5.7.26", "host x said: 550-5.7.26 Unauthenticated email is not accepted (in reply to end of DATA command)",
       BounceClass::block},
      {"5.0.0", "host x[192.0.2.1] refused to talk to me: 554 mail.x ESMTP not accepting messages",
       BounceClass::block},
      {"5.0.0", "host x said: 550 go away (in reply to HELO command)", BounceClass::block},
      {"", "host x said: 554 5.7.1 <a@b>: Relay access denied (in reply to RCPT TO command)", BounceClass::block},
      {"4.7.1", "host x said: 451 4.7.1 Greylisted, try again later (in reply to RCPT TO command)",
       BounceClass::block},
      {"5.7.1", "host x said: 550 5.7.1 User unknown", BounceClass::block},
  });
}

BOOST_AUTO_TEST_CASE(mailbox_full_and_content) {
  check({
      {"5.2.2", "host x said: 552 5.2.2 Mailbox full (in reply to RCPT TO command)", BounceClass::mailbox_full},
      {"4.2.2",
       "host x said: 452-4.2.2 The email account that you tried to reach is over quota. (in reply to RCPT TO "
       "command)",
       BounceClass::mailbox_full},
      {"5.0.0", "host x said: 552 Mailbox is full (in reply to end of DATA command)", BounceClass::mailbox_full},
      {"", "host x said: 550 quota exceeded", BounceClass::mailbox_full},
      {"5.0.0", "host x said: 550 user unknown or over quota", BounceClass::mailbox_full},
      {"5.6.0", "host x said: 554 5.6.0 Message contains invalid header (in reply to end of DATA command)",
       BounceClass::content},
      {"5.3.4", "message size 40000000 exceeds size limit 10240000 of server x[192.0.2.1]", BounceClass::content},
      {"5.2.3", "host x said: 552 5.2.3 Message exceeds maximum size", BounceClass::content},
      {"", "host x said: 554 5.6.1 Media type not supported", BounceClass::content},
  });
}

BOOST_AUTO_TEST_CASE(the_rest_is_other) {
  check({
      {"", "", BounceClass::other},
      {"2.0.0", "250 2.0.0 Ok: queued as 4C8D9E0F1A", BounceClass::other},
      {"4.4.1", "connect to mx.b.example[192.0.2.1]:25: Connection timed out", BounceClass::other},
      {"5.4.6", "mail forwarding loop for a@b.example", BounceClass::other},
      {"5.3.0", "host x said: 554 5.3.0 unknown error", BounceClass::other},
      {"x.y.z", "nonsense", BounceClass::other},
      {"5.1.1.1", "", BounceClass::other},
      {"5.1234.1", "", BounceClass::other},
      {"", "550", BounceClass::other},
      {"", "5.1.", BounceClass::other},
  });
}

BOOST_AUTO_TEST_CASE(dsn_code_wins_unless_generic) {
  // Postfix's dsn= is the reply's code; a generic one gives way to a specific code in the reply.
  BOOST_TEST((classify_bounce("5.0.0", "host x said: 550 5.1.1 gone") == BounceClass::invalid_address));
  BOOST_TEST((classify_bounce("5.1.1", "host x said: 550 5.0.0 whatever") == BounceClass::invalid_address));
  BOOST_TEST((classify_bounce("5.6.0", "host x said: 550 5.1.1 user unknown") == BounceClass::content));
}

BOOST_AUTO_TEST_CASE(names) {
  BOOST_TEST(to_string(BounceClass::invalid_address) == "invalid_address");
  BOOST_TEST(to_string(BounceClass::block) == "block");
  BOOST_TEST(to_string(BounceClass::content) == "content");
  BOOST_TEST(to_string(BounceClass::mailbox_full) == "mailbox_full");
  BOOST_TEST(to_string(BounceClass::other) == "other");
}
