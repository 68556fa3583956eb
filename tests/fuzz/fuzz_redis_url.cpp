// Fuzzes the [redis] url parser; an accepted URL is re-rendered (redis://HOST:PORT/DB or
// unix:PATH?db=N) and must parse to the same endpoint.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "conf/redis_url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio::conf;
  std::string err;
  auto ep = parse_redis_url(std::string_view(reinterpret_cast<const char*>(data), size), &err);
  if (!ep) {
    if (err.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  if (ep->port < 1 || ep->port > 65535 || ep->db < 0 || ep->db > 65535) std::abort();
  std::string again;
  if (!ep->unix_path.empty()) {
    again = "unix:" + ep->unix_path + "?db=" + std::to_string(ep->db);
  } else {
    bool v6 = ep->host.find(':') != std::string::npos;
    again = "redis://" + (v6 ? "[" + ep->host + "]" : ep->host) + ":" + std::to_string(ep->port) + "/" +
            std::to_string(ep->db);
  }
  auto back = parse_redis_url(again, nullptr);
  if (!back || back->host != ep->host || back->port != ep->port || back->unix_path != ep->unix_path ||
      back->db != ep->db)
    std::abort();
  return 0;
}
