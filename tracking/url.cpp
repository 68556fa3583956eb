#include "tracking/url.hpp"
#include "tracking/ascii.hpp"
#include "tracking/bytes.hpp"

#include <algorithm>
#include <cctype>

namespace cllavio::tracking {

namespace {

bool has_8bit(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

// Template syntax left in a URL: "{{", "}}", "{%", "%}", "*|", "|*", "[[", "]]", "<%", "%%"
// or "${" anywhere. One pass over the URL (it runs for every link).
bool has_placeholder(std::string_view url) {
  // Only where a marker's first byte is (most URLs have none, or only '%' escapes).
  auto next = [&](std::size_t from) { return find_any<'{', '}', '%', '*', '|', '[', ']', '<', '$'>(url, from); };
  for (std::size_t i = next(0); i != std::string_view::npos && i + 1 < url.size(); i = next(i + 1)) {
    char c = url[i], d = url[i + 1];
    switch (c) {
      case '{': if (d == '{' || d == '%') return true; break;
      case '}': if (d == '}') return true; break;
      case '%': if (d == '}' || d == '%') return true; break;
      case '*': if (d == '|') return true; break;
      case '|': if (d == '*') return true; break;
      case '[': if (d == '[') return true; break;
      case ']': if (d == ']') return true; break;
      case '<': if (d == '%') return true; break;
      case '$': if (d == '{') return true; break;
      default: break;
    }
  }
  return false;
}

}  // namespace

std::string_view to_string(Skip s) {
  switch (s) {
    case Skip::scheme: return "scheme";
    case Skip::fragment: return "fragment";
    case Skip::relative: return "relative";
    case Skip::unparsable: return "unparsable";
    case Skip::placeholder: return "placeholder";
    case Skip::tracking_domain: return "tracking_domain";
    case Skip::unsubscribe: return "unsubscribe";
    case Skip::opt_out: return "opt_out";
    case Skip::max_links: return "max_links";
    case Skip::too_long: return "too_long";
    case Skip::non_utf8_url: return "non_utf8_url";
    case Skip::none: break;
  }
  return "none";
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (len == 0 || s.size() - i < len) return false;
    // The second byte's range excludes overlong forms, surrogates and > U+10FFFF.
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    if (c1 < lo || c1 > hi) return false;
    for (std::size_t k = 2; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

std::string clean_url(std::string_view v) {
  auto junk = [](char c) { return static_cast<unsigned char>(c) <= 0x20; };
  while (!v.empty() && junk(v.front())) v.remove_prefix(1);
  while (!v.empty() && junk(v.back())) v.remove_suffix(1);
  std::size_t first = find_any<'\t', '\n', '\r'>(v);
  if (first == std::string_view::npos) return std::string(v);  // the usual case: one copy
  std::string out(v.substr(0, first));
  out.reserve(v.size());
  for (char c : v.substr(first))
    if (c != '\t' && c != '\n' && c != '\r') out.push_back(c);
  return out;
}

namespace {

// The host of an absolute URL as written (any case), "" when there is none or it has
// characters a host cannot have.
std::string_view host_span(std::string_view url) {
  std::size_t sep = url.find("://");
  if (sep == std::string_view::npos) return {};
  std::string_view rest = url.substr(sep + 3);
  std::string_view authority = rest.substr(0, find_any<'/', '?', '#', '\\'>(rest));
  if (std::size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  std::string_view host = authority;
  if (!host.empty() && host.front() == '[') {  // IPv6 literal
    std::size_t close = host.find(']');
    if (close == std::string_view::npos) return {};
    host = host.substr(0, close + 1);
  } else if (std::size_t colon = host.find(':'); colon != std::string_view::npos) {
    std::string_view port = host.substr(colon + 1);
    if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) return {};
    host = host.substr(0, colon);
  }
  for (char c : host) {
    char l = ascii_lower(c);
    bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '-' || l == '.' || l == '_' || l == '%' ||
              l == '[' || l == ']' || l == ':' || static_cast<unsigned char>(c) >= 0x80;
    if (!ok) return {};
  }
  return host;
}

}  // namespace

std::string url_host(std::string_view url) {
  std::string out(host_span(url));
  for (char& c : out) c = ascii_lower(c);
  return out;
}

Skip classify_url(std::string_view url, const UrlContext& ctx) {
  if (url.empty()) return Skip::relative;
  if (url.size() > kMaxTrackedUrl) return Skip::too_long;
  if (has_placeholder(url)) return Skip::placeholder;
  if (url.front() == '#') return Skip::fragment;
  bool http = istarts_with(url, "http://"), https = istarts_with(url, "https://");
  if (!http && !https) {
    std::size_t colon = url.find(':');
    std::size_t slash = find_any<'/', '?', '#'>(url);
    bool has_scheme = colon != std::string_view::npos && colon > 0 && (slash == std::string_view::npos || colon < slash);
    return has_scheme ? Skip::scheme : Skip::relative;  // mailto:, tel:, cid:, ... or a relative path
  }
  std::string_view host = host_span(url);  // any case: compared case-insensitively, not copied
  if (host.empty()) return Skip::unparsable;
  if (!ctx.tracking_domain.empty() && iequals(host, ctx.tracking_domain)) return Skip::tracking_domain;
  if (ctx.unsubscribe != nullptr &&
      std::find(ctx.unsubscribe->begin(), ctx.unsubscribe->end(), url) != ctx.unsubscribe->end())
    return Skip::unsubscribe;
  // A browser decodes the document in its charset and percent-encodes the result (the
  // query in that charset): only UTF-8 bytes in a UTF-8 part reach the token unchanged.
  if (has_8bit(url) && ((ctx.charset != "utf-8" && ctx.charset != "utf8") || !valid_utf8(url)))
    return Skip::non_utf8_url;
  return Skip::none;
}

std::vector<std::string> list_unsubscribe_urls(std::string_view v) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while ((i = v.find('<', i)) != std::string_view::npos) {
    std::size_t close = v.find('>', i + 1);
    if (close == std::string_view::npos) break;
    std::string url = clean_url(v.substr(i + 1, close - i - 1));
    if (istarts_with(url, "http://") || istarts_with(url, "https://")) out.push_back(std::move(url));
    i = close + 1;
  }
  return out;
}

std::vector<std::pair<std::size_t, std::size_t>> find_text_urls(std::string_view t) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t i = 0;
  while ((i = t.find("http", i)) != std::string_view::npos) {
    std::string_view rest = t.substr(i);
    std::size_t scheme = istarts_with(rest, "https://") ? 8 : istarts_with(rest, "http://") ? 7 : 0;
    bool word_start = i == 0 || !(std::isalnum(static_cast<unsigned char>(t[i - 1])) || t[i - 1] == '/');
    if (scheme == 0 || !word_start) {
      i += 4;
      continue;
    }
    std::size_t end = i + scheme;
    while (end < t.size()) {
      auto c = static_cast<unsigned char>(t[end]);
      if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"' || c == '`' || c == '{' || c == '}' ||
          c == '|' || c == '\\' || c == '^')
        break;
      ++end;
    }
    // Trailing punctuation belongs to the sentence, not the URL.
    while (end > i + scheme) {
      char c = t[end - 1];
      if (std::string_view(".,;:!?'*").find(c) != std::string_view::npos) {
        --end;
      } else if (c == ')' || c == ']') {
        char open = c == ')' ? '(' : '[';
        std::string_view u = t.substr(i, end - i);
        if (std::count(u.begin(), u.end(), open) >= std::count(u.begin(), u.end(), c)) break;
        --end;
      } else {
        break;
      }
    }
    if (end > i + scheme) out.emplace_back(i, end);
    i = end;
  }
  return out;
}

}  // namespace cllavio::tracking
