// The daemon's pruner thread: store::prune() every [retention] prune_interval_s.
#include "core/pruner.hpp"

#include <algorithm>
#include <chrono>
#include <string>

namespace cllavio::core {

namespace {

// Steps per run (256 entries each): a backlog larger than this continues at once in
// the next run, after the thread looked at stop() again.
constexpr std::size_t kEntriesPerTxn = 256;
constexpr std::size_t kStepsPerRun = 1000;
constexpr std::int64_t kRepeatUs = 10LL * 60 * 1'000'000;  // map warnings: at most every 10 minutes

std::string percent(const store::MapUse& u) {
  return std::to_string(static_cast<int>(u.ratio() * 100.0)) + "%";
}
std::string mb(std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MB"; }

}  // namespace

store::RetentionRules retention_rules(const conf::Config& c) {
  store::RetentionRules r;
  r.defaults = c.retention.defaults;
  for (const auto& [org, p] : c.policies)
    if (!p.retention.empty()) r.orgs[org] = c.retention_for(org);
  return r;
}

Pruner::Pruner(store::Db& db, const Logger& log) : db_(db), log_(log) {}

Pruner::~Pruner() { worker_.stop(); }

store::PruneRun Pruner::run_once(const conf::Config& c) {
  const store::RetentionRules rules = retention_rules(c);
  const std::int64_t now = db_.now_us();
  store::PruneRun run = store::prune(db_, rules, now, kEntriesPerTxn, kStepsPerRun);
  const store::PruneCounts& n = run.removed;
  const store::MapUse use = store::map_use(db_);
  std::string line = "prune: removed " + std::to_string(n.total()) + " (messages " + std::to_string(n.messages) +
                     ", rejects " + std::to_string(n.rejects) + ", delivery states " +
                     std::to_string(n.delivery_states) + ", audit " + std::to_string(n.audit) +
                     ", dead letters " + std::to_string(n.dead_letters) + ", chains " + std::to_string(n.chains) +
                     ", expiries " + std::to_string(n.expiries) + ") in " + std::to_string(run.transactions) +
                     " transactions, " + std::to_string(run.elapsed_us / 1000) + "ms (longest " +
                     std::to_string(run.longest_txn_us / 1000) + "ms); store " + percent(use) + " of " +
                     mb(use.map_bytes);
  log_.log(n.total() > 0 ? conf::LogLevel::notice : conf::LogLevel::debug, line);
  check_map(now);
  return run;
}

store::MapUse Pruner::check_map(std::int64_t now_us) {
  const store::MapUse use = store::map_use(db_);
  const double r = use.ratio();
  const int level = r >= 0.95 ? 2 : r >= 0.80 ? 1 : 0;
  const std::string figures =
      percent(use) + " of " + mb(use.map_bytes) + " in use (" + mb(use.used_bytes) + ")";
  if (level == 0) {
    if (warned_level_ > 0)
      log_.notice("store: map use back below 80%: " + figures);
    warned_level_ = 0;
    return use;
  }
  if (level != warned_level_ || now_us - warned_at_us_ >= kRepeatUs) {
    if (level == 2)
      log_.error("store: map nearly full: " + figures +
                 "; writes fail (messages get milter_default_action) once it is full: raise store.map_size_mb "
                 "and restart, or shorten [retention]");
    else
      log_.warning("store: map " + figures + ": raise store.map_size_mb (restart) or shorten [retention] "
                   "before it fills");
    warned_at_us_ = now_us;
  }
  warned_level_ = level;
  return use;
}

void Pruner::start(std::function<std::shared_ptr<const conf::Config>()> config) {
  config_ = std::move(config);
  worker_.start([this] {
    using clock = std::chrono::steady_clock;
    auto next = clock::now();
    for (;;) {
      auto cfg = config_();
      if (clock::now() >= next) {
        // Read once per run: a reload applies from the next one.
        next = clock::now() + std::chrono::seconds(std::max(1, cfg->retention.prune_interval_s));
        try {
          store::PruneRun run = run_once(*cfg);
          if (run.transactions >= kStepsPerRun) next = clock::now();  // a backlog: go on at once
        } catch (const std::exception& e) {
          log_.error(std::string("prune failed (the next run tries again): ") + e.what());
        }
      }
      // Until the next run, but look at the configuration at least every second.
      worker_.sleep_until(std::min(next, clock::now() + std::chrono::seconds(1)));
      if (worker_.stopping()) return;
    }
  });
}

}  // namespace cllavio::core
