// The event outbox: events waiting for the Cllavio API, in the store's environment so
// an event is written in the same transaction as the record it describes.
//
// Databases:
//   outbox       org '\0' be64(seq) -> event JSON (per org in order)
//   outbox_dead  be64(seq) -> CBOR {org, event, error, at}: refused by the API, kept for
//                inspection and `cllavioctl outbox retry-dead`
//   meta         "outbox_seq", "outbox_bytes", "outbox_dropped" (be64), "outbox_error" (text)
//
// Contract: put() never throws for a full outbox: over max_bytes the event is counted
// as dropped (mail keeps flowing) and nothing stored is discarded. Readers (the
// forwarder, cllavioctl) take batches per org in sequence order; ack() removes what the
// API accepted. Safe across threads and processes (LMDB transactions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.hpp"

namespace cllavio::store {

struct OutboxItem {
  std::uint64_t seq = 0;
  std::string org;
  std::string json;  // the event as sent
};

struct OutboxStats {
  std::uint64_t queued = 0, queued_bytes = 0, dead = 0, dropped = 0;
  std::int64_t oldest_at_us = 0;  // when the oldest queued event was stored; 0 when empty
  std::string last_error;
};

class Outbox {
 public:
  explicit Outbox(Store& store);  // opens (a writer: creates) the databases

  // In the caller's write transaction. False when the outbox is full (counted as dropped).
  bool put(lmdb::Txn& txn, const std::string& org, std::string_view json, std::uint64_t max_bytes);

  std::vector<std::string> orgs() const;  // orgs with queued events
  // Up to max_events events of one org in order, at most max_bytes of JSON (at least one).
  std::vector<OutboxItem> peek(const std::string& org, std::size_t max_events, std::size_t max_bytes) const;
  void ack(const std::vector<OutboxItem>& delivered);
  void bury(const OutboxItem& item, const std::string& error);  // to the dead-letter table
  void set_error(const std::string& error);                    // "" clears
  std::size_t retry_dead();                                    // dead events back to the outbox
  std::vector<OutboxItem> list(bool dead, std::size_t limit) const;
  OutboxStats stats() const;

 private:
  bool missing() const { return outbox_ == 0; }
  Store& store_;
  MDB_dbi meta_ = 0, outbox_ = 0, dead_ = 0;
};

}  // namespace cllavio::store
