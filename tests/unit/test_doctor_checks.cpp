#define BOOST_TEST_MODULE doctor_checks
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <set>

#include "doctor/checks.hpp"
#include "doctor/milter_list.hpp"

using namespace cllavio::doctor;

namespace {

const std::string kDir = "/tmp/pf/etc";
const std::string kPc = "postconf -c /tmp/pf/etc";

Service svc(std::string name, std::string type, std::string chroot, std::string command,
            std::map<std::string, std::string> overrides = {}) {
  return Service{std::move(name), std::move(type), std::move(chroot), std::move(command), std::move(overrides)};
}

// A Debian-like instance wired right: chrooted smtpd, the milter's socket under the spool,
// before opendkim, a content filter's re-injection service skipping milters.
Facts good() {
  Facts f;
  PostfixInstance pf;
  pf.config_dir = kDir;
  pf.readable = true;
  pf.main = {
      {"queue_directory", "/var/spool/postfix"},
      {"smtpd_milters", "unix:cllavio/milter.sock, inet:localhost:8891"},
      {"non_smtpd_milters", "$smtpd_milters"},
      {"milter_default_action", "accept"},
      {"milter_protocol", "6"},
      {"milter_command_timeout", "30s"},
      {"milter_content_timeout", "300s"},
      {"milter_mail_macros", "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}"},
      {"milter_end_of_data_macros", "i"},
      {"enable_long_queue_ids", "yes"},
      {"receive_override_options", ""},
      {"smtpd_milter_maps", ""},
  };
  pf.services = {
      svc("smtp", "inet", "y", "smtpd"),
      svc("submission", "inet", "y", "smtpd", {{"smtpd_tls_security_level", "encrypt"}}),
      svc("pickup", "unix", "y", "pickup"),
      svc("cleanup", "unix", "n", "cleanup"),
      svc("127.0.0.1:10025", "inet", "n", "smtpd",
          {{"receive_override_options", "no_unknown_recipient_checks,no_header_body_checks,no_milters"}}),
  };
  f.instances.push_back(pf);
  f.signers.push_back({"opendkim", "inet:127.0.0.1:8891", "/etc/opendkim.conf"});
  auto& m = f.milter;
  m.config_file = "/etc/cllavio/cllavio.toml";
  m.config_ok = true;
  m.socket = "unix:/var/spool/postfix/cllavio/milter.sock";
  m.socket_postfix = "unix:/var/spool/postfix/cllavio/milter.sock";
  m.delivery_enabled = true;
  m.delivery_log = "/var/log/mail.log";
  m.delivery_log_readable = true;
  m.secrets_file = "/etc/cllavio/secrets.toml";
  m.secrets_mode = 0600;
  m.secrets_owner = "cllavio";
  m.milter_user = "cllavio";
  m.store_map_used_ratio = 0.1;
  m.outbox_events = 2;
  m.outbox_oldest_age_s = 12;
  m.dead_letters = 0;
  m.api_url = "https://api.example.test/v1";
  m.api_reachable = true;
  m.connect = {true, true, ""};
  return f;
}

std::vector<Finding> with_id(const std::vector<Finding>& fs, std::string_view id) {
  std::vector<Finding> out;
  std::copy_if(fs.begin(), fs.end(), std::back_inserter(out), [&](const Finding& f) { return f.id == id; });
  return out;
}

// The one finding with this id.
Finding only(const Facts& facts, std::string_view id) {
  const auto fs = with_id(check(facts), id);
  BOOST_REQUIRE_MESSAGE(fs.size() == 1, "expected one " << id << ", got " << fs.size());
  return fs[0];
}

void expect_ok(const Facts& facts, std::string_view id) {
  const auto fs = with_id(check(facts), id);
  BOOST_REQUIRE_MESSAGE(fs.size() == 1, "expected one " << id << ", got " << fs.size());
  BOOST_TEST_MESSAGE(fs[0].title);
  BOOST_TEST(to_string(fs[0].severity) == "ok", id << ": " << fs[0].title);
}

std::string& main_cf(Facts& f, const std::string& name) { return f.instances[0].main[name]; }
Service& service(Facts& f, const std::string& name) {
  for (auto& s : f.instances[0].services)
    if (s.name == name) return s;
  BOOST_FAIL("no service " + name);
  throw;
}

}  // namespace

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

// ---------------------------------------------------------------- a right configuration

BOOST_AUTO_TEST_CASE(a_right_configuration_reads_as_a_checklist) {
  const auto fs = check(good());
  for (const auto& f : fs) BOOST_TEST_MESSAGE(to_string(f.severity) << " " << f.id << ": " << f.title);
  BOOST_TEST(exit_code(fs) == 0);
  std::set<std::string> ok_ids;
  for (const auto& f : fs) {
    if (f.severity == Severity::ok) {
      ok_ids.insert(f.id);
      BOOST_TEST(f.fix.empty());
      BOOST_TEST(!f.title.empty());
    }
  }
  for (const char* id :
       {"postfix.unreadable", "milter.not_in_smtpd_milters", "milter.libmilter_syntax", "milter.not_in_non_smtpd_milters",
        "milter.service_drops", "milter.no_milters_main", "milter.maps", "milter.after_signer", "socket.not_in_chroot",
        "socket.connect", "default_action.unset", "protocol.old", "timeout.command", "timeout.content",
        "macros.auth_authen", "macros.queue_id", "delivery.long_queue_ids", "delivery.log", "config.invalid",
        "secrets.mode", "secrets.owner", "store.unavailable", "store.map_space", "outbox.age", "outbox.dead_letters",
        "api.unreachable"})
    BOOST_TEST(ok_ids.count(id) == 1u, id);
  // The only non-ok finding: the content filter's re-injection service, which is right.
  const auto drops = with_id(fs, "milter.service_drops");
  BOOST_REQUIRE(drops.size() == 2u);
  BOOST_TEST(to_string(drops[0].severity) == "info");
  BOOST_TEST(drops[0].title.find("127.0.0.1:10025/inet") != std::string::npos);
  BOOST_TEST(drops[0].fix.empty());
  for (const auto& f : fs) {
    if (f.id.starts_with("postfix.") || f.id.starts_with("milter.") || f.id.starts_with("default_action.") ||
        f.id.starts_with("protocol.") || f.id.starts_with("timeout.") || f.id.starts_with("macros.") ||
        f.id == "socket.not_in_chroot" || f.id == "delivery.long_queue_ids")
      BOOST_TEST(f.instance == kDir, f.id);
    else
      BOOST_TEST(f.instance == "", f.id);
  }
}
