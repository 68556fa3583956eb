// Bodies of doctor/finding.hpp: severity names, the exit code, shell quoting for fix lines.
#include "doctor/finding.hpp"

namespace cllavio::doctor {

std::string_view to_string(Severity s) {
  switch (s) {
    case Severity::ok: return "ok";
    case Severity::info: return "info";
    case Severity::warning: return "warning";
    case Severity::error: return "error";
  }
  return "?";
}

int exit_code(const std::vector<Finding>& findings) {
  int code = 0;
  for (const auto& f : findings) {
    if (f.severity == Severity::error) return 2;
    if (f.severity == Severity::warning) code = 1;
  }
  return code;
}

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  out += '\'';
  return out;
}

}  // namespace cllavio::doctor
