// Fuzzes milter socket address parsing; a parsed address must render and re-parse
// to the same address in libmilter's dialect, and to the same host and port in
// Postfix's (which does not say inet6 for a host name).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "conf/socket_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio::conf;
  auto r = parse_socket_spec(std::string_view(reinterpret_cast<const char*>(data), size));
  if (auto* spec = std::get_if<SocketSpec>(&r)) {
    auto again = parse_socket_spec(spec->libmilter());
    if (!std::holds_alternative<SocketSpec>(again) || !(std::get<SocketSpec>(again) == *spec)) std::abort();
    auto pf = parse_socket_spec(spec->postfix());
    if (!std::holds_alternative<SocketSpec>(pf)) std::abort();
    const auto& p = std::get<SocketSpec>(pf);
    if (p.path != spec->path || p.host != spec->host || p.port != spec->port) std::abort();
  }
  return 0;
}
