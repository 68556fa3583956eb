// See command_wait.hpp.
#include "milter/command_wait.hpp"

#include "milter/thread_reuse.hpp"

namespace cllavio::milter::command_wait {

int timeout_for(bool libmilter_thread, nfds_t n, int timeout) {
  if (libmilter_thread && n == 1 && timeout == kLibmilterReadyTimeoutMs) return static_cast<int>(kCommandWait.count());
  return timeout;
}

int poll(struct pollfd* fds, nfds_t n, int timeout, PollFn real) {
  return real(fds, n, timeout_for(thread_reuse::in_libmilter_thread(), n, timeout));
}

}  // namespace cllavio::milter::command_wait
