#include "conf/redis_url.hpp"

namespace cllavio::conf {

namespace {

std::optional<int> number(std::string_view s, int max) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  int n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n > max) return std::nullopt;
  return n;
}

std::optional<RedisEndpoint> fail(std::string* error, std::string text) {
  if (error) *error = std::move(text);
  return std::nullopt;
}

}  // namespace

std::optional<RedisEndpoint> parse_redis_url(std::string_view url, std::string* error) {
  for (char c : url)
    if (static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '\\' || static_cast<unsigned char>(c) >= 0x7f)
      return fail(error, "invalid character in redis url");
  RedisEndpoint ep;
  if (url.rfind("unix:", 0) == 0) {
    std::string_view rest = url.substr(5);
    if (auto q = rest.find('?'); q != std::string_view::npos) {
      std::string_view query = rest.substr(q + 1);
      rest = rest.substr(0, q);
      if (query.rfind("db=", 0) != 0) return fail(error, "unix: url takes only ?db=N");
      auto db = number(query.substr(3), 65535);
      if (!db) return fail(error, "invalid db in redis url");
      ep.db = *db;
    }
    if (rest.empty() || rest[0] != '/') return fail(error, "unix: url needs an absolute path (unix:/run/redis/redis.sock)");
    if (rest.size() > 107) return fail(error, "unix socket path is longer than 107 bytes");
    ep.unix_path = std::string(rest);
    return ep;
  }
  if (url.rfind("redis://", 0) != 0) return fail(error, "expected redis://HOST[:PORT][/DB] or unix:/PATH");
  std::string_view rest = url.substr(8);
  if (rest.find('@') != std::string_view::npos)
    return fail(error, "no credentials in the redis url: put the password in the secrets file ([redis] password)");
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  std::string_view port;
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return fail(error, "unclosed [ in redis url");
    ep.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return fail(error, "expected :PORT after ] in redis url");
      port = after.substr(1);
      if (port.empty()) return fail(error, "empty port in redis url");
    }
  } else {
    auto colon = rest.find(':');
    ep.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return fail(error, "empty port in redis url");
    }
  }
  if (ep.host.empty()) return fail(error, "redis url has no host");
  // A host name, an IPv4 address or (in brackets) an IPv6 one, with a zone after '%'.
  bool v6 = rest[0] == '[';
  for (char c : ep.host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == '_' || (v6 && (c == ':' || c == '%'));
    if (!ok) return fail(error, "invalid host in redis url");
  }
  if (v6 && ep.host.find(':') == std::string::npos) return fail(error, "[...] in a redis url holds an IPv6 address");
  if (!port.empty()) {
    auto p = number(port, 65535);
    if (!p || *p == 0) return fail(error, "invalid port in redis url");
    ep.port = *p;
  }
  if (!path.empty()) {
    auto db = number(path, 65535);
    if (!db) return fail(error, "invalid db in redis url (redis://HOST:PORT/DB, DB a number)");
    ep.db = *db;
  }
  return ep;
}

}  // namespace cllavio::conf
