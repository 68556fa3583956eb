// Internal to the rewrite: the patches for one decoded part, and splicing them.
//
// A Patch replaces [begin, end) of the decoded part with `text` (begin == end inserts).
// html_patches/text_patches decide, link by link, what the part's new bytes are and
// record every decision in the shared PartContext (link table, kept links, counts).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tracking/rewrite.hpp"
#include "tracking/url.hpp"

namespace cllavio::tracking {

struct Patch {
  std::size_t begin = 0, end = 0;
  std::string text;
};

struct PartContext {
  const RewriteInput& in;
  const TrackingPolicy& policy;
  const RewriteLimits& limits;
  const TokenCodec& codec;    // verifies our old tokens
  const MessageSigner& signer;  // signs this message's tokens
  UrlContext urls;
  RewriteResult& result;
  std::vector<std::string> opted_out;  // destinations opted out in HTML: not tracked in text either
  std::uint32_t next_link = 1;
  std::string open_url;                // the pixel's URL, made once
};

std::vector<Patch> html_patches(std::string_view html, PartContext& ctx);
std::vector<Patch> text_patches(std::string_view text, PartContext& ctx);

// Sorts the patches and splices them into `out` (cleared first; `src` must not alias it);
// false (out untouched) when two overlap.
bool apply_patches(std::string_view src, std::vector<Patch>& patches, std::string& out);

}  // namespace cllavio::tracking
