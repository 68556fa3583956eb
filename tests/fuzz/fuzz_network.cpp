// Fuzzes IP address and CIDR parsing; a parsed network must round-trip through
// to_string and contain its own base address.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "policy/network.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio::policy;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto ip = parse_ip(text)) {
    auto again = parse_ip(ip->to_string());
    if (!again || !(*again == *ip)) std::abort();
  }
  if (auto net = parse_network(text)) {
    auto again = parse_network(net->to_string());
    if (!again || !(*again == *net)) std::abort();
    if (!net->contains(net->base)) std::abort();
  }
  return 0;
}
