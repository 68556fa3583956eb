#include "milter/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace cllavio::milter {

namespace {

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace

std::string resolve_account(const std::optional<std::string>& user, const std::optional<std::string>& group,
                            Account& out) {
  if (user) {
    const passwd* pw = getpwnam(user->c_str());
    if (pw == nullptr) return "unknown user '" + *user + "'";
    out.uid = pw->pw_uid;
    out.user_gid = pw->pw_gid;
  }
  if (group) {
    const struct group* gr = getgrnam(group->c_str());
    if (gr == nullptr) return "unknown group '" + *group + "'";
    out.group_gid = gr->gr_gid;
  }
  return {};
}

std::string check_socket_free(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) return "socket path too long: " + socket_path;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return sys_error("socket for", socket_path);
  bool in_use = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  if (in_use) return "another process is already listening on " + socket_path + " (is cllavio-milter running?)";
  return {};
}

std::string prepare_socket_dir(const std::string& socket_path, const Account& acct) {
  auto dir = std::filesystem::path(socket_path).parent_path();
  std::error_code ec;
  if (dir.empty() || std::filesystem::exists(dir, ec)) return {};
  if (!std::filesystem::create_directories(dir, ec))
    return "cannot create socket folder " + dir.string() + ": " + ec.message();
  if (::chmod(dir.c_str(), acct.group_gid ? 0750 : 0755) != 0) return sys_error("chmod", dir.string());
  if (geteuid() == 0 && (acct.uid || acct.group_gid) &&
      ::chown(dir.c_str(), acct.uid.value_or(static_cast<uid_t>(-1)), acct.group_gid.value_or(static_cast<gid_t>(-1))) != 0)
    return sys_error("chown", dir.string());
  return {};
}

std::string secure_socket(const std::string& socket_path, unsigned mode, const Account& acct) {
  if (::chmod(socket_path.c_str(), mode) != 0) return sys_error("chmod", socket_path);
  uid_t uid = geteuid() == 0 && acct.uid ? *acct.uid : static_cast<uid_t>(-1);
  gid_t gid = acct.group_gid.value_or(static_cast<gid_t>(-1));
  if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) && ::chown(socket_path.c_str(), uid, gid) != 0)
    return sys_error("chown", socket_path);
  return {};
}

std::string chown_store(const std::string& dir, const std::vector<std::string>& files, const Account& acct) {
  if (geteuid() != 0 || !acct.uid) return {};
  gid_t gid = acct.user_gid.value_or(static_cast<gid_t>(-1));
  if (::chown(dir.c_str(), *acct.uid, gid) != 0) return sys_error("chown", dir);
  for (const auto& f : files)
    if (::chown(f.c_str(), *acct.uid, gid) != 0 && errno != ENOENT) return sys_error("chown", f);
  return {};
}

std::string drop_privileges(const std::string& user, const Account& acct) {
  if (!acct.uid || !acct.user_gid) return "no user to drop privileges to";
  if (initgroups(user.c_str(), *acct.user_gid) != 0) return sys_error("initgroups", user);
  if (setgid(*acct.user_gid) != 0) return sys_error("setgid", user);
  if (setuid(*acct.uid) != 0) return sys_error("setuid", user);
  if (*acct.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) return "privileges could be regained after setuid";
  return {};
}

}  // namespace cllavio::milter
