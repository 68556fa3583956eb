// Which links are tracked, and where bare URLs are in plain text.
//
// Pure functions over decoded attribute values and text. A link is tracked only when
// it is an absolute http(s) URL with a plausible host that is not the tracking host,
// not a template placeholder and not a List-Unsubscribe target, and whose bytes mean
// the same wherever they go: any byte >= 0x80 only as valid UTF-8 in a part declared
// UTF-8 (a browser reads other bytes in the document's charset, and sends them in a
// way the token cannot reproduce). Everything else is kept with a reason that the
// rewrite report names.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cllavio::tracking {

enum class Skip { none, scheme, fragment, relative, unparsable, placeholder, tracking_domain, unsubscribe, opt_out,
                  max_links, too_long, non_utf8_url };

// Longer destinations are not tracked: the token would exceed what browsers and servers
// reliably accept in a URL.
inline constexpr std::size_t kMaxTrackedUrl = 4096;
std::string_view to_string(Skip);

// What a browser navigates to: leading and trailing spaces and controls dropped, tabs
// and line breaks inside removed (the WHATWG URL parser does the same).
std::string clean_url(std::string_view decoded);

// Lowercased host of an absolute URL ("https://User@Host.Example:8443/x" -> "host.example"),
// "" when there is none or it has characters a host cannot have.
std::string url_host(std::string_view url);

struct UrlContext {
  std::string_view tracking_domain;                      // lowercase
  const std::vector<std::string>* unsubscribe = nullptr;  // List-Unsubscribe http(s) targets
  std::string_view charset;  // the part's Content-Type charset, lowercase ("" when none)
};

// Valid UTF-8: no overlong forms, surrogates or code points over U+10FFFF.
bool valid_utf8(std::string_view s);

Skip classify_url(std::string_view url, const UrlContext& ctx);

// The http(s) URLs of List-Unsubscribe ("<https://...>, <mailto:...>").
std::vector<std::string> list_unsubscribe_urls(std::string_view header_value);

// Spans [begin, end) of bare http:// and https:// URLs in plain text; trailing
// punctuation (".,;:!?" and unbalanced closing brackets or quotes) is left out.
std::vector<std::pair<std::size_t, std::size_t>> find_text_urls(std::string_view text);

}  // namespace cllavio::tracking
