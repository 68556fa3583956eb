// cllavioctl store stats / compact: the store as a file (store/maintenance.hpp).
#include <cstdio>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "store/maintenance.hpp"
#include "store/message_record.hpp"

namespace cllavio::cli {

namespace {

using ojson = nlohmann::ordered_json;
constexpr auto kReplace = ojson::error_handler_t::replace;
constexpr const char* kUsage = "usage: cllavioctl [-c FILE] store stats [--json] | store compact";

std::string mib(std::uint64_t bytes) {
  char buf[64];
  if (bytes < 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

ojson stats_json(const store::StoreStats& s) {
  ojson tables = ojson::array();
  for (const auto& t : s.tables)
    tables.push_back(ojson{{"name", t.name},
                           {"entries", t.entries},
                           {"pages", t.pages},
                           {"oldest", t.oldest_us ? ojson(store::format_time_us(*t.oldest_us)) : ojson(nullptr)}});
  ojson last_prune = nullptr;
  if (!s.last_prune.empty()) {
    auto j = ojson::parse(s.last_prune, nullptr, false);
    last_prune = j.is_discarded() ? ojson(s.last_prune) : j;
  }
  return ojson{{"file", s.file},
               {"schema", s.schema},
               {"map_bytes", s.map.map_bytes},
               {"file_bytes", s.map.file_bytes},
               {"used_bytes", s.map.used_bytes},
               {"free_bytes", s.map.free_bytes},
               {"used_ratio", s.map.ratio()},
               {"tables", std::move(tables)},
               {"last_prune", std::move(last_prune)}};
}

int cmd_stats(const std::string& config_path, const Args& args) {
  bool json = args.size() == 1 && args[0] == "--json";
  if (!args.empty() && !json) {
    std::fprintf(stderr, "%s\n", kUsage);
    return kExitUsage;
  }
  auto st = open_store(config_path);
  if (!st) return kExitUnavailable;
  store::StoreStats s = store::stats(*st);
  ojson j = stats_json(s);
  if (json) {
    std::printf("%s\n", j.dump(2, ' ', false, kReplace).c_str());
    return kExitOk;
  }
  std::printf("store:      %s (schema %d)\n", s.file.c_str(), s.schema);
  std::printf("map size:   %s\n", mib(s.map.map_bytes).c_str());
  std::printf("file size:  %s\n", mib(s.map.file_bytes).c_str());
  std::printf("used:       %s (%.1f%% of the map)\n", mib(s.map.used_bytes).c_str(), s.map.ratio() * 100.0);
  std::printf("free:       %s (pages in the file that new writes reuse; `store compact` gives them back)\n",
              mib(s.map.free_bytes).c_str());
  std::printf("\n%-18s %12s %10s  %s\n", "table", "entries", "pages", "oldest");
  for (const auto& t : s.tables)
    std::printf("%-18s %12llu %10llu  %s\n", t.name.c_str(), (unsigned long long)t.entries,
                (unsigned long long)t.pages,
                t.oldest_us ? (store::format_time_us(*t.oldest_us).substr(0, 19) + "Z").c_str() : "-");
  std::printf("\nlast prune: %s\n",
              s.last_prune.empty() ? "never (no pruner run recorded in this store)"
                                   : j["last_prune"].dump(-1, ' ', false, kReplace).c_str());
  return kExitOk;
}

int cmd_compact(const std::string& config_path, const Args& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "%s\n", kUsage);
    return kExitUsage;
  }
  auto cfg = load(config_path, true);
  if (!cfg) return kExitUnavailable;
  store::CompactResult r;
  try {
    r = store::compact(cfg->store.path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cllavioctl store compact: %s\n", e.what());
    return kExitUnavailable;
  }
  std::printf("compacted %s/%s: %s -> %s (%llu -> %llu bytes)\n", cfg->store.path.c_str(), store::Db::kFileName,
              mib(r.before_bytes).c_str(), mib(r.after_bytes).c_str(), (unsigned long long)r.before_bytes,
              (unsigned long long)r.after_bytes);
  return kExitOk;
}

}  // namespace

int cmd_store(const std::string& config_path, const Args& args) {
  if (!args.empty() && args[0] == "stats") return cmd_stats(config_path, Args(args.begin() + 1, args.end()));
  if (!args.empty() && args[0] == "compact") return cmd_compact(config_path, Args(args.begin() + 1, args.end()));
  std::fprintf(stderr, "%s\n", kUsage);
  return kExitUsage;
}

}  // namespace cllavio::cli
