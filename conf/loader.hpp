// Load and validate the whole configuration: the main file and every orgs.d/*.toml.
//
// Contract: load_config never throws. It either returns a complete immutable
// Config, or no Config and every problem it found (not just the first), each
// as "file:line: what is wrong". Cross-file rules (duplicate org ids, a domain
// or SASL login claimed by two orgs) are checked here.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "conf/config.hpp"
#include "conf/diagnostic.hpp"

namespace cllavio::conf {

inline constexpr const char* kDefaultConfigPath = "/etc/cllavio/cllavio.toml";
inline constexpr int kExitConfig = 78;  // EX_CONFIG

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is not empty
  Diagnostics errors;
  // Set when the main file itself is valid but organization files are not: its
  // settings (store path...) are usable by read-only tools; its orgs are not.
  std::shared_ptr<const Config> main_only;
};

LoadResult load_config(const std::string& path);

// `cllavio-milter -n` and `cllavioctl check`: print problems to err, a summary to
// out; return 0 or kExitConfig.
int check_config(const std::string& path, std::FILE* out, std::FILE* err);

}  // namespace cllavio::conf
