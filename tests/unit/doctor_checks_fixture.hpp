// Facts for the doctor's check tests: good() is a Debian-like instance wired right (chrooted
// smtpd, the socket under the spool before opendkim, a content filter's re-injection service),
// and helpers to pick findings by id. Each test writes one thing wrong, then fixes it.
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

#include "doctor/checks.hpp"

namespace cllavio::doctor::test {

inline const std::string kDir = "/tmp/pf/etc";
inline const std::string kPc = "postconf -c /tmp/pf/etc";

inline Service svc(std::string name, std::string type, std::string chroot, std::string command,
                   std::map<std::string, std::string> overrides = {}) {
  return Service{std::move(name), std::move(type), std::move(chroot), std::move(command), std::move(overrides)};
}

// A Debian-like instance wired right: chrooted smtpd, the milter's socket under the spool,
// before opendkim, a content filter's re-injection service skipping milters.
inline Facts good() {
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

inline std::vector<Finding> with_id(const std::vector<Finding>& fs, std::string_view id) {
  std::vector<Finding> out;
  std::copy_if(fs.begin(), fs.end(), std::back_inserter(out), [&](const Finding& f) { return f.id == id; });
  return out;
}

// The one finding with this id.
inline Finding only(const Facts& facts, std::string_view id) {
  const auto fs = with_id(check(facts), id);
  BOOST_REQUIRE_MESSAGE(fs.size() == 1, "expected one " << id << ", got " << fs.size());
  return fs[0];
}

inline void expect_ok(const Facts& facts, std::string_view id) {
  const auto fs = with_id(check(facts), id);
  BOOST_REQUIRE_MESSAGE(fs.size() == 1, "expected one " << id << ", got " << fs.size());
  BOOST_TEST_MESSAGE(fs[0].title);
  BOOST_TEST(to_string(fs[0].severity) == "ok", id << ": " << fs[0].title);
}

inline std::string& main_cf(Facts& f, const std::string& name) { return f.instances[0].main[name]; }
inline Service& service(Facts& f, const std::string& name) {
  for (auto& s : f.instances[0].services)
    if (s.name == name) return s;
  BOOST_FAIL("no service " + name);
  throw;
}

}  // namespace cllavio::doctor::test
