// Erase by address: everything the store holds that names one person, gone in one write
// transaction (docs/privacy.md).
//
// Contract: erase_address() runs inside the caller's write transaction and, for the orgs
// asked (or every org with all_orgs, records of no org included):
// - records where the address is the sender, or the only recipient left, are deleted
//   with their index entries and delivery states; in other records it is removed from
//   the recipients (recipient_count stays: how many there were), the suppressed list and
//   sasl_login, and its delivery state goes;
// - its consent row goes; when the state was unsubscribed or bounced a tombstone keeps it
//   suppressed under address_hash(store secret, address) (ConsentTable::get finds it);
// - audit entries naming it go (address field, or the address in detail); its soft-bounce
//   expiries, queue-id chains and waiting log lines naming it go;
// - queued events (outbox) and dead letters that name it are rewritten without it when it
//   is only one entry of a list, dropped otherwise; bytes accounting stays right;
// - one audit entry per org: action "subject.erase", address "", detail "hash=HEX ..."
//   with the counts, actor and source as given.
// Addresses compare normalized (policy::consent_address). Nothing else is touched.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/tables.hpp"

namespace cllavio::store {

struct EraseRequest {
  std::string address;            // as given; normalized inside
  std::vector<std::string> orgs;  // the orgs to erase from (ignored with all_orgs)
  bool all_orgs = false;          // every org the store holds data of, and records of no org
  std::string actor;              // "cllavioctl (uid 0)", "api"
  std::string source;             // cli | api
};

struct EraseReport {
  std::string address;            // normalized
  std::string hash_hex;           // address_hash as hex: what the audit keeps
  std::vector<std::string> orgs;  // the orgs named, plus (all_orgs) every org that held something of it
  std::uint64_t records_deleted = 0, records_edited = 0, delivery_states = 0, consent_rows = 0, tombstones = 0,
                audit_entries = 0, events_dropped = 0, events_edited = 0, dead_letters = 0, pending_lines = 0,
                chains = 0, expiries = 0;
  std::vector<AuditEntry> audited;  // the erasure's own entries, one per org
  std::uint64_t total() const {
    return records_deleted + records_edited + delivery_states + consent_rows + audit_entries + events_dropped +
           events_edited + dead_letters + pending_lines + chains + expiries;
  }
};

// Throws std::invalid_argument for an address that normalizes to nothing.
EraseReport erase_address(Tables& t, const EraseRequest& req);

}  // namespace cllavio::store
