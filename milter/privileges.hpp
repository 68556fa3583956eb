// Least privilege for the daemon: folders it trusts, socket permissions, dropping root.
//
// Started as root, the daemon creates the socket and opens the store *before*
// dropping privileges, so both live in folders only root can write: the
// unprivileged user can then never plant a symlink that root would follow on the
// next start. The store stays root-owned (mode 0600); the daemon keeps using it
// through the descriptors it opened.
//
// Contract: every function returns "" on success or a message naming the path
// and the errno text; nothing throws.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace cllavio::milter {

struct Account {
  std::optional<uid_t> uid;        // milter.user
  std::optional<gid_t> user_gid;   // milter.user's primary group
  std::optional<gid_t> group_gid;  // milter.group
};

// Looks up milter.user / milter.group (validated at config load; may still vanish).
std::string resolve_account(const std::optional<std::string>& user, const std::optional<std::string>& group,
                            Account& out);

// A folder the daemon creates files in: a real directory (not a symlink) owned by
// root or by the daemon's user, and not writable by group or others unless sticky.
// Created (mode, group) when missing.
std::string ensure_private_dir(const std::string& dir, unsigned mode, std::optional<gid_t> group);

// Fails when another process already accepts connections on this unix socket
// (libmilter would silently take the path over from a running instance).
std::string check_socket_free(const std::string& socket_path);

// chmod + chgrp of the listening unix socket (its folder passed ensure_private_dir).
std::string secure_socket(const std::string& socket_path, unsigned mode, const Account& acct);

// setgroups/setgid/setuid to milter.user; verifies root cannot be regained.
std::string drop_privileges(const std::string& user, const Account& acct);

}  // namespace cllavio::milter
