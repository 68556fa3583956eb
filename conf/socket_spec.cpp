#include "conf/socket_spec.hpp"

#include <charconv>

namespace cllavio::conf {

namespace {

const char* const kForms = "expected unix:/path, inet:PORT@HOST or inet:HOST:PORT";

bool parse_port(std::string_view s, unsigned& port) {
  if (s.empty() || s.size() > 5) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
  return ec == std::errc{} && p == s.data() + s.size() && port >= 1 && port <= 65535;
}

bool plausible_host(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string SocketSpec::libmilter() const {
  switch (kind) {
    case Kind::unix_path: return "unix:" + path;
    case Kind::inet: return "inet:" + std::to_string(port) + "@" + host;
    case Kind::inet6: return "inet6:" + std::to_string(port) + "@" + host;
  }
  return {};
}

std::string SocketSpec::postfix() const {
  switch (kind) {
    case Kind::unix_path: return "unix:" + path;
    case Kind::inet: return "inet:" + host + ":" + std::to_string(port);
    case Kind::inet6:
      // Postfix picks the address family itself; brackets only around IPv6 literals.
      if (host.find(':') == std::string::npos) return "inet:" + host + ":" + std::to_string(port);
      return "inet:[" + host + "]:" + std::to_string(port);
  }
  return {};
}

std::variant<SocketSpec, std::string> parse_socket_spec(std::string_view text) {
  SocketSpec spec;
  if (text.empty()) return std::string("empty socket address; ") + kForms;
  auto colon = text.find(':');
  std::string_view scheme = colon == std::string_view::npos ? "" : text.substr(0, colon);
  std::string_view rest = colon == std::string_view::npos ? text : text.substr(colon + 1);

  if (text.front() == '/' || scheme == "unix" || scheme == "local") {
    std::string_view path = text.front() == '/' ? text : rest;
    if (path.empty()) return std::string("unix socket path is empty");
    if (path.size() > 107) return std::string("unix socket path is longer than 107 bytes");
    if (path.find('\0') != std::string_view::npos) return std::string("unix socket path contains NUL");
    spec.kind = SocketSpec::Kind::unix_path;
    spec.path = std::string(path);
    return spec;
  }
  if (scheme != "inet" && scheme != "inet6") return std::string(kForms);

  std::string_view host, port;
  if (auto at = rest.find('@'); at != std::string_view::npos) {  // PORT@HOST
    port = rest.substr(0, at);
    host = rest.substr(at + 1);
  } else if (!rest.empty() && rest.front() == '[') {  // [HOST]:PORT
    auto close = rest.find("]:");
    if (close == std::string_view::npos) return std::string(kForms);
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {  // HOST:PORT
    auto last = rest.rfind(':');
    if (last == std::string_view::npos) return std::string(kForms);
    host = rest.substr(0, last);
    port = rest.substr(last + 1);
  }
  if (!parse_port(port, spec.port)) return "invalid port '" + std::string(port) + "' (1..65535)";
  if (!plausible_host(host)) return "invalid host '" + std::string(host) + "'";
  spec.host = std::string(host);
  spec.kind = (scheme == "inet6" || spec.host.find(':') != std::string::npos) ? SocketSpec::Kind::inet6
                                                                             : SocketSpec::Kind::inet;
  return spec;
}

}  // namespace cllavio::conf
