// A bounded, byte-preserving MIME walker.
//
// walk() splits a message body into its MIME parts without copying: every part is
// a pair of offset ranges (its header block and its content) into the body it was
// given, so a rewrite can replace one part's content and copy every other byte as
// it was. It follows multipart/* (RFC 2046) down to `max_depth`, stops at
// `max_parts`, leaves message/rfc822 and every other leaf alone, and accepts CRLF
// and bare-LF line endings, even mixed. Anything it cannot split with certainty
// (a missing boundary parameter, no closing delimiter, a header line without a
// colon, a header block over `max_header_bytes`) makes the tree `malformed`: the
// caller must then leave the whole message as it is.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tracking/encoding.hpp"

namespace cllavio::tracking {

struct HeaderField {
  std::string_view name;  // as written
  std::string_view raw;   // the whole field: "Name: value" with folding, without the final line break
  std::size_t begin = 0;  // offset of the field in the scanned buffer
  std::size_t end = 0;    // offset just past its final line break
  std::string value() const;  // unfolded, trimmed value
  // The same without a copy when the field is on one line (a view into `raw`); a folded
  // field is unfolded into `buf` and the view points there.
  std::string_view value_view(std::string& buf) const;
};

struct ContentType {
  std::string type = "text";     // lowercase
  std::string subtype = "plain"; // lowercase
  std::string boundary;          // as written (case matters)
  std::string charset;           // lowercase
  bool multipart() const { return type == "multipart"; }
};

// Parses a Content-Type value ("text/html; charset=UTF-8"); invalid or missing: text/plain.
ContentType parse_content_type(std::string_view value);

// The value of a parameter ("boundary", "charset", "filename") of a structured header
// value; quoted strings unquoted. nullopt when absent.
std::optional<std::string> header_param(std::string_view value, std::string_view name);

// Splits a header block (lines up to the first empty line). Returns false when a line
// has no colon and is not a continuation. `end` receives the offset after the empty line
// (or the end of the input when the block has none).
bool parse_header_block(std::string_view text, std::size_t max_bytes, std::vector<HeaderField>& fields,
                        std::size_t& end);

// First field with that name (case-insensitive), or nullptr.
const HeaderField* find_field(const std::vector<HeaderField>& fields, std::string_view name);

struct MimeLimits {
  int max_depth = 20;
  int max_parts = 500;
  std::size_t max_header_bytes = 64 * 1024;
};

struct Part {
  int parent = -1;               // index in MimeTree::parts; -1 for the message itself
  int depth = 0;                 // 0 for the message itself
  std::size_t header_begin = 0;  // header block of this part inside the body (empty for part 0,
  std::size_t header_end = 0;    //   whose header is the message header)
  std::size_t body_begin = 0;    // content of this part
  std::size_t body_end = 0;
  std::vector<HeaderField> headers;  // this part's fields (part 0: filled from the message header)
  ContentType type;
  std::string encoding;          // Content-Transfer-Encoding, lowercase; "7bit" when absent
  bool attachment = false;       // Content-Disposition: attachment
  std::vector<int> children;     // multipart only
};

struct MimeTree {
  std::vector<Part> parts;       // parts[0] is the message; depth-first order
  bool malformed = false;
  std::string problem;           // why, when malformed or over a limit
  bool over_limit = false;       // deeper or wider than the limits (also leaves the message alone)
};

// Walks `body` given the message's own header fields (views into the caller's header
// text). Never throws on bad input.
MimeTree walk(const std::vector<HeaderField>& message_headers, std::string_view body, const MimeLimits& limits);

// The line ending used inside `text`: CRLF if it has one, else LF if it has one, else `fallback`.
Eol detect_eol(std::string_view text, Eol fallback);

}  // namespace cllavio::tracking
