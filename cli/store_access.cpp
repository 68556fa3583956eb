// What the subcommands share: the configuration, the daemon's store, times on the command line.
#include <cstdio>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "policy/quota.hpp"
#include "store/existing.hpp"
#include "store/message_record.hpp"

namespace cllavio::cli {

std::shared_ptr<const conf::Config> load(const std::string& config_path, bool org_errors_ok) {
  auto loaded = conf::load_config(config_path);
  if (!loaded.config && loaded.main_only && org_errors_ok) {
    std::fprintf(stderr, "cllavioctl: warning: %zu problem(s) in organization files (see cllavioctl check)\n",
                 loaded.errors.size());
    return loaded.main_only;
  }
  for (const auto& d : loaded.errors) std::fprintf(stderr, "%s\n", d.str().c_str());
  return loaded.config;
}

std::unique_ptr<store::Db> open_store(const std::string& config_path, bool writable) {
  auto cfg = load(config_path, true);
  if (!cfg) return nullptr;
  try {
    return std::make_unique<store::Db>(store::existing_store(cfg->store.path, cfg->store.map_size_mb, writable));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cllavioctl: %s\n", e.what());
    return nullptr;
  }
}

std::optional<StatsOptions> parse_stats_options(const Args& args, const char* usage) {
  StatsOptions o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      o.json = true;
    } else if (args[i] == "--org" && i + 1 < args.size()) {
      o.org = args[++i];
    } else if (args[i] == "--since" && i + 1 < args.size()) {
      auto t = parse_since(args[++i]);
      if (!t) {
        std::fprintf(stderr, "cllavioctl: --since takes 24h, 7d, ... or an RFC 3339 time\n%s\n", usage);
        return std::nullopt;
      }
      o.from_us = *t;
    } else {
      std::fprintf(stderr, "%s\n", usage);
      return std::nullopt;
    }
  }
  return o;
}

std::optional<std::int64_t> parse_since(const std::string& s) {
  if (auto d = policy::parse_duration_s(s)) return store::realtime_us() - *d * 1000000;
  return store::parse_time_us(s);
}

}  // namespace cllavio::cli
