// Internal to the rewrite: the patches for one decoded part, and splicing them.
//
// A Patch replaces [begin, end) of the decoded part with its text (begin == end inserts).
// The texts of a part's patches live in one buffer (Patches::text), so a link costs no
// allocation of its own; callers reuse a Patches from part to part.
// html_patches/text_patches decide, link by link, what the part's new bytes are and
// record every decision in the shared PartContext (link table, kept links, counts).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "tracking/rewrite.hpp"
#include "tracking/url.hpp"

namespace cllavio::tracking {

struct Patch {
  std::size_t begin = 0, end = 0;
  std::size_t text_begin = 0, text_size = 0;  // in Patches::text
};

struct Patches {
  std::vector<Patch> list;
  std::string text;
  void clear() {
    list.clear();
    text.clear();
  }
  // A patch whose text is what was appended to `text` since `text_from`.
  void add(std::size_t begin, std::size_t end, std::size_t text_from) {
    list.push_back({begin, end, text_from, text.size() - text_from});
  }
  std::string_view text_of(const Patch& p) const { return std::string_view(text).substr(p.text_begin, p.text_size); }
};

// An earlier message's link table, for its quoted compact (version 2) click tokens.
struct OldTable {
  std::string org;
  std::uint64_t message = 0;
  std::optional<std::vector<TrackedLink>> links;  // nullopt: not found
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
  std::string url_scratch;             // a link's entity-decoded value, reused
  // Link tables of earlier messages whose version 2 click tokens this one quotes, looked
  // up once per (org, message) through in.old_links.
  std::vector<OldTable> old_tables = {};
  std::size_t old_table_bytes = 0;  // what old_tables hold (bounded: patches.cpp)
};

// Both clear `out` first.
void html_patches(std::string_view html, PartContext& ctx, Patches& out);
void text_patches(std::string_view text, PartContext& ctx, Patches& out);

// Sorts the patches and splices them into `out` (cleared first; `src` must not alias it);
// false (out untouched) when two overlap.
bool apply_patches(std::string_view src, Patches& patches, std::string& out);

}  // namespace cllavio::tracking
