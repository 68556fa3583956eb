// The log follower: a thread of the daemon that reads Postfix's log (delivery/source.hpp)
// and applies it to the store (delivery/tracker.hpp). Nothing of it runs in a milter
// callback.
//
// Contract:
// - Each batch of lines is applied in one store write together with the source's
//   checkpoint (meta delivery_position), the follower's status (delivery_status) and any
//   gap the source reported (delivery_gaps, newest last, the last 50): a line's effects
//   are stored exactly when its position is. A failed write (store full) keeps the batch
//   and retries it; nothing is skipped.
// - start() restores the source from the stored checkpoint, so a restart resumes after
//   the last line acted on, and a first start reads the log from its beginning.
// - After each commit: charges given back go to hooks.uncharge (the in-memory ledger),
//   notices to the log, and hooks.on_events wakes the forwarder.
// - Batches are paced: after one, the next waits 250 ms (unless the previous one was full),
//   so under load the follower commits a few times a second, not once per log line.
// - stop() returns once the thread has finished its current batch.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/log.hpp"
#include "core/worker.hpp"
#include "delivery/source.hpp"
#include "delivery/tracker.hpp"
#include "store/db.hpp"

namespace cllavio::delivery {

struct FollowerHooks {
  std::function<TrackerSettings()> settings;         // read before each batch (a reload applies)
  std::function<void(const Uncharge&)> uncharge;     // after the commit
  std::function<void()> on_events;                   // after a commit that queued events
  std::function<void(const std::string& org, const std::string& state)> outcome;  // each state stored, after the commit
};

struct FollowerCounters {
  std::atomic<std::uint64_t> lines{0}, applied{0}, pended{0}, dropped{0}, events{0}, batches{0}, write_errors{0};
};

class Follower {
 public:
  Follower(store::Db& db, std::unique_ptr<LineSource> source, const core::Logger& log, FollowerHooks hooks);
  ~Follower() { stop(); }
  Follower(const Follower&) = delete;
  Follower& operator=(const Follower&) = delete;

  void start();
  void stop();

  // One step of the loop, for tests and the CLI: restore (first call), read what is
  // there, apply it. Returns the number of lines applied in this step.
  std::size_t step();

  const FollowerCounters& counters() const { return counters_; }

 private:
  void loop();
  bool commit(const std::vector<std::string>& lines, const std::string& checkpoint,
              const std::vector<std::string>& gaps);

  store::Db& db_;
  std::unique_ptr<LineSource> source_;
  const core::Logger& log_;
  FollowerHooks hooks_;
  Tracker tracker_;
  FollowerCounters counters_;
  bool restored_ = false;
  std::int64_t last_retry_us_ = 0, last_status_us_ = 0;
  std::string last_status_, last_source_status_;
  core::Worker worker_;  // last: its thread stops before the rest goes
};

}  // namespace cllavio::delivery
