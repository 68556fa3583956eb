// ASCII case folding for protocol tokens (header names, MIME types, URL schemes, HTML
// tag and attribute names). Locale-independent on purpose: mail syntax is ASCII, and
// bytes >= 0x80 compare as they are.
#pragma once

#include <cstddef>
#include <string_view>

namespace cllavio::tracking {

constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// `s` starts with `lower_prefix`, which must already be lowercase.
constexpr bool istarts_with(std::string_view s, std::string_view lower_prefix) {
  if (s.size() < lower_prefix.size()) return false;
  for (std::size_t i = 0; i < lower_prefix.size(); ++i)
    if (ascii_lower(s[i]) != lower_prefix[i]) return false;
  return true;
}

}  // namespace cllavio::tracking
