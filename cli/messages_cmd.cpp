// cllavioctl messages / show: read the message log.
#include <cstdio>
#include <deque>
#include <memory>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "store/store.hpp"

namespace cllavio::cli {

namespace {

constexpr auto kReplace = nlohmann::ordered_json::error_handler_t::replace;

// Opens the configured store without creating it; prints the reason on failure.
std::unique_ptr<store::Store> open_store(const std::string& config_path) {
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
    so.read_only = true;
    return std::make_unique<store::Store>(so);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cllavioctl: %s\n", e.what());
    return nullptr;
  }
}

void print_text(const store::MessageRecord& r) {
  std::string rcpts;
  for (std::size_t i = 0; i < r.recipients.size() && i < 3; ++i) rcpts += (i ? "," : "") + r.recipients[i];
  if (r.recipient_count > 3) rcpts += ",+" + std::to_string(r.recipient_count - 3);
  std::string ts = store::format_time_us(r.received_at_us).substr(0, 19) + "Z";
  // Envelope text comes from mail clients: nothing that could drive the admin's terminal.
  std::printf("%s %s %-12s %-12s %-8s <%s> -> %s%s%s\n", store::format_id(r.id).c_str(), ts.c_str(),
              r.queue_id.empty() ? "NOQUEUE" : store::printable(r.queue_id).c_str(),
              r.org.empty() ? "unknown" : r.org.c_str(), store::printable(r.action).c_str(),
              store::printable(r.sender).c_str(), rcpts.empty() ? "-" : store::printable(rcpts).c_str(),
              r.reason.empty() ? "" : " reason=", store::printable(r.reason).c_str());
}

}  // namespace

int cmd_messages(const std::string& config_path, const Args& args) {
  std::string org;
  bool json = false, have_org = false;
  long limit = -1;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--org" && i + 1 < args.size()) {
      org = args[++i];
      have_org = true;
    } else if (args[i] == "--limit" && i + 1 < args.size()) {
      try {
        limit = std::stol(args[++i]);
      } catch (...) {
        limit = -2;
      }
      if (limit < 0) {
        std::fprintf(stderr, "cllavioctl messages: --limit takes a number >= 0\n");
        return kExitUsage;
      }
    } else {
      std::fprintf(stderr, "usage: cllavioctl [-c FILE] messages [--org ID] [--json] [--limit N]\n");
      return kExitUsage;
    }
  }
  auto st = open_store(config_path);
  if (!st) return kExitUnavailable;
  std::deque<store::MessageRecord> rows;
  st->scan([&](const store::MessageRecord& r) {
    if (have_org && !(r.org == org || (org == "unknown" && r.org.empty()))) return true;
    rows.push_back(r);
    // --limit keeps the newest N: drop from the front as we go.
    if (limit >= 0 && rows.size() > static_cast<std::size_t>(limit)) rows.pop_front();
    return true;
  });
  for (const auto& r : rows) {
    if (json)
      std::printf("%s\n", store::display_json(r).dump(-1, ' ', false, kReplace).c_str());
    else
      print_text(r);
  }
  return kExitOk;
}

int cmd_show(const std::string& config_path, const Args& args) {
  if (args.size() != 1) {
    std::fprintf(stderr, "usage: cllavioctl [-c FILE] show QUEUEID\n");
    return kExitUsage;
  }
  auto st = open_store(config_path);
  if (!st) return kExitUnavailable;
  auto found = st->find_by_queue_id(args[0]);
  if (found.empty()) {
    std::fprintf(stderr, "cllavioctl: no message with queue id %s\n", args[0].c_str());
    return kExitNotFound;
  }
  // Queue ids can repeat over time (unless enable_long_queue_ids): show every match, oldest first.
  for (const auto& r : found) std::printf("%s\n", store::display_json(r).dump(2, ' ', false, kReplace).c_str());
  return kExitOk;
}

}  // namespace cllavio::cli
