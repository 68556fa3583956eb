// Retention: what the store removes once it is older than configured ([retention]).
//
// Contract:
// - prune_step() runs inside the caller's write transaction and removes at most
//   `max_entries` entries (a record counts 1 plus its delivery states), oldest first,
//   then says whether more is due; prune() repeats it in separate Db::write calls, so a
//   message's commit waits at most behind one small step, never behind a whole run.
// - What goes: records of accepted mail older than `messages` (with their index entries
//   and delivery states), records of refused transactions older than `rejects`, audit
//   entries older than `audit`, dead letters buried longer than `dead_letters` ago, queue
//   id chains whose record is gone, soft-bounce expiry counts older than `messages`.
//   Each org's own durations apply (RetentionRules::of); records of no org use the defaults.
// - What never goes: consent states and erased-address tombstones (an unsubscribe must keep
//   working), events the API has not acknowledged (acknowledged ones are deleted at once),
//   quota charges (the quota table prunes itself on the next charge).
// - The records' ages are their ids (microseconds at MAIL FROM); the walk uses the
//   retention index (by_org: org, kind, id), so its cost is what it removes plus one seek
//   per org and kind, whatever the store holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "policy/retention.hpp"
#include "store/tables.hpp"

namespace cllavio::store {

class Db;

struct RetentionRules {
  policy::Retention defaults;
  std::map<std::string, policy::Retention> orgs;  // orgs whose own file overrides something

  const policy::Retention& of(const std::string& org) const {
    auto it = orgs.find(org);
    return it == orgs.end() ? defaults : it->second;
  }
  policy::Retention shortest() const;  // per kind, the shortest of defaults and every org's
};

struct PruneCounts {
  std::uint64_t messages = 0, rejects = 0, delivery_states = 0, audit = 0, dead_letters = 0, chains = 0,
                expiries = 0;
  std::uint64_t total() const {
    return messages + rejects + delivery_states + audit + dead_letters + chains + expiries;
  }
  PruneCounts& operator+=(const PruneCounts& o);
};

struct PruneStep {
  PruneCounts removed;
  bool more = false;  // the budget ran out before everything due was removed
};
PruneStep prune_step(Tables& t, const RetentionRules& rules, std::int64_t now_us, std::size_t max_entries);

struct PruneRun {
  PruneCounts removed;
  std::size_t transactions = 0;
  std::int64_t elapsed_us = 0;
  std::int64_t longest_txn_us = 0;  // the slowest step's time inside its transaction
};
// Steps until nothing due is left (at most max_steps, a safety bound); `now_us` fixed at
// the start. Writes the run's summary to meta prune_status (JSON) in the last step.
PruneRun prune(Db& db, const RetentionRules& rules, std::int64_t now_us, std::size_t max_entries_per_txn = 256,
               std::size_t max_steps = 100000);

}  // namespace cllavio::store
