// Fuzzes envelope address normalization: the domain comes out lowercase, no crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "policy/address.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio::policy;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string once = normalize_address(text);
  std::string d = domain_of(once);
  if (ascii_lower(d) != d) std::abort();
  (void)is_valid_domain(d);
  return 0;
}
