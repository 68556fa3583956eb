// The HTML attribute scanner: where the links, images and body tags are.
//
// scan_html() tokenizes just enough HTML (tags, attributes with their quoting,
// comments, raw-text elements) to report the byte spans of the attributes a rewrite
// may change; it never builds or re-serializes a document. Markup inside Outlook
// conditional comments (<!--[if mso]> ... <![endif]-->) is scanned like any other,
// which is where VML buttons (v:roundrect, v:rect) keep their href. Malformed HTML
// never fails: an unterminated construct (truncated mail) ends the scan, and the scan
// says where it began: text added after that point would be read as part of it.
//
// decode_entities() and escape_attr() are the two halves of attribute values: what a
// browser would read (so "&amp;" in an href is "&" in the destination) and how to
// write a value back for its quoting style.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cllavio::tracking {

struct AttrValue {
  std::size_t begin = 0;  // the value's bytes, without quotes
  std::size_t end = 0;
  char quote = 0;         // '"', '\'' or 0 (unquoted)
};

enum class LinkTag { a, area, vml };

struct LinkSite {
  LinkTag tag = LinkTag::a;
  AttrValue href;
  std::size_t tag_begin = 0, tag_end = 0;  // the whole start tag, '<' to after '>'
  std::string_view opt_out;                // the marker that opts this link out, "" if none
};

struct ImageSite {
  AttrValue src;
  std::size_t tag_begin = 0, tag_end = 0;
};

struct HtmlScan {
  std::vector<LinkSite> links;                   // in document order
  std::vector<ImageSite> images;                 // <img> with a src
  std::optional<std::size_t> body_open_end;      // just after the first <body ...>
  std::optional<std::size_t> body_close_begin;   // at the last </body>
  // Where an unterminated tag, comment (Outlook conditional ones included), raw-text
  // element (script, style, title, textarea) or a <plaintext> begins; unset when the input
  // ends in text. Only before it is a browser reading text, where markup can be added.
  std::optional<std::size_t> unclosed_at;
};

HtmlScan scan_html(std::string_view html);

// Where content belongs that ends the body: at the last </body> when only whitespace,
// comments and </html> follow it, else at the end of the input before its trailing
// whitespace (browsers show what follows </body> inside the body). nullopt when that
// place is not text (see unclosed_at).
std::optional<std::size_t> body_end(std::string_view html, const HtmlScan& scan);

// An attribute value as a browser reads it: character references decoded (named ones
// from a table of the common names; legacy names without ';' follow the HTML rule for
// attributes). Unknown references stay as written.
std::string decode_entities(std::string_view value);
void decode_entities(std::string_view value, std::string& out);  // appends (reuses out's buffer)

// Appends `value` escaped for an attribute with the given quoting ('"', '\'' or 0).
void escape_attr(std::string_view value, char quote, std::string& out);

}  // namespace cllavio::tracking
