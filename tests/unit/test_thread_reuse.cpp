#define BOOST_TEST_MODULE thread_reuse
#include <boost/test/unit_test.hpp>

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "milter/thread_reuse.hpp"

using namespace cllavio::milter;

namespace {

// What a libmilter worker does: detach itself, note which kernel thread ran it, finish.
struct Task {
  std::mutex mu;
  std::condition_variable cv;
  bool release = true;  // false: the task blocks until released
  bool detach = true;   // as libmilter's workers do
  int done = 0;
  int detach_rc = -1;
  std::set<long> kernel_threads;
};

void* worker(void* p) {
  auto* t = static_cast<Task*>(p);
  int rc = t->detach ? thread_reuse::detach(pthread_self(), pthread_detach) : 0;
  std::unique_lock lock(t->mu);
  t->detach_rc = rc;
  t->kernel_threads.insert(static_cast<long>(syscall(SYS_gettid)));
  t->cv.wait(lock, [&] { return t->release; });
  ++t->done;
  t->cv.notify_all();
  return nullptr;
}

void wait_done(Task& t, int n) {
  std::unique_lock lock(t.mu);
  BOOST_REQUIRE(t.cv.wait_for(lock, std::chrono::seconds(10), [&] { return t.done >= n; }));
}

// A finished routine's thread parks a moment after it returns.
void wait_parked(std::size_t n) {
  for (int i = 0; i < 1000 && thread_reuse::stats().parked < n; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  BOOST_REQUIRE_GE(thread_reuse::stats().parked, n);
}

}  // namespace

BOOST_AUTO_TEST_CASE(one_thread_serves_routines_one_after_another) {
  Task t;
  auto before = thread_reuse::stats();
  for (int i = 1; i <= 50; ++i) {
    pthread_t tid;
    BOOST_REQUIRE_EQUAL(thread_reuse::create(&tid, nullptr, worker, &t, pthread_create), 0);
    wait_done(t, i);
    wait_parked(1);
  }
  auto after = thread_reuse::stats();
  BOOST_CHECK_EQUAL(t.kernel_threads.size(), 1u);
  BOOST_CHECK_EQUAL(after.started - before.started, before.parked == 0 ? 1u : 0u);
  BOOST_CHECK_GE(after.reused - before.reused, 49u);
  BOOST_CHECK_EQUAL(t.detach_rc, 0);  // a pool thread detaching itself: fine, already detached
}

BOOST_AUTO_TEST_CASE(routines_running_together_get_threads_of_their_own_then_share_them) {
  Task t;
  t.release = false;
  constexpr int n = 8;
  std::size_t parked_before = thread_reuse::stats().parked;
  for (int i = 0; i < n; ++i) {
    pthread_t tid;
    BOOST_REQUIRE_EQUAL(thread_reuse::create(&tid, nullptr, worker, &t, pthread_create), 0);
  }
  {
    std::unique_lock lock(t.mu);
    BOOST_REQUIRE(t.cv.wait_for(lock, std::chrono::seconds(10), [&] { return t.kernel_threads.size() == n; }));
    BOOST_CHECK_EQUAL(thread_reuse::stats().parked, 0u);  // every parked thread was taken
    t.release = true;
    t.cv.notify_all();
  }
  wait_done(t, n);
  wait_parked(std::max<std::size_t>(n, parked_before));
  auto first = t.kernel_threads;
  auto started = thread_reuse::stats().started;
  t.release = false;
  for (int i = 0; i < n; ++i) {
    pthread_t tid;
    BOOST_REQUIRE_EQUAL(thread_reuse::create(&tid, nullptr, worker, &t, pthread_create), 0);
  }
  {
    std::unique_lock lock(t.mu);
    t.release = true;
    t.cv.notify_all();
  }
  wait_done(t, 2 * n);
  BOOST_CHECK_EQUAL(thread_reuse::stats().started, started);  // the second round started none
  BOOST_CHECK(t.kernel_threads == first);  // no new kernel thread
}

BOOST_AUTO_TEST_CASE(attributes_go_to_the_real_call) {
  Task t;
  t.detach = false;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  auto before = thread_reuse::stats();
  pthread_t tid;
  BOOST_REQUIRE_EQUAL(thread_reuse::create(&tid, &attr, worker, &t, pthread_create), 0);
  pthread_attr_destroy(&attr);
  wait_done(t, 1);
  BOOST_CHECK_EQUAL(pthread_join(tid, nullptr), 0);  // a joinable thread of its own
  auto after = thread_reuse::stats();
  BOOST_CHECK_EQUAL(after.started, before.started);
  BOOST_CHECK_EQUAL(after.reused, before.reused);
}

BOOST_AUTO_TEST_CASE(a_thread_outside_the_pool_is_detached_by_the_real_call) {
  static int calls = 0;
  auto fake = [](pthread_t) {
    ++calls;
    return 42;
  };
  BOOST_CHECK_EQUAL(thread_reuse::detach(pthread_self(), fake), 42);  // the test's main thread
  BOOST_CHECK_EQUAL(calls, 1);
}
