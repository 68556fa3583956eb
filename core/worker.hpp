// The background thread of a daemon component (forwarder, consent sync, log follower): it runs the
// component's loop, which sleeps until a deadline, a wake-up or stop().
//
// Contract: wake() and stop() may be called from any thread; stop() returns once the
// loop has returned (the loop must check stopping() after every sleep). A wake-up is
// remembered until the loop takes it (take_wake()), so none is lost while it works; more
// wake-ups before that add nothing (a sleep's `ready` sees the same `woken`, and what else
// it depends on must be time, which its deadline covers).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace cllavio::core {

class Worker {
 public:
  using Clock = std::chrono::steady_clock;

  Worker() = default;
  ~Worker() { stop(); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start(std::function<void()> loop) { thread_ = std::thread(std::move(loop)); }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // Only the first wake-up until the loop takes it notifies: the milter wakes the forwarder
  // for every event, and a loop that sleeps on with a wake-up already noted (the forwarder
  // in backoff, or lingering for a batch) would otherwise be woken for nothing each time.
  void wake() {
    {
      std::lock_guard lock(mu_);
      if (woken_) return;
      woken_ = true;
    }
    cv_.notify_all();
  }

  // Sleeps until `until`, stop(), or ready(woken) holds (checked at every wake-up).
  void sleep_until(Clock::time_point until, const std::function<bool(bool woken)>& ready = {}) {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, until, [&] { return stopping_ || (ready && ready(woken_)); });
  }
  bool take_wake() {
    std::lock_guard lock(mu_);
    bool w = woken_;
    woken_ = false;
    return w;
  }
  bool stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

 private:
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stopping_ = false;
};

}  // namespace cllavio::core
