#define BOOST_TEST_MODULE socket_spec
#include <boost/test/unit_test.hpp>

#include "conf/socket_spec.hpp"

using namespace cllavio::conf;

namespace {

SocketSpec ok(std::string_view s) {
  auto r = parse_socket_spec(s);
  if (auto* err = std::get_if<std::string>(&r)) BOOST_FAIL(std::string(s) + ": " + *err);
  return std::get<SocketSpec>(r);
}

bool bad(std::string_view s) { return std::holds_alternative<std::string>(parse_socket_spec(s)); }

}  // namespace

BOOST_AUTO_TEST_CASE(unix_sockets) {
  BOOST_TEST(ok("unix:/run/cllavio/milter.sock").libmilter() == "unix:/run/cllavio/milter.sock");
  BOOST_TEST(ok("local:/tmp/m.sock").postfix() == "unix:/tmp/m.sock");
  BOOST_TEST(ok("/tmp/m.sock").path == "/tmp/m.sock");
  BOOST_TEST(ok("unix:relative/m.sock").path == "relative/m.sock");
  BOOST_TEST(bad("unix:"));
  BOOST_TEST(bad("unix:/" + std::string(200, 'a')));
}

BOOST_AUTO_TEST_CASE(both_inet_dialects) {
  auto a = ok("inet:10027@127.0.0.1");
  auto b = ok("inet:127.0.0.1:10027");
  BOOST_TEST((a == b));
  BOOST_TEST(a.libmilter() == "inet:10027@127.0.0.1");
  BOOST_TEST(a.postfix() == "inet:127.0.0.1:10027");
  auto c = ok("inet:[::1]:10027");
  BOOST_TEST(c.libmilter() == "inet6:10027@::1");
  BOOST_TEST(c.postfix() == "inet:[::1]:10027");
  BOOST_TEST((ok("inet6:10027@::1") == c));
  BOOST_TEST(ok("inet:10027@localhost").host == "localhost");
  BOOST_TEST(ok("inet6:10027@localhost").postfix() == "inet:localhost:10027");
}

BOOST_AUTO_TEST_CASE(rejects_bad_addresses) {
  for (const char* s : {"", "tcp:1@x", "inet:", "inet:10027", "inet:0@127.0.0.1", "inet:65536@127.0.0.1",
                        "inet:x@127.0.0.1", "inet:127.0.0.1:", "inet:@127.0.0.1", "inet:10027@", "inet:[::1]10027",
                        "inet:10027@host name", "inet:10027@a;b"})
    BOOST_TEST_CONTEXT(s) { BOOST_TEST(bad(s)); }
}
