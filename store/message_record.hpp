// What the store keeps about one SMTP transaction, and its encodings.
//
// Contract: to_json/from_json are the single field mapping. The store keeps the
// record as CBOR of that JSON (compact, schema-tolerant: unknown fields are
// ignored, missing fields take defaults, so later versions can add fields);
// cllavioctl prints display_json(). Subject lines and bodies are never recorded.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cllavio::store {

struct TrackedLinkEntry {
  std::uint32_t index = 0;
  std::string url;
  friend bool operator==(const TrackedLinkEntry&, const TrackedLinkEntry&) = default;
};

// What tracking did to a message.
struct TrackingOutcome {
  std::string status;                   // "" (org does not track), "tracked", "unchanged", "skipped"
  std::string skipped;                  // why, when skipped
  std::uint32_t pixels = 0;
  std::vector<TrackedLinkEntry> links;  // the link table: index (as in the click token) -> destination
  std::uint32_t links_kept = 0;         // links left as they were
  bool per_recipient = false;           // exactly one recipient: its opens and clicks are that recipient's (version 1 tokens name it)
  std::string pixel_skipped;            // why a part that should have one got no pixel ("unclosed_markup")
  friend bool operator==(const TrackingOutcome&, const TrackingOutcome&) = default;
};

struct MessageRecord {
  static constexpr std::size_t kMaxRecipients = 1000;  // bounded record size (non-SMTP mail has no limit)

  std::uint64_t id = 0;              // Db::allocate_id: unique, time-ordered
  std::string queue_id;              // Postfix {i}; "" when rejected before a queue file existed
  std::string org;                   // "" when no organization matched
  std::string identified_by;         // sasl | network | sender_domain | none
  std::string client_addr;
  std::string client_name;
  std::string sasl_login;
  std::string sender;                // envelope sender, "" for the null sender
  std::vector<std::string> recipients;  // the first kMaxRecipients
  std::uint64_t recipient_count = 0;   // all of them
  std::string message_id;            // Message-ID header, as sent
  std::uint64_t size = 0;            // header + body octets as seen by the milter
  std::int64_t received_at_us = 0;   // unix time in microseconds (MAIL FROM)
  std::string action;                // accept | reject | tempfail
  std::string reason;                // why, when not a plain accept
  std::string stream;                // the org's stream ("default" or a [[stream]] name); "" for no org
  std::vector<std::string> suppressed;  // recipients refused or removed as unsubscribed
  std::int64_t quota_charged_at_us = 0; // when the message was charged to the org's quota; 0: not charged
  std::string quota_txn;             // the charge's transaction id (32 hex digits; a shared ledger's key)
  std::string list_unsubscribe;      // "added", or why not ("several_recipients", "present", "signed")
  TrackingOutcome tracking;

  friend bool operator==(const MessageRecord&, const MessageRecord&) = default;
};

nlohmann::json to_json(const MessageRecord& r);    // without id
MessageRecord from_json(const nlohmann::json& j);  // tolerant; throws nlohmann::json::exception on wrong types

// CBOR: the bytes of json::to_cbor(to_json(r)), written in one pass without the JSON tree.
std::string encode(const MessageRecord& r);
MessageRecord decode(std::string_view bytes);      // throws on corrupt data

// For people and scripts: id as 16 hex digits, received_at as RFC 3339 UTC, fields
// in a stable order. Dump it with error_handler_t::replace: envelope text may be
// invalid UTF-8.
nlohmann::ordered_json display_json(const MessageRecord& r);

std::string format_id(std::uint64_t id);           // 16 lowercase hex digits

// For terminals: control bytes (and anything that could start an escape sequence) become '?'.
std::string printable(std::string_view s);
std::string format_time_us(std::int64_t unix_us);  // 2026-11-29T00:20:47.123456Z
// The inverse, for people and APIs: RFC 3339 UTC ("2026-11-29T10:00:00Z", a fraction
// and "+00:00" allowed) or unix seconds; nullopt for anything else.
std::optional<std::int64_t> parse_time_us(std::string_view text);

}  // namespace cllavio::store
