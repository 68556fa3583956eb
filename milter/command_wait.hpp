// How long a libmilter worker waits for its session's next command.
//
// libmilter's worker pool (worker.c, engine.c) runs a session's commands while they come; when no
// command is ready within 1 ms (MI_RD_CMD_TO, the poll in mi_rd_socket_ready) it hands the session
// back to its controller thread, which polls the idle sessions' sockets and wakes a worker again when
// the next command arrives: about four thread wake-ups per hand-off (the poll's timer, the event pipe,
// the controller's poll, the worker's condition variable). Postfix sends a message's commands in a
// few bursts separated by the SMTP dialogue (MAIL and RCPT; header, body and end of message from
// cleanup; QUIT), a few to tens of milliseconds apart under load, so nearly every burst paid one.
//
// The executable is linked with -Wl,--wrap=poll (main.cpp): in threads libmilter started
// (thread_reuse::in_libmilter_thread) a poll of one descriptor with exactly that 1 ms timeout waits up
// to kCommandWait instead; every other poll, and every poll of any other thread, passes unchanged.
// The worker goes on as soon as the command arrives (no latency added), and a session quiet for
// longer goes back to the pool as before, so idle connections still hold no thread.
// The rule matches values, not the call site: tests/check_libmilter_wraps.py checks that libmilter's
// mi_engine is the caller with (1, 1 ms), and no other poll of the static code matches today (the
// milter's own code polls only on its own threads; shared libraries are not rerouted). Code that
// polls one descriptor for exactly 1 ms from a milter callback would wait up to kCommandWait.
#pragma once

#include <poll.h>

#include <chrono>

namespace cllavio::milter::command_wait {

inline constexpr std::chrono::milliseconds kCommandWait{100};
inline constexpr int kLibmilterReadyTimeoutMs = 1;  // libmilter's MI_RD_CMD_TO

using PollFn = int (*)(struct pollfd*, nfds_t, int);

// The timeout to use for a poll(fds, n, timeout) made on a thread libmilter started or not.
int timeout_for(bool libmilter_thread, nfds_t n, int timeout);

// poll() as libmilter's calls should see it: real() with timeout_for(the calling thread, ...).
int poll(struct pollfd* fds, nfds_t n, int timeout, PollFn real);

}  // namespace cllavio::milter::command_wait
