// Postfix milter lists: $-expansion, entries with { } settings, endpoint equivalence.
#include "doctor/milter_list.hpp"

#include <cctype>
#include <filesystem>

namespace cllavio::doctor {

namespace {

constexpr int kMaxDepth = 20;  // $a -> $b -> ... ; Postfix refuses loops, we stop expanding
// $a = $b$b$b$b, $b = $c$c$c$c, ... grows exponentially: past this many substitutions the
// rest of the text is kept as written.
constexpr int kMaxSubstitutions = 10000;

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_sep(char c) { return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Index of the bracket closing the one at `open` (nesting counted); npos when unterminated.
std::size_t matching(std::string_view s, std::size_t open) {
  const char o = s[open];
  const char c = o == '{' ? '}' : ')';
  int level = 0;
  for (std::size_t j = open; j < s.size(); ++j) {
    if (s[j] == o)
      ++level;
    else if (s[j] == c && --level == 0)
      return j;
  }
  return std::string_view::npos;
}

// "{text}" -> "text"; other text unchanged.
std::string_view unbrace(std::string_view s) {
  if (s.size() >= 2 && s.front() == '{' && matching(s, 0) == s.size() - 1) return s.substr(1, s.size() - 2);
  return s;
}

struct Budget {
  int left = kMaxSubstitutions;
};

std::string expand_rec(std::string_view v, const Params& params, int depth, Budget& budget);

std::string lookup(std::string_view name, const Params& params, int depth, Budget& budget) {
  auto it = params.find(std::string(name));
  if (it == params.end()) return "";
  if (depth >= kMaxDepth) return it->second;
  return expand_rec(it->second, params, depth + 1, budget);
}

std::string expand_rec(std::string_view v, const Params& params, int depth, Budget& budget) {
  std::string out;
  std::size_t i = 0;
  while (i < v.size()) {
    if (v[i] == '$' && budget.left <= 0) {
      out.append(v.substr(i));
      break;
    }
    if (v[i] != '$' || i + 1 >= v.size()) {
      out += v[i++];
      continue;
    }
    const char n = v[i + 1];
    if (n == '$') {
      out += '$';
      i += 2;
    } else if (n == '{' || n == '(') {
      const std::size_t close = matching(v, i + 1);
      if (close == std::string_view::npos) {  // unterminated: leave as written
        out.append(v.substr(i));
        break;
      }
      const std::string_view inner = v.substr(i + 2, close - i - 2);
      i = close + 1;
      std::size_t k = 0;
      while (k < inner.size() && is_name_char(inner[k])) ++k;
      --budget.left;
      const std::string value = lookup(inner.substr(0, k), params, depth, budget);
      std::string_view rest = inner.substr(k);
      if (rest.empty()) {
        out += value;
      } else if (rest[0] == '?' || rest[0] == ':') {
        // ${name?text}, ${name:text}, ${name?{text1}:{text2}} (Postfix 3.0+)
        std::string_view if_set, if_unset;
        bool has_set = false, has_unset = false;
        if (rest[0] == '?') {
          rest.remove_prefix(1);
          std::size_t end = rest.size();
          if (!rest.empty() && rest[0] == '{') {
            const std::size_t m = matching(rest, 0);
            if (m != std::string_view::npos && m + 1 < rest.size() && rest[m + 1] == ':') end = m + 1;
          }
          if_set = unbrace(rest.substr(0, end));
          has_set = true;
          rest = rest.substr(end);
        }
        if (!rest.empty() && rest[0] == ':') {
          if_unset = unbrace(rest.substr(1));
          has_unset = true;
        }
        if (!value.empty() && has_set) out += expand_rec(if_set, params, depth + 1, budget);
        if (value.empty() && has_unset) out += expand_rec(if_unset, params, depth + 1, budget);
      } else {
        out += value;  // an operator Postfix knows and we do not: the plain value is the best guess
      }
    } else if (is_name_char(n)) {
      std::size_t k = i + 1;
      while (k < v.size() && is_name_char(v[k])) ++k;
      --budget.left;
      out += lookup(v.substr(i + 1, k - i - 1), params, depth, budget);
      i = k;
    } else {
      out += v[i++];
    }
  }
  return out;
}

// Top-level items: separated by commas/whitespace; a { ... } group is one item.
std::vector<std::string> items(std::string_view v) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && is_sep(v[i])) ++i;
    if (i >= v.size()) break;
    std::size_t j;
    if (v[i] == '{') {
      const std::size_t m = matching(v, i);
      j = m == std::string_view::npos ? v.size() : m + 1;
    } else {
      j = i;
      while (j < v.size() && !is_sep(v[j]) && v[j] != '{') ++j;
    }
    out.emplace_back(v.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string normal_path(std::string_view p) {
  std::string s = std::filesystem::path(p).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_loopback(const std::string& h) { return h == "localhost" || h == "127.0.0.1" || h == "::1"; }

// entry_host reaches a socket bound to our_host.
bool host_reaches(const std::string& entry_host, const std::string& our_host) {
  if (entry_host == our_host) return true;
  if (entry_host == "localhost") return our_host == "127.0.0.1" || our_host == "::1";
  if (our_host == "localhost") return entry_host == "127.0.0.1" || entry_host == "::1";
  if (our_host == "0.0.0.0" || our_host == "::" || our_host == "*") return is_loopback(entry_host);
  return false;
}

}  // namespace

std::string expand(std::string_view value, const Params& params) {
  Budget budget;
  return expand_rec(value, params, 0, budget);
}

const std::string* MilterEntry::setting(std::string_view name) const {
  for (const auto& [k, v] : settings)
    if (k == name) return &v;
  return nullptr;
}

std::string MilterEntry::with_endpoint(std::string_view ep) const {
  if (text.empty() || text.front() != '{') return std::string(ep);
  std::string out = "{ " + std::string(ep);
  for (const auto& [k, v] : settings) out += ", " + k + "=" + v;
  return out + " }";
}

std::vector<MilterEntry> parse_milter_list(std::string_view value) {
  std::vector<MilterEntry> out;
  for (auto& item : items(value)) {
    MilterEntry e;
    e.text = item;
    if (item.front() != '{') {
      e.endpoint = item;
      out.push_back(std::move(e));
      continue;
    }
    std::string_view inner = item;
    inner.remove_prefix(1);
    if (!inner.empty() && inner.back() == '}') inner.remove_suffix(1);
    // "name = value" may be written with spaces: glue the pieces around '=' back together.
    std::vector<std::string> parts;
    for (auto& p : items(inner)) {
      if (!parts.empty() && (p.front() == '=' || parts.back().back() == '='))
        parts.back() += p;
      else
        parts.push_back(p);
    }
    for (std::size_t k = 0; k < parts.size(); ++k) {
      const auto eq = parts[k].find('=');
      if (k == 0 && eq == std::string::npos) {
        e.endpoint = parts[k];
      } else if (eq != std::string::npos) {
        e.settings.emplace_back(parts[k].substr(0, eq), std::string(unbrace(parts[k].substr(eq + 1))));
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string join_milter_list(const std::vector<MilterEntry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    if (!out.empty()) out += ", ";
    out += e.text;
  }
  return out;
}

std::vector<std::string> split_list(std::string_view value) { return items(value); }

Endpoint parse_endpoint(std::string_view ep) {
  Endpoint e;
  const auto colon = ep.find(':');
  if (colon == std::string_view::npos) return e;
  const std::string transport = lower(ep.substr(0, colon));
  const std::string_view rest = ep.substr(colon + 1);
  if (transport == "unix" || transport == "local") {
    if (rest.empty()) return e;
    e.kind = Endpoint::Kind::unix_path;
    e.path = rest;
    return e;
  }
  if (transport != "inet" || rest.find('@') != std::string_view::npos) return e;
  std::string_view host, port;
  if (!rest.empty() && rest.front() == '[') {
    const auto rb = rest.find(']');
    if (rb == std::string_view::npos || rb + 1 >= rest.size() || rest[rb + 1] != ':') return e;
    host = rest.substr(1, rb - 1);
    port = rest.substr(rb + 2);
  } else {
    const auto c = rest.rfind(':');
    if (c == std::string_view::npos) return e;
    host = rest.substr(0, c);
    port = rest.substr(c + 1);
  }
  if (host.empty() || port.empty()) return e;
  e.kind = Endpoint::Kind::inet;
  e.host = lower(host);
  e.port = port;
  return e;
}

std::optional<std::string> libmilter_to_postfix(std::string_view ep) {
  auto inet = [](std::string_view port_at_host, bool v6) -> std::optional<std::string> {
    const auto at = port_at_host.find('@');
    if (at == std::string_view::npos || at == 0 || at + 1 >= port_at_host.size()) return std::nullopt;
    const std::string port(port_at_host.substr(0, at));
    std::string host(port_at_host.substr(at + 1));
    if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (v6 || host.find(':') != std::string::npos) return "inet:[" + host + "]:" + port;
    return "inet:" + host + ":" + port;
  };
  const std::string l = lower(ep.substr(0, 6));
  if (l.starts_with("inet6:")) {
    const auto rest = ep.substr(6);
    if (rest.find('@') != std::string_view::npos) return inet(rest, true);
    return "inet:" + std::string(rest);  // inet6:[::1]:P is not Postfix syntax either
  }
  if (l.starts_with("inet:")) {
    if (ep.find('@') == std::string_view::npos) return std::nullopt;
    return inet(ep.substr(5), false);
  }
  if (ep.find(':') == std::string_view::npos) {
    if (!ep.empty() && ep.front() == '/') return "unix:" + std::string(ep);
    if (ep.find('@') != std::string_view::npos) return inet(ep, false);
  }
  return std::nullopt;
}

std::string seen_path(std::string_view path, bool chrooted, std::string_view queue_directory) {
  if (path.empty()) return "";
  if (path.front() != '/' || chrooted) return normal_path(std::string(queue_directory) + "/" + std::string(path));
  return normal_path(path);
}

bool same_endpoint(std::string_view entry, std::string_view ours, std::string_view queue_directory,
                   std::optional<bool> chrooted) {
  auto parse = [](std::string_view s) {
    Endpoint e = parse_endpoint(s);
    if (e.kind == Endpoint::Kind::invalid)
      if (auto pf = libmilter_to_postfix(s)) e = parse_endpoint(*pf);
    return e;
  };
  const Endpoint e = parse(entry), o = parse(ours);
  if (e.kind != o.kind || e.kind == Endpoint::Kind::invalid) return false;
  if (e.kind == Endpoint::Kind::inet) return e.port == o.port && host_reaches(e.host, o.host);
  const std::string target = normal_path(o.path);
  if (chrooted) return seen_path(e.path, *chrooted, queue_directory) == target;
  return seen_path(e.path, false, queue_directory) == target || seen_path(e.path, true, queue_directory) == target;
}

}  // namespace cllavio::doctor
