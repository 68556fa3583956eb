// cllavioctl doctor: what is known about one Postfix instance and about the milter, gathered
// by doctor/gather.* (runs postconf, connects to sockets, opens the store) and judged by the
// pure checks in doctor/checks.* (no I/O: unit-tested with hand-written facts).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cllavio::doctor {

// One master.cf service (postconf -M / -F / -P). Only smtpd-like and cleanup services matter.
struct Service {
  std::string name;                 // "smtp", "submission", "127.0.0.1:10025", "pickup"
  std::string type;                 // "inet", "unix", "pass", "fifo", "unix-dgram"
  std::string chroot;               // "y", "n" or "-" as written ("-" = default: n since Postfix 3.0, y on Debian's master.cf lines that say y)
  std::string command;              // "smtpd", "cleanup", "pickup", ...
  std::map<std::string, std::string> overrides;  // -o name=value, in master.cf (postconf -P)
};

struct PostfixInstance {
  std::string config_dir;           // -c DIR that was read
  std::string name;                 // multi_instance_name or "" for the default instance
  bool readable = false;            // postconf -c DIR worked
  std::string error;                // why not, when !readable
  std::map<std::string, std::string> main;   // postconf -c DIR (all parameters, $expansions unexpanded)
  std::map<std::string, std::string> expanded;  // postconf -x -c DIR (same keys, expanded)
  std::vector<Service> services;    // postconf -c DIR -M + -P
};

// A socket that is known to belong to a DKIM/ARC signer (from its own config file or a
// well-known path), in Postfix's syntax as it would appear in smtpd_milters.
struct SignerSocket {
  std::string product;              // "opendkim", "rspamd", "dkimpy-milter", "openarc"
  std::string socket;               // "inet:127.0.0.1:8891", "unix:/var/run/opendkim/opendkim.sock"
  std::string source;               // "/etc/opendkim.conf" or "well-known"
};

// The result of actually connecting to the milter's socket as user postfix.
struct ConnectProbe {
  bool tried = false;
  bool ok = false;
  std::string error;                // strerror or "user postfix does not exist"
};

struct MilterSide {
  std::string config_file;          // cllavio.toml that was read
  bool config_ok = false;
  std::vector<std::string> config_errors;   // file:line: message, as -n prints them
  std::string socket;               // the milter's [milter] socket, as in cllavio.toml
  std::string socket_postfix;       // the same in Postfix's syntax: unix:/path or inet:host:port
  bool delivery_enabled = false;    // [delivery] log set
  std::string delivery_log;         // its value
  std::optional<bool> delivery_log_readable;  // by the milter's user; nullopt when journal or not checked
  // secrets file
  std::string secrets_file;
  std::optional<std::uint32_t> secrets_mode;  // st_mode & 07777
  std::string secrets_owner;        // user name of the owner
  std::string milter_user;          // [milter] user, or the user the service runs as ("cllavio")
  // store
  std::optional<double> store_map_used_ratio;  // 0..1; nullopt when the store could not be opened
  std::string store_error;
  std::optional<std::uint64_t> outbox_events;
  std::optional<std::int64_t> outbox_oldest_age_s;
  std::optional<std::uint64_t> dead_letters;
  // API
  std::string api_url;              // "" when no API is configured
  std::optional<bool> api_reachable;  // nullopt when not checked (--offline) or no API
  std::string api_error;            // curl's error (TLS verification failures included)
  ConnectProbe connect;             // unix sockets only
  // [quota] backend = "redis"
  std::string redis_url;            // "" with the local ledger
  std::optional<bool> redis_reachable;  // nullopt when not checked (--offline) or local
  std::string redis_error;
  std::optional<std::string> redis_eviction;  // maxmemory-policy, when Redis let us read it
  std::string redis_eviction_error;           // why not (CONFIG refused)
};

struct Facts {
  std::vector<PostfixInstance> instances;   // default instance first, then postmulti -l's
  std::vector<SignerSocket> signers;
  MilterSide milter;
};

}  // namespace cllavio::doctor
