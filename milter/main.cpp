// Entry point of cllavio-milter (see milter/daemon.hpp).
#include <signal.h>
#include <unistd.h>

#include "milter/daemon.hpp"

// libmilter starts its own signal thread that sigwait()s for SIGHUP, SIGTERM and
// SIGINT and treats SIGHUP like SIGTERM (it stops the milter). We want SIGHUP to
// reload the configuration, so the executable is linked with -Wl,--wrap=sigwait:
// libmilter's call lands here and simply sleeps, and our own signal thread
// (daemon.cpp, sigtimedwait) is the only one that takes these signals. Shutdown
// drains and exits without smfi_stop() (see docs/architecture.md).
extern "C" int __wrap_sigwait(const sigset_t*, int*) {
  for (;;) pause();
}

int main(int argc, char** argv) { return cllavio::milter::daemon_main(argc, argv); }
