// cllavioctl subcommands. Each returns the process exit status and writes
// results to stdout, problems to stderr. The interface (names, flags, JSON
// fields) is a contract documented in README.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "conf/config.hpp"
#include "store/db.hpp"

namespace cllavio::cli {

constexpr int kExitOk = 0;
constexpr int kExitNotFound = 1;
constexpr int kExitUsage = 64;         // EX_USAGE
constexpr int kExitUnavailable = 69;   // EX_UNAVAILABLE: store cannot be opened

using Args = std::vector<std::string>;

// The configuration, its problems printed to stderr. With org_errors_ok, problems in
// organization files only warn and the main file's settings are used (an org file being
// edited must not lock the admin out of the store); null when it cannot be used.
std::shared_ptr<const conf::Config> load(const std::string& config_path, bool org_errors_ok = false);

// The configured store, without creating it (the daemon does); read-only unless
// `writable` (consent and quota changes, which LMDB serializes with the daemon's
// writes). Prints the reason and returns null when it cannot be opened.
std::unique_ptr<store::Db> open_store(const std::string& config_path, bool writable = false);

// The options of the stats commands: [--org ID] [--since WHEN] [--json]. nullopt (after
// printing `usage`) when they do not parse.
struct StatsOptions {
  std::string org;  // "" = every org
  bool json = false;
  std::int64_t from_us = 0;
};
std::optional<StatsOptions> parse_stats_options(const Args& args, const char* usage);

// --since: a duration back from now ("90s", "15m", "24h", "7d") or a time as store::parse_time_us.
std::optional<std::int64_t> parse_since(const std::string& s);

int cmd_messages(const std::string& config_path, const Args& args);
int cmd_show(const std::string& config_path, const Args& args);
int cmd_rewrite(const std::string& config_path, const Args& args);
int cmd_token(const std::string& config_path, const Args& args);
int cmd_tracking_stats(const std::string& config_path, const Args& args);
int cmd_consent(const std::string& config_path, const Args& args);
int cmd_quota(const std::string& config_path, const Args& args);
int cmd_audit(const std::string& config_path, const Args& args);
int cmd_outbox(const std::string& config_path, const Args& args);
int cmd_delivery(const std::string& config_path, const Args& args);
int cmd_erase(const std::string& config_path, const Args& args);
int cmd_export(const std::string& config_path, const Args& args);
int cmd_store(const std::string& config_path, const Args& args);
int cmd_doctor(const std::string& config_path, const Args& args);

// Each recipient's delivery state (pending when the log said nothing yet), for `show`.
nlohmann::ordered_json delivery_json(const store::Tables& t, const store::MessageRecord& rec);

}  // namespace cllavio::cli
