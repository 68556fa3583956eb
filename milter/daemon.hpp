// cllavio-milter, the daemon: command line, startup, signals, shutdown.
//
//   cllavio-milter [-c FILE]     run in the foreground (systemd style)
//   cllavio-milter -n [-c FILE]  validate the configuration and exit (0, or 78)
//
// Startup: load config (exit 78 with file:line problems), open the socket and
// the store, secure their ownership, drop privileges, serve. SIGHUP reloads the
// configuration atomically (an invalid one is logged and the old one kept);
// SIGTERM/SIGINT stop accepting, let messages in flight finish (at most
// [milter] shutdown_timeout_s) and exit 0.
#pragma once

namespace cllavio::milter {

int daemon_main(int argc, char** argv);

}  // namespace cllavio::milter
