// Events for the Cllavio API (docs/api.md is the contract): what happened to a
// message or a consent, as the JSON the forwarder sends.
//
// Contract: pure. An event's id is derived from what it describes (our message id
// and the event type, or the audit entry's id), so it is unique and stays the same
// across retries and restarts; the server deduplicates by it. Subjects and bodies are
// never part of an event.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "store/message_record.hpp"
#include "store/tables.hpp"

namespace cllavio::core {

struct Event {
  std::string id;
  std::string type;         // message.accepted | message.rejected | consent.changed | subject.erased | ...
  std::int64_t occurred_at_us = 0;
  std::string org;
  nlohmann::json payload;   // the type's fields (message, tracking, reason, consent)
};

// The event a recorded message gives: message.accepted or message.rejected; nullopt for
// mail of no organization, and for tempfailed transactions (the client retries them).
std::optional<Event> from_record(const store::MessageRecord& rec);
Event from_audit(const store::AuditEntry& e);  // consent.changed
// to_text(*from_record(rec)), or "" when from_record gives nothing: what the recorder
// queues with each record. A message.accepted event (with its link table as "tokens") is
// written straight from the record, without building and copying a JSON tree.
std::string record_event_text(const store::MessageRecord& rec);

// What became of one recipient (delivery/): message.delivered | message.deferred |
// message.bounced | message.expired, with `delivery: {recipient, status, dsn, reply,
// relay, delay_s, attempt}` beside the message. The id names the message, the
// recipient and (deferred) the attempt, so replays give the same id.
Event delivery_event(const store::MessageRecord& rec, std::string_view recipient, const store::DeliveryState& s);
// The same event as to_text() writes it, from the record's `message` object dumped once
// (message_text()): what the log follower queues, without rebuilding the message per line.
std::string delivery_event_text(const store::MessageRecord& rec, std::string_view message_text,
                                std::string_view recipient, const store::DeliveryState& s);
std::string message_text(const store::MessageRecord& rec);  // the `message` object as JSON text
// An accepted message that Postfix refused after the milter's end of message (a later
// milter, header/body checks): message.rejected with reason "after_milter" and the text.
Event rejected_after_milter_event(const store::MessageRecord& rec, std::int64_t at_us, const std::string& detail);

// A data subject's erasure (core/erasure.hpp): subject.erased with `subject` {address,
// source}; the id names the erasure's audit entry and the org, so it is stable.
Event subject_erased_event(const std::string& org, const std::string& address, std::int64_t at_us,
                           const std::string& source, std::uint64_t audit_id);

nlohmann::json to_json(const Event& e);  // the wire form: id, type, occurred_at, org, payload fields
std::string to_text(const Event& e);     // to_json dumped (invalid UTF-8 from envelopes replaced)

std::string rfc3339_us(std::int64_t unix_us);  // 2026-11-29T03:49:11.474120Z

}  // namespace cllavio::core
