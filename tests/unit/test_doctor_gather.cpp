// The pure parsers of cllavioctl doctor's gathering: postconf output, master.cf services and
// their -o overrides, postmulti -l, and the signers' sockets in their own syntaxes.
#define BOOST_TEST_MODULE doctor_gather
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <cerrno>
#include <cstring>
#include <pwd.h>
#include <unistd.h>

#include "doctor/gather.hpp"
#include "doctor/process.hpp"

using namespace cllavio::doctor;

BOOST_AUTO_TEST_CASE(postconf_parameters_and_continuations) {
  auto m = parse_postconf("smtpd_milters = unix:cllavio/milter.sock,\n    inet:localhost:8891\nmyhostname = mx.example\nempty =\n");
  BOOST_TEST(m.at("smtpd_milters") == "unix:cllavio/milter.sock, inet:localhost:8891");
  BOOST_TEST(m.at("myhostname") == "mx.example");
  BOOST_TEST(m.at("empty") == "");
  BOOST_TEST(m.size() == 3u);
}

BOOST_AUTO_TEST_CASE(master_services_with_overrides) {
  std::string M =
      "smtp       inet  n       -       y       -       -       smtpd\n"
      "submission inet  n       -       y       -       -       smtpd -o smtpd_milters= -o receive_override_options=no_milters\n"
      "127.0.0.1:10025 inet n   -       n       -       -       smtpd -o smtpd_milters=\n"
      "cleanup    unix  n       -       -       -       0       cleanup\n";
  std::string P =
      "submission/inet/receive_override_options = no_milters\n"
      "submission/inet/smtpd_milters =\n"
      "127.0.0.1:10025/inet/smtpd_milters =\n";
  auto s = parse_master(M, P);
  BOOST_TEST_REQUIRE(s.size() == 4u);
  BOOST_TEST(s[0].name == "smtp");
  BOOST_TEST(s[0].chroot == "y");
  BOOST_TEST(s[0].overrides.empty());
  BOOST_TEST(s[1].command == "smtpd");
  BOOST_TEST(s[1].overrides.at("receive_override_options") == "no_milters");
  BOOST_TEST(s[1].overrides.at("smtpd_milters") == "");
  BOOST_TEST(s[2].name == "127.0.0.1:10025");
  BOOST_TEST(s[2].chroot == "n");
  BOOST_TEST(s[2].overrides.count("smtpd_milters") == 1u);
  BOOST_TEST(s[3].type == "unix");
  BOOST_TEST(s[3].chroot == "-");
  BOOST_TEST(s[3].command == "cleanup");
}

BOOST_AUTO_TEST_CASE(postmulti_list) {
  auto d = parse_postmulti_list("-               -               y         /etc/postfix\npostfix-out     mta             y         /etc/postfix-out\n");
  BOOST_TEST_REQUIRE(d.size() == 2u);
  BOOST_TEST(d[1] == "/etc/postfix-out");
}

BOOST_AUTO_TEST_CASE(libmilter_sockets_in_postfix_syntax) {
  BOOST_TEST(*signer_socket_to_postfix("inet:8891@localhost") == "inet:localhost:8891");
  BOOST_TEST(*signer_socket_to_postfix("inet:8891@127.0.0.1") == "inet:127.0.0.1:8891");
  BOOST_TEST(*signer_socket_to_postfix("inet:8891") == "inet:localhost:8891");
  BOOST_TEST(*signer_socket_to_postfix("inet6:8891@::1") == "inet:[::1]:8891");
  BOOST_TEST(*signer_socket_to_postfix("local:/var/spool/postfix/opendkim/opendkim.sock") ==
             "unix:/var/spool/postfix/opendkim/opendkim.sock");
  BOOST_TEST(*signer_socket_to_postfix("unix:/run/x.sock") == "unix:/run/x.sock");
  BOOST_TEST(*signer_socket_to_postfix("/run/x.sock") == "unix:/run/x.sock");
  BOOST_TEST(*signer_socket_to_postfix("inet:127.0.0.1:8892") == "inet:127.0.0.1:8892");
  BOOST_TEST(!signer_socket_to_postfix("bogus").has_value());
  BOOST_TEST(!signer_socket_to_postfix("inet:x@y").has_value());
}

BOOST_AUTO_TEST_CASE(rspamd_bind_socket) {
  BOOST_TEST(*rspamd_to_postfix("localhost:11332") == "inet:localhost:11332");
  BOOST_TEST(*rspamd_to_postfix("*:11332") == "inet:localhost:11332");
  BOOST_TEST(*rspamd_to_postfix("[::1]:11332") == "inet:[::1]:11332");
  BOOST_TEST(*rspamd_to_postfix("/run/rspamd/proxy.sock mode=0666 owner=_rspamd") == "unix:/run/rspamd/proxy.sock");
}

BOOST_AUTO_TEST_CASE(config_values) {
  std::string opendkim = "# Socket inet:1@nowhere\nSyslog yes\nsocket   local:/run/opendkim.sock  # comment\n";
  BOOST_TEST(*conf_value(opendkim, "Socket") == "local:/run/opendkim.sock");
  BOOST_TEST(!conf_value(opendkim, "Mode").has_value());
  std::string ucl = "# bind_socket = \"x:1\";\nmilter = yes;\nbind_socket = \"127.0.0.1:11333\";\n";
  BOOST_TEST(*ucl_value(ucl, "bind_socket") == "127.0.0.1:11333");
  BOOST_TEST(*ucl_value("bind_socket = '/run/p.sock mode=0660';", "bind_socket") == "/run/p.sock mode=0660");
}

BOOST_AUTO_TEST_CASE(signers_from_config_files_and_well_known) {
  namespace fs = std::filesystem;
  fs::path d = fs::temp_directory_path() / ("doctor_signers_" + std::to_string(::getpid()));
  fs::create_directories(d / "rspamd/local.d");
  std::ofstream(d / "opendkim.conf") << "Socket inet:12301@localhost\n";
  std::ofstream(d / "rspamd/local.d/worker-proxy.inc") << "bind_socket = \"localhost:11400\";\n";
  auto s = find_signers(d.string());
  BOOST_TEST_REQUIRE(s.size() == 2u);
  BOOST_TEST(s[0].product == "opendkim");
  BOOST_TEST(s[0].socket == "inet:localhost:12301");
  BOOST_TEST(s[0].source == (d / "opendkim.conf").string());
  BOOST_TEST(s[1].product == "rspamd");
  BOOST_TEST(s[1].socket == "inet:localhost:11400");
  fs::remove_all(d);
  // Nothing configured: the well-known sockets of opendkim and rspamd.
  auto w = find_signers(d.string());
  BOOST_TEST(w.size() == 4u);
  for (const auto& x : w) BOOST_TEST(x.source == "well-known");
  BOOST_TEST(w[1].socket == "unix:/var/spool/postfix/opendkim/opendkim.sock");
  BOOST_TEST(w[3].socket == "inet:localhost:11332");
}

BOOST_AUTO_TEST_CASE(run_captures_output_exit_code_and_timeout) {
  auto r = run({"sh", "-c", "echo out; echo err >&2; exit 3"});
  BOOST_TEST(r.exit_code == 3);
  BOOST_TEST(r.out == "out\n");
  BOOST_TEST(r.err == "err\n");
  auto t = run({"sleep", "5"}, {}, 200);
  BOOST_TEST(t.exit_code == -1);
  BOOST_TEST(t.err.find("timed out") != std::string::npos);
  auto e = run({"sh", "-c", "echo $DOCTOR_X"}, {"DOCTOR_X=42"});
  BOOST_TEST(e.out == "42\n");
  BOOST_TEST(run({"no-such-program-doctor"}).exit_code == -1);
}

BOOST_AUTO_TEST_CASE(postfix_dir_without_main_cf) {
  auto pi = read_postfix_instance("/nonexistent-doctor-dir");
  BOOST_TEST(!pi.readable);
  BOOST_TEST(pi.error.find("no main.cf") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(other_instances_from_multi_instance_directories) {
  PostfixInstance pi;
  pi.config_dir = "/srv/postfix";
  pi.main["multi_instance_directories"] = "$dirs";
  pi.expanded["multi_instance_directories"] = "/etc/postfix-out, /etc/postfix-in /srv/postfix /etc/postfix-out";
  auto d = postmulti_instances(pi);
  BOOST_TEST_REQUIRE(d.size() == 2u);
  BOOST_TEST(d[0] == "/etc/postfix-out");
  BOOST_TEST(d[1] == "/etc/postfix-in");
}

BOOST_AUTO_TEST_CASE(as_user_switches_user_in_a_child) {
  auto missing = as_user("no-such-user-doctor", [] { return 0; });
  if (::geteuid() == 0) {
    BOOST_TEST(missing.error == ENOENT);
    BOOST_TEST(missing.message == "user no-such-user-doctor does not exist");
    passwd* pw = ::getpwnam("nobody");
    BOOST_TEST_REQUIRE(pw != nullptr);
    uid_t want = pw->pw_uid;
    auto r = as_user("nobody", [want] { return ::getuid() == want && ::geteuid() == want ? 0 : EPERM; });
    BOOST_TEST(r.switched);
    BOOST_TEST(r.error == 0);
    // The child's answer comes back through the pipe, errno included.
    auto denied = as_user("nobody", [] { return ::access("/root", W_OK) == 0 ? 0 : errno; });
    BOOST_TEST(denied.error == EACCES);
    BOOST_TEST(denied.message == std::strerror(EACCES));
  } else {
    auto r = as_user("nobody", [] { return ENOTCONN; });
    BOOST_TEST(!r.switched);
    BOOST_TEST(r.error == ENOTCONN);
  }
  // A child that hangs is killed after the timeout.
  auto slow = as_user("nobody", [] { ::sleep(5); return 0; }, 200);
  BOOST_TEST(slow.error == ETIMEDOUT);
}
