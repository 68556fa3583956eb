#define BOOST_TEST_MODULE command_wait
#include <boost/test/unit_test.hpp>

#include <pthread.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "milter/command_wait.hpp"
#include "milter/thread_reuse.hpp"

using namespace cllavio::milter;

namespace {

// Stands in for the real poll(): notes what it was asked.
thread_local int seen_timeout = -2;
thread_local nfds_t seen_n = 0;
int fake_poll(struct pollfd*, nfds_t n, int timeout) {
  seen_n = n;
  seen_timeout = timeout;
  return 0;
}

struct Probe {
  nfds_t n = 1;
  int timeout = 1;
  std::atomic<int> result{-2};
  std::atomic<bool> libmilter{false};
  std::atomic<bool> done{false};
};

void* probe(void* p) {
  auto* pr = static_cast<Probe*>(p);
  pollfd fd{};
  command_wait::poll(&fd, pr->n, pr->timeout, fake_poll);
  pr->libmilter = thread_reuse::in_libmilter_thread();
  pr->result = seen_timeout;
  pr->done = true;
  return nullptr;
}

// Runs probe() on a thread started the way libmilter starts its threads (through thread_reuse).
int on_libmilter_thread(nfds_t n, int timeout, bool* was_libmilter) {
  auto* pr = new Probe;  // left to the thread if it never finishes (the test has failed then)
  pr->n = n;
  pr->timeout = timeout;
  pthread_t tid;
  BOOST_REQUIRE_EQUAL(thread_reuse::create(&tid, nullptr, probe, pr, pthread_create), 0);
  for (int i = 0; i < 5000 && !pr->done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  BOOST_REQUIRE(pr->done);
  *was_libmilter = pr->libmilter;
  int result = pr->result;
  delete pr;
  return result;
}

}  // namespace

BOOST_AUTO_TEST_CASE(only_libmilters_one_descriptor_one_millisecond_poll_waits_longer) {
  const int wait = static_cast<int>(command_wait::kCommandWait.count());
  BOOST_TEST(wait > command_wait::kLibmilterReadyTimeoutMs);
  BOOST_TEST(command_wait::timeout_for(true, 1, 1) == wait);
  BOOST_TEST(command_wait::timeout_for(false, 1, 1) == 1);       // not a libmilter thread
  BOOST_TEST(command_wait::timeout_for(true, 2, 1) == 1);        // the controller's poll of many sockets
  BOOST_TEST(command_wait::timeout_for(true, 1, 0) == 0);        // a non-blocking check stays one
  BOOST_TEST(command_wait::timeout_for(true, 1, 5000) == 5000);  // the listener's accept wait
  BOOST_TEST(command_wait::timeout_for(true, 1, -1) == -1);      // an unbounded wait stays unbounded
}

BOOST_AUTO_TEST_CASE(the_calling_thread_decides) {
  bool libmilter = false;
  BOOST_TEST(on_libmilter_thread(1, 1, &libmilter) == static_cast<int>(command_wait::kCommandWait.count()));
  BOOST_TEST(libmilter);
  BOOST_TEST(on_libmilter_thread(3, 1, &libmilter) == 1);
  BOOST_TEST(on_libmilter_thread(1, 5000, &libmilter) == 5000);

  // This thread (and any std::thread: libstdc++ starts those) is not libmilter's.
  BOOST_TEST(!thread_reuse::in_libmilter_thread());
  pollfd fd{};
  command_wait::poll(&fd, 1, 1, fake_poll);
  BOOST_TEST(seen_timeout == 1);
  BOOST_TEST(seen_n == 1u);
  int from_std_thread = -2;
  std::thread([&] {
    pollfd f{};
    command_wait::poll(&f, 1, 1, fake_poll);
    from_std_thread = seen_timeout;
  }).join();
  BOOST_TEST(from_std_thread == 1);
}

// The real poll() through the wrapper: on a libmilter thread, libmilter's 1 ms check of a quiet
// session's socket lasts the whole command wait (poll never returns before its timeout without an
// event), so a command that comes within it is read by the same worker.
BOOST_AUTO_TEST_CASE(a_libmilter_thread_really_waits_for_the_next_command) {
  int fds[2];
  BOOST_REQUIRE_EQUAL(pipe(fds), 0);
  struct Arg {
    int fd;
    std::atomic<int> rc{-2};
    std::atomic<long> waited_ms{0};
    std::atomic<bool> done{false};
  } arg{fds[0]};
  pthread_t tid;
  auto reader = [](void* p) -> void* {
    auto* a = static_cast<Arg*>(p);
    pollfd pfd{a->fd, POLLIN, 0};
    auto start = std::chrono::steady_clock::now();
    a->rc = command_wait::poll(&pfd, 1, command_wait::kLibmilterReadyTimeoutMs, ::poll);
    a->waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    a->done = true;
    return nullptr;
  };
  BOOST_REQUIRE_EQUAL(thread_reuse::create(&tid, nullptr, reader, &arg, pthread_create), 0);
  for (int i = 0; i < 5000 && !arg.done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  BOOST_REQUIRE(arg.done);
  BOOST_TEST(arg.rc == 0);  // nothing came
  BOOST_TEST(arg.waited_ms >= command_wait::kCommandWait.count() - 1);
  close(fds[0]);
  close(fds[1]);
}
