#define BOOST_TEST_MODULE network
#include <boost/test/unit_test.hpp>

#include "policy/network.hpp"

using namespace cllavio::policy;

BOOST_AUTO_TEST_CASE(parses_ipv4_and_ipv6) {
  auto a = parse_ip("192.0.2.10");
  BOOST_REQUIRE(a);
  BOOST_TEST(!a->v6);
  BOOST_TEST(a->to_string() == "192.0.2.10");
  auto b = parse_ip("2001:DB8::1");
  BOOST_REQUIRE(b);
  BOOST_TEST(b->v6);
  BOOST_TEST(b->to_string() == "2001:db8::1");
  BOOST_TEST(parse_ip("[2001:db8::1]")->to_string() == "2001:db8::1");
}

BOOST_AUTO_TEST_CASE(v4_mapped_addresses_are_ipv4) {
  auto a = parse_ip("::ffff:192.0.2.7");
  BOOST_REQUIRE(a);
  BOOST_TEST(!a->v6);
  BOOST_TEST(parse_network("192.0.2.0/24")->contains(*a));
  auto n = parse_network("::ffff:192.0.2.0/120");
  BOOST_REQUIRE(n);
  BOOST_TEST(n->to_string() == "192.0.2.0/24");
  BOOST_TEST(!parse_network("::ffff:192.0.2.0/64"));
}

BOOST_AUTO_TEST_CASE(rejects_garbage) {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "abc", "1.2.3.4 ", "::g", "[1.2.3.4", "1.2.3.4/",
                          "1.2.3.4/33", "2001:db8::/129", "1.2.3.0/-1", "1.2.3.0/2x", "1.2.3.0/0008"}) {
    BOOST_TEST_CONTEXT(bad) { BOOST_TEST(!parse_network(bad)); }
  }
  std::string with_nul("1.2.3.4\0", 8);
  BOOST_TEST(!parse_ip(with_nul));
}

BOOST_AUTO_TEST_CASE(host_bits_below_prefix_are_an_error) {
  BOOST_TEST(!parse_network("192.0.2.1/24"));
  BOOST_TEST(!parse_network("2001:db8::1/32"));
  BOOST_TEST(parse_network("192.0.2.1")->to_string() == "192.0.2.1/32");
  BOOST_TEST(parse_network("0.0.0.0/0")->to_string() == "0.0.0.0/0");
}

BOOST_AUTO_TEST_CASE(contains_respects_prefix_and_family) {
  auto n = *parse_network("10.1.128.0/17");
  BOOST_TEST(n.contains(*parse_ip("10.1.128.0")));
  BOOST_TEST(n.contains(*parse_ip("10.1.255.255")));
  BOOST_TEST(!n.contains(*parse_ip("10.1.127.255")));
  BOOST_TEST(!n.contains(*parse_ip("::ffff:10.1.127.1")));
  auto v6 = *parse_network("2001:db8::/32");
  BOOST_TEST(v6.contains(*parse_ip("2001:db8:ffff::1")));
  BOOST_TEST(!v6.contains(*parse_ip("2001:db9::1")));
  BOOST_TEST(!v6.contains(*parse_ip("10.1.128.1")));
  BOOST_TEST(parse_network("0.0.0.0/0")->contains(*parse_ip("203.0.113.9")));
  BOOST_TEST(!parse_network("0.0.0.0/0")->contains(*parse_ip("2001:db8::1")));
}
