// cllavioctl messages / show / tracking stats: read the message log.
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "store/db.hpp"

namespace cllavio::cli {

namespace {

constexpr auto kReplace = nlohmann::ordered_json::error_handler_t::replace;

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

// What the tracking step did to an org's mail: every skip is counted by its reason.
struct TrackingCounts {
  std::uint64_t messages = 0, tracked = 0, unchanged = 0, skipped = 0, untracked_org = 0;
  std::uint64_t links = 0, links_kept = 0, pixels = 0;
  std::map<std::string, std::uint64_t> reasons;  // reason (before any ':' detail) -> count

  void add(const store::TrackingOutcome& t) {
    ++messages;
    if (t.status == "tracked") ++tracked;
    else if (t.status == "unchanged") ++unchanged;
    else if (t.status == "skipped") ++skipped, ++reasons[t.skipped.substr(0, t.skipped.find(':'))];
    else ++untracked_org;
    links += t.links.size();
    links_kept += t.links_kept;
    pixels += t.pixels;
  }
  nlohmann::ordered_json json(const std::string& org) const {
    return {{"org", org}, {"messages", messages}, {"tracked", tracked}, {"unchanged", unchanged},
            {"skipped", skipped}, {"not_tracking", untracked_org}, {"links_rewritten", links},
            {"links_kept", links_kept}, {"pixels", pixels}, {"skip_reasons", reasons}};
  }
};

}  // namespace

int cmd_tracking_stats(const std::string& config_path, const Args& args) {
  auto opts = parse_stats_options(args, "usage: cllavioctl [-c FILE] tracking stats [--org ID] [--since 24h|7d|...] [--json]");
  if (!opts) return kExitUsage;
  const std::string& only_org = opts->org;
  const bool json = opts->json;
  const std::int64_t from = opts->from_us;
  auto st = open_store(config_path);
  if (!st) return kExitUnavailable;
  std::map<std::string, TrackingCounts> per_org;
  st->read()->records.scan([&](const store::MessageRecord& r) {
    std::string org = r.org.empty() ? "unknown" : r.org;
    if (r.received_at_us < from || (!only_org.empty() && org != only_org) || r.action != "accept") return true;
    per_org[org].add(r.tracking);
    return true;
  });
  for (const auto& [org, c] : per_org) {
    if (json) {
      std::printf("%s\n", c.json(org).dump(-1, ' ', false, kReplace).c_str());
      continue;
    }
    std::printf("%s: %llu accepted: %llu tracked, %llu unchanged, %llu skipped, %llu not tracking; "
                "%llu links rewritten, %llu kept, %llu pixels\n",
                store::printable(org).c_str(), (unsigned long long)c.messages, (unsigned long long)c.tracked,
                (unsigned long long)c.unchanged, (unsigned long long)c.skipped, (unsigned long long)c.untracked_org,
                (unsigned long long)c.links, (unsigned long long)c.links_kept, (unsigned long long)c.pixels);
    for (const auto& [why, n] : c.reasons)
      std::printf("  skipped %-24s %llu\n", store::printable(why).c_str(), (unsigned long long)n);
  }
  return kExitOk;
}

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
  st->read()->records.scan([&](const store::MessageRecord& r) {
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
  auto view = st->read();
  auto found = view->records.by_queue_id(args[0]);
  if (found.empty()) {
    std::fprintf(stderr, "cllavioctl: no message with queue id %s\n", args[0].c_str());
    return kExitNotFound;
  }
  // Queue ids can repeat over time (unless enable_long_queue_ids): show every match, oldest first.
  for (const auto& r : found) {
    nlohmann::ordered_json j = store::display_json(r);
    j["delivery"] = delivery_json(*view, r);
    std::printf("%s\n", j.dump(2, ' ', false, kReplace).c_str());
  }
  return kExitOk;
}

}  // namespace cllavio::cli
