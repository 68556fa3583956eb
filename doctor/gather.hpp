// cllavioctl doctor: gathering the Facts that doctor/checks.* judge. This is the I/O side:
// it runs postconf (and postmulti) on each Postfix config dir, reads the DKIM/ARC signers'
// own config files, loads the milter's configuration, opens its store read-only, probes the
// API and connects to the milter's socket as user postfix.
//
// Contract: gather() never throws; whatever cannot be learned is left unset (nullopt) or
// recorded as an error in the Facts (PostfixInstance::error, MilterSide::store_error, ...).
// The parsers below are pure and unit-tested (tests/unit/test_doctor_gather.cpp).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "doctor/facts.hpp"

namespace cllavio::doctor {

struct GatherOptions {
  std::vector<std::string> postfix_dirs;  // -C DIR...; empty = /etc/postfix
  std::string config_path;                // the milter's cllavio.toml
  bool offline = false;                   // no API probe
  // Where the signers' config files are (/etc; env CLLAVIO_DOCTOR_SYSCONFDIR, for tests).
  std::string sysconfdir = "/etc";
  int api_timeout_ms = 5000;
};

Facts gather(const GatherOptions&);

// --- pieces, each usable alone -------------------------------------------------------------

// Reads one Postfix instance: postconf -c DIR, -x, -M, -P. name = multi_instance_name.
PostfixInstance read_postfix_instance(const std::string& config_dir);
// The other instances of a multi-instance Postfix (multi_instance_enable = yes): the
// instance's multi_instance_directories (what postmulti reads) and, for /etc/postfix,
// postmulti -l's config dirs too (postmulti refuses any other default directory).
std::vector<std::string> postmulti_instances(const PostfixInstance& default_instance);
// The DKIM/ARC signers configured on this machine (config files under sysconfdir) and the
// well-known sockets of those whose config file is absent.
std::vector<SignerSocket> find_signers(const std::string& sysconfdir);
// The milter's side, from its configuration file.
MilterSide read_milter_side(const std::string& config_path, bool offline, int api_timeout_ms);

// --- pure parsers ---------------------------------------------------------------------------

// "name = value" lines of postconf (continuation lines starting with white space are joined).
std::map<std::string, std::string> parse_postconf(std::string_view text);
// postconf -M lines and postconf -P lines ("service/type/name = value") into services.
std::vector<Service> parse_master(std::string_view m_text, std::string_view p_text);
// postmulti -l: "name group enabled config_directory" per line -> config dirs.
// multi_instance_directories is a plain list (comma/space separated).
std::vector<std::string> parse_postmulti_list(std::string_view text);
// A socket as a milter's own config writes it (libmilter: inet:8891@localhost, inet:8891,
// inet6:8891@::1, local:/path, unix:/path, /path) in Postfix's syntax; nullopt when it is none.
std::optional<std::string> signer_socket_to_postfix(std::string_view socket);
// rspamd's bind_socket ("localhost:11332", "*:11332", "/run/rspamd/proxy.sock mode=0666").
std::optional<std::string> rspamd_to_postfix(std::string_view bind_socket);
// The value of a "Key value" line (opendkim.conf style; # comments; key case-insensitive).
std::optional<std::string> conf_value(std::string_view text, std::string_view key);
// The value of `key = "value";` in a UCL file (rspamd's .inc), first occurrence.
std::optional<std::string> ucl_value(std::string_view text, std::string_view key);

}  // namespace cllavio::doctor
