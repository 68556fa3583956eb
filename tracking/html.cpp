#include "tracking/html.hpp"
#include "tracking/ascii.hpp"
#include "tracking/bytes.hpp"

#include <array>

#include <cctype>
#include <cstdint>
#include <cstring>

namespace cllavio::tracking {

namespace {


bool istarts_at(std::string_view s, std::size_t pos, std::string_view prefix) {
  return pos + prefix.size() <= s.size() && iequals(s.substr(pos, prefix.size()), prefix);
}

bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool digit(char c) { return c >= '0' && c <= '9'; }
bool alnum(char c) { return alpha(c) || digit(c); }

// Byte classes for the tag scanner's loops: one table lookup per byte instead of a chain
// of comparisons (the templates are mostly markup, so these loops see most bytes).
enum : std::uint8_t {
  kSpace = 1,     // HTML whitespace
  kName = 2,      // tag name characters
  kAttrEnd = 4,   // ends an attribute name: whitespace, '/', '>', '='
  kSkip = 8,      // skipped between attributes: whitespace, '/'
  kUnqEnd = 16,   // ends an unquoted value: whitespace, '>'
};
constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> t{};
  for (unsigned char c : {' ', '\t', '\n', '\r', '\f'}) t[c] |= kSpace | kAttrEnd | kSkip | kUnqEnd;
  for (int c = 0; c < 256; ++c)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' || c == '-' ||
        c == '_' || c == '.')
      t[c] |= kName;
  t['/'] |= kAttrEnd | kSkip;
  t['>'] |= kAttrEnd | kUnqEnd;
  t['='] |= kAttrEnd;
  return t;
}
constexpr auto kClass = make_classes();
bool is(char c, std::uint8_t cls) { return (kClass[static_cast<unsigned char>(c)] & cls) != 0; }
bool space(char c) { return is(c, kSpace); }
bool name_char(char c) { return is(c, kName); }

enum class Kind { other, a, area, vml, img, body, raw_text, plaintext };

Kind classify(std::string_view name) {
  if (iequals(name, "a")) return Kind::a;
  if (iequals(name, "img")) return Kind::img;
  if (iequals(name, "area")) return Kind::area;
  if (iequals(name, "body")) return Kind::body;
  if (iequals(name, "v:roundrect") || iequals(name, "v:rect")) return Kind::vml;
  if (iequals(name, "script") || iequals(name, "style") || iequals(name, "title") || iequals(name, "textarea"))
    return Kind::raw_text;
  if (iequals(name, "plaintext")) return Kind::plaintext;
  return Kind::other;
}

// Senders' markers that keep a link untracked.
std::string_view opt_out_marker(std::string_view html, std::string_view name, const AttrValue* v) {
  auto value = [&] { return v ? html.substr(v->begin, v->end - v->begin) : std::string_view(); };
  if (iequals(name, "data-cllavio-track") && iequals(value(), "off")) return "data-cllavio-track";
  if (iequals(name, "clicktracking") && iequals(value(), "off")) return "clicktracking";          // SendGrid
  if (iequals(name, "ses:no-track")) return "ses:no-track";                                         // Amazon SES
  if (iequals(name, "data-msys-clicktrack") && value() == "0") return "data-msys-clicktrack";       // SparkPost
  if (iequals(name, "data-mautic-disable-tracking")) return "data-mautic-disable-tracking";          // Mautic
  return {};
}

}  // namespace

HtmlScan scan_html(std::string_view h) {
  HtmlScan out;
  const std::size_t n = h.size();
  std::size_t i = 0;
  // Browsers read an Outlook conditional comment as a comment up to its "-->": a body tag
  // before that is not one to them.
  std::size_t hidden_until = 0;
  auto unclosed = [&](std::size_t at) {
    if (!out.unclosed_at) out.unclosed_at = at;
  };
  for (;;) {
    std::size_t lt = find_byte(h, '<', i);
    if (lt == std::string_view::npos || lt + 1 >= n) break;  // a '<' at the end is text
    char c = h[lt + 1];
    if (c == '!') {
      if (h.compare(lt, 4, "<!--") == 0) {
        if (istarts_at(h, lt + 4, "[if")) {  // conditional comment: what it guards is markup too
          std::size_t gt = h.find('>', lt + 4);
          if (gt == std::string_view::npos) {
            unclosed(lt);
            break;
          }
          if (lt >= hidden_until) {
            std::size_t close = find_bytes(h, "-->", lt + 4);
            if (close == std::string_view::npos) unclosed(lt);  // a comment to the end, to a browser
            hidden_until = close == std::string_view::npos ? n : close + 3;
          }
          i = gt + 1;
          continue;
        }
        std::size_t close = find_bytes(h, "-->", lt + 2);  // also "<!-->"
        if (close == std::string_view::npos) {
          unclosed(lt);
          break;
        }
        i = close + 3;
        continue;
      }
      std::size_t gt = h.find('>', lt + 2);  // <!DOCTYPE ...>, <![endif]>, <![CDATA[...]]>
      if (gt == std::string_view::npos) {
        unclosed(lt);
        break;
      }
      i = gt + 1;
      continue;
    }
    if (c == '/' || c == '?') {  // end tag or processing instruction
      std::size_t j = lt + 2;
      while (j < n && name_char(h[j])) ++j;
      std::size_t gt = find_byte(h, '>', j);
      if (gt == std::string_view::npos) {
        unclosed(lt);
        break;
      }
      if (c == '/' && lt >= hidden_until && iequals(h.substr(lt + 2, j - lt - 2), "body")) out.body_close_begin = lt;
      i = gt + 1;
      continue;
    }
    if (!alpha(c)) {  // a '<' in text
      i = lt + 1;
      continue;
    }

    std::size_t k = lt + 1;
    while (k < n && name_char(h[k])) ++k;
    std::string_view name = h.substr(lt + 1, k - lt - 1);
    Kind kind = classify(name);
    bool want_href = kind == Kind::a || kind == Kind::area || kind == Kind::vml;
    AttrValue href{}, src{};
    bool has_href = false, has_src = false, closed = false;
    std::string_view opt_out;
    while (k < n) {
      while (k < n && is(h[k], kSkip)) ++k;
      if (k >= n) break;
      if (h[k] == '>') {
        closed = true;
        ++k;
        break;
      }
      std::size_t an = k++;  // the first character may be '='
      while (k < n && !is(h[k], kAttrEnd)) ++k;
      std::string_view aname = h.substr(an, k - an);
      std::size_t after_name = k;
      while (k < n && space(h[k])) ++k;
      AttrValue v{};
      bool has_value = false;
      if (k < n && h[k] == '=') {
        ++k;
        while (k < n && space(h[k])) ++k;
        if (k < n && (h[k] == '"' || h[k] == '\'')) {
          char q = h[k];
          std::size_t end = find_byte(h, q, k + 1);
          if (end == std::string_view::npos) {
            k = n;
            break;
          }
          v = AttrValue{k + 1, end, q};
          k = end + 1;
        } else {
          std::size_t vb = k;
          while (k < n && !is(h[k], kUnqEnd)) ++k;
          v = AttrValue{vb, k, 0};
        }
        has_value = true;
      } else {
        k = after_name;  // a name without value; blanks are skipped by the loop
      }
      if (want_href && !has_href && has_value && iequals(aname, "href")) {
        href = v;
        has_href = true;
      } else if (kind == Kind::img && !has_src && has_value && iequals(aname, "src")) {
        src = v;
        has_src = true;
      } else if (want_href && opt_out.empty()) {
        opt_out = opt_out_marker(h, aname, has_value ? &v : nullptr);
      }
    }
    if (!closed) {  // unterminated tag: the rest is not markup we can trust
      unclosed(lt);
      break;
    }
    switch (kind) {
      case Kind::a:
      case Kind::area:
      case Kind::vml:
        if (has_href)
          out.links.push_back(LinkSite{kind == Kind::a ? LinkTag::a : kind == Kind::area ? LinkTag::area : LinkTag::vml,
                                       href, lt, k, opt_out});
        break;
      case Kind::img:
        if (has_src) out.images.push_back(ImageSite{src, lt, k});
        break;
      case Kind::body:
        if (!out.body_open_end && lt >= hidden_until) out.body_open_end = k;
        break;
      case Kind::plaintext:  // everything after it is text to a browser
        unclosed(lt);
        break;
      case Kind::raw_text: {
        // Nothing inside <script>, <style>, <title>, <textarea> is a tag.
        std::string closing = "</" + std::string(name);
        std::size_t j = k;
        for (;;) {
          j = h.find("</", j);
          if (j == std::string_view::npos || istarts_at(h, j, closing)) break;
          j += 2;
        }
        if (j == std::string_view::npos) {
          unclosed(lt);
          return out;
        }
        k = j;
        break;
      }
      case Kind::other:
        break;
    }
    i = k;
  }
  return out;
}

std::optional<std::size_t> body_end(std::string_view h, const HtmlScan& scan) {
  std::size_t at = h.size();
  if (scan.body_close_begin) {
    // Only whitespace, comments and </html> after the last </body>: before it. Anything
    // else there is shown inside the body by browsers, so the end is after it.
    std::size_t i = h.find('>', *scan.body_close_begin) + 1;  // the scan saw this '>'
    for (;;) {
      while (i < h.size() && space(h[i])) ++i;
      std::size_t next = std::string_view::npos;
      if (i == h.size()) {
        at = *scan.body_close_begin;
      } else if (istarts_at(h, i, "</html") && (i + 6 == h.size() || space(h[i + 6]) || h[i + 6] == '>')) {
        if (std::size_t gt = h.find('>', i); gt != std::string_view::npos) next = gt + 1;
      } else if (h.compare(i, 4, "<!--") == 0) {
        if (std::size_t close = find_bytes(h, "-->", i + 2); close != std::string_view::npos) next = close + 3;
      }
      if (next == std::string_view::npos) break;
      i = next;
    }
  }
  if (at == h.size())  // before the input's trailing whitespace (its last line break, say)
    while (at > 0 && space(h[at - 1])) --at;
  if (scan.unclosed_at && at > *scan.unclosed_at) return std::nullopt;
  return at;
}

// ---- character references ----------------------------------------------------

namespace {

struct Named {
  const char* name;
  const char* utf8;
  bool legacy;  // also recognized without ';'
};

// The names seen in URLs and mail templates; HTML has ~2,200, the rest stay as written.
constexpr Named kNamed[] = {
    {"amp", "&", true},           {"AMP", "&", true},          {"lt", "<", true},            {"LT", "<", true},
    {"gt", ">", true},            {"GT", ">", true},           {"quot", "\"", true},         {"QUOT", "\"", true},
    {"apos", "'", false},         {"nbsp", "\xc2\xa0", true},  {"copy", "\xc2\xa9", true},   {"reg", "\xc2\xae", true},
    {"equals", "=", false},       {"quest", "?", false},       {"excl", "!", false},         {"num", "#", false},
    {"dollar", "$", false},       {"percnt", "%", false},      {"lpar", "(", false},         {"rpar", ")", false},
    {"ast", "*", false},          {"plus", "+", false},        {"comma", ",", false},        {"period", ".", false},
    {"sol", "/", false},          {"colon", ":", false},       {"semi", ";", false},         {"commat", "@", false},
    {"lsqb", "[", false},         {"rsqb", "]", false},        {"lowbar", "_", false},       {"grave", "`", false},
    {"lcub", "{", false},         {"rcub", "}", false},        {"verbar", "|", false},       {"tilde", "~", false},
    {"hyphen", "-", false},       {"Tab", "\t", false},        {"NewLine", "\n", false},     {"shy", "\xc2\xad", true},
    {"ndash", "\xe2\x80\x93", false}, {"mdash", "\xe2\x80\x94", false}, {"hellip", "\xe2\x80\xa6", false},
    {"lsquo", "\xe2\x80\x98", false}, {"rsquo", "\xe2\x80\x99", false}, {"ldquo", "\xe2\x80\x9c", false},
    {"rdquo", "\xe2\x80\x9d", false}, {"laquo", "\xc2\xab", true},      {"raquo", "\xc2\xbb", true},
    {"euro", "\xe2\x82\xac", false},  {"pound", "\xc2\xa3", true},      {"yen", "\xc2\xa5", true},
    {"middot", "\xc2\xb7", true},     {"bull", "\xe2\x80\xa2", false},  {"trade", "\xe2\x84\xa2", false},
    {"eacute", "\xc3\xa9", true},     {"egrave", "\xc3\xa8", true},     {"aacute", "\xc3\xa1", true},
    {"agrave", "\xc3\xa0", true},     {"oacute", "\xc3\xb3", true},     {"uacute", "\xc3\xba", true},
    {"iacute", "\xc3\xad", true},     {"auml", "\xc3\xa4", true},       {"ouml", "\xc3\xb6", true},
    {"uuml", "\xc3\xbc", true},       {"Auml", "\xc3\x84", true},       {"Ouml", "\xc3\x96", true},
    {"Uuml", "\xc3\x9c", true},       {"szlig", "\xc3\x9f", true},      {"ntilde", "\xc3\xb1", true},
    {"ccedil", "\xc3\xa7", true},
};

// Windows-1252 meanings HTML gives to &#128; .. &#159;.
constexpr std::uint32_t kC1[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                   0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                                   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                   0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};

void put_utf8(std::uint32_t cp, std::string& out) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp >= 0x80 && cp <= 0x9F) cp = kC1[cp - 0x80];
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes the reference at v[i] == '&'; returns the bytes consumed (0: not a reference).
std::size_t decode_one(std::string_view v, std::size_t i, std::string& out) {
  std::size_t n = v.size();
  if (i + 1 < n && v[i + 1] == '#') {
    std::size_t j = i + 2;
    bool hex = j < n && (v[j] == 'x' || v[j] == 'X');
    if (hex) ++j;
    std::size_t start = j;
    std::uint32_t cp = 0;
    while (j < n && (hex ? std::isxdigit(static_cast<unsigned char>(v[j])) != 0 : digit(v[j]))) {
      int d = digit(v[j]) ? v[j] - '0' : (ascii_lower(v[j]) - 'a' + 10);
      if (cp <= 0x10FFFF) cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(d);
      ++j;
    }
    if (j == start) return 0;
    if (j < n && v[j] == ';') ++j;
    put_utf8(cp, out);
    return j - i;
  }
  std::size_t j = i + 1;
  while (j < n && alnum(v[j]) && j - i <= 32) ++j;
  std::string_view name = v.substr(i + 1, j - i - 1);
  if (name.empty()) return 0;
  bool semicolon = j < n && v[j] == ';';
  for (const auto& e : kNamed) {
    if (semicolon && name == e.name) {
      out.append(e.utf8);
      return j + 1 - i;
    }
  }
  // Legacy names without ';': the longest one that prefixes the text, unless an
  // alphanumeric or '=' follows it (then browsers keep it literally in attributes).
  const Named* best = nullptr;
  for (const auto& e : kNamed) {
    std::size_t len = std::strlen(e.name);
    if (e.legacy && name.substr(0, len) == e.name && (!best || len > std::strlen(best->name))) best = &e;
  }
  if (best == nullptr) return 0;
  std::size_t end = i + 1 + std::strlen(best->name);
  if (end < n && (alnum(v[end]) || v[end] == '=')) return 0;
  out.append(best->utf8);
  return end - i;
}

}  // namespace

std::string decode_entities(std::string_view v) {
  std::string out;
  decode_entities(v, out);
  return out;
}

void decode_entities(std::string_view v, std::string& out) {
  out.reserve(out.size() + v.size());
  std::size_t i = 0;
  while (i < v.size()) {
    std::size_t amp = v.find('&', i);
    if (amp == std::string_view::npos) {
      out.append(v.substr(i));
      break;
    }
    out.append(v.substr(i, amp - i));
    std::size_t used = decode_one(v, amp, out);
    if (used == 0) {
      out.push_back('&');
      i = amp + 1;
    } else {
      i = amp + used;
    }
  }
}

namespace {

// Bytes escape_attr must replace in an unquoted value: '&', both quotes and everything
// that would end the value or confuse a parser. (In a quoted value: '&' and that quote.)
constexpr std::array<bool, 256> make_unquoted_specials() {
  std::array<bool, 256> t{};
  for (unsigned char c : {'&', '"', '\'', '<', '>', '=', '`', ' ', '\t', '\n', '\r', '\f'}) t[c] = true;
  return t;
}
constexpr auto kUnquotedSpecials = make_unquoted_specials();

}  // namespace

void escape_attr(std::string_view value, char quote, std::string& out) {
  // Runs of bytes that need no escaping (all of a tracking URL) are appended at once; in a
  // quoted value only '&' and the quote are special, found 16 bytes at a time.
  auto next = [&](std::size_t from) -> std::size_t {
    if (quote == '"') return find_any<'&', '"'>(value, from);
    if (quote == '\'') return find_any<'&', '\''>(value, from);
    for (std::size_t i = from; i < value.size(); ++i)
      if (kUnquotedSpecials[static_cast<unsigned char>(value[i])]) return i;
    return std::string_view::npos;
  };
  out.reserve(out.size() + value.size());
  std::size_t run = 0;
  for (std::size_t i = next(0); i != std::string_view::npos; i = next(i + 1)) {
    char c = value[i];
    out.append(value.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '=': out += "&#61;"; break;
      case '`': out += "&#96;"; break;
      default:
        out += "&#";
        out += std::to_string(static_cast<int>(c));
        out += ';';
    }
  }
  out.append(value.data() + run, value.size() - run);
}

}  // namespace cllavio::tracking
