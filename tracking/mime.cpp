#include "tracking/mime.hpp"
#include "tracking/ascii.hpp"
#include "tracking/bytes.hpp"

namespace cllavio::tracking {

namespace {


std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

bool blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (blank(s.front()) || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (blank(s.back()) || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

bool token_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u <= 32 || u >= 127) return false;
  return std::string_view("()<>@,;:\\\"/[]?=").find(c) == std::string_view::npos;
}

// Where the line starting at `pos` ends: `content_end` excludes the line break, the
// return value is the start of the next line (or text.size()).
std::size_t line_end(std::string_view text, std::size_t pos, std::size_t& content_end) {
  std::size_t nl = text.find('\n', pos);
  if (nl == std::string_view::npos) {
    content_end = text.size();
    return text.size();
  }
  content_end = (nl > pos && text[nl - 1] == '\r') ? nl - 1 : nl;
  return nl + 1;
}

}  // namespace

std::string_view HeaderField::value_view(std::string& buf) const {
  std::string_view v = raw.substr(name.size());
  std::size_t colon = v.find(':');
  v = colon == std::string_view::npos ? std::string_view() : v.substr(colon + 1);
  if (find_any<'\r', '\n'>(v) == std::string_view::npos) return trim(v);
  buf.clear();
  buf.reserve(v.size());
  for (char c : v)
    if (c != '\r' && c != '\n') buf.push_back(c);
  return trim(buf);
}

std::string HeaderField::value() const {
  std::string buf;
  return std::string(value_view(buf));
}

bool parse_header_block(std::string_view text, std::size_t max_bytes, std::vector<HeaderField>& fields,
                        std::size_t& end) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (pos > max_bytes) return false;
    std::size_t content_end;
    std::size_t next = line_end(text, pos, content_end);
    std::string_view line = text.substr(pos, content_end - pos);
    if (line.empty()) {  // the empty line ending the block
      end = next;
      return true;
    }
    if (blank(line.front())) {  // folded continuation of the previous field
      if (fields.empty()) return false;
      fields.back().raw = text.substr(fields.back().begin, content_end - fields.back().begin);
      fields.back().end = next;
    } else {
      std::size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) return false;
      std::string_view name = line.substr(0, colon);
      while (!name.empty() && blank(name.back())) name.remove_suffix(1);
      for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 32 || u >= 127) return false;
      }
      fields.push_back(HeaderField{name, line, pos, next});
    }
    pos = next;
  }
  end = text.size();  // no empty line: a header-only part
  return pos <= max_bytes;
}

const HeaderField* find_field(const std::vector<HeaderField>& fields, std::string_view name) {
  for (const auto& f : fields)
    if (iequals(f.name, name)) return &f;
  return nullptr;
}

std::optional<std::string> header_param(std::string_view value, std::string_view name) {
  std::size_t i = value.find(';');
  while (i != std::string_view::npos && i < value.size()) {
    ++i;  // past ';'
    while (i < value.size() && (blank(value[i]) || value[i] == '\r' || value[i] == '\n')) ++i;
    std::size_t eq = value.find('=', i);
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view key = trim(value.substr(i, eq - i));
    std::size_t j = eq + 1;
    while (j < value.size() && blank(value[j])) ++j;
    std::string val;
    if (j < value.size() && value[j] == '"') {
      ++j;
      while (j < value.size() && value[j] != '"') {
        if (value[j] == '\\' && j + 1 < value.size()) ++j;
        val.push_back(value[j++]);
      }
      if (j < value.size()) ++j;  // closing quote
      std::size_t semi = value.find(';', j);
      i = semi;
    } else {
      std::size_t semi = value.find(';', j);
      val = std::string(trim(value.substr(j, semi == std::string_view::npos ? std::string_view::npos : semi - j)));
      i = semi;
    }
    if (iequals(key, name)) return val;
  }
  return std::nullopt;
}

ContentType parse_content_type(std::string_view value) {
  ContentType ct;
  std::string_view head = trim(value.substr(0, value.find(';')));
  std::size_t slash = head.find('/');
  if (slash == std::string_view::npos) return ct;
  std::string_view type = trim(head.substr(0, slash)), subtype = trim(head.substr(slash + 1));
  if (type.empty() || subtype.empty()) return ct;
  for (char c : type)
    if (!token_char(c)) return ct;
  for (char c : subtype)
    if (!token_char(c)) return ct;
  ct.type = lowercase(type);
  ct.subtype = lowercase(subtype);
  ct.boundary = header_param(value, "boundary").value_or("");
  ct.charset = lowercase(header_param(value, "charset").value_or(""));
  return ct;
}

Eol detect_eol(std::string_view text, Eol fallback) {
  std::size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return fallback;
  return nl > 0 && text[nl - 1] == '\r' ? Eol::crlf : Eol::lf;
}

namespace {

void describe(Part& p) {
  std::string buf;
  if (const HeaderField* f = find_field(p.headers, "Content-Type")) p.type = parse_content_type(f->value_view(buf));
  p.encoding = "7bit";
  if (const HeaderField* f = find_field(p.headers, "Content-Transfer-Encoding")) {
    std::string_view v = f->value_view(buf);
    if (!v.empty()) p.encoding = lowercase(v);
  }
  if (const HeaderField* f = find_field(p.headers, "Content-Disposition"))
    p.attachment = istarts_with(f->value_view(buf), "attachment");
}

class Walker {
 public:
  Walker(std::string_view body, const MimeLimits& limits, MimeTree& tree) : body_(body), lim_(limits), t_(tree) {}

  void split(int idx) {
    if (t_.malformed || t_.over_limit) return;
    const Part& p = t_.parts[idx];
    if (!p.type.multipart()) return;
    if (p.depth >= lim_.max_depth) return limit("MIME nesting deeper than " + std::to_string(lim_.max_depth));
    if (p.type.boundary.empty() || p.type.boundary.size() > 200) return bad("multipart without a usable boundary");
    if (p.encoding != "7bit" && p.encoding != "8bit" && p.encoding != "binary")
      return bad("multipart with Content-Transfer-Encoding " + p.encoding);
    // `p` dangles once children are appended: copy what the loop needs.
    const std::string boundary = p.type.boundary;
    const std::string dash = "--" + boundary;
    const std::size_t begin = p.body_begin, end = p.body_end;
    const int depth = p.depth;

    Delimiter d = find_delimiter(dash, begin, begin, end);
    if (!d.found) return bad("no boundary delimiter for \"" + boundary + "\"");
    while (!d.close) {
      std::size_t start = d.next_line;
      Delimiter nd = find_delimiter(dash, start, begin, end);
      if (!nd.found) return bad("multipart \"" + boundary + "\" has no closing delimiter");
      std::size_t stop = std::max(start, nd.break_begin);
      if (static_cast<int>(t_.parts.size()) >= lim_.max_parts)
        return limit("more than " + std::to_string(lim_.max_parts) + " MIME parts");
      Part child;
      child.parent = idx;
      child.depth = depth + 1;
      child.header_begin = start;
      std::size_t header_len = 0;
      if (!parse_header_block(body_.substr(start, stop - start), lim_.max_header_bytes, child.headers, header_len))
        return bad("malformed header block in a MIME part");
      for (auto& f : child.headers) {  // offsets relative to the whole body
        f.begin += start;
        f.end += start;
      }
      child.header_end = start + header_len;
      child.body_begin = start + header_len;
      child.body_end = stop;
      describe(child);
      int child_idx = static_cast<int>(t_.parts.size());
      t_.parts.push_back(std::move(child));
      t_.parts[idx].children.push_back(child_idx);
      split(child_idx);
      if (t_.malformed || t_.over_limit) return;
      d = nd;
    }
  }

 private:
  struct Delimiter {
    bool found = false;
    bool close = false;
    std::size_t break_begin = 0;  // the line break before the delimiter line (belongs to it)
    std::size_t next_line = 0;    // where the line after the delimiter starts
  };

  // The next delimiter line "--boundary[--][blanks]EOL" at or after `from`, starting a
  // line inside [range_begin, range_end).
  Delimiter find_delimiter(const std::string& dash, std::size_t from, std::size_t range_begin,
                           std::size_t range_end) const {
    // find_bytes filters on three bytes of the needle at once; a first-character scan
    // stops at every '-', and CSS is full of them.
    const std::string_view range = body_.substr(0, range_end);
    auto next_match = [&](std::size_t at) -> std::size_t {
      if (at >= range_end) return std::string_view::npos;
      return find_bytes(range, dash, at);
    };
    for (std::size_t p = next_match(from); p != std::string_view::npos; p = next_match(p + 1)) {
      if (p != range_begin && body_[p - 1] != '\n') continue;
      std::size_t q = p + dash.size();
      bool close = q + 1 < range_end && body_[q] == '-' && body_[q + 1] == '-';
      if (close) q += 2;
      while (q < range_end && blank(body_[q])) ++q;
      std::size_t next;
      if (q == range_end) {
        next = q;
      } else if (body_[q] == '\n') {
        next = q + 1;
      } else if (body_[q] == '\r' && q + 1 < range_end && body_[q + 1] == '\n') {
        next = q + 2;
      } else {
        continue;  // "--boundary" followed by more text: not a delimiter
      }
      std::size_t brk = p;
      if (p > range_begin && body_[p - 1] == '\n') {
        brk = p - 1;
        if (brk > range_begin && body_[brk - 1] == '\r') --brk;
      }
      return Delimiter{true, close, brk, next};
    }
    return {};
  }

  void bad(std::string why) {
    t_.malformed = true;
    t_.problem = std::move(why);
  }
  void limit(std::string why) {
    t_.over_limit = true;
    t_.problem = std::move(why);
  }

  std::string_view body_;
  const MimeLimits& lim_;
  MimeTree& t_;
};

}  // namespace

MimeTree walk(const std::vector<HeaderField>& message_headers, std::string_view body, const MimeLimits& limits) {
  MimeTree tree;
  Part root;
  root.headers = message_headers;
  root.body_begin = 0;
  root.body_end = body.size();
  describe(root);
  tree.parts.push_back(std::move(root));
  Walker(body, limits, tree).split(0);
  return tree;
}

}  // namespace cllavio::tracking
