#include "milter/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
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

std::string ensure_private_dir(const std::string& dir, unsigned mode, std::optional<gid_t> group) {
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return sys_error("cannot inspect", dir);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return "cannot create " + dir + ": " + ec.message();
    if (::chmod(dir.c_str(), mode) != 0) return sys_error("chmod", dir);
    if (group && ::chown(dir.c_str(), static_cast<uid_t>(-1), *group) != 0) return sys_error("chown", dir);
    if (::lstat(dir.c_str(), &st) != 0) return sys_error("cannot inspect", dir);
  }
  if (S_ISLNK(st.st_mode)) return dir + " is a symbolic link; give the real folder";
  if (!S_ISDIR(st.st_mode)) return dir + " is not a folder";
  if (st.st_uid != 0 && st.st_uid != geteuid())
    return dir + " is owned by uid " + std::to_string(st.st_uid) + "; it must belong to root" +
           (geteuid() == 0 ? "" : " or uid " + std::to_string(geteuid()));
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return dir + " is writable by group or others (mode " + octal + "); make it 0750 or stricter";
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

std::string secure_socket(const std::string& socket_path, unsigned mode, const Account& acct) {
  struct stat st{};
  if (::lstat(socket_path.c_str(), &st) != 0) return sys_error("cannot inspect", socket_path);
  if (!S_ISSOCK(st.st_mode)) return socket_path + " is not the socket libmilter created";
  if (::chmod(socket_path.c_str(), mode) != 0) return sys_error("chmod", socket_path);
  if (acct.group_gid && ::chown(socket_path.c_str(), static_cast<uid_t>(-1), *acct.group_gid) != 0)
    return sys_error("chown", socket_path);
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
