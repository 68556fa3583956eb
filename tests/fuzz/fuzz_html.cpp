// Fuzzes the HTML scanner and entity decoding: spans stay inside the input and in
// order; escaping then decoding gives the value back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tracking/html.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio::tracking;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  HtmlScan s = scan_html(in);
  std::size_t last = 0;
  for (const LinkSite& l : s.links) {
    if (l.href.begin > l.href.end || l.href.end > in.size() || l.tag_end > in.size()) std::abort();
    if (l.href.begin < l.tag_begin || l.href.end > l.tag_end || l.tag_begin < last) std::abort();
    last = l.tag_begin;
    std::string value = decode_entities(in.substr(l.href.begin, l.href.end - l.href.begin));
    for (char q : {'"', '\'', '\0'}) {
      std::string esc;
      escape_attr(value, q, esc);
      if (decode_entities(esc) != value) std::abort();
    }
  }
  for (const ImageSite& i : s.images)
    if (i.src.end > in.size() || i.tag_end > in.size()) std::abort();
  if (s.body_open_end && *s.body_open_end > in.size()) std::abort();
  return 0;
}
