#define BOOST_TEST_MODULE worker
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/worker.hpp"

using cllavio::core::Worker;
using namespace std::chrono_literals;

// A wake-up is remembered until taken: one that comes while the loop works is seen by its next sleep.
BOOST_AUTO_TEST_CASE(a_wake_up_is_not_lost_while_the_loop_works) {
  Worker w;
  std::atomic<int> rounds{0};
  std::atomic<bool> woke{false};
  w.start([&] {
    std::this_thread::sleep_for(20ms);  // "working" while wake() is called
    auto start = Worker::Clock::now();
    w.sleep_until(start + 10s, [](bool woken) { return woken; });
    woke = w.take_wake() && Worker::Clock::now() - start < 5s;
    ++rounds;
  });
  w.wake();
  w.stop();
  BOOST_TEST(rounds == 1);
  BOOST_TEST(woke);
}

// A loop that sleeps on with a wake-up already noted (the forwarder in backoff) is not woken again
// for each later one: only the first notifies.
BOOST_AUTO_TEST_CASE(further_wake_ups_do_not_wake_a_loop_that_sleeps_on) {
  Worker w;
  std::atomic<int> checks{0};
  std::atomic<bool> asleep{false};
  w.start([&] {
    w.sleep_until(Worker::Clock::now() + 2s, [&](bool) {
      asleep = true;
      ++checks;
      return false;  // e.g. woken, but the backoff has not ended
    });
  });
  while (!asleep) std::this_thread::sleep_for(1ms);
  for (int i = 0; i < 100; ++i) {
    w.wake();
    std::this_thread::sleep_for(1ms);
  }
  int during = checks;
  w.stop();
  // One check going to sleep, one for the first wake-up; every wake-up used to add one (about 100).
  BOOST_TEST(during <= 5);
  BOOST_TEST(w.take_wake());
  BOOST_TEST(!w.take_wake());
}

BOOST_AUTO_TEST_CASE(stop_ends_a_sleep_whatever_was_noted) {
  Worker w;
  std::atomic<bool> returned{false};
  w.wake();  // noted before the loop sleeps: the next wake() would not notify
  w.start([&] {
    w.sleep_until(Worker::Clock::now() + 30s, [](bool) { return false; });
    returned = w.stopping();
  });
  std::this_thread::sleep_for(20ms);
  auto start = Worker::Clock::now();
  w.stop();
  BOOST_TEST(returned);
  BOOST_TEST((Worker::Clock::now() - start < 10s));
}
