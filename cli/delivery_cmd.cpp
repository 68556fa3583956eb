// cllavioctl delivery stats / follow, and the delivery part of `show`: what Postfix's
// log said about recorded messages (delivery/, docs/delivery.md).
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <vector>

#include "cli/commands.hpp"
#include "core/event.hpp"
#include "store/keys.hpp"

namespace cllavio::cli {

namespace {

using ojson = nlohmann::ordered_json;
constexpr auto kReplace = ojson::error_handler_t::replace;

struct Counts {
  std::uint64_t messages = 0, recipients = 0, pending = 0, deferred = 0, delivered = 0, bounced = 0, expired = 0;
  std::map<std::string, std::uint64_t> bounce_codes;  // dsn -> bounced recipients

  void add(const std::string& state, const std::string& dsn) {
    ++recipients;
    if (state == "delivered") ++delivered;
    else if (state == "deferred") ++deferred;
    else if (state == "bounced") ++bounced, ++bounce_codes[dsn.empty() ? "-" : dsn];
    else if (state == "expired") ++expired;
    else ++pending;
  }
  ojson json(const std::string& org) const {
    std::vector<std::pair<std::uint64_t, std::string>> top;
    for (const auto& [code, n] : bounce_codes) top.emplace_back(n, code);
    std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    ojson codes = ojson::array();
    for (std::size_t i = 0; i < top.size() && i < 10; ++i) codes.push_back({{"dsn", top[i].second}, {"count", top[i].first}});
    return {{"org", org},           {"messages", messages}, {"recipients", recipients}, {"delivered", delivered},
            {"deferred", deferred}, {"bounced", bounced},   {"expired", expired},       {"pending", pending},
            {"top_bounce_codes", codes}};
  }
};

int cmd_stats(const std::string& config_path, const Args& args) {
  auto opts = parse_stats_options(args, "usage: cllavioctl [-c FILE] delivery stats [--org ID] [--since 24h|7d|...] [--json]");
  if (!opts) return kExitUsage;
  const std::string& only_org = opts->org;
  const bool json = opts->json;
  const std::int64_t from = opts->from_us;
  auto st = open_store(config_path);
  if (!st) return kExitUnavailable;
  auto view = st->read();
  std::map<std::string, Counts> per_org;
  view->records.scan(
      [&](const store::MessageRecord& r) {
        std::string org = r.org.empty() ? "unknown" : r.org;
        if (r.received_at_us < from || (!only_org.empty() && org != only_org) || r.action != "accept") return true;
        Counts& c = per_org[org];
        ++c.messages;
        std::map<std::string, store::DeliveryState> states;
        for (auto& [rcpt, s] : view->delivery.of(r.id)) states[rcpt] = std::move(s);
        for (const auto& rcpt : r.recipients) {
          auto it = states.find(store::DeliveryTable::recipient_key(rcpt));
          if (it == states.end())
            c.add("pending", "");
          else
            c.add(it->second.state, it->second.dsn);
        }
        return true;
      },
      from > 0 ? static_cast<std::uint64_t>(from) : 0);  // ids are creation times in microseconds
  for (const auto& [org, c] : per_org) {
    if (json) {
      std::printf("%s\n", c.json(org).dump(-1, ' ', false, kReplace).c_str());
      continue;
    }
    std::printf("%s: %llu message(s), %llu recipient(s): %llu delivered, %llu deferred, %llu bounced, %llu expired, "
                "%llu pending\n",
                store::printable(org).c_str(), (unsigned long long)c.messages, (unsigned long long)c.recipients,
                (unsigned long long)c.delivered, (unsigned long long)c.deferred, (unsigned long long)c.bounced,
                (unsigned long long)c.expired, (unsigned long long)c.pending);
    for (const auto& code : c.json(org)["top_bounce_codes"])
      std::printf("  bounced %-10s %llu\n", store::printable(code["dsn"].get<std::string>()).c_str(),
                  (unsigned long long)code["count"].get<std::uint64_t>());
  }
  return kExitOk;
}

int cmd_follow(const std::string& config_path, const Args& args) {
  bool json = args.size() == 1 && args[0] == "--json";
  if (!args.empty() && !json) {
    std::fprintf(stderr, "usage: cllavioctl [-c FILE] delivery follow [--json]\n");
    return kExitUsage;
  }
  auto cfg = load(config_path, true);
  auto st = open_store(config_path);
  if (!st) return kExitUnavailable;
  auto view = st->read();
  const std::size_t pending = view->delivery.pending_count();
  // The oldest lines that wait for their record (a join that never comes shows here).
  constexpr std::size_t kShownWaiting = 20;
  ojson waiting = ojson::array();
  if (pending > 0)
    for (const auto& p : view->delivery.pending()) {
      if (waiting.size() == kShownWaiting) break;
      waiting.push_back({{"since", core::rfc3339_us(p.first_seen_us)}, {"line", p.line}});
    }
  auto parse = [](const std::optional<std::string>& s, nlohmann::json def) {
    if (!s) return def;
    auto j = nlohmann::json::parse(*s, nullptr, false);
    return j.is_discarded() ? def : j;
  };
  nlohmann::json position = parse(view->meta.get(store::keys::kDeliveryPosition), nullptr);
  nlohmann::json status = parse(view->meta.get(store::keys::kDeliveryStatus), nullptr);
  nlohmann::json gaps = parse(view->meta.get(store::keys::kDeliveryGaps), nlohmann::json::array());
  ojson out{{"log", cfg ? cfg->delivery.log : ""},
            {"position", position.is_null() ? ojson(view->meta.get(store::keys::kDeliveryPosition).value_or(""))
                                            : ojson::parse(position.dump())},
            {"status", ojson::parse(status.dump())},
            {"pending", pending},
            {"waiting", waiting},
            {"gaps", ojson::parse(gaps.dump())}};
  if (json) {
    std::printf("%s\n", out.dump(2, ' ', false, kReplace).c_str());
    return kExitOk;
  }
  if (cfg && !cfg->delivery.enabled()) std::printf("delivery.log is not set: the daemon does not follow a log\n");
  std::printf("log:      %s\n", out["log"].get<std::string>().c_str());
  std::printf("position: %s\n", out["position"].dump(-1, ' ', false, kReplace).c_str());
  if (status.is_object()) {
    std::printf("status:   %s (updated %s)\n", store::printable(status.value("source", "")).c_str(),
                status.value("updated_at", "").c_str());
    std::printf("lag:      %lld byte(s) or entries not read yet (-1: unknown)\n", (long long)status.value("lag", -1LL));
    std::printf("lines:    %llu read, %llu applied, %llu dropped (no record in time)\n",
                (unsigned long long)status.value("lines", 0ULL), (unsigned long long)status.value("applied", 0ULL),
                (unsigned long long)status.value("dropped", 0ULL));
  } else {
    std::printf("status:   the daemon has not followed a log with this store yet\n");
  }
  std::printf("pending:  %zu line(s) waiting for their record\n", pending);
  for (const auto& w : waiting)
    std::printf("  since %s: %s\n", w["since"].get<std::string>().c_str(),
                store::printable(w["line"].get<std::string>()).c_str());
  if (pending > waiting.size()) std::printf("  ... and %zu more\n", pending - waiting.size());
  std::printf("gaps:     %zu\n", gaps.size());
  for (const auto& g : gaps)
    std::printf("  %s %s\n", g.value("at", "").c_str(), store::printable(g.value("gap", "")).c_str());
  return kExitOk;
}

}  // namespace

ojson delivery_json(const store::Tables& t, const store::MessageRecord& rec) {
  std::map<std::string, store::DeliveryState> states;
  for (auto& [rcpt, s] : t.delivery.of(rec.id)) states[rcpt] = std::move(s);
  ojson out = ojson::array();
  for (const auto& rcpt : rec.recipients) {
    auto it = states.find(store::DeliveryTable::recipient_key(rcpt));
    if (it == states.end()) {
      out.push_back({{"recipient", rcpt}, {"state", rec.action == "accept" ? "pending" : "none"}});
      continue;
    }
    const store::DeliveryState& s = it->second;
    ojson d{{"recipient", rcpt}, {"state", s.state}, {"attempts", s.attempts}, {"dsn", s.dsn}, {"reply", s.reply},
            {"relay", s.relay}};
    d["delay_s"] = s.delay_s < 0 ? ojson(nullptr) : ojson(s.delay_s);
    d["at"] = store::format_time_us(s.at_us);
    d["queue_id"] = s.queue_id;
    out.push_back(std::move(d));
  }
  return out;
}

int cmd_delivery(const std::string& config_path, const Args& args) {
  if (!args.empty() && args[0] == "stats") return cmd_stats(config_path, Args(args.begin() + 1, args.end()));
  if (!args.empty() && args[0] == "follow") return cmd_follow(config_path, Args(args.begin() + 1, args.end()));
  std::fprintf(stderr, "usage: cllavioctl [-c FILE] delivery stats [--org ID] [--since 24h] [--json] | follow [--json]\n");
  return kExitUsage;
}

}  // namespace cllavio::cli
