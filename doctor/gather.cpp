// cllavioctl doctor: every Postfix instance asked for (and postmulti's), the signers, the milter.
#include "doctor/gather.hpp"

#include <set>

namespace cllavio::doctor {

Facts gather(const GatherOptions& o) {
  Facts f;
  std::vector<std::string> dirs = o.postfix_dirs;
  if (dirs.empty()) dirs.push_back("/etc/postfix");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < dirs.size(); ++i) {
    if (!seen.insert(dirs[i]).second) continue;
    auto pi = read_postfix_instance(dirs[i]);
    bool multi = false;
    if (pi.readable) {
      auto it = pi.main.find("multi_instance_enable");
      multi = it != pi.main.end() && it->second == "yes";
    }
    if (multi)
      for (auto& d : postmulti_instances(pi)) dirs.push_back(d);
    f.instances.push_back(std::move(pi));
  }
  f.signers = find_signers(o.sysconfdir);
  f.milter = read_milter_side(o.config_path, o.offline, o.api_timeout_ms);
  return f;
}

}  // namespace cllavio::doctor
