// Postfix milter lists as the doctor reads them (pure, no I/O).
//
//   expand()             $name, ${name}, $(name), ${name?text}, ${name:text}, $$ from an
//                        instance's parameters, recursively (unknown names expand to ""; depth
//                        and number of substitutions bounded, so loops and blow-ups end).
//   parse_milter_list()  smtpd_milters / non_smtpd_milters: entries separated by commas or
//                        spaces; `{ inet:host:port, default_action=accept }` carries per-milter
//                        settings (Postfix 3.0+).
//   libmilter_to_postfix() recognizes libmilter's socket syntax (port@host, inet:port@host,
//                        inet6:port@host, a bare /path) that Postfix cannot use, and rewrites it.
//   same_endpoint()      whether an entry reaches the milter's own socket: inet:localhost:P is
//                        inet:127.0.0.1:P (or [::1]); unix:relative and, for a chrooted
//                        smtpd/cleanup, unix:/absolute are resolved under queue_directory.
// Postfix also accepts local:/path for a unix socket (milter8.c), so it is read as unix:/path.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cllavio::doctor {

using Params = std::map<std::string, std::string>;

std::string expand(std::string_view value, const Params& params);

struct MilterEntry {
  std::string endpoint;                        // "inet:localhost:8891" (braces and settings stripped)
  std::vector<std::pair<std::string, std::string>> settings;  // { ... } settings in order: {"default_action", "accept"}
  std::string text;                            // the entry as written: "{ inet:localhost:8891, default_action=accept }"

  const std::string* setting(std::string_view name) const;  // nullptr when absent
  // The entry written back with another endpoint, settings kept: "{ unix:x, default_action=accept }".
  std::string with_endpoint(std::string_view endpoint) const;
};

std::vector<MilterEntry> parse_milter_list(std::string_view value);
// Entries joined as Postfix writes them back: "a, b, { c, default_action=accept }".
std::string join_milter_list(const std::vector<MilterEntry>& entries);

// A Postfix milter endpoint. path is as written (may be relative); host without brackets, lower case.
struct Endpoint {
  enum class Kind { unix_path, inet, invalid } kind = Kind::invalid;
  std::string path;
  std::string host;
  std::string port;
};
Endpoint parse_endpoint(std::string_view endpoint);

// The Postfix form of a libmilter-syntax endpoint; nullopt when it is not in libmilter syntax.
std::optional<std::string> libmilter_to_postfix(std::string_view endpoint);

// The file a unix endpoint leads to for a process that is (or is not) chrooted into
// queue_directory: relative paths are under queue_directory either way, absolute ones only
// when chrooted. Lexically normalized.
std::string seen_path(std::string_view path, bool chrooted, std::string_view queue_directory);

// Whether `entry` (Postfix syntax, as listed) reaches `ours` (the milter's socket in Postfix
// syntax, unix paths as the milter binds them). chrooted: the process that connects; nullopt
// = either (the entry names our socket under some reading).
bool same_endpoint(std::string_view entry, std::string_view ours, std::string_view queue_directory,
                   std::optional<bool> chrooted = std::nullopt);

// Items of a list parameter (milter_mail_macros, receive_override_options): commas or spaces.
std::vector<std::string> split_list(std::string_view value);

}  // namespace cllavio::doctor
