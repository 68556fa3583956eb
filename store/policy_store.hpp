// Consent, audit log and quota events, in the store's LMDB environment.
//
// Databases (created by a writer; a read-only opener of an older store sees them empty):
//   consent  org '\0' address -> CBOR {s: state, at: unix us, src: source}
//   audit    8-byte big-endian id (unique, time-ordered) -> CBOR AuditEntry
//   quota    org '\0' be64(time us) be64(message id) -> be64(recipients): charged messages
//   meta     "quota_epoch:" org -> be64, bumped by a reset so the daemon reloads
//
// Contract: every consent change and quota reset is written with its audit entry in
// one transaction. Addresses are stored normalized (policy::normalize_address:
// domain lowercase). The daemon writes quota events inside the message record's
// transaction (put_quota_event, from Store::append's `also`) and reads consent per
// RCPT (one read transaction, no lock). cllavioctl writes from its own process;
// LMDB serializes writers across processes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/consent.hpp"
#include "store/store.hpp"

namespace cllavio::store {

struct AuditEntry {
  std::uint64_t id = 0;
  std::int64_t at_us = 0;
  std::string actor;    // "cllavioctl (uid 0)", "api", ...
  std::string action;   // consent.grant | consent.revoke | consent.unsubscribe | consent.import | quota.reset
  std::string org;
  std::string address;  // "" for org-wide actions
  std::string from, to; // consent states before and after
  std::string source;   // cli | import | api | unsubscribe
  std::string detail;   // free text ("12 changed, 3 unchanged", "removed 250 events")
};

class PolicyStore {
 public:
  explicit PolicyStore(Store& store);  // opens (a writer: creates) the databases

  // ---- consent
  policy::Consent consent(std::string_view org, std::string_view address) const;  // state none when absent
  struct Change {
    bool changed = false;
    policy::Consent before;
  };
  // Sets one address's consent (with its audit entry); no change (and no audit) when equal in state.
  Change set_consent(const std::string& org, const std::string& address, const policy::Consent& c,
                     const std::string& actor, const std::string& action);
  struct ImportRow {
    std::string address;
    policy::Consent consent;
  };
  struct ImportResult {
    std::size_t changed = 0, unchanged = 0, older = 0;  // older: the stored state is newer; kept
  };
  // One transaction: every row's change gets an audit entry (`action`), plus one for the
  // whole import; `cursor` (the API sync's position) is persisted in the same transaction.
  ImportResult import_consent(const std::string& org, const std::vector<ImportRow>& rows, const std::string& actor,
                              const std::string& action = "consent.import", const std::string* cursor = nullptr);
  std::string consent_cursor(const std::string& org) const;  // "" before the first sync

  // Called inside the transaction of every audit entry (cllavioctl queues consent.changed
  // events for the API with it).
  void on_audit(std::function<void(lmdb::Txn&, const AuditEntry&)> hook) { hook_ = std::move(hook); }
  void scan_consent(const std::string& org,
                    const std::function<bool(const std::string& address, const policy::Consent&)>& fn) const;

  // ---- quota
  void put_quota_event(lmdb::Txn& txn, const std::string& org, std::int64_t at_us, std::uint64_t message_id,
                       std::uint64_t rcpts, std::int64_t prune_before_us);
  std::vector<std::pair<std::int64_t, std::uint64_t>> quota_events(const std::string& org,
                                                                   std::int64_t since_us) const;
  std::uint64_t quota_epoch(const std::string& org) const;
  std::size_t reset_quota(const std::string& org, const std::string& actor);  // events removed

  // ---- audit
  void scan_audit(std::int64_t since_us, const std::function<bool(const AuditEntry&)>& fn) const;

 private:
  void audit(lmdb::Txn& txn, AuditEntry e);
  bool missing() const { return consent_ == 0; }  // read-only open of a store without these tables

  Store& store_;
  MDB_dbi meta_ = 0, consent_ = 0, audit_ = 0, quota_ = 0;
  std::function<void(lmdb::Txn&, const AuditEntry&)> hook_;
};

}  // namespace cllavio::store
