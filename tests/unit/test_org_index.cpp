#define BOOST_TEST_MODULE org_index
#include <boost/test/unit_test.hpp>

#include "policy/org_index.hpp"

using namespace cllavio::policy;

namespace {

Org org(std::string id, std::vector<std::string> domains, std::vector<std::string> logins,
        std::vector<std::string> nets, bool trust = false) {
  Org o;
  o.id = std::move(id);
  o.domains = std::move(domains);
  o.sasl_users = std::move(logins);
  for (const auto& n : nets) o.networks.push_back(*parse_network(n));
  o.trust_sender_domain = trust;
  return o;
}

const OrgIndex& index() {
  static const OrgIndex idx({
      org("acme", {"acme.example", "acme-mail.example"}, {"alice@acme.example", "@staff.acme.example"},
          {"192.0.2.0/24", "2001:db8::/32"}),
      org("globex", {"globex.example"}, {"@globex.example"}, {"192.0.2.0/24"}),
      org("initech", {"initech.example"}, {}, {}, true),
  });
  return idx;
}

std::string who(std::string_view login, std::string_view client, std::string_view sender, IdentifiedBy* by = nullptr) {
  std::optional<IpAddress> ip;
  if (!client.empty()) ip = parse_ip(client);
  Identification id = index().identify({login, ip, sender});
  if (by) *by = id.by;
  return id.org ? id.org->id : "-";
}

}  // namespace

BOOST_AUTO_TEST_CASE(sasl_login_wins_over_everything) {
  IdentifiedBy by;
  BOOST_TEST(who("alice@acme.example", "198.51.100.1", "someone@globex.example", &by) == "acme");
  BOOST_TEST((by == IdentifiedBy::sasl));
  BOOST_TEST(who("ALICE@Acme.Example", "", "") == "acme");          // case-insensitive
  BOOST_TEST(who("bob@staff.acme.example", "", "x@y.example") == "acme");  // login domain
  BOOST_TEST(who("carol@globex.example", "192.0.2.5", "carol@acme.example") == "globex");
}

BOOST_AUTO_TEST_CASE(unknown_login_falls_through_to_network_rule) {
  IdentifiedBy by;
  BOOST_TEST(who("mallory@elsewhere.example", "192.0.2.5", "x@acme.example", &by) == "acme");
  BOOST_TEST((by == IdentifiedBy::network));
  BOOST_TEST(who("bob@acme.example", "", "") == "-");  // exact login only; acme.example is no login domain
}

BOOST_AUTO_TEST_CASE(network_needs_client_in_network_and_sender_domain) {
  IdentifiedBy by;
  BOOST_TEST(who("", "192.0.2.5", "news@acme-mail.example", &by) == "acme");
  BOOST_TEST((by == IdentifiedBy::network));
  BOOST_TEST(who("", "192.0.2.5", "x@globex.example") == "globex");  // shared smarthost, domain decides
  BOOST_TEST(who("", "2001:db8:1::9", "x@acme.example") == "acme");
  BOOST_TEST(who("", "::ffff:192.0.2.5", "x@acme.example") == "acme");
  BOOST_TEST(who("", "198.51.100.1", "x@acme.example") == "-");      // right domain, wrong network
  BOOST_TEST(who("", "2001:db8::1", "x@globex.example") == "-");     // globex has no IPv6 network
  BOOST_TEST(who("", "192.0.2.5", "x@other.example") == "-");        // right network, foreign domain
  BOOST_TEST(who("", "", "x@acme.example") == "-");                  // no client address
}

BOOST_AUTO_TEST_CASE(null_sender_matches_only_an_unshared_network) {
  IdentifiedBy by;
  BOOST_TEST(who("", "2001:db8::25", "", &by) == "acme");  // only acme lists this network
  BOOST_TEST((by == IdentifiedBy::network));
  BOOST_TEST(who("", "192.0.2.25", "") == "-");           // acme and globex share it: ambiguous
}

BOOST_AUTO_TEST_CASE(sender_domain_alone_only_when_trusted) {
  IdentifiedBy by;
  BOOST_TEST(who("", "203.0.113.1", "ceo@initech.example", &by) == "initech");
  BOOST_TEST((by == IdentifiedBy::sender_domain));
  BOOST_TEST(who("", "203.0.113.1", "ceo@acme.example", &by) == "-");
  BOOST_TEST((by == IdentifiedBy::none));
  BOOST_TEST(who("", "203.0.113.1", "ceo@INITECH.example") == "initech");
}

BOOST_AUTO_TEST_CASE(find_and_labels) {
  BOOST_TEST(index().find("globex")->domains.front() == "globex.example");
  BOOST_TEST(index().find("nope") == nullptr);
  BOOST_TEST(to_string(IdentifiedBy::sender_domain) == "sender_domain");
  BOOST_TEST(OrgIndex().identify({"a@b", parse_ip("192.0.2.1"), "a@b"}).org == nullptr);
}
