// Entry point of cllavio-milter (see milter/daemon.hpp).
#include <signal.h>
#include <unistd.h>

#include "milter/command_wait.hpp"
#include "milter/daemon.hpp"
#include "milter/thread_reuse.hpp"

// libmilter starts its own signal thread that sigwait()s for SIGHUP, SIGTERM and
// SIGINT and treats SIGHUP like SIGTERM (it stops the milter). We want SIGHUP to
// reload the configuration, so the executable is linked with -Wl,--wrap=sigwait:
// libmilter's call lands here and simply sleeps, and our own signal thread
// (daemon.cpp, sigtimedwait) is the only one that takes these signals. Shutdown
// drains and exits without smfi_stop() (see docs/architecture.md).
extern "C" int __wrap_sigwait(const sigset_t*, int*) {
  for (;;) pause();
}

// libmilter's worker threads are parked for reuse instead of ended and started again (see
// milter/thread_reuse.hpp): -Wl,--wrap=pthread_create,--wrap=pthread_detach reroute the calls of
// the statically linked libmilter; shared libraries (libstdc++'s std::thread, libcurl) are untouched.
extern "C" int __real_pthread_create(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
extern "C" int __real_pthread_detach(pthread_t);
extern "C" int __wrap_pthread_create(pthread_t* tid, const pthread_attr_t* attr, void* (*routine)(void*), void* arg) {
  return cllavio::milter::thread_reuse::create(tid, attr, routine, arg, __real_pthread_create);
}
extern "C" int __wrap_pthread_detach(pthread_t t) {
  return cllavio::milter::thread_reuse::detach(t, __real_pthread_detach);
}

// libmilter's workers wait longer for a session's next command before handing it back to the pool
// (milter/command_wait.hpp): -Wl,--wrap=poll reroutes the static libmilter's calls (and this
// executable's own, which pass through unchanged; shared libraries' calls are not rerouted).
extern "C" int __real_poll(struct pollfd*, nfds_t, int);
extern "C" int __wrap_poll(struct pollfd* fds, nfds_t n, int timeout) {
  return cllavio::milter::command_wait::poll(fds, n, timeout, __real_poll);
}

int main(int argc, char** argv) { return cllavio::milter::daemon_main(argc, argv); }
