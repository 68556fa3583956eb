// The tracking rewrite: one message in, the same message with tracked links and
// open pixels out, or the original untouched with the reason.
//
// rewrite() walks the MIME tree, and in every HTML body part (and, with text_links,
// every plain-text part) it finds attribute spans in the decoded content, turns them
// into sorted, non-overlapping patches (tracked link, restored old link, removed old
// pixel, new pixel), splices them in, and re-encodes that part in its own transfer
// encoding. Every other byte of the body is copied as it was. Before answering it
// walks its own output again: same structure, untouched parts byte-identical,
// changed lines <= 998 octets; if anything differs the message is skipped.
//
// Pure: no I/O, no clocks, no globals; the same input and keys give the same output.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tracking/mime.hpp"
#include "tracking/token.hpp"

namespace cllavio::tracking {

enum class PixelPosition { top, bottom };

struct TrackingPolicy {
  bool opens = false;
  bool clicks = false;
  bool text_links = false;
  std::string domain;  // lowercase tracking host
  PixelPosition pixel = PixelPosition::bottom;
  bool skip_signed = true;
  // 1: stateless tokens (the destination inside); 2: compact opens and clicks, resolved by
  // the endpoint from the message.accepted event (docs/tokens.md).
  std::uint8_t token_version = 1;
  bool enabled() const { return (opens || clicks) && !domain.empty(); }
};

struct RewriteLimits {
  std::size_t max_rewrite_bytes = 10u << 20;
  MimeLimits mime;
  std::size_t max_links = 1000;
};

struct TrackedLink {
  std::uint32_t index = 0;  // as in the click token
  std::string url;          // destination, entity-decoded
};

// The link table of one of our earlier messages (org, message id), for old version 2
// click tokens found in quoted content (they do not carry their destination); nullopt
// when the store no longer has it or cannot be read. Called at most 8 times per rewrite,
// and not again once the tables held pass 4 MiB.
using LinkTableLookup =
    std::function<std::optional<std::vector<TrackedLink>>(const std::string& org, std::uint64_t message)>;

struct RewriteInput {
  std::string_view header;  // the message header block as sent ("Name: value" lines)
  std::string_view body;
  std::string org;
  std::uint64_t message_id = 0;
  std::optional<std::string> recipient;  // set only when the message has exactly one
  bool body_truncated = false;           // the caller stopped buffering: skipped as too_large
  LinkTableLookup old_links = nullptr;   // empty: old version 2 click tokens stay as they are
};

struct HeaderEdit {
  enum class Op { change, add, remove } op = Op::change;
  std::string name;
  int occurrence = 1;  // 1-based among fields of that name (change, remove)
  std::string value;   // change, add: the new value, without the leading space
};

struct KeptLink {
  std::string url;
  std::string why;  // classify reasons (url.hpp), "clicks_off", "old_token_unresolved"
};

struct RewriteResult {
  bool changed = false;                 // the body differs (then `body` holds it)
  std::string skipped;                  // why the message was left alone; "" when it was not
  std::string body;
  std::vector<HeaderEdit> header_edits; // apply in order (also when skipped: X-Cllavio-Track removal)
  int parts_changed = 0;
  int pixels = 0;
  // Why an HTML part that should have had a pixel got none, "" when none was left out:
  // "unclosed_markup" (the part ends inside an unterminated tag, comment or raw-text
  // element, where a pixel would be read as part of it; its links are still tracked).
  std::string pixel_skipped;
  int old_pixels_removed = 0;
  int old_links_restored = 0;
  std::vector<TrackedLink> links;
  std::vector<KeptLink> kept;
};

RewriteResult rewrite(const RewriteInput& in, const TrackingPolicy& policy, const RewriteLimits& limits,
                      const TokenCodec& codec);

// Applies header edits to a raw header block the way the MTA would (for previews and
// tests); other bytes are kept. New fields go after the last one, with the block's
// own line ending.
std::string apply_header_edits(std::string_view header, const std::vector<HeaderEdit>& edits);

// The self-check's rule for the header block of a MIME part (not part 0) walked from `before_body`
// and again from the rewritten `after_body`: byte for byte the same; where the part became
// quoted-printable (now_qp), every field but Content-Transfer-Encoding the same, in order, and the
// part's encoding quoted-printable.
bool same_part_header(std::string_view before_body, const Part& before, std::string_view after_body,
                      const Part& after, bool now_qp);

}  // namespace cllavio::tracking
