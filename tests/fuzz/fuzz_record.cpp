// Fuzzes decoding of stored message records (CBOR read back from LMDB): corrupt
// bytes must raise an exception, never crash; a decoded record round-trips.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "store/message_record.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio::store;
  MessageRecord r;
  try {
    r = decode(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  if (!(decode(encode(r)) == r)) std::abort();
  (void)display_json(r).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return 0;
}
