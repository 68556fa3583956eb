#include "policy/stream.hpp"

#include "policy/address.hpp"

namespace cllavio::policy {

namespace {

// Glob with '*' (any run) and '?' (one octet); iterative, linear backtracking.
bool glob(std::string_view pat, std::string_view s) {
  std::size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pat.size() && (pat[p] == '?' || pat[p] == s[i])) {
      ++p, ++i;
    } else if (p < pat.size() && pat[p] == '*') {
      star = p++, mark = i;
    } else if (star != std::string_view::npos) {
      p = star + 1, i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

std::string_view trim_header(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r' || v.back() == '\n'))
    v.remove_suffix(1);
  return v;
}

}  // namespace

std::string_view to_string(StreamKind k) { return k == StreamKind::campaign ? "campaign" : "personal"; }
std::string_view to_string(ConsentMode c) { return c == ConsentMode::implied ? "implied" : "required"; }

std::string check_sender_pattern(std::string& pattern) {
  std::size_t at = pattern.rfind('@');
  if (at == std::string::npos) return "a sender pattern needs '@' (\"news@acme.example\", \"@acme.example\", \"news*@\")";
  std::string local = pattern.substr(0, at), domain = ascii_lower(pattern.substr(at + 1));
  if (local.empty() && domain.empty()) return "\"@\" alone matches nothing; use \"*@\" for every sender";
  if (!domain.empty() && !is_valid_domain(domain)) return "invalid domain '" + domain + "'";
  for (char c : local)
    if (static_cast<unsigned char>(c) <= ' ' || c == '<' || c == '>' || c == '@')
      return "invalid character in the local part";
  pattern = local + "@" + domain;
  return "";
}

bool sender_matches(std::string_view pattern, std::string_view sender) {
  std::size_t pat_at = pattern.rfind('@'), at = sender.rfind('@');
  if (pat_at == std::string_view::npos || at == std::string_view::npos) return false;
  std::string_view plocal = pattern.substr(0, pat_at), pdomain = pattern.substr(pat_at + 1);
  std::string_view local = sender.substr(0, at);
  std::string domain = ascii_lower(sender.substr(at + 1));
  if (!pdomain.empty() && pdomain != domain) return false;
  if (plocal.empty()) return !pdomain.empty();  // "@domain": every sender of the domain
  return glob(plocal, local);
}

const Stream& StreamSet::by_sender(std::string_view sender) const {
  for (const Stream& s : streams)
    for (const std::string& p : s.senders)
      if (sender_matches(p, sender)) return s;
  return fallback;
}

const Stream* StreamSet::by_name(std::string_view name) const {
  if (name == fallback.name) return &fallback;
  for (const Stream& s : streams)
    if (s.name == name) return &s;
  return nullptr;
}

const Stream& StreamSet::classify(std::string_view sender, std::optional<std::string_view> header) const {
  if (header) {
    if (const Stream* s = by_name(ascii_lower(trim_header(*header)))) return *s;
  }
  return by_sender(sender);
}

}  // namespace cllavio::policy
