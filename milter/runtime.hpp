// Process-wide state of the daemon, shared by every milter connection.
//
// Holds the current Config snapshot (swapped atomically on SIGHUP; connections
// pin the snapshot they started with), the logger, the store, the quota ledger,
// the recording pipeline, the threads that talk to the Cllavio API, follow Postfix's
// log and prune the store, and what the
// SIGTERM drain waits for. Only the daemon creates one; the daemon wires it up
// (milter/daemon.cpp) once the store is open.
#pragma once

#include <malloc.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "conf/config.hpp"
#include "core/log.hpp"
#include "core/pruner.hpp"
#include "core/quota.hpp"
#include "core/recorder.hpp"
#include "core/tracking_step.hpp"
#include "delivery/follower.hpp"
#include "events/api_poller.hpp"
#include "events/forwarder.hpp"
#include "metrics/cllavio_metrics.hpp"
#include "metrics/listener.hpp"
#include "milter/reject_budget.hpp"
#include "milter/session.hpp"
#include "store/db.hpp"

namespace cllavio::milter {

// glibc malloc's thresholds for a process that handles messages of tens to hundreds of
// KiB: memory freed at the end of one message is kept for the next (up to 8 MiB at the
// top of an arena) instead of being given back to the kernel and faulted in again
// (measured in bench/eom_bench: ~10 page faults and a third of the CPU of a tracked
// 50 KB message), and blocks below 4 MiB come from the arenas, not from mmap: LMDB's
// nested transactions (a group commit of several messages) allocate a 2 MiB dirty list
// each, which with a 2 MiB threshold was an mmap, page faults and a munmap with its TLB
// shootdown per commit (perf, bench/profile.py). Called once, first thing, by the daemon.
inline void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 8 << 20);
}

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

  // After the store is open: the local ledger over it (start_quota_backend() may put
  // the shared one in its place before the first connection) and the recording pipeline.
  void open(std::unique_ptr<store::Db> db) {
    this->db = std::move(db);
    quota = std::make_unique<core::LocalQuota>(this->db.get());
    recorder = std::make_unique<core::Recorder>(
        *this->db, log, [this] { return config()->api.max_outbox_mb << 20; },
        [this] {
          if (forwarder) forwarder->wake();
        });
  }

  Services services() {
    return Services{[this](store::MessageRecord& r, const core::QuotaCharge& c, bool event_required) {
                      return recorder->record(r, c, event_required);
                    },
                    &log,
                    store::realtime_us,
                    &in_flight,
                    &draining,
                    [this](int per_minute) { return reject_budget.take(per_minute, store::realtime_us()); },
                    [this] { return db->allocate_id(); },
                    [this](const std::string& org, const std::string& address) {
                      return db->read()->consent.get(org, address).state;
                    },
                    quota.get(),
                    metrics.get(),
                    [this](const std::string& org, const policy::QuotaPolicy& p, std::int64_t now_us) {
                      return quota->usage(org, p, now_us);
                    },
                    [this](const std::string& org, std::uint64_t message) {
                      return core::store_link_tables(*db)(org, message);
                    }};
  }

  core::Logger log;
  std::unique_ptr<store::Db> db;
  std::unique_ptr<core::QuotaBackend> quota;  // LocalQuota, or quota::SharedQuota ([quota] backend = "redis")
  std::unique_ptr<core::Recorder> recorder;
  std::unique_ptr<events::Forwarder> forwarder;       // sends the outbox to the Cllavio API
  std::unique_ptr<events::ApiPoller> api_sync;       // consent changes and erasure requests made at Cllavio
  std::unique_ptr<delivery::Follower> follower;       // [delivery]: outcomes from Postfix's log
  std::unique_ptr<core::Pruner> pruner;               // [retention]: removes what is past its time
  std::unique_ptr<metrics::Metrics> metrics;          // [metrics]: counted when listen is set; else null
  std::unique_ptr<metrics::Listener> metrics_listener;
  std::atomic<int> in_flight{0};        // messages between MAIL FROM and end of message
  std::atomic<int> replies_pending{0};  // end-of-message answered, reply not yet known to be sent
  std::atomic<bool> stopping{false};    // SIGTERM received: refuse new connections
  // Set a moment after `stopping` (the MAIL grace): new transactions get [milter] on_error. In
  // between, a MAIL that Postfix sent before the signal but that we had not read yet (MAIL gets
  // no reply, SMFIP_NR_MAIL) starts its transaction normally and is waited for.
  std::atomic<bool> draining{false};
  RejectBudget reject_budget;           // [store] reject_records_per_minute

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const conf::Config> config_;
};

}  // namespace cllavio::milter
