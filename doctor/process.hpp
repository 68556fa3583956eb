// cllavioctl doctor: running Postfix's tools and acting as another user, without a shell.
//
// Contract:
// - run() forks and execs argv[0] found on PATH (plus /usr/sbin and /sbin, where Postfix's
//   tools live), with extra environment entries; it captures stdout and stderr separately and
//   kills the child (SIGKILL) when it outlives the timeout. It never throws for a child that
//   fails: exit_code says what happened (-1 when it could not start or was killed).
// - as_user() runs `fn` in a forked child that first switched to `user` (initgroups, setgid,
//   setuid; only possible as root) and returns the errno the child reported (0 = success).
//   Not root: runs `fn` as the current user in the child. It never throws.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace cllavio::doctor {

struct RunResult {
  int exit_code = -1;      // the child's exit status; -1 when it did not start, died or timed out
  std::string out, err;    // what it wrote; err also says why it did not start or was killed
};

RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {},
              int timeout_ms = 10000);

// Whether a program is on PATH (or in /usr/sbin, /sbin).
bool have_program(const std::string& name);

struct AsUserResult {
  bool switched = false;   // the child runs as `user` (false: not root, it ran as the caller)
  int error = 0;           // errno fn returned (0 = success); ENOENT-like codes for a missing user
  std::string message;     // "user postfix does not exist", strerror(error), ...
};

// fn returns 0 or an errno value. timeout_ms bounds the child (a connect() that hangs).
AsUserResult as_user(const std::string& user, const std::function<int()>& fn, int timeout_ms = 5000);

}  // namespace cllavio::doctor
