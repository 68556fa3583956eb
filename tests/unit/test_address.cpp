#define BOOST_TEST_MODULE address
#include <boost/test/unit_test.hpp>

#include "policy/address.hpp"

using namespace cllavio::policy;

BOOST_AUTO_TEST_CASE(normalize_strips_brackets_and_lowercases_domain_only) {
  BOOST_TEST(normalize_address("<Alice@ACME.Example>") == "Alice@acme.example");
  BOOST_TEST(normalize_address("  <bob@x.example.>  ") == "bob@x.example");
  BOOST_TEST(normalize_address("<>") == "");
  BOOST_TEST(normalize_address("postmaster") == "postmaster");
  BOOST_TEST(normalize_address("<\"a@b\"@Quoted.Example>") == "\"a@b\"@quoted.example");
}

BOOST_AUTO_TEST_CASE(domain_of_takes_last_at) {
  BOOST_TEST(domain_of("a@B.example") == "b.example");
  BOOST_TEST(domain_of("\"x@y\"@Z.example") == "z.example");
  BOOST_TEST(domain_of("nodomain") == "");
  BOOST_TEST(domain_of("") == "");
  BOOST_TEST(domain_of("a@") == "");
}

BOOST_AUTO_TEST_CASE(valid_domains) {
  for (const char* ok : {"acme.example", "a.b-c.example", "localhost", "xn--bcher-kva.example", "1.example"})
    BOOST_TEST_CONTEXT(ok) { BOOST_TEST(is_valid_domain(ok)); }
  for (const char* bad : {"", ".acme", "acme.", "a..b", "-a.example", "a-.example", "a_b.example",
                          "ACME.example", "acme example", "bücher.example"})
    BOOST_TEST_CONTEXT(bad) { BOOST_TEST(!is_valid_domain(bad)); }
  BOOST_TEST(!is_valid_domain(std::string(64, 'a') + ".example"));
  BOOST_TEST(is_valid_domain(std::string(63, 'a') + ".example"));
}
