// Threads for libmilter that outlive their first task.
//
// libmilter's worker pool ends a worker whenever two are idle and starts a new one when none
// is (worker.c: MIN_IDLE 1, MIN_WORKERS compiled in), so under steady load it starts about one
// thread per message (perf stat: 0.9 clone3 per message at 10 sessions; 7-14% of the daemon's
// CPU in thread start and exit). The executable is linked with
// -Wl,--wrap=pthread_create,--wrap=pthread_detach, which reroutes the calls made from
// libmilter's static archive (not libstdc++'s or other shared libraries'): create() runs the
// routine on a parked thread when one waits, else starts a detached thread; when the routine
// returns, its thread parks for the next one (at most kMaxParked, each for at most kParkFor).
// detach() answers 0 for a thread of this pool (libmilter's workers detach themselves).
// Attributes other than none are not reused: create() passes them to the real call.
#pragma once

#include <pthread.h>

#include <chrono>
#include <cstddef>

namespace cllavio::milter::thread_reuse {

using CreateFn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
using DetachFn = int (*)(pthread_t);

inline constexpr std::size_t kMaxParked = 64;
inline constexpr std::chrono::seconds kParkFor{60};

int create(pthread_t* tid, const pthread_attr_t* attr, void* (*routine)(void*), void* arg, CreateFn real);
int detach(pthread_t t, DetachFn real);

struct Stats {
  std::size_t started = 0;  // threads started (real pthread_create)
  std::size_t reused = 0;   // routines run on a parked thread
  std::size_t parked = 0;   // threads waiting now
};
Stats stats();

// True on a thread started through create() without attributes (libmilter's listener,
// controller and workers): command_wait.hpp changes libmilter's polls only there.
bool in_libmilter_thread();

}  // namespace cllavio::milter::thread_reuse
