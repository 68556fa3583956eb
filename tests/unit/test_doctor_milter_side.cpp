#define BOOST_TEST_MODULE doctor_milter_side
#include <boost/test/unit_test.hpp>

#include "doctor/checks.hpp"
#include "doctor_checks_fixture.hpp"

using namespace cllavio::doctor;
using namespace cllavio::doctor::test;

// The milter's own side: socket probe, config, secrets, store, outbox, API, delivery log.

BOOST_AUTO_TEST_CASE(socket_connect) {
  Facts f = good();
  f.milter.connect = {true, false, "Permission denied"};
  auto x = only(f, "socket.connect");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.instance == "");
  BOOST_TEST(x.title.find("Permission denied") != std::string::npos);
  f.milter.connect = {true, true, ""};
  expect_ok(f, "socket.connect");
  f.milter.connect = {};
  BOOST_TEST(with_id(check(f), "socket.connect").empty());  // not tried (inet socket)
}

BOOST_AUTO_TEST_CASE(config_invalid) {
  Facts f = good();
  f.milter.config_ok = false;
  f.milter.config_errors = {"/etc/cllavio/cllavio.toml:3: unknown key milter.sockett",
                            "/etc/cllavio/cllavio.toml:9: store.map_size_mb: expected an integer"};
  auto x = only(f, "config.invalid");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.why.find("\n  /etc/cllavio/cllavio.toml:3: unknown key milter.sockett\n  /etc/cllavio/cllavio.toml:9:") !=
             std::string::npos);
  BOOST_TEST(x.why.find("cllavio-milter -c '/etc/cllavio/cllavio.toml' -n") != std::string::npos);
  f.milter.config_ok = true;
  f.milter.config_errors.clear();
  expect_ok(f, "config.invalid");
}

BOOST_AUTO_TEST_CASE(secrets) {
  Facts f = good();
  f.milter.secrets_mode = 0640;
  f.milter.secrets_owner = "www-data";
  auto x = only(f, "secrets.mode");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.title.find("0640") != std::string::npos);
  BOOST_TEST(x.fix == "chmod 600 '/etc/cllavio/secrets.toml'");
  x = only(f, "secrets.owner");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.fix == "chown cllavio '/etc/cllavio/secrets.toml'");
  f.milter.secrets_mode = 0604;
  BOOST_TEST(to_string(only(f, "secrets.mode").severity) == "error");
  f.milter.secrets_mode = 0400;
  f.milter.secrets_owner = "cllavio";
  expect_ok(f, "secrets.mode");
  expect_ok(f, "secrets.owner");
  // root-owned while the milter drops to its user: a reload cannot read it.
  f.milter.secrets_owner = "root";
  x = only(f, "secrets.owner");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.why.find("reload") != std::string::npos);
  BOOST_TEST(x.fix == "chown cllavio '/etc/cllavio/secrets.toml'");
  // ... and fine when the milter runs as root throughout.
  f.milter.milter_user = "";
  expect_ok(f, "secrets.owner");
  f.milter.secrets_owner = "www-data";
  BOOST_TEST(only(f, "secrets.owner").fix == "chown root '/etc/cllavio/secrets.toml'");
  // No secrets file configured: nothing to check.
  f.milter.secrets_file.clear();
  f.milter.secrets_mode.reset();
  BOOST_TEST(with_id(check(f), "secrets.mode").empty());
  BOOST_TEST(with_id(check(f), "secrets.owner").empty());
}

BOOST_AUTO_TEST_CASE(store) {
  Facts f = good();
  f.milter.store_map_used_ratio.reset();
  f.milter.store_error = "mdb_env_open: No such file or directory";
  auto x = only(f, "store.unavailable");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.title.find("No such file") != std::string::npos);
  BOOST_TEST(with_id(check(f), "store.map_space").empty());

  f = good();
  f.milter.store_map_used_ratio = 0.80;
  x = only(f, "store.map_space");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.title.find("80%") != std::string::npos);
  BOOST_TEST(x.why.find("map_size_mb") != std::string::npos);
  f.milter.store_map_used_ratio = 0.949;
  BOOST_TEST(to_string(only(f, "store.map_space").severity) == "warning");
  f.milter.store_map_used_ratio = 0.95;
  BOOST_TEST(to_string(only(f, "store.map_space").severity) == "error");
  f.milter.store_map_used_ratio = 0.79;
  expect_ok(f, "store.map_space");
  expect_ok(f, "store.unavailable");
}

BOOST_AUTO_TEST_CASE(outbox) {
  Facts f = good();
  f.milter.outbox_oldest_age_s = 3601;
  f.milter.dead_letters = 3;
  auto x = only(f, "outbox.age");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.title.find("3601 s") != std::string::npos);
  x = only(f, "outbox.dead_letters");
  BOOST_TEST(to_string(x.severity) == "warning");
  BOOST_TEST(x.title.find("3 event") != std::string::npos);
  BOOST_TEST(x.fix == "cllavioctl outbox list --dead\ncllavioctl outbox retry-dead");
  f.milter.outbox_oldest_age_s = 3600;
  f.milter.dead_letters = 0;
  expect_ok(f, "outbox.age");
  expect_ok(f, "outbox.dead_letters");
  f.milter.outbox_oldest_age_s.reset();
  f.milter.outbox_events = 0;
  expect_ok(f, "outbox.age");
}

BOOST_AUTO_TEST_CASE(api) {
  Facts f = good();
  f.milter.api_reachable = false;
  f.milter.api_error = "SSL certificate problem: unable to get local issuer certificate";
  auto x = only(f, "api.unreachable");
  BOOST_TEST(to_string(x.severity) == "error");
  BOOST_TEST(x.title.find("SSL certificate problem") != std::string::npos);
  f.milter.api_reachable = true;
  expect_ok(f, "api.unreachable");
  f.milter.api_reachable.reset();  // --offline
  BOOST_TEST(with_id(check(f), "api.unreachable").empty());
}
