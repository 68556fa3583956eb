// Fuzzes the whole rewrite as the milter drives it: the input is split into a header
// block and a body delivered in chunks (like body callbacks), then rewritten. The
// output, when changed, must walk to the same structure and its tokens must verify
// (and carry 8-bit bytes only as valid UTF-8); an unchanged message must not be touched.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tracking/rewrite.hpp"
#include "tracking/url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio::tracking;
  if (size < 1) return 0;
  static const TokenCodec codec({TrackingKey{"k", std::string(32, 'f')}});
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  std::size_t split = in.find("\n\n");
  if (split == std::string_view::npos) split = in.find("\r\n\r\n");
  if (split == std::string_view::npos) return 0;
  std::size_t header_len = split + (in[split] == '\r' ? 4 : 2);
  // Reassemble the body from chunks of a size chosen by the first byte.
  std::size_t chunk = 1 + data[0];
  std::string body;
  for (std::size_t off = header_len; off < in.size(); off += chunk) body.append(in.substr(off, chunk));

  TrackingPolicy p;
  p.opens = p.clicks = true;
  p.text_links = (data[0] & 1) != 0;
  p.pixel = (data[0] & 2) ? PixelPosition::top : PixelPosition::bottom;
  p.domain = "t.example";
  p.token_version = (data[0] & 4) ? 2 : 1;
  RewriteLimits lim;
  lim.max_links = 50;
  lim.mime.max_parts = 64;
  RewriteInput ri{in.substr(0, header_len), body, "org", 1, std::nullopt};
  // Quoted compact tokens of message 1 resolve (the seeds' links); any other message does not.
  ri.old_links = [](const std::string& org, std::uint64_t message) -> std::optional<std::vector<TrackedLink>> {
    if (org != "org" || message != 1) return std::nullopt;
    return std::vector<TrackedLink>{{1, "https://a.example/1"}, {2, "https://a.example/2?x=1&y=2"}};
  };
  RewriteResult r = rewrite(ri, p, lim, codec);
  if (!r.changed) {
    if (!r.body.empty()) std::abort();
    return 0;
  }
  std::string header = apply_header_edits(ri.header, r.header_edits);
  std::vector<HeaderField> before_f, after_f;
  std::size_t end = 0;
  if (!parse_header_block(ri.header, 1 << 20, before_f, end) || !parse_header_block(header, 1 << 20, after_f, end))
    std::abort();
  MimeTree a = walk(before_f, body, lim.mime), b = walk(after_f, r.body, lim.mime);
  if (b.malformed || a.parts.size() != b.parts.size()) std::abort();
  for (const auto& l : r.links) {
    if (!valid_utf8(l.url)) std::abort();  // non_utf8_url keeps everything else
    TokenData t;
    t.kind = TokenKind::click;
    t.org = "org";
    t.message = 1;
    t.link = l.index;
    t.url = l.url;
    t.version = p.token_version;
    if (!std::holds_alternative<TokenData>(codec.verify(codec.sign(t)))) std::abort();
  }
  return 0;
}
