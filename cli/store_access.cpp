// Opening the daemon's store from cllavioctl, and reading times from the command line.
#include <chrono>
#include <cstdio>
#include <ctime>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "policy/quota.hpp"
#include "store/message_record.hpp"

namespace cllavio::cli {

// Opens the configured store without creating it; prints the reason on failure.
std::unique_ptr<store::Store> open_store(const std::string& config_path, bool writable) {
  auto loaded = conf::load_config(config_path);
  auto cfg = loaded.config;
  if (!cfg && loaded.main_only) {
    // An org file being edited must not lock the admin out of the message log.
    std::fprintf(stderr, "cllavioctl: warning: %zu problem(s) in organization files (see cllavioctl check)\n",
                 loaded.errors.size());
    cfg = loaded.main_only;
  }
  if (!cfg) {
    for (const auto& d : loaded.errors) std::fprintf(stderr, "%s\n", d.str().c_str());
    return nullptr;
  }
  try {
    store::StoreOptions so;
    so.dir = cfg->store.path;
    so.map_size_mb = cfg->store.map_size_mb;
    so.create = false;
    so.read_only = !writable;
    return std::make_unique<store::Store>(so);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cllavioctl: %s\n", e.what());
    return nullptr;
  }
}

std::optional<std::int64_t> parse_since(const std::string& s) {
  if (auto d = policy::parse_duration_s(s)) {
    return store::realtime_us() - *d * 1000000;
  }
  return store::parse_time_us(s);
}

}  // namespace cllavio::cli
