// The daemon's pruner: every [retention] prune_interval_s, store::prune() with the
// current configuration's retention, one summary log line per run, and a warning when
// the store's map is nearly full.
//
// Contract: its own thread (core::Worker); each run reads the config snapshot once. The
// log line (notice when something went, debug otherwise):
//   "prune: removed N (messages M, rejects R, delivery states D, audit A, dead letters L,
//    chains C, expiries E) in T transactions, Xms (longest Yms); store 41% of 1024 MB"
// Map use is checked after every run: at or above 80% a warning names what to do (raise
// store.map_size_mb, shorten [retention]), at or above 95% an error; repeated at most every
// 10 minutes while it stays there, and once "back below" when it drops. Never throws out
// of the thread: a failed run is logged and the next one tries again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "conf/config.hpp"
#include "core/log.hpp"
#include "core/worker.hpp"
#include "store/db.hpp"
#include "store/maintenance.hpp"
#include "store/retention.hpp"

namespace cllavio::core {

store::RetentionRules retention_rules(const conf::Config& c);

class Pruner {
 public:
  Pruner(store::Db& db, const Logger& log);
  ~Pruner();
  Pruner(const Pruner&) = delete;
  Pruner& operator=(const Pruner&) = delete;

  // One run now (the thread's body; tests call it directly).
  store::PruneRun run_once(const conf::Config& c);
  // Checks the map and logs as described above; returns the use it saw.
  store::MapUse check_map(std::int64_t now_us);

  void start(std::function<std::shared_ptr<const conf::Config>()> config);
  void stop() { worker_.stop(); }

 private:
  store::Db& db_;
  const Logger& log_;
  std::function<std::shared_ptr<const conf::Config>()> config_;
  int warned_level_ = 0;            // 0 below 80%, 1 warning, 2 error
  std::int64_t warned_at_us_ = 0;
  Worker worker_;  // last: its thread stops before the rest goes
};

}  // namespace cllavio::core
