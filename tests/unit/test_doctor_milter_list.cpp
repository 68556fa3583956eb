#define BOOST_TEST_MODULE doctor_milter_list
#include <boost/test/unit_test.hpp>

#include "doctor/finding.hpp"
#include "doctor/milter_list.hpp"

using namespace cllavio::doctor;

// ---------------------------------------------------------------- finding.hpp

BOOST_AUTO_TEST_CASE(exit_code_is_the_worst_severity) {
  auto f = [](Severity s) { return Finding{"x", s, "", "", "", ""}; };
  BOOST_TEST(exit_code({}) == 0);
  BOOST_TEST(exit_code({f(Severity::ok), f(Severity::info)}) == 0);
  BOOST_TEST(exit_code({f(Severity::ok), f(Severity::warning), f(Severity::info)}) == 1);
  BOOST_TEST(exit_code({f(Severity::error), f(Severity::warning)}) == 2);
  BOOST_TEST(exit_code({f(Severity::warning), f(Severity::error)}) == 2);
  BOOST_TEST(to_string(Severity::warning) == "warning");
  BOOST_TEST(to_string(Severity::error) == "error");
}

BOOST_AUTO_TEST_CASE(shell_quote_single_quotes) {
  BOOST_TEST(shell_quote("abc") == "'abc'");
  BOOST_TEST(shell_quote("it's") == "'it'\\''s'");
  BOOST_TEST(shell_quote("") == "''");
  BOOST_TEST(shell_quote("a = $b, c") == "'a = $b, c'");
}

// ---------------------------------------------------------------- milter lists

BOOST_AUTO_TEST_CASE(expansion_of_parameters) {
  const Params p = {{"a", "A"}, {"b", "$a-${a}-$(a)"}, {"c", "${b}!"}, {"empty", ""}, {"loop", "$loop"}};
  BOOST_TEST(expand("$a", p) == "A");
  BOOST_TEST(expand("x ${c} y", p) == "x A-A-A! y");
  BOOST_TEST(expand("$unknown.", p) == ".");
  BOOST_TEST(expand("$$a", p) == "$a");
  BOOST_TEST(expand("${a?set}", p) == "set");
  BOOST_TEST(expand("${empty?set}", p) == "");
  BOOST_TEST(expand("${empty:unset $a}", p) == "unset A");
  BOOST_TEST(expand("${a:unset}", p) == "");
  BOOST_TEST(expand("${a?{yes $a}:{no}}", p) == "yes A");
  BOOST_TEST(expand("${empty?{yes}:{no}}", p) == "no");
  BOOST_TEST(expand("${a", p) == "${a");  // unterminated: as written
  BOOST_TEST(expand("$loop", p) == "$loop");  // bounded

  // Each level quadruples the text: the number of substitutions is bounded.
  Params blow;
  for (char c = 'a'; c < 'z'; ++c) {
    const std::string next(1, static_cast<char>(c + 1));
    blow[std::string(1, c)] = "$" + next + "$" + next + "$" + next + "$" + next;
  }
  blow["z"] = "Z";
  const std::string big = expand("$a", blow);
  BOOST_TEST(big.size() < 1'000'000u);
  BOOST_TEST(big.find('$') != std::string::npos);  // the rest kept as written
  blow["e"] = "Z";                                  // a..e: 4^4 substitutions, well within
  BOOST_TEST(expand("$a", blow) == std::string(256, 'Z'));
}

BOOST_AUTO_TEST_CASE(milter_list_entries) {
  auto e = parse_milter_list(" unix:a.sock,inet:localhost:8891 ,, inet:[::1]:99\tunix:/b ");
  BOOST_REQUIRE(e.size() == 4u);
  BOOST_TEST(e[0].endpoint == "unix:a.sock");
  BOOST_TEST(e[1].endpoint == "inet:localhost:8891");
  BOOST_TEST(e[2].endpoint == "inet:[::1]:99");
  BOOST_TEST(e[3].endpoint == "unix:/b");
  BOOST_TEST(parse_milter_list("").empty());
  BOOST_TEST(parse_milter_list(" , ").empty());

  e = parse_milter_list("{ inet:localhost:8891, connect_timeout=10s, default_action = accept }, unix:x");
  BOOST_REQUIRE(e.size() == 2u);
  BOOST_TEST(e[0].endpoint == "inet:localhost:8891");
  BOOST_REQUIRE(e[0].settings.size() == 2u);
  BOOST_REQUIRE(e[0].setting("default_action"));
  BOOST_TEST(*e[0].setting("default_action") == "accept");
  BOOST_TEST(*e[0].setting("connect_timeout") == "10s");
  BOOST_TEST(!e[0].setting("command_timeout"));
  BOOST_TEST(e[0].text == "{ inet:localhost:8891, connect_timeout=10s, default_action = accept }");
  BOOST_TEST(e[0].with_endpoint("unix:y") == "{ unix:y, connect_timeout=10s, default_action=accept }");
  BOOST_TEST(e[1].endpoint == "unix:x");
  BOOST_TEST(e[1].with_endpoint("unix:z") == "unix:z");
  BOOST_TEST(join_milter_list(e) == "{ inet:localhost:8891, connect_timeout=10s, default_action = accept }, unix:x");

  e = parse_milter_list("{inet:h:1 default_action=tempfail}");
  BOOST_REQUIRE(e.size() == 1u);
  BOOST_TEST(e[0].endpoint == "inet:h:1");
  BOOST_TEST(*e[0].setting("default_action") == "tempfail");
}

BOOST_AUTO_TEST_CASE(libmilter_syntax_is_recognized) {
  BOOST_TEST(libmilter_to_postfix("inet:8891@localhost").value() == "inet:localhost:8891");
  BOOST_TEST(libmilter_to_postfix("inet:8891@127.0.0.1").value() == "inet:127.0.0.1:8891");
  BOOST_TEST(libmilter_to_postfix("8891@localhost").value() == "inet:localhost:8891");
  BOOST_TEST(libmilter_to_postfix("inet6:8891@::1").value() == "inet:[::1]:8891");
  BOOST_TEST(libmilter_to_postfix("inet:8891@[::1]").value() == "inet:[::1]:8891");
  BOOST_TEST(libmilter_to_postfix("/run/opendkim.sock").value() == "unix:/run/opendkim.sock");
  BOOST_TEST(!libmilter_to_postfix("inet:localhost:8891"));
  BOOST_TEST(!libmilter_to_postfix("inet:[::1]:8891"));
  BOOST_TEST(!libmilter_to_postfix("unix:/run/x.sock"));
  BOOST_TEST(!libmilter_to_postfix("unix:rel/x.sock"));
  BOOST_TEST(!libmilter_to_postfix("local:/run/x.sock"));  // Postfix's milter8.c accepts local: too
}

BOOST_AUTO_TEST_CASE(endpoints) {
  auto e = parse_endpoint("inet:LocalHost:8891");
  BOOST_TEST((e.kind == Endpoint::Kind::inet));
  BOOST_TEST(e.host == "localhost");
  BOOST_TEST(e.port == "8891");
  e = parse_endpoint("inet:[::1]:8891");
  BOOST_TEST(e.host == "::1");
  BOOST_TEST((parse_endpoint("unix:rel/x").kind == Endpoint::Kind::unix_path));
  BOOST_TEST(parse_endpoint("local:/x").path == "/x");
  BOOST_TEST((parse_endpoint("inet:8891@localhost").kind == Endpoint::Kind::invalid));
  BOOST_TEST((parse_endpoint("inet:localhost").kind == Endpoint::Kind::invalid));
  BOOST_TEST((parse_endpoint("tcp:x:1").kind == Endpoint::Kind::invalid));
  BOOST_TEST((parse_endpoint("unix:").kind == Endpoint::Kind::invalid));
}

BOOST_AUTO_TEST_CASE(endpoint_equivalence) {
  const std::string q = "/var/spool/postfix";
  BOOST_TEST(same_endpoint("inet:localhost:8891", "inet:127.0.0.1:8891", q));
  BOOST_TEST(same_endpoint("inet:127.0.0.1:8891", "inet:localhost:8891", q));
  BOOST_TEST(same_endpoint("inet:[::1]:8891", "inet:localhost:8891", q));
  BOOST_TEST(same_endpoint("inet:localhost:8891", "inet:[::1]:8891", q));
  BOOST_TEST(same_endpoint("inet:127.0.0.1:8891", "inet:0.0.0.0:8891", q));
  BOOST_TEST(!same_endpoint("inet:127.0.0.1:8891", "inet:[::1]:8891", q));
  BOOST_TEST(!same_endpoint("inet:localhost:8892", "inet:localhost:8891", q));
  BOOST_TEST(!same_endpoint("inet:mx.example:8891", "inet:localhost:8891", q));
  BOOST_TEST(same_endpoint("inet:8891@localhost", "inet:127.0.0.1:8891", q));  // libmilter form, same socket
  BOOST_TEST(!same_endpoint("unix:/var/spool/postfix/x", "inet:localhost:1", q));

  const std::string ours = "unix:/var/spool/postfix/cllavio/milter.sock";
  BOOST_TEST(same_endpoint("unix:cllavio/milter.sock", ours, q));
  BOOST_TEST(same_endpoint("unix:cllavio/milter.sock", ours, q, true));
  BOOST_TEST(same_endpoint("unix:cllavio/milter.sock", ours, q, false));
  BOOST_TEST(same_endpoint("unix:./cllavio//milter.sock", ours, q, false));
  BOOST_TEST(same_endpoint("unix:/var/spool/postfix/cllavio/milter.sock", ours, q, false));
  BOOST_TEST(!same_endpoint("unix:/var/spool/postfix/cllavio/milter.sock", ours, q, true));
  BOOST_TEST(same_endpoint("unix:/cllavio/milter.sock", ours, q, true));
  BOOST_TEST(!same_endpoint("unix:/cllavio/milter.sock", ours, q, false));
  BOOST_TEST(same_endpoint("unix:/cllavio/milter.sock", ours, q));  // under some reading
  BOOST_TEST(same_endpoint("local:/var/spool/postfix/cllavio/milter.sock", ours, q, false));
  BOOST_TEST(!same_endpoint("unix:cllavio/other.sock", ours, q));
  BOOST_TEST(seen_path("/run/x.sock", true, "/var/spool/postfix/") == "/var/spool/postfix/run/x.sock");
  BOOST_TEST(seen_path("/run/x.sock", false, "/var/spool/postfix") == "/run/x.sock");
  BOOST_TEST(seen_path("x/../y.sock", false, "/q") == "/q/y.sock");
}
