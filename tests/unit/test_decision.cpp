#define BOOST_TEST_MODULE decision
#include <boost/test/unit_test.hpp>

#include "policy/decision.hpp"

using namespace cllavio::policy;

BOOST_AUTO_TEST_CASE(known_org_is_accepted_whatever_unknown_says) {
  Org o;
  o.id = "acme";
  Identification id{&o, IdentifiedBy::sasl};
  BOOST_TEST((decide_sender(id, UnknownOrg::reject, "a@acme.example").action == Action::accept));
}

BOOST_AUTO_TEST_CASE(unknown_org_follows_setting) {
  Identification none;
  BOOST_TEST((decide_sender(none, UnknownOrg::accept, "x@y.example").action == Action::accept));
  Decision d = decide_sender(none, UnknownOrg::reject, "x@y.example");
  BOOST_TEST((d.action == Action::reject));
  BOOST_TEST(d.reason == "unknown_org");
  BOOST_TEST(d.reply.rcode == "550");
  BOOST_TEST(d.reply.xcode == "5.7.1");
  BOOST_TEST(d.reply.text.find("<x@y.example>") != std::string::npos);
  BOOST_TEST(decide_sender(none, UnknownOrg::reject, "").reply.text.find("<>") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(reply_text_is_safe_for_smtp) {
  Decision d = decide_sender({}, UnknownOrg::reject, "evil\r\n250 ok%s@x");
  for (char c : d.reply.text) {
    BOOST_TEST(static_cast<unsigned char>(c) >= 0x20);
    BOOST_TEST(c != '%');
  }
}
