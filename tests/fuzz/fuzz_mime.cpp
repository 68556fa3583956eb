// Fuzzes the MIME walker: header block + body; every span must lie inside the body
// and children inside their parent. Never crash, never loop.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tracking/mime.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio::tracking;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<HeaderField> fields;
  std::size_t end = 0;
  if (!parse_header_block(in, 4096, fields, end)) return 0;
  std::string_view body = in.substr(end);
  MimeLimits lim;
  lim.max_depth = 8;
  lim.max_parts = 64;
  MimeTree t = walk(fields, body, lim);
  for (const Part& p : t.parts) {
    if (p.body_begin > p.body_end || p.body_end > body.size()) std::abort();
    if (p.parent >= 0) {
      const Part& parent = t.parts[p.parent];
      if (p.header_begin < parent.body_begin || p.body_end > parent.body_end) std::abort();
    }
  }
  return 0;
}
