// The recording pipeline: what the milter writes about a message, in one store write.
//
// record() writes the message's record, its quota charge (when the message was
// accepted and charged) and its event for the Cllavio API (store/tables.hpp's outbox)
// in one unit of work: nothing is recorded without its event, no event exists without
// its record, and a charge is in the store exactly when its message is. The bytes are
// prepared before the shared transaction (record CBOR, event JSON), so concurrent
// messages spend little time inside the group commit. event() queues an event that
// belongs to no new record (delivery outcomes, consent changes).
//
// A full outbox never fails the write: the event is counted as dropped and logged.
// Everything else the store throws is rethrown (the caller applies [milter] on_error).
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>

#include "core/event.hpp"
#include "core/log.hpp"
#include "core/quota.hpp"
#include "store/db.hpp"

namespace cllavio::core {

struct OutboxFull : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Recorder {
 public:
  // max_outbox_bytes: read at each write (a reload applies at once); on_event: called
  // after a write that queued an event (wakes the forwarder).
  Recorder(store::Db& db, const Logger& log, std::function<std::uint64_t()> max_outbox_bytes,
           std::function<void()> on_event = {})
      : db_(db), log_(log), max_outbox_(std::move(max_outbox_bytes)), on_event_(std::move(on_event)) {}

  // Assigns rec.id when it is 0. Returns the id. With event_required (a message whose
  // compact tokens resolve only through its event) a full outbox throws OutboxFull and
  // nothing is written; otherwise the event is dropped and counted.
  std::uint64_t record(store::MessageRecord& rec, const QuotaCharge& charge, bool event_required = false);
  // False when the outbox was full (the event is counted as dropped).
  bool event(const Event& e);

 private:
  void dropped(const std::string& what) const;
  store::Db& db_;
  const Logger& log_;
  std::function<std::uint64_t()> max_outbox_;
  std::function<void()> on_event_;
};

}  // namespace cllavio::core
