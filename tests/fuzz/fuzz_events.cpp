// Fuzzes what the forwarder and the API poller read from the network: consent and
// erasure pages (JSON from the API) and Retry-After values. Must never crash, every
// change it keeps must carry a consent-store address and a real state, and every erasure
// request a consent-store address.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "events/consent_sync.hpp"
#include "events/erasure_sync.hpp"
#include "events/transport.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio;
  if (size > 64 * 1024) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto page = events::parse_consent_page(in)) {
    for (const auto& c : page->changes)
      if (c.address.empty() || c.address != policy::consent_address(c.address) ||
          c.consent.state == policy::ConsentState::none)
        std::abort();
  }
  if (auto page = events::parse_erasure_page(in)) {
    for (const auto& r : page->requests)
      if (r.address.empty() || r.address != policy::consent_address(r.address)) std::abort();
  }
  int r = events::parse_retry_after(in.substr(0, 64), 1'790'000'000);
  if (r < -1 || r > 86400) std::abort();
  return 0;
}
