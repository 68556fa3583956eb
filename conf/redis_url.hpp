// Where the shared quota ledger lives: "redis://HOST[:PORT][/DB]", "redis://[V6]:PORT/DB" or
// "unix:/path/redis.sock[?db=N]". Parsed once by the config schema ([redis] url) and used
// by the Redis ledger (quota/redis_ledger.hpp). Passwords never come from the URL: the
// secrets file's [redis] password holds it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cllavio::conf {

struct RedisEndpoint {
  std::string host;       // tcp: a host name or an IP (v6 without brackets)
  int port = 6379;
  std::string unix_path;  // unix socket (host empty)
  int db = 0;             // SELECT (0..65535)
};

// nullopt with *error set (when error is not null) for anything else.
std::optional<RedisEndpoint> parse_redis_url(std::string_view url, std::string* error);

}  // namespace cllavio::conf
