// Forked children for cllavioctl doctor: postconf/postmulti with captured output and a
// deadline, and probes run as another user (see process.hpp).
#include "doctor/process.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cllavio::doctor {

namespace {

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  path += ":/usr/sbin:/sbin:/usr/local/sbin";
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (!dir.empty()) {
      std::string full = dir + "/" + name;
      if (::access(full.c_str(), X_OK) == 0) return full;
    }
    start = end + 1;
  }
  return "";
}

int wait_child(pid_t pid, std::chrono::steady_clock::time_point deadline, bool& killed) {
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return -1;
    if (std::chrono::steady_clock::now() >= deadline && !killed) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    ::usleep(2000);
  }
  if (killed || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace

bool have_program(const std::string& name) { return !find_program(name).empty(); }

RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env, int timeout_ms) {
  RunResult res;
  if (argv.empty()) return res;
  std::string exe = find_program(argv[0]);
  if (exe.empty()) {
    res.err = argv[0] + ": not found";
    return res;
  }
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    res.err = std::string("pipe: ") + std::strerror(errno);
    return res;
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    res.err = std::string("pipe: ") + std::strerror(errno);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return res;
  }
  // Everything the child needs is prepared before fork (no allocation after it).
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    bool overridden = false;
    for (const auto& x : extra_env)
      if (kv.compare(0, x.find('=') + 1, x, 0, x.find('=') + 1) == 0) overridden = true;
    if (!overridden) env_store.push_back(kv);
  }
  for (const auto& x : extra_env) env_store.push_back(x);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    res.err = std::string("fork: ") + std::strerror(errno);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    return res;
  }
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execve(exe.c_str(), args.data(), envp.data());
    const char msg[] = "exec failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&res.out, &res.err};
  int open_fds = 2;
  bool killed = false;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    for (int k = 0; k < 2; ++k) {
      if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t got = ::read(fds[k].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[k]->append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[k].fd);
        fds[k].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  res.exit_code = wait_child(pid, deadline + std::chrono::seconds(2), killed);
  if (killed) res.err += argv[0] + ": timed out after " + std::to_string(timeout_ms) + " ms";
  return res;
}

AsUserResult as_user(const std::string& user, const std::function<int()>& fn, int timeout_ms) {
  AsUserResult r;
  bool root = ::geteuid() == 0;
  uid_t uid = 0;
  gid_t gid = 0;
  if (root) {
    errno = 0;
    passwd* pw = ::getpwnam(user.c_str());
    if (!pw) {
      r.error = ENOENT;
      r.message = "user " + user + " does not exist";
      return r;
    }
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    r.switched = true;
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    r.error = errno;
    r.message = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    r.error = errno;
    r.message = std::string("fork: ") + std::strerror(errno);
    ::close(p[0]);
    ::close(p[1]);
    return r;
  }
  if (pid == 0) {
    ::close(p[0]);
    int e = 0;
    if (root && (::initgroups(user.c_str(), gid) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)) e = errno ? errno : EPERM;
    if (e == 0) {
      try {
        e = fn();
      } catch (...) {
        e = EIO;
      }
    }
    (void)!::write(p[1], &e, sizeof e);
    ::_exit(0);
  }
  ::close(p[1]);
  int e = -1;
  pollfd pf{p[0], POLLIN, 0};
  int n;
  do n = ::poll(&pf, 1, timeout_ms);
  while (n < 0 && errno == EINTR);
  bool got = n > 0 && ::read(p[0], &e, sizeof e) == static_cast<ssize_t>(sizeof e);
  ::close(p[0]);
  if (!got) ::kill(pid, SIGKILL);
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!got) {
    r.error = ETIMEDOUT;
    r.message = "no answer within " + std::to_string(timeout_ms) + " ms";
    return r;
  }
  r.error = e;
  r.message = e == 0 ? "" : std::strerror(e);
  return r;
}

}  // namespace cllavio::doctor
