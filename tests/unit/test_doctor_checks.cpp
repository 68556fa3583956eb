#define BOOST_TEST_MODULE doctor_checks
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <set>

#include "doctor/checks.hpp"
#include "doctor_checks_fixture.hpp"

using namespace cllavio::doctor;
using namespace cllavio::doctor::test;

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

// ---------------------------------------------------------------- each finding: wrong, then fixed

BOOST_AUTO_TEST_CASE(postfix_unreadable) {
  Facts f = good();
  f.instances[0].readable = false;
  f.instances[0].error = "postconf: fatal: open /tmp/pf/etc/main.cf: No such file or directory";
  const auto fs = check_instance(f.instances[0], f);
  BOOST_REQUIRE(fs.size() == 1u);  // nothing else can be judged
  BOOST_TEST(fs[0].id == "postfix.unreadable");
  BOOST_TEST(to_string(fs[0].severity) == "error");
  BOOST_TEST(fs[0].title.find("No such file") != std::string::npos);
  BOOST_TEST(exit_code(check(f)) == 2);
  f.instances[0].readable = true;
  expect_ok(f, "postfix.unreadable");
}

BOOST_AUTO_TEST_CASE(not_in_smtpd_milters) {
  Facts f = good();
  main_cf(f, "smtpd_milters") = "inet:localhost:8891";
  main_cf(f, "non_smtpd_milters") = "unix:cllavio/milter.sock, inet:localhost:8891";
  auto x = only(f, "milter.not_in_smtpd_milters");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.instance == kDir);
  // Ours goes before the signer, relative to queue_directory (what a chrooted smtpd sees).
  BOOST_TEST(x.fix == kPc + " -e 'smtpd_milters = unix:cllavio/milter.sock, inet:localhost:8891'");
  main_cf(f, "smtpd_milters") = "unix:cllavio/milter.sock, inet:localhost:8891";
  expect_ok(f, "milter.not_in_smtpd_milters");

  // Empty list; the default instance's config dir gets no -c.
  f = good();
  f.instances[0].config_dir = "/etc/postfix";
  main_cf(f, "smtpd_milters") = "";
  x = only(f, "milter.not_in_smtpd_milters");
  BOOST_TEST(x.fix == "postconf -e 'smtpd_milters = unix:cllavio/milter.sock'");
  BOOST_TEST(x.instance == "/etc/postfix");

  // A config dir with a space is quoted.
  f = good();
  f.instances[0].config_dir = "/tmp/my pf";
  main_cf(f, "smtpd_milters") = "inet:localhost:8891";
  BOOST_TEST(only(f, "milter.not_in_smtpd_milters").fix ==
             "postconf -c '/tmp/my pf' -e 'smtpd_milters = unix:cllavio/milter.sock, inet:localhost:8891'");

  // Found through nested $var / ${var} references.
  f = good();
  main_cf(f, "smtpd_milters") = "$site_milters";
  main_cf(f, "site_milters") = "${cllavio_milter}, $dkim_milter";
  main_cf(f, "cllavio_milter") = "unix:cllavio/milter.sock";
  main_cf(f, "dkim_milter") = "inet:localhost:8891";
  expect_ok(f, "milter.not_in_smtpd_milters");
  expect_ok(f, "milter.after_signer");
  // postconf -x's expanded values win over our own expansion when gathered.
  f.instances[0].expanded["smtpd_milters"] = "inet:localhost:8891";
  BOOST_TEST(to_string(only(f, "milter.not_in_smtpd_milters").severity) == "error");

  // An inet socket: localhost and 127.0.0.1 are the same endpoint.
  f = good();
  f.milter.socket = f.milter.socket_postfix = "inet:127.0.0.1:10027";
  main_cf(f, "smtpd_milters") = "inet:localhost:10027, inet:localhost:8891";
  expect_ok(f, "milter.not_in_smtpd_milters");
  main_cf(f, "smtpd_milters") = "inet:localhost:8891";
  BOOST_TEST(only(f, "milter.not_in_smtpd_milters").fix ==
             kPc + " -e 'smtpd_milters = inet:127.0.0.1:10027, inet:localhost:8891'");
  BOOST_TEST(with_id(check(f), "socket.not_in_chroot").empty());  // not a unix socket
}

BOOST_AUTO_TEST_CASE(libmilter_syntax) {
  Facts f = good();
  main_cf(f, "smtpd_milters") = "unix:cllavio/milter.sock, inet:8891@localhost";
  main_cf(f, "non_smtpd_milters") = "unix:cllavio/milter.sock";
  auto x = only(f, "milter.libmilter_syntax");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.title.find("inet:8891@localhost (Postfix: inet:localhost:8891)") != std::string::npos);
  BOOST_TEST(x.fix == kPc + " -e 'smtpd_milters = unix:cllavio/milter.sock, inet:localhost:8891'");
  main_cf(f, "smtpd_milters") = "unix:cllavio/milter.sock, inet:localhost:8891";
  expect_ok(f, "milter.libmilter_syntax");

  // Our own socket in libmilter syntax: counted as listed, reported as libmilter syntax.
  f = good();
  f.milter.socket = "inet:10027@127.0.0.1";
  f.milter.socket_postfix = "inet:127.0.0.1:10027";
  main_cf(f, "smtpd_milters") = "{ 10027@127.0.0.1, default_action=accept }, inet:localhost:8891";
  main_cf(f, "non_smtpd_milters") = "";
  const auto fs = check(f);
  x = only(f, "milter.libmilter_syntax");
  BOOST_TEST(x.fix == kPc + " -e 'smtpd_milters = { inet:127.0.0.1:10027, default_action=accept }, inet:localhost:8891'");
  BOOST_TEST(to_string(only(f, "milter.not_in_smtpd_milters").severity) == "ok");

  // In a master.cf override: fixed with postconf -P, no spaces in the -o value.
  f = good();
  service(f, "submission").overrides["smtpd_milters"] = "unix:cllavio/milter.sock,inet6:8891@::1";
  x = only(f, "milter.libmilter_syntax");
  BOOST_TEST(x.title.find("submission/inet -o smtpd_milters") != std::string::npos);
  BOOST_TEST(x.fix == kPc + " -P 'submission/inet/smtpd_milters=unix:cllavio/milter.sock,inet:[::1]:8891'");
}

BOOST_AUTO_TEST_CASE(not_in_non_smtpd_milters) {
  Facts f = good();
  main_cf(f, "non_smtpd_milters") = "inet:localhost:8891";
  auto x = only(f, "milter.not_in_non_smtpd_milters");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.fix == kPc + " -e 'non_smtpd_milters = unix:cllavio/milter.sock, inet:localhost:8891'");
  BOOST_TEST(exit_code(check(f)) == 1);
  main_cf(f, "non_smtpd_milters") = "unix:cllavio/milter.sock, inet:localhost:8891";
  expect_ok(f, "milter.not_in_non_smtpd_milters");
  BOOST_TEST(exit_code(check(f)) == 0);

  main_cf(f, "non_smtpd_milters") = "";
  BOOST_TEST(only(f, "milter.not_in_non_smtpd_milters").fix == kPc + " -e 'non_smtpd_milters = unix:cllavio/milter.sock'");
}

BOOST_AUTO_TEST_CASE(service_drops_public) {
  // -o smtpd_milters= (empty) on submission: drop the override, main.cf's list applies.
  Facts f = good();
  service(f, "submission").overrides["smtpd_milters"] = "";
  auto fs = with_id(check(f), "milter.service_drops");
  auto err = std::find_if(fs.begin(), fs.end(), [](const Finding& x) { return x.severity == Severity::error; });
  BOOST_REQUIRE(err != fs.end());
  BOOST_TEST(err->title.find("submission/inet") != std::string::npos);
  BOOST_TEST(err->fix == kPc + " -PX 'submission/inet/smtpd_milters'");
  BOOST_TEST(exit_code(check(f)) == 2);
  service(f, "submission").overrides.erase("smtpd_milters");
  fs = with_id(check(f), "milter.service_drops");
  BOOST_TEST(std::count_if(fs.begin(), fs.end(), [](const Finding& x) { return x.severity == Severity::ok; }) == 1);
  BOOST_TEST(std::count_if(fs.begin(), fs.end(), [](const Finding& x) { return x.severity == Severity::error; }) == 0);

  // A list of its own without ours: ours added before the signer.
  f = good();
  service(f, "submission").overrides["smtpd_milters"] = "inet:localhost:8891";
  fs = with_id(check(f), "milter.service_drops");
  err = std::find_if(fs.begin(), fs.end(), [](const Finding& x) { return x.severity == Severity::error; });
  BOOST_REQUIRE(err != fs.end());
  BOOST_TEST(err->fix == kPc + " -P 'submission/inet/smtpd_milters=unix:cllavio/milter.sock,inet:localhost:8891'");
  service(f, "submission").overrides["smtpd_milters"] = "unix:cllavio/milter.sock,inet:localhost:8891";
  fs = with_id(check(f), "milter.service_drops");
  BOOST_TEST(std::count_if(fs.begin(), fs.end(), [](const Finding& x) { return x.severity == Severity::error; }) == 0);

  // A $reference in the override is expanded from main.cf.
  service(f, "submission").overrides["smtpd_milters"] = "$smtpd_milters";
  fs = with_id(check(f), "milter.service_drops");
  BOOST_TEST(std::count_if(fs.begin(), fs.end(), [](const Finding& x) { return x.severity == Severity::error; }) == 0);

  // receive_override_options with no_milters on smtp: only that option goes.
  f = good();
  service(f, "smtp").overrides["receive_override_options"] = "no_header_body_checks, no_milters";
  fs = with_id(check(f), "milter.service_drops");
  err = std::find_if(fs.begin(), fs.end(), [](const Finding& x) { return x.severity == Severity::error; });
  BOOST_REQUIRE(err != fs.end());
  BOOST_TEST(err->title.find("smtp/inet") != std::string::npos);
  BOOST_TEST(err->fix == kPc + " -P 'smtp/inet/receive_override_options=no_header_body_checks'");
  service(f, "smtp").overrides["receive_override_options"] = "no_milters";
  fs = with_id(check(f), "milter.service_drops");
  err = std::find_if(fs.begin(), fs.end(), [](const Finding& x) { return x.severity == Severity::error; });
  BOOST_REQUIRE(err != fs.end());
  BOOST_TEST(err->fix == kPc + " -PX 'smtp/inet/receive_override_options'");

  // Both on one service: two fix lines. A non-loopback address counts as public, and so does
  // postscreen's smtpd (type pass).
  f = good();
  f.instances[0].services.push_back(svc("192.0.2.1:587", "inet", "n", "smtpd",
                                        {{"smtpd_milters", ""}, {"receive_override_options", "no_milters"}}));
  f.instances[0].services.push_back(svc("smtpd", "pass", "y", "smtpd", {{"receive_override_options", "no_milters"}}));
  fs = with_id(check(f), "milter.service_drops");
  std::vector<Finding> errors;
  std::copy_if(fs.begin(), fs.end(), std::back_inserter(errors), [](const Finding& x) { return x.severity == Severity::error; });
  BOOST_REQUIRE(errors.size() == 2u);
  BOOST_TEST(errors[0].fix == kPc + " -PX '192.0.2.1:587/inet/smtpd_milters'\n" + kPc +
                                  " -PX '192.0.2.1:587/inet/receive_override_options'");
  BOOST_TEST(errors[1].fix == kPc + " -PX 'smtpd/pass/receive_override_options'");
}

BOOST_AUTO_TEST_CASE(service_drops_reinjection_is_info) {
  Facts f = good();
  f.instances[0].services.push_back(svc("[::1]:10025", "inet", "n", "smtpd", {{"smtpd_milters", ""}}));
  f.instances[0].services.push_back(svc("localhost:10027", "inet", "n", "smtpd", {{"receive_override_options", "no_milters"}}));
  const auto fs = with_id(check(f), "milter.service_drops");
  BOOST_REQUIRE(fs.size() == 4u);  // three re-injection services, then the ok
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST(to_string(fs[i].severity) == "info");
    BOOST_TEST(fs[i].fix.empty());
    BOOST_TEST(fs[i].why.find("normally right") != std::string::npos);
  }
  BOOST_TEST(to_string(fs[3].severity) == "ok");
  BOOST_TEST(exit_code(check(f)) == 0);
  BOOST_TEST(fs[0].why.find("no content_filter") != std::string::npos);  // good() sets none
  // With a content filter in sight the note about local applications goes.
  main_cf(f, "content_filter") = "smtp-amavis:[127.0.0.1]:10024";
  BOOST_TEST(with_id(check(f), "milter.service_drops")[0].why.find("no content_filter") == std::string::npos);
  main_cf(f, "content_filter") = "";
  service(f, "127.0.0.1:10025").overrides["content_filter"] = "";
  BOOST_TEST(with_id(check(f), "milter.service_drops")[0].why.find("no content_filter") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(no_milters_in_main) {
  Facts f = good();
  main_cf(f, "receive_override_options") = "no_address_mappings, no_milters";
  auto x = only(f, "milter.no_milters_main");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.fix == kPc + " -e 'receive_override_options = no_address_mappings'");
  main_cf(f, "receive_override_options") = "no_milters";
  BOOST_TEST(only(f, "milter.no_milters_main").fix == kPc + " -X receive_override_options");
  main_cf(f, "receive_override_options") = "no_address_mappings";
  expect_ok(f, "milter.no_milters_main");
}

BOOST_AUTO_TEST_CASE(milter_maps) {
  Facts f = good();
  main_cf(f, "smtpd_milter_maps") = "cidr:/etc/postfix/milter_map, hash:/etc/postfix/m2";
  auto x = only(f, "milter.maps");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.fix.empty());  // not wrong as such: say how to look
  BOOST_TEST(x.why.find("postmap -q CLIENT_ADDRESS cidr:/etc/postfix/milter_map") != std::string::npos);
  BOOST_TEST(x.why.find("postmap -q CLIENT_ADDRESS hash:/etc/postfix/m2") != std::string::npos);
  main_cf(f, "smtpd_milter_maps") = "";
  expect_ok(f, "milter.maps");
}

BOOST_AUTO_TEST_CASE(after_signer) {
  Facts f = good();
  main_cf(f, "smtpd_milters") = "inet:localhost:8891, unix:cllavio/milter.sock";
  main_cf(f, "non_smtpd_milters") = "unix:cllavio/milter.sock, inet:localhost:8891";
  auto x = only(f, "milter.after_signer");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.title.find("opendkim") != std::string::npos);
  BOOST_TEST(x.fix == kPc + " -e 'smtpd_milters = unix:cllavio/milter.sock, inet:localhost:8891'");
  main_cf(f, "smtpd_milters") = "unix:cllavio/milter.sock, inet:localhost:8891";
  expect_ok(f, "milter.after_signer");

  // Per-milter settings travel with the entry; another milter between keeps its place.
  f = good();
  f.signers.push_back({"rspamd", "inet:localhost:11332", "well-known"});
  main_cf(f, "non_smtpd_milters") = "unix:cllavio/milter.sock";
  main_cf(f, "smtpd_milters") =
      "inet:other:1, { inet:127.0.0.1:11332, default_action=accept }, inet:localhost:8891, { unix:cllavio/milter.sock, "
      "default_action=tempfail }";
  x = only(f, "milter.after_signer");
  BOOST_TEST(x.title.find("rspamd") != std::string::npos);
  BOOST_TEST(x.fix == kPc +
                          " -e 'smtpd_milters = inet:other:1, { unix:cllavio/milter.sock, default_action=tempfail }, "
                          "{ inet:127.0.0.1:11332, default_action=accept }, inet:localhost:8891'");

  // A submission override with the wrong order: one finding for it, fixed with -P.
  f = good();
  service(f, "submission").overrides["smtpd_milters"] = "inet:localhost:8891,unix:cllavio/milter.sock";
  x = only(f, "milter.after_signer");
  BOOST_TEST(x.fix == kPc + " -P 'submission/inet/smtpd_milters=unix:cllavio/milter.sock,inet:localhost:8891'");

  // No signer known: ok, saying so.
  f = good();
  f.signers.clear();
  main_cf(f, "smtpd_milters") = "inet:localhost:8891, unix:cllavio/milter.sock";
  x = only(f, "milter.after_signer");
  BOOST_TEST(to_string(x.severity) == "ok");
  BOOST_TEST(x.title.find("no DKIM/ARC signer") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(socket_not_in_chroot) {
  // Absolute path under the spool, smtpd chrooted: it opens /var/spool/postfix/var/spool/...
  Facts f = good();
  main_cf(f, "smtpd_milters") = "unix:/var/spool/postfix/cllavio/milter.sock, inet:localhost:8891";
  main_cf(f, "non_smtpd_milters") = "unix:cllavio/milter.sock, inet:localhost:8891";
  auto x = only(f, "socket.not_in_chroot");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.title.find("smtp/inet (chrooted) opens /var/spool/postfix/var/spool/postfix/cllavio/milter.sock") !=
             std::string::npos);
  BOOST_TEST(x.title.find("submission/inet (chrooted)") != std::string::npos);
  BOOST_TEST(x.fix == kPc + " -e 'smtpd_milters = unix:cllavio/milter.sock, inet:localhost:8891'");
  expect_ok(f, "milter.not_in_smtpd_milters");  // listed, just not reachable
  main_cf(f, "smtpd_milters") = "unix:cllavio/milter.sock, inet:localhost:8891";
  expect_ok(f, "socket.not_in_chroot");

  // The same absolute path is right when nothing is chrooted.
  f = good();
  for (auto& s : f.instances[0].services) s.chroot = "-";
  main_cf(f, "smtpd_milters") = "unix:/var/spool/postfix/cllavio/milter.sock, inet:localhost:8891";
  expect_ok(f, "socket.not_in_chroot");

  // Written chroot-relative (/cllavio/...) while cleanup is not chrooted.
  f = good();
  main_cf(f, "non_smtpd_milters") = "unix:/cllavio/milter.sock";
  x = only(f, "socket.not_in_chroot");
  BOOST_TEST(x.title.find("in non_smtpd_milters") != std::string::npos);
  BOOST_TEST(x.title.find("cleanup/unix (not chrooted) opens /cllavio/milter.sock") != std::string::npos);
  BOOST_TEST(x.fix == kPc + " -e 'non_smtpd_milters = unix:cllavio/milter.sock'");

  // A socket outside the spool cannot be reached by a chrooted smtpd: no postconf line, move it.
  f = good();
  f.milter.socket = f.milter.socket_postfix = "unix:/run/cllavio/milter.sock";
  main_cf(f, "smtpd_milters") = "unix:/run/cllavio/milter.sock, inet:localhost:8891";
  main_cf(f, "non_smtpd_milters") = "unix:/run/cllavio/milter.sock, inet:localhost:8891";
  x = only(f, "socket.not_in_chroot");
  BOOST_TEST(x.title.find("in smtpd_milters") != std::string::npos);
  BOOST_TEST(x.fix.empty());
  BOOST_TEST(x.why.find("[milter] socket = \"unix:/var/spool/postfix/cllavio/milter.sock\"") != std::string::npos);
  for (auto& s : f.instances[0].services) s.chroot = "n";
  expect_ok(f, "socket.not_in_chroot");

  // A service override is checked with that service's chroot.
  f = good();
  service(f, "submission").overrides["smtpd_milters"] = "unix:/var/spool/postfix/cllavio/milter.sock,inet:localhost:8891";
  x = only(f, "socket.not_in_chroot");
  BOOST_TEST(x.title.find("submission/inet -o smtpd_milters") != std::string::npos);
  BOOST_TEST(x.fix == kPc + " -P 'submission/inet/smtpd_milters=unix:cllavio/milter.sock,inet:localhost:8891'");

  // Another queue_directory.
  f = good();
  main_cf(f, "queue_directory") = "/srv/spool/";
  f.milter.socket = f.milter.socket_postfix = "unix:/srv/spool/cllavio/milter.sock";
  expect_ok(f, "socket.not_in_chroot");
  main_cf(f, "smtpd_milters") = "unix:/srv/spool/cllavio/milter.sock";
  BOOST_TEST(only(f, "socket.not_in_chroot").fix == kPc + " -e 'smtpd_milters = unix:cllavio/milter.sock'");
}

BOOST_AUTO_TEST_CASE(default_action) {
  Facts f = good();
  main_cf(f, "milter_default_action") = "reject";
  auto x = only(f, "default_action.reject");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.fix == kPc + " -e 'milter_default_action = tempfail'");
  BOOST_TEST(with_id(check(f), "default_action.unset").empty());

  main_cf(f, "milter_default_action") = "tempfail";
  x = only(f, "default_action.unset");
  BOOST_TEST(to_string(x.severity) == "info");
  BOOST_TEST(x.why.find("4xx") != std::string::npos);
  BOOST_TEST(exit_code(check(f)) == 0);
  f.instances[0].main.erase("milter_default_action");  // Postfix's default
  BOOST_TEST(to_string(only(f, "default_action.unset").severity) == "info");

  main_cf(f, "milter_default_action") = "accept";
  expect_ok(f, "default_action.unset");
  BOOST_TEST(with_id(check(f), "default_action.reject").empty());
}

BOOST_AUTO_TEST_CASE(default_action_per_milter) {
  Facts f = good();
  main_cf(f, "smtpd_milters") = "{ unix:cllavio/milter.sock, default_action=accept }, inet:localhost:8891";
  auto x = only(f, "default_action.per_milter");
  BOOST_TEST(to_string(x.severity) == "info");
  BOOST_TEST(x.title.find("smtpd_milters: unix:cllavio/milter.sock default_action=accept") != std::string::npos);
  // non_smtpd_milters = $smtpd_milters carries it too.
  BOOST_TEST(x.title.find("non_smtpd_milters: unix:cllavio/milter.sock default_action=accept") != std::string::npos);
  expect_ok(f, "milter.not_in_smtpd_milters");
  expect_ok(f, "socket.not_in_chroot");
  BOOST_TEST(with_id(check(good()), "default_action.per_milter").empty());
}

BOOST_AUTO_TEST_CASE(protocol_old) {
  Facts f = good();
  main_cf(f, "milter_protocol") = "2";
  auto x = only(f, "protocol.old");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.fix == kPc + " -e 'milter_protocol = 6'");
  main_cf(f, "milter_protocol") = "6s";
  BOOST_TEST(to_string(only(f, "protocol.old").severity) == "error");
  main_cf(f, "milter_protocol") = "6";
  expect_ok(f, "protocol.old");
}

BOOST_AUTO_TEST_CASE(timeouts) {
  Facts f = good();
  main_cf(f, "milter_command_timeout") = "5s";
  main_cf(f, "milter_content_timeout") = "30";
  auto x = only(f, "timeout.command");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.fix == kPc + " -e 'milter_command_timeout = 30s'");
  x = only(f, "timeout.content");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.fix == kPc + " -e 'milter_content_timeout = 300s'");
  main_cf(f, "milter_command_timeout") = "10";
  main_cf(f, "milter_content_timeout") = "1m";
  expect_ok(f, "timeout.command");
  expect_ok(f, "timeout.content");
  main_cf(f, "milter_command_timeout") = "1h";
  main_cf(f, "milter_content_timeout") = "59s";
  expect_ok(f, "timeout.command");
  BOOST_TEST(to_string(only(f, "timeout.content").severity) == "warning");
  main_cf(f, "milter_content_timeout") = "soon";
  BOOST_TEST(to_string(only(f, "timeout.content").severity) == "warning");
}

BOOST_AUTO_TEST_CASE(macros) {
  Facts f = good();
  // Protocol 6: the milter asks for {auth_authen} itself (smfi_setsymlist at negotiation).
  main_cf(f, "milter_mail_macros") = "i {mail_addr}";
  expect_ok(f, "macros.auth_authen");
  main_cf(f, "milter_protocol") = "4";  // older: only milter_mail_macros counts
  main_cf(f, "milter_mail_macros") = "i {mail_addr}";
  main_cf(f, "milter_end_of_data_macros") = "{mail_addr}";
  auto x = only(f, "macros.auth_authen");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.fix == kPc + " -e 'milter_mail_macros = i {mail_addr} {auth_authen}'");
  x = only(f, "macros.queue_id");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.fix == kPc + " -e 'milter_end_of_data_macros = {mail_addr} i'");
  main_cf(f, "milter_mail_macros") = "i {mail_addr} {auth_authen}";
  main_cf(f, "milter_end_of_data_macros") = "{mail_addr} i";
  expect_ok(f, "macros.auth_authen");
  expect_ok(f, "macros.queue_id");
  main_cf(f, "milter_mail_macros") = "";
  BOOST_TEST(only(f, "macros.auth_authen").fix == kPc + " -e 'milter_mail_macros = {auth_authen}'");
  main_cf(f, "milter_end_of_data_macros") = "{i}";  // braces accepted
  expect_ok(f, "macros.queue_id");
}

BOOST_AUTO_TEST_CASE(delivery_checks) {
  Facts f = good();
  main_cf(f, "enable_long_queue_ids") = "no";
  f.milter.delivery_log_readable = false;
  auto x = only(f, "delivery.long_queue_ids");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.fix == kPc + " -e 'enable_long_queue_ids = yes'");
  x = only(f, "delivery.log");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.title.find("/var/log/mail.log") != std::string::npos);
  BOOST_TEST(x.instance == "");
  main_cf(f, "enable_long_queue_ids") = "yes";
  f.milter.delivery_log_readable = true;
  expect_ok(f, "delivery.long_queue_ids");
  expect_ok(f, "delivery.log");
  // [delivery] off: neither applies.
  f.milter.delivery_enabled = false;
  main_cf(f, "enable_long_queue_ids") = "no";
  f.milter.delivery_log_readable = false;
  BOOST_TEST(with_id(check(f), "delivery.long_queue_ids").empty());
  BOOST_TEST(with_id(check(f), "delivery.log").empty());
}

// [quota] backend = "redis": the ledger's Redis answers and keeps its keys.
BOOST_AUTO_TEST_CASE(shared_quota_redis_checks) {
  Facts f = good();
  BOOST_TEST(with_id(check(f), "quota.redis_unreachable").empty());  // the local ledger: nothing to say
  f.milter.redis_url = "redis://10.0.0.5:6379/0";
  BOOST_TEST(with_id(check(f), "quota.redis_unreachable").empty());  // --offline: not probed
  f.milter.redis_reachable = false;
  f.milter.redis_error = "redis 10.0.0.5:6379: Connection refused";
  auto x = only(f, "quota.redis_unreachable");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.title.find("Connection refused") != std::string::npos);
  BOOST_TEST(with_id(check(f), "quota.redis_eviction").empty());
  f.milter.redis_reachable = true;
  f.milter.redis_eviction = "allkeys-lru";
  expect_ok(f, "quota.redis_unreachable");
  x = only(f, "quota.redis_eviction");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.title.find("allkeys-lru") != std::string::npos);
  BOOST_TEST(x.fix.find("noeviction") != std::string::npos);
  f.milter.redis_eviction = "noeviction";
  expect_ok(f, "quota.redis_eviction");
  f.milter.redis_eviction.reset();
  f.milter.redis_eviction_error = "ERR unknown command 'CONFIG'";
  x = only(f, "quota.redis_eviction");
  BOOST_TEST(to_string(x.severity) == "warning");
}

BOOST_AUTO_TEST_CASE(several_instances) {
  Facts f = good();
  PostfixInstance second = f.instances[0];
  second.config_dir = "/etc/postfix-out";
  second.name = "postfix-out";
  second.main["smtpd_milters"] = "inet:localhost:8891";
  f.instances.push_back(second);
  const auto fs = with_id(check(f), "milter.not_in_smtpd_milters");
  BOOST_REQUIRE(fs.size() == 2u);
  BOOST_TEST(fs[0].instance == kDir);
  BOOST_TEST(to_string(fs[0].severity) == "ok");
  BOOST_TEST(fs[1].instance == "/etc/postfix-out");
  BOOST_TEST(fs[1].fix == "postconf -c /etc/postfix-out -e 'smtpd_milters = unix:cllavio/milter.sock, inet:localhost:8891'");
}

BOOST_AUTO_TEST_CASE(missing_facts_are_not_findings) {
  // The milter's config did not load: its socket is unknown, so no list can be judged for it.
  Facts f = good();
  f.milter.socket.clear();
  f.milter.socket_postfix.clear();
  f.milter.connect = {};
  auto fs = check(f);
  for (const char* id : {"milter.not_in_smtpd_milters", "milter.not_in_non_smtpd_milters", "milter.after_signer",
                         "socket.not_in_chroot"})
    BOOST_TEST(with_id(fs, id).empty(), id);
  expect_ok(f, "milter.libmilter_syntax");  // still judged
  // No master.cf services gathered, nothing about the store or the API.
  f = good();
  f.instances[0].services.clear();
  f.milter = MilterSide{};
  f.milter.config_ok = true;
  f.milter.socket_postfix = "unix:/var/spool/postfix/cllavio/milter.sock";
  fs = check(f);
  BOOST_TEST(with_id(fs, "milter.service_drops").empty());
  BOOST_TEST(with_id(fs, "socket.not_in_chroot").empty());
  for (const char* id : {"secrets.mode", "secrets.owner", "store.unavailable", "store.map_space", "outbox.age",
                         "outbox.dead_letters", "api.unreachable", "delivery.log", "delivery.long_queue_ids"})
    BOOST_TEST(with_id(fs, id).empty(), id);
  BOOST_TEST(exit_code(fs) == 0);
  // No instance at all: only the milter's side.
  f.instances.clear();
  fs = check(f);
  BOOST_REQUIRE(fs.size() == 1u);
  BOOST_TEST(fs[0].id == "config.invalid");
}
