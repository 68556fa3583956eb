// cllavioctl doctor: one finding. A check produces zero or more findings; the CLI prints
// them (text or --json) and exits with the worst severity (0 nothing wrong, 1 warnings
// only, 2 errors; info never changes the exit code). Every finding says why it matters
// and, where Postfix's configuration is at fault, the exact command that fixes it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cllavio::doctor {

enum class Severity { ok, info, warning, error };

struct Finding {
  std::string id;         // stable, dotted: "milter.not_in_smtpd_milters" (docs/doctor.md lists them)
  Severity severity = Severity::info;
  std::string instance;   // Postfix config dir the finding is about ("" = the milter's own side)
  std::string title;      // one line: what is wrong
  std::string why;        // why it matters for mail
  std::string fix;        // exact command(s), one per line: postconf -e '...' / postconf -P '...'; "" when none
};

std::string_view to_string(Severity);
// 0 when every finding is ok/info, 1 when the worst is a warning, 2 when any is an error.
int exit_code(const std::vector<Finding>&);
// Quotes a postconf argument for a POSIX shell: abc -> 'abc', it's -> 'it'\''s'.
std::string shell_quote(std::string_view);

}  // namespace cllavio::doctor
