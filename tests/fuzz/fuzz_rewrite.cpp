// Fuzzes the whole rewrite as the milter drives it: the input is split into a header
// block and a body delivered in chunks (like body callbacks), then rewritten. The
// output, when changed, must walk to the same structure and its tokens must verify
// (and carry 8-bit bytes only as valid UTF-8); an unchanged message must not be touched.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tracking/encoding.hpp"
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
  // Every token is read back from the output, not re-signed: each leaf part is decoded as it is
  // labelled, every tracking URL in it verified; each recorded link must be there as a click token
  // of this message with its index (and, in version 1, its destination), the pixel as an open token.
  std::vector<bool> seen(r.links.size(), false);
  bool open_seen = false;
  const std::string_view prefix = "https://t.example/";
  auto token_char = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  };
  for (const Part& part : b.parts) {
    if (!part.children.empty() || part.type.multipart()) continue;
    std::string_view raw = std::string_view(r.body).substr(part.body_begin, part.body_end - part.body_begin);
    std::string decoded;
    if (part.encoding == "quoted-printable") {
      qp_decode(raw, decoded);
    } else if (part.encoding == "base64") {
      if (!base64_decode(raw, decoded)) continue;  // not data: nothing of ours can be in it
    } else {
      decoded.assign(raw);
    }
    for (std::size_t at = decoded.find(prefix); at != std::string::npos; at = decoded.find(prefix, at + 1)) {
      std::size_t end = at + prefix.size() + 2;
      while (end < decoded.size() && token_char(decoded[end])) ++end;
      auto v = codec.verify_url_or_token(std::string_view(decoded).substr(at, std::min(end, decoded.size()) - at));
      const TokenData* t = std::get_if<TokenData>(&v);
      if (t == nullptr || t->org != "org" || t->message != 1) continue;  // text of the input, not a token of ours
      if (t->kind == TokenKind::open) open_seen = true;
      if (t->kind != TokenKind::click) continue;
      for (std::size_t i = 0; i < r.links.size(); ++i) {
        // (a quoted token of the input left in text may carry the same index: it does not count)
        if (r.links[i].index == t->link && t->version == p.token_version &&
            (t->version == 2 || t->url == r.links[i].url))
          seen[i] = true;
      }
    }
  }
  for (std::size_t i = 0; i < r.links.size(); ++i) {
    if (!valid_utf8(r.links[i].url)) std::abort();  // non_utf8_url keeps everything else
    if (!seen[i]) std::abort();
  }
  if (r.pixels > 0 && !open_seen) std::abort();
  return 0;
}
