#include "core/recorder.hpp"

namespace cllavio::core {

std::uint64_t Recorder::record(store::MessageRecord& rec, const QuotaCharge& charge, bool event_required) {
  if (rec.id == 0) rec.id = db_.allocate_id();
  const std::string value = store::encode(rec);
  const std::string event = record_event_text(rec);
  const bool charged = charge.active() && rec.action == "accept";
  const std::uint64_t max_outbox = max_outbox_();
  bool queued = true;
  db_.write([&](store::Tables& t) {
    t.records.append(rec, value);
    if (charged) t.quota.charge(rec.org, charge.at_us(), rec.id, charge.rcpts(), charge.at_us() - charge.window_us());
    if (!event.empty()) queued = t.outbox.put(rec.org, event, max_outbox);
    if (!queued && event_required)  // rolls this piece back: no record, no charge
      throw OutboxFull("OUTBOX FULL: the event of a message with compact tokens cannot be queued (raise [api] "
                       "max_outbox_mb, check the API: cllavioctl outbox stats)");
  });
  if (!queued) dropped("event of message " + store::format_id(rec.id));
  if (!event.empty() && on_event_) on_event_();
  return rec.id;
}

bool Recorder::event(const Event& e) {
  const std::string json = to_text(e);
  const std::uint64_t max_outbox = max_outbox_();
  bool queued = false;
  db_.write([&](store::Tables& t) { queued = t.outbox.put(e.org, json, max_outbox); });
  if (!queued) dropped(e.type + " event " + e.id);
  if (on_event_) on_event_();
  return queued;
}

void Recorder::dropped(const std::string& what) const {
  log_.error("OUTBOX FULL: " + what + " dropped (raise [api] max_outbox_mb, check the API: cllavioctl outbox stats)");
}

}  // namespace cllavio::core
