#define BOOST_TEST_MODULE stream
#include <boost/test/unit_test.hpp>

#include "policy/consent.hpp"
#include "policy/stream.hpp"

using namespace cllavio::policy;

namespace {
Stream make(std::string name, std::vector<std::string> senders, StreamKind kind = StreamKind::campaign) {
  Stream s;
  s.name = std::move(name);
  for (auto& p : senders) BOOST_REQUIRE(check_sender_pattern(p).empty());
  s.senders = std::move(senders);
  s.kind = kind;
  return s;
}
}  // namespace

BOOST_AUTO_TEST_CASE(sender_patterns) {
  BOOST_TEST(sender_matches("news@acme.example", "news@acme.example"));
  BOOST_TEST(sender_matches("news@acme.example", "news@ACME.example"));
  BOOST_TEST(!sender_matches("news@acme.example", "News@acme.example"));  // local parts are case-sensitive
  BOOST_TEST(!sender_matches("news@acme.example", "news@sub.acme.example"));
  BOOST_TEST(sender_matches("@acme.example", "anyone@acme.example"));
  BOOST_TEST(!sender_matches("@acme.example", "anyone@acme.example.org"));
  BOOST_TEST(sender_matches("marketing*@acme.example", "marketing@acme.example"));
  BOOST_TEST(sender_matches("marketing*@acme.example", "marketing-eu@acme.example"));
  BOOST_TEST(!sender_matches("marketing*@acme.example", "eu-marketing@acme.example"));
  BOOST_TEST(sender_matches("news*@", "newsletter@anything.example"));
  BOOST_TEST(sender_matches("n?ws@", "news@x.example"));
  BOOST_TEST(sender_matches("*@", "a@b.example"));
  BOOST_TEST(!sender_matches("*@", ""));  // the null sender matches no pattern
  BOOST_TEST(sender_matches("a*b*c@x.example", "aXXbYYbZZc@x.example"));
  BOOST_TEST(!sender_matches("a*b*c@x.example", "aXXbYYbZZ@x.example"));
}

BOOST_AUTO_TEST_CASE(pattern_validation_normalizes) {
  std::string p = "News*@ACME.Example";
  BOOST_TEST(check_sender_pattern(p).empty());
  BOOST_TEST(p == "News*@acme.example");
  for (std::string bad : {"news", "@", "a b@acme.example", "news@bad_domain!", "x@y@"})
    BOOST_TEST(!check_sender_pattern(bad).empty(), bad);
}

BOOST_AUTO_TEST_CASE(first_matching_stream_else_default_and_header_wins) {
  StreamSet set;
  set.streams = {make("campaigns", {"news@acme.example", "marketing*@acme.example"}),
                 make("alerts", {"@acme.example"}, StreamKind::personal)};
  set.fallback.name = "default";
  BOOST_TEST(set.by_sender("news@acme.example").name == "campaigns");  // first match, though both match
  BOOST_TEST(set.by_sender("bob@acme.example").name == "alerts");
  BOOST_TEST(set.by_sender("bob@other.example").name == "default");
  BOOST_TEST(set.classify("bob@acme.example", std::string_view(" Campaigns\r\n")).name == "campaigns");
  BOOST_TEST(set.classify("news@acme.example", std::string_view("default")).name == "default");
  BOOST_TEST(set.classify("news@acme.example", std::string_view("nope")).name == "campaigns");  // unknown: by sender
  BOOST_TEST(set.classify("news@acme.example", std::nullopt).name == "campaigns");
}

BOOST_AUTO_TEST_CASE(consent_decisions) {
  using CS = ConsentState;
  BOOST_TEST(may_track(ConsentMode::required, CS::granted));
  BOOST_TEST(!may_track(ConsentMode::required, CS::none));
  BOOST_TEST(may_track(ConsentMode::implied, CS::none));
  for (CS s : {CS::revoked, CS::unsubscribed}) {
    BOOST_TEST(!may_track(ConsentMode::required, s));
    BOOST_TEST(!may_track(ConsentMode::implied, s));
  }
  Stream campaign = make("c", {}, StreamKind::campaign);
  campaign.suppress_unsubscribed = true;
  Stream personal = make("p", {}, StreamKind::personal);
  personal.suppress_unsubscribed = true;  // the loader refuses this; the rule holds anyway
  BOOST_TEST(suppressed(campaign, CS::unsubscribed));
  BOOST_TEST(!suppressed(campaign, CS::revoked));
  BOOST_TEST(!suppressed(personal, CS::unsubscribed));  // person-to-person mail is never blocked
  campaign.suppress_unsubscribed = false;
  BOOST_TEST(!suppressed(campaign, CS::unsubscribed));
  // A hard-bounced address: every campaign stream refuses it, person-to-person mail passes.
  BOOST_TEST(suppressed(campaign, CS::bounced));
  BOOST_TEST(!suppressed(personal, CS::bounced));
  BOOST_TEST(!may_track(ConsentMode::required, CS::bounced));
  BOOST_TEST(may_track(ConsentMode::implied, CS::bounced));
  BOOST_TEST((*parse_consent_state("bounced") == CS::bounced));
  BOOST_TEST(to_string(CS::bounced) == "bounced");
  auto r = suppression_reply("gone@example.net", "acme", CS::bounced);
  BOOST_TEST(r.rcode == "550");
  BOOST_TEST(r.xcode == "5.1.1");
  BOOST_TEST(r.text == "<gone@example.net> bounced permanently; not sent to again by acme");
  BOOST_TEST(suppression_reply("a@example.net", "acme", CS::unsubscribed).text ==
             "<a@example.net> unsubscribed from acme mailings");
}

BOOST_AUTO_TEST_CASE(a_message_is_tracked_only_when_every_recipient_may_be) {
  using CS = ConsentState;
  BOOST_TEST(consent_for_message(ConsentMode::required, {CS::granted, CS::granted}).allowed);
  auto mixed = consent_for_message(ConsentMode::required, {CS::granted, CS::none, CS::revoked});
  BOOST_TEST(!mixed.allowed);
  BOOST_TEST(mixed.refused == 2u);
  BOOST_TEST(consent_for_message(ConsentMode::implied, {CS::granted, CS::none}).allowed);
  BOOST_TEST(!consent_for_message(ConsentMode::implied, {CS::none, CS::unsubscribed}).allowed);
  BOOST_TEST(!consent_for_message(ConsentMode::implied, {}).allowed);
  BOOST_TEST((parse_consent_state("granted") == CS::granted));
  BOOST_TEST(!parse_consent_state("none"));
  BOOST_TEST(!parse_consent_state("Granted"));
}

BOOST_AUTO_TEST_CASE(consent_import_rows) {
  auto row = [](std::string_view l) { return std::get<ConsentRow>(parse_consent_row(l)); };
  auto error = [](std::string_view l) { return std::get<std::string>(parse_consent_row(l)); };
  ConsentRow r = row(" Bob@Example.NET , unsubscribed , 2026-11-29T10:00:00Z \r\n");
  BOOST_TEST(r.address == "Bob@example.net");
  BOOST_TEST((r.state == ConsentState::unsubscribed));
  BOOST_TEST(r.timestamp == "2026-11-29T10:00:00Z");
  BOOST_TEST(row("a@b.example,granted").timestamp.empty());
  for (std::string_view skip : {"", "   ", "# comment", "address,state,timestamp"}) BOOST_TEST(row(skip).address.empty());
  BOOST_TEST(error("a@b.example") == "expected address,state[,timestamp]");
  BOOST_TEST(error("a@b.example,granted,1,extra") == "expected address,state[,timestamp]");
  BOOST_TEST(error("nobody,granted").rfind("not an address", 0) == 0);
  BOOST_TEST(error("a b@c.example,granted").rfind("not an address", 0) == 0);
  BOOST_TEST(error("a@b.example,maybe").rfind("state must be", 0) == 0);
  BOOST_TEST(consent_address("<x@Y.example>") == "x@y.example");
  BOOST_TEST(consent_address("@y.example").empty());
  BOOST_TEST(consent_address("x@").empty());
}
