// cllavioctl doctor: small text helpers shared by the parsers of command output and of
// other programs' configuration files (postfix_facts.cpp, signers.cpp).
#pragma once

#include <string>
#include <string_view>

namespace cllavio::doctor {

// s without leading and trailing blanks (space, tab, CR, LF).
inline std::string trim(std::string_view s) {
  std::size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  std::size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace cllavio::doctor
