// Every key of the store, in one place: how each table's keys are built and read back.
//
// Integers are 8-byte big-endian (lmdb::be64) so that LMDB's byte order is numeric
// order; strings that share a table with others end in '\0' so that "acm" never
// matches the keys of "acme". Tables (docs/architecture.md has the full layout):
//   messages    be64(message id)
//   by_queue    queue id                       (dupsort values: be64(message id))
//   by_address  address '\0' be64(message id)  (value: Role bits)
//   consent     org '\0' address
//   audit       be64(audit id)
//   quota       org '\0' be64(charged at us) be64(message id)
//   outbox      org '\0' be64(seq)
//   outbox_dead be64(seq)
//   delivery    be64(message id) recipient     (value: CBOR delivery state)
//   delivery_pending be64(seq)                 (value: CBOR {first seen, line})
//   delivery_chain   queue id '\0' recipient   (value: be64(message id))
//   delivery_expiries org '\0' address        (value: be64 times of expiries since the last delivery)
//   by_org      org '\0' kind be64(message id) (retention's index: kind 'm' accepted, 'r' refused)
//   erased      org '\0' HMAC-SHA256(address)  (value: CBOR {s: consent state, at}: an erased address that stays suppressed)
//   meta        the names below
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cllavio::store::keys {

// org '\0': the prefix of every key of one org in consent, quota and outbox.
std::string org_prefix(std::string_view org);

std::string consent(std::string_view org, std::string_view address);

std::string quota(std::string_view org, std::int64_t at_us, std::uint64_t message_id);
struct QuotaKey {
  std::int64_t at_us = 0;
  std::uint64_t message_id = 0;
};
// The part after org '\0'; nullopt when it is not 16 bytes.
std::optional<QuotaKey> parse_quota(std::string_view suffix);

std::string outbox(std::string_view org, std::uint64_t seq);
// An outbox key split into org and seq; nullopt when it is not one.
std::optional<std::pair<std::string, std::uint64_t>> parse_outbox(std::string_view key);

// The address index: every record under each address it names (sender, recipients).
std::string address_prefix(std::string_view address);
std::string address(std::string_view address, std::uint64_t message_id);
enum Role : unsigned char { sender = 1, recipient = 2, suppressed = 4 };

// Retention's index of records per org and kind (what the pruner walks oldest first).
enum RecordKind : char { accepted = 'm', refused = 'r' };
std::string by_org(std::string_view org, char kind, std::uint64_t message_id);
std::string by_org_prefix(std::string_view org, char kind);

// An erased address's tombstone: org '\0' hash (32 bytes, store/erase.hpp's address_hash).
std::string erased(std::string_view org, std::string_view hash);

std::string delivery(std::uint64_t message_id, std::string_view recipient);
std::string chain(std::string_view queue_id, std::string_view recipient);

// meta
inline constexpr std::string_view kSchema = "schema";
inline constexpr std::string_view kOutboxSeq = "outbox_seq";
inline constexpr std::string_view kOutboxBytes = "outbox_bytes";
inline constexpr std::string_view kOutboxDropped = "outbox_dropped";
inline constexpr std::string_view kOutboxError = "outbox_error";
inline constexpr std::string_view kDeliveryPosition = "delivery_position";  // the log follower's checkpoint
inline constexpr std::string_view kDeliveryStatus = "delivery_status";      // its last status (JSON)
inline constexpr std::string_view kDeliveryGaps = "delivery_gaps";          // gaps it found (JSON, newest last)
inline constexpr std::string_view kDeliveryPendingSeq = "delivery_pending_seq";
inline constexpr std::string_view kEraseSecret = "erase_secret";  // 32 random bytes: the key of address hashes
inline constexpr std::string_view kPruneStatus = "prune_status";  // the pruner's last run (JSON)
std::string quota_epoch(std::string_view org);     // bumped by `cllavioctl quota reset`
std::string consent_cursor(std::string_view org);  // the API consent sync's position
std::string erasure_cursor(std::string_view org);  // the API erasure requests' position

}  // namespace cllavio::store::keys
