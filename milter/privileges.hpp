// Least privilege for the daemon: socket and store ownership, dropping root.
//
// Contract: every function returns "" on success or a message naming the path
// and errno text; nothing throws. Ownership changes happen only when running as
// root (otherwise they are skipped and the caller may log a notice).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace cllavio::milter {

struct Account {
  std::optional<uid_t> uid;        // milter.user
  std::optional<gid_t> user_gid;   // milter.user's primary group
  std::optional<gid_t> group_gid;  // milter.group
};

// Looks up milter.user / milter.group (validated at config load; may still vanish).
std::string resolve_account(const std::optional<std::string>& user, const std::optional<std::string>& group,
                            Account& out);

// Fails when another process already accepts connections on this unix socket
// (libmilter would silently take the path over from a running instance).
std::string check_socket_free(const std::string& socket_path);

// Creates the unix socket's folder when missing: 0750 owned by user:group when
// a group is set (so Postfix can reach the socket), else 0755.
std::string prepare_socket_dir(const std::string& socket_path, const Account& acct);

// chmod + chown of the listening unix socket.
std::string secure_socket(const std::string& socket_path, unsigned mode, const Account& acct);

// chown of the store folder and files to the user, so it can be reopened without root.
std::string chown_store(const std::string& dir, const std::vector<std::string>& files, const Account& acct);

// setgroups/setgid/setuid to milter.user; verifies root cannot be regained.
std::string drop_privileges(const std::string& user, const Account& acct);

}  // namespace cllavio::milter
