// Opening the daemon's store from cllavioctl.
#include <cstdio>

#include "cli/commands.hpp"
#include "conf/loader.hpp"

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

}  // namespace cllavio::cli
