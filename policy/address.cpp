#include "policy/address.hpp"

namespace cllavio::policy {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string normalize_address(std::string_view raw) {
  auto s = trim(raw);
  if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = trim(s.substr(1, s.size() - 2));
  auto at = s.rfind('@');
  if (at == std::string_view::npos) return std::string(s);
  auto domain = s.substr(at + 1);
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  std::string out(s.substr(0, at + 1));
  out += ascii_lower(domain);
  return out;
}

std::string domain_of(std::string_view address) {
  auto at = address.rfind('@');
  if (at == std::string_view::npos) return {};
  auto domain = address.substr(at + 1);
  if (!domain.empty() && domain.back() == '>') domain.remove_suffix(1);
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  return ascii_lower(domain);
}

bool is_valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 253) return false;
  std::size_t label = 0;
  char prev = '.';
  for (char c : d) {
    if (c == '.') {
      if (label == 0 || prev == '-') return false;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
      if (c == '-' && label == 0) return false;
      if (++label > 63) return false;
    } else {
      return false;
    }
    prev = c;
  }
  return label != 0 && prev != '-';
}

}  // namespace cllavio::policy
