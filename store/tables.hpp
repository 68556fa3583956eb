// The tables of the store, as seen from inside one LMDB transaction.
//
// A Tables value is what store::Db hands to a unit of work (Db::write: every table,
// writable, one transaction) or to a reader (Db::read: the same tables, const). Each
// table is a thin typed view: keys come from store/keys.hpp, values are CBOR or
// big-endian integers, and nothing here opens a transaction of its own, so whatever
// a unit of work writes (a record, its quota charge and its event; a consent change
// and its audit entry) commits together or not at all.
//
// A reader opening a store that predates a table (read-only, older schema) finds its
// handle 0: that table reads as empty.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/consent.hpp"
#include "store/lmdb.hpp"
#include "store/message_record.hpp"

namespace cllavio::store {

struct Handles {
  MDB_dbi meta = 0, messages = 0, by_queue = 0, by_address = 0, consent = 0, audit = 0, quota = 0, outbox = 0,
          outbox_dead = 0, delivery = 0, delivery_pending = 0, delivery_chain = 0,
          delivery_expiries = 0, by_org = 0, erased = 0;
};

class Meta {
 public:
  Meta(lmdb::Txn& txn, MDB_dbi dbi) : txn_(txn), dbi_(dbi) {}
  std::optional<std::string> get(std::string_view key) const;
  std::uint64_t u64(std::string_view key) const;  // 0 when absent
  void put(std::string_view key, std::string_view value);
  void put_u64(std::string_view key, std::uint64_t value);

 private:
  lmdb::Txn& txn_;
  MDB_dbi dbi_;
};

// Message records, with the queue id and address indexes written beside each one.
class Records {
 public:
  Records(lmdb::Txn& txn, const Handles& h) : txn_(txn), h_(h) {}
  // rec.id must be set (Db::allocate_id); `encoded` is encode(rec) when the caller made
  // it already (outside the shared transaction). Never overwrites: a second record with
  // the same id throws.
  void append(const MessageRecord& rec, std::string_view encoded = {});
  // Deletes a record with every index entry it has (by_queue, by_address, by_org); its
  // delivery states are DeliveryTable::forget's. Returns the record; nullopt when absent.
  std::optional<MessageRecord> remove(std::uint64_t id);
  std::optional<MessageRecord> get(std::uint64_t id) const;
  std::vector<MessageRecord> by_queue_id(std::string_view queue_id) const;  // oldest first
  std::vector<std::uint64_t> ids_by_queue_id(std::string_view queue_id) const;  // oldest first
  // Rewrites an existing record (same id, same org). The address index follows its
  // addresses (an erase removes one), the retention index its kind (a message refused
  // after the milter becomes a reject).
  void replace(const MessageRecord& rec);
  // Records in id order starting at from_id; stops when fn returns false.
  void scan(const std::function<bool(const MessageRecord&)>& fn, std::uint64_t from_id = 0) const;
  // Records naming `address` (normalized as policy::consent_address does), oldest first,
  // with how (keys::Role bits).
  std::vector<std::pair<std::uint64_t, unsigned>> by_address(std::string_view address) const;
  std::uint64_t last_id() const;  // 0 when empty

  // The address index entries of a record: normalized address -> role bits.
  static std::vector<std::pair<std::string, unsigned>> addresses_of(const MessageRecord& rec);
  void index_addresses(const MessageRecord& rec);
  // keys::accepted for accepted mail, keys::refused for reject and tempfail records.
  static char kind_of(const MessageRecord& rec);
  void index_org(const MessageRecord& rec);  // the retention index entry (by_org)

 private:
  lmdb::Txn& txn_;
  const Handles& h_;
};

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

class AuditLog {
 public:
  AuditLog(lmdb::Txn& txn, const Handles& h, std::int64_t now_us) : txn_(txn), h_(h), now_us_(now_us) {}
  // Writes the entry; its id is max(now, last id + 1) (unique across processes: LMDB
  // serializes writers), at_us defaults to now. Returns it as stored.
  AuditEntry append(AuditEntry e);
  void scan(std::int64_t since_us, const std::function<bool(const AuditEntry&)>& fn) const;

 private:
  lmdb::Txn& txn_;
  const Handles& h_;
  std::int64_t now_us_;
};

// The keyed hash an erased address is remembered by: HMAC-SHA256(secret, address
// normalized as policy::consent_address), 32 raw bytes. The secret is the store's own
// (meta erase_secret, made when the store is created); "" when secret is empty.
std::string address_hash(std::string_view secret, std::string_view address);
std::string hex(std::string_view bytes);

// Consent per org and address (normalized: policy::consent_address); every change is
// audited in the same transaction.
class ConsentTable {
 public:
  ConsentTable(lmdb::Txn& txn, const Handles& h, AuditLog& audit) : txn_(txn), h_(h), audit_(audit) {}
  policy::Consent get(std::string_view org, std::string_view address) const;  // state none when absent
  void scan(const std::string& org, const std::function<bool(const std::string&, const policy::Consent&)>& fn) const;

  struct Change {
    bool changed = false;
    policy::Consent before;
    std::optional<AuditEntry> audit;  // the entry written when it changed
  };
  // No change (and no audit entry) when the state is the same.
  Change set(const std::string& org, const std::string& address, const policy::Consent& c, const std::string& actor,
             const std::string& action, const std::string& detail = "");

  struct ImportRow {
    std::string address;
    policy::Consent consent;
  };
  struct ImportResult {
    std::size_t changed = 0, unchanged = 0, older = 0;  // older: the stored state is newer; kept
    std::vector<AuditEntry> audited;                    // one per changed address
  };
  // Every changed row gets an audit entry (`action`), plus one for the whole import;
  // `cursor` (the API sync's position) is written too when given.
  ImportResult import(const std::string& org, const std::vector<ImportRow>& rows, const std::string& actor,
                      const std::string& action, const std::string* cursor = nullptr);
  std::string cursor(const std::string& org) const;  // "" before the first sync

  // Erased addresses that stay suppressed (store/erase.hpp): the consent state an
  // address had when it was erased, kept under its keyed hash (address_hash). get()
  // falls back to it when the address has no consent row.
  void put_tombstone(const std::string& org, std::string_view hash, const policy::Consent& c);
  std::optional<policy::Consent> tombstone(std::string_view org, std::string_view hash) const;
  bool remove_row(const std::string& org, const std::string& address);  // no audit; erase's

 private:
  lmdb::Txn& txn_;
  const Handles& h_;
  AuditLog& audit_;
};

// Charged messages per org (what rebuilds the local quota ledger after a restart).
class QuotaTable {
 public:
  QuotaTable(lmdb::Txn& txn, const Handles& h, AuditLog& audit) : txn_(txn), h_(h), audit_(audit) {}
  // One charged message; events older than prune_before_us go, a few per call.
  void charge(const std::string& org, std::int64_t at_us, std::uint64_t message_id, std::uint64_t rcpts,
              std::int64_t prune_before_us);
  std::vector<std::pair<std::int64_t, std::uint64_t>> events(const std::string& org, std::int64_t since_us) const;
  std::uint64_t epoch(const std::string& org) const;
  // Gives one charged message back (it was refused after the milter accepted it): its
  // recipient count, nullopt when the store has no such charge (pruned, reset).
  std::optional<std::uint64_t> uncharge(const std::string& org, std::int64_t at_us, std::uint64_t message_id);
  // Forgets the org's charges, bumps its epoch (the daemon reloads), audits. Returns how many went.
  std::size_t reset(const std::string& org, const std::string& actor);

 private:
  lmdb::Txn& txn_;
  const Handles& h_;
  AuditLog& audit_;
};

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

// Events waiting for the Cllavio API, per org in order, and the dead-letter table.
// put() never throws for a full outbox: over max_bytes the event is counted as dropped.
class OutboxTable {
 public:
  OutboxTable(lmdb::Txn& txn, const Handles& h, std::int64_t now_us) : txn_(txn), h_(h), now_us_(now_us) {}
  bool put(const std::string& org, std::string_view json, std::uint64_t max_bytes);
  std::vector<std::string> orgs() const;  // orgs with queued events
  // Up to max_events events of one org in order, at most max_bytes of JSON (at least one).
  std::vector<OutboxItem> peek(const std::string& org, std::size_t max_events, std::size_t max_bytes) const;
  void ack(const std::vector<OutboxItem>& delivered);
  void bury(const OutboxItem& item, const std::string& error);
  void set_error(const std::string& error);  // "" clears
  std::size_t retry_dead();                  // dead events back to the outbox, in their old place
  std::vector<OutboxItem> list(bool dead, std::size_t limit) const;
  OutboxStats stats() const;
  // queued, dead and oldest_at_us without a scan (for metrics, at every scrape): entry
  // counts from mdb_stat, the oldest from the first event of each org with events (an
  // org's events are in order). Bytes, dropped and the error are left out.
  OutboxStats quick_stats() const;

 private:
  OutboxStats counts() const;  // queued and dead (mdb_stat)
  void remove(const OutboxItem& item);
  lmdb::Txn& txn_;
  const Handles& h_;
  std::int64_t now_us_;
};

// What became of one recipient of a recorded message, from Postfix's log (delivery/).
struct DeliveryState {
  std::string state;           // deferred | delivered | bounced | expired (no entry: pending)
  std::uint32_t attempts = 0;  // deferrals seen
  std::string dsn, reply, relay;
  double delay_s = -1;
  std::int64_t at_us = 0;      // when the line that set it was logged
  std::string queue_id;        // the queue id that line named (another one after a forward)
  bool final() const { return state == "delivered" || state == "bounced" || state == "expired"; }
  friend bool operator==(const DeliveryState&, const DeliveryState&) = default;
};

// Delivery states per (message id, recipient), the log lines waiting for their record,
// and the queue ids a recipient moved to (forwarded as / queued as through a filter).
// Recipients are keyed normalized (policy::consent_address) when they can be.
class DeliveryTable {
 public:
  DeliveryTable(lmdb::Txn& txn, const Handles& h) : txn_(txn), h_(h) {}
  std::optional<DeliveryState> get(std::uint64_t message_id, std::string_view recipient) const;
  void put(std::uint64_t message_id, std::string_view recipient, const DeliveryState& s);
  std::vector<std::pair<std::string, DeliveryState>> of(std::uint64_t message_id) const;
  std::size_t forget(std::uint64_t message_id);  // every state of a message; how many went
  bool forget(std::uint64_t message_id, std::string_view recipient);
  // Every state in message id order from from_id; stops when fn returns false.
  void scan(const std::function<bool(std::uint64_t, std::string_view, const DeliveryState&)>& fn,
            std::uint64_t from_id = 0) const;

  struct Pending {
    std::uint64_t seq = 0;
    std::int64_t first_seen_us = 0;
    std::string line;
  };
  void pend(std::uint64_t seq, std::int64_t first_seen_us, std::string_view line);
  std::vector<Pending> pending() const;  // in arrival order
  std::size_t pending_count() const;     // without decoding them
  void unpend(std::uint64_t seq);

  void chain(std::string_view next_queue_id, std::string_view recipient, std::uint64_t message_id);
  std::optional<std::uint64_t> chained(std::string_view queue_id, std::string_view recipient) const;
  std::vector<std::pair<std::string, std::uint64_t>> chains_of(std::string_view queue_id) const;  // recipient, id
  std::size_t unchain(std::string_view queue_id);  // the queue file is gone: forget its entries

  // Expiries of an address's mail from an org since its last delivery (their times, the
  // newest `keep`), for soft_bounce_limit: expired() adds one and returns those within
  // the window; delivered() forgets them.
  std::vector<std::int64_t> expired(std::string_view org, std::string_view address, std::int64_t at_us,
                                    std::int64_t window_start_us, std::size_t keep);
  void delivered(std::string_view org, std::string_view address);

  static std::string recipient_key(std::string_view recipient);

 private:
  lmdb::Txn& txn_;
  const Handles& h_;
};

// Every table inside one transaction.
struct Tables {
  Tables(lmdb::Txn& t, const Handles& h, std::int64_t now_us)
      : txn(t), handles(h), meta(t, h.meta), records(t, h), audit(t, h, now_us), consent(t, h, audit),
        quota(t, h, audit), outbox(t, h, now_us), delivery(t, h) {}
  Tables(const Tables&) = delete;
  Tables& operator=(const Tables&) = delete;

  lmdb::Txn& txn;
  const Handles& handles;  // for whole-table walks (retention); 0 = the table does not exist
  Meta meta;
  Records records;
  AuditLog audit;
  ConsentTable consent;
  QuotaTable quota;
  OutboxTable outbox;
  DeliveryTable delivery;
};

}  // namespace cllavio::store
