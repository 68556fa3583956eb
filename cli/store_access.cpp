// Opening the daemon's store from cllavioctl, and reading times from the command line.
#include <chrono>
#include <cstdio>
#include <ctime>

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

std::optional<std::int64_t> parse_time(const std::string& s) {
  if (!s.empty() && s.size() <= 12 && s.find_first_not_of("0123456789") == std::string::npos)
    return std::stoll(s) * 1000000;
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  std::string rest = end;
  if (!rest.empty() && rest[0] == '.') {
    std::size_t digits = rest.find_first_not_of("0123456789", 1);
    rest = digits == std::string::npos ? "" : rest.substr(digits);
  }
  if (rest != "Z" && rest != "+00:00") return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000000;
}

std::optional<std::int64_t> parse_since(const std::string& s) {
  if (s.size() >= 2 && s.size() <= 8 && s.find_first_not_of("0123456789") == s.size() - 1) {
    std::int64_t unit = 0;
    switch (s.back()) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      default: return std::nullopt;
    }
    std::int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    return now - std::stoll(s.substr(0, s.size() - 1)) * unit * 1000000;
  }
  return parse_time(s);
}

}  // namespace cllavio::cli
