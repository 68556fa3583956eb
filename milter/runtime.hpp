// Process-wide state of the daemon, shared by every milter connection.
//
// Holds the current Config snapshot (swapped atomically on SIGHUP; connections
// pin the snapshot they started with), the logger, the store and what the
// SIGTERM drain waits for. Only the daemon creates one.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>

#include "conf/config.hpp"
#include "milter/log.hpp"
#include "milter/reject_budget.hpp"
#include "milter/session.hpp"
#include "events/event.hpp"
#include "events/forwarder.hpp"
#include "policy/quota.hpp"
#include "store/outbox.hpp"
#include "store/policy_store.hpp"
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
    return Services{[this](store::MessageRecord& r) { return record(r); },
                    &log,
                    store::realtime_us,
                    &in_flight,
                    &draining,
                    [this](int per_minute) { return reject_budget.take(per_minute, store::realtime_us()); },
                    [this] { return store->allocate_id(); },
                    [this](const std::string& org, const std::string& address) {
                      return policy_store->consent(org, address).state;
                    },
                    &quota,
                    [this](const std::string& org, std::int64_t keep_us) { refresh_quota(org, keep_us); }};
  }

  // One store transaction: the record, its quota charge and its event for the API.
  std::uint64_t record(store::MessageRecord& r) {
    bool dropped = false;
    std::uint64_t max_outbox = config()->api.max_outbox_mb << 20;
    std::uint64_t id = store->append(r, [&](store::lmdb::Txn& txn) {
      if (r.quota_charged_at_us != 0 && r.action == "accept")
        policy_store->put_quota_event(txn, r.org, r.quota_charged_at_us, r.id, r.recipient_count,
                                      r.quota_charged_at_us - r.quota_window_us);
      if (outbox) {
        if (auto ev = events::from_record(r))
          dropped = !outbox->put(txn, r.org, events::to_json(*ev).dump(-1, ' ', false,
                                                                       nlohmann::json::error_handler_t::replace),
                                 max_outbox);
      }
    });
    if (dropped)
      log.error("OUTBOX FULL: event of message " + store::format_id(id) +
                " dropped (raise [api] max_outbox_mb, check the API: cllavioctl outbox stats)");
    if (forwarder) forwarder->wake();
    return id;
  }

  // Loads an org's charged messages from the store the first time it is needed, and
  // again after `cllavioctl quota reset` (the store's epoch for the org changed).
  void refresh_quota(const std::string& org, std::int64_t keep_us) {
    std::uint64_t epoch = policy_store->quota_epoch(org);
    std::lock_guard lock(quota_mu_);
    auto it = quota_loaded_.find(org);
    if (it != quota_loaded_.end() && it->second == epoch) return;
    quota.reload(org, epoch, policy_store->quota_events(org, store::realtime_us() - keep_us));
    quota_loaded_[org] = epoch;
  }

  Logger log;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<store::PolicyStore> policy_store;  // consent, audit, quota events (same environment)
  policy::QuotaLedger quota;
  std::unique_ptr<store::Outbox> outbox;              // events for the Cllavio API
  std::unique_ptr<events::Forwarder> forwarder;       // the thread that sends them
  std::atomic<int> in_flight{0};        // messages between MAIL FROM and end of message
  std::atomic<int> replies_pending{0};  // end-of-message answered, reply not yet known to be sent
  std::atomic<bool> draining{false};    // SIGTERM received: refuse new connections
  RejectBudget reject_budget;           // [store] reject_records_per_minute

 private:
  std::mutex quota_mu_;
  std::map<std::string, std::uint64_t> quota_loaded_;  // org -> store epoch loaded into the ledger
  mutable std::mutex mu_;
  std::shared_ptr<const conf::Config> config_;
};

}  // namespace cllavio::milter
