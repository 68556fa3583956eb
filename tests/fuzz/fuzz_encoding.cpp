// Fuzzes QP and base64: decoders never crash; encoders keep lines <= 76 and round-trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tracking/encoding.hpp"

namespace {

std::size_t longest(std::string_view s) {
  std::size_t best = 0, cur = 0;
  for (char c : s) {
    if (c == '\n') {
      best = cur > best ? cur : best;
      cur = 0;
    } else if (c != '\r') {
      ++cur;
    }
  }
  return cur > best ? cur : best;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio::tracking;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string a, b;
  qp_decode(in, a);
  (void)base64_decode(in, b);

  std::string enc, dec;
  base64_encode(in, Eol::crlf, enc);
  if (longest(enc) > 76 || !base64_decode(enc, dec) || dec != in) std::abort();

  // QP carries line breaks as hard breaks: compare after normalizing them to CRLF.
  std::string norm;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\r' && i + 1 < in.size() && in[i + 1] == '\n') continue;
    if (in[i] == '\n') norm += "\r\n";
    else norm.push_back(in[i]);
  }
  std::string qp, back;
  qp_encode(in, Eol::crlf, qp);
  qp_decode(qp, back);
  if (longest(qp) > 76 || back != norm) std::abort();
  return 0;
}
