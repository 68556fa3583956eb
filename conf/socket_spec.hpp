// Milter socket addresses as an admin writes them, in either dialect.
//
//   unix:/run/cllavio/milter.sock   (also local:/path, or a bare absolute path)
//   inet:10027@127.0.0.1            libmilter style, PORT@HOST
//   inet:127.0.0.1:10027            Postfix style, HOST:PORT ([::1]:10027 for IPv6)
//   inet6:10027@::1
//
// parse_socket_spec never throws; on error it returns the reason. The result can
// render itself for libmilter (smfi_setconn) and for Postfix (smtpd_milters).
#pragma once

#include <string>
#include <string_view>
#include <variant>

namespace cllavio::conf {

struct SocketSpec {
  enum class Kind { unix_path, inet, inet6 } kind = Kind::unix_path;
  std::string path;  // unix: absolute after load
  std::string host;  // inet: address or name; inet6 without brackets
  unsigned port = 0;

  std::string libmilter() const;  // "unix:/path", "inet:PORT@HOST", "inet6:PORT@HOST"
  std::string postfix() const;    // "unix:/path", "inet:HOST:PORT", "inet:[HOST]:PORT"
  friend bool operator==(const SocketSpec&, const SocketSpec&) = default;
};

// std::string holds the error ("expected unix:/path, inet:PORT@HOST or inet:HOST:PORT").
std::variant<SocketSpec, std::string> parse_socket_spec(std::string_view text);

}  // namespace cllavio::conf
