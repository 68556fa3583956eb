// Process-wide state of the daemon, shared by every milter connection.
//
// Holds the current Config snapshot (swapped atomically on SIGHUP; connections
// pin the snapshot they started with), the logger, the store and what the
// SIGTERM drain waits for. Only the daemon creates one.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "conf/config.hpp"
#include "milter/log.hpp"
#include "milter/reject_budget.hpp"
#include "milter/session.hpp"
#include "store/store.hpp"

namespace cllavio::milter {

class Runtime {
 public:
  std::shared_ptr<const conf::Config> config() const {
    std::lock_guard lock(mu_);
    return config_;
  }
  void set_config(std::shared_ptr<const conf::Config> c) {
    std::lock_guard lock(mu_);
    config_ = std::move(c);
  }

  Services services() {
    return Services{[this](store::MessageRecord& r) { return store->append(r); },
                    &log,
                    store::realtime_us,
                    &in_flight,
                    &draining,
                    [this](int per_minute) { return reject_budget.take(per_minute, store::realtime_us()); },
                    [this] { return store->allocate_id(); }};
  }

  Logger log;
  std::unique_ptr<store::Store> store;
  std::atomic<int> in_flight{0};        // messages between MAIL FROM and end of message
  std::atomic<int> replies_pending{0};  // end-of-message answered, reply not yet known to be sent
  std::atomic<bool> draining{false};    // SIGTERM received: refuse new connections
  RejectBudget reject_budget;           // [store] reject_records_per_minute

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const conf::Config> config_;
};

}  // namespace cllavio::milter
