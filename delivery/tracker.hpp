// The join: Postfix's log lines (delivery/logline.hpp) matched to the milter's records,
// turned into recipient states, events, suppressions and given-back quota charges.
//
// Contract:
// - apply() and retry_pending() run inside one store write (store::Db::write), with the
//   follower's checkpoint written in the same transaction: what a line did is stored
//   exactly when its position is, so a restart neither repeats nor loses it.
// - A line joins the newest record with its queue id that was received at most
//   max_age before the line and names the recipient (orig_to when present); a queue id
//   a recipient moved to (`forwarded as`, or `queued as` through one of filter_relays)
//   joins through the chain table first.
// - A line whose queue id has no record yet waits in the store (pending) when it was
//   logged less than join_wait ago; it is retried with every batch and dropped after
//   join_wait. Older lines without a record are not ours (Postfix's own notifications,
//   mail that did not pass the milter) and are ignored. A notification announced by the
//   bounce daemon's line is ignored at once, until its queue id's `removed` line.
// - A recipient's first final state (delivered, bounced, expired) wins; deferrals before
//   it count attempts. Every state change of an org's message queues one event whose id
//   is derived from the message, recipient and attempt (core/event.hpp).
// - A bounce that proves the address invalid (delivery/classify.hpp), and the
//   soft_bounce_limit-th expiry within soft_bounce_window without a delivery, set the
//   address's consent to `bounced` for the org (audited, consent.changed event) when the
//   org suppresses hard bounces. Unsubscribed or already bounced addresses stay as they are.
// - A message refused after the milter's end of message (cleanup's milter-reject,
//   reject, discard) ends rejected: the record says so, message.rejected is queued, its
//   quota charge is removed from the store and listed in the result so the caller gives
//   it back to the in-memory ledger after the commit.
// Used by one thread (the follower); holds only caches that a failed write cannot spoil.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "delivery/logline.hpp"
#include "store/tables.hpp"

namespace cllavio::delivery {

struct TrackerSettings {
  std::int64_t join_wait_us = 30'000'000;
  std::int64_t max_age_us = 7ll * 86400 * 1'000'000;
  std::vector<std::string> filter_relays;  // relay= values of content filters that re-inject here
  unsigned soft_bounce_limit = 3;          // 0: expiries never suppress
  std::int64_t soft_bounce_window_us = 14ll * 86400 * 1'000'000;
  std::uint64_t max_outbox_bytes = 256ull << 20;
  std::function<bool(const std::string& org)> suppress_hard_bounces;  // unset: every org
};

struct Uncharge {
  std::string org;
  std::string txn;  // the record's quota_txn ("" for records written before it was kept)
  std::int64_t at_us = 0;
  std::uint64_t rcpts = 0;
  std::uint64_t message_id = 0;
};

// What one batch did (filled inside the write; acted on after its commit).
struct BatchResult {
  std::vector<Uncharge> uncharges;
  std::vector<std::string> notices;  // log lines: suppressions, rejections after the milter
  std::vector<std::pair<std::string, std::string>> outcomes;  // (org, state) per recipient state stored
  std::size_t lines = 0, applied = 0, ignored = 0, pended = 0, dropped = 0, events = 0, outbox_full = 0;
  void clear_after_abort() { *this = BatchResult{}; }
};

class Tracker {
 public:
  explicit Tracker(TrackerSettings s) : s_(std::move(s)) {}
  const TrackerSettings& settings() const { return s_; }
  void set_settings(TrackerSettings s) { s_ = std::move(s); }

  void apply(store::Tables& t, std::string_view raw, std::int64_t now_us, BatchResult& out);
  void retry_pending(store::Tables& t, std::int64_t now_us, BatchResult& out);

 private:
  struct Cached {
    store::MessageRecord rec;
    std::vector<std::string> keys;  // recipients as the delivery table keys them
    std::string message_json;       // the events' `message` object, dumped once
  };
  enum class Outcome { applied, ignored, no_record };
  Outcome handle(store::Tables& t, const LogLine& l, std::int64_t line_us, BatchResult& out);
  Outcome recipient_line(store::Tables& t, const LogLine& l, std::int64_t line_us, BatchResult& out);
  Outcome expired_line(store::Tables& t, const LogLine& l, std::int64_t line_us, BatchResult& out);
  Outcome rejected_line(store::Tables& t, const LogLine& l, std::int64_t line_us, BatchResult& out);
  std::shared_ptr<const Cached> record(store::Tables& t, std::uint64_t id);
  // The newest accepted record with this queue id received within max_age of line_us;
  // nullptr with found_any=false when no record has this queue id at all.
  std::shared_ptr<const Cached> by_queue(store::Tables& t, std::string_view qid, std::int64_t line_us,
                                         bool& found_any);
  void set_state(store::Tables& t, const Cached& c, std::string_view rcpt, const store::DeliveryState& s,
                 BatchResult& out);
  void suppress(store::Tables& t, const std::string& org, const std::string& address, const std::string& why,
                std::int64_t at_us, BatchResult& out);
  void check_expiries(store::Tables& t, const std::string& org, const std::string& address, std::int64_t now_us,
                      BatchResult& out);
  bool suppresses(const std::string& org) const { return !s_.suppress_hard_bounces || s_.suppress_hard_bounces(org); }

  TrackerSettings s_;
  // Records by id (records do not change, except those this tracker rewrites: erased then).
  std::unordered_map<std::uint64_t, std::pair<std::shared_ptr<const Cached>, std::list<std::uint64_t>::iterator>>
      cache_;
  std::list<std::uint64_t> lru_;
  std::unordered_set<std::string> postfix_own_;   // queue ids of Postfix's notifications (bounded)
  std::unordered_set<std::string> pending_qids_;  // queue ids with lines waiting (rebuilt by retry_pending)
};

// A log stamp as unix microseconds. RFC 3339 stamps as written; traditional syslog
// stamps (no year, local time) in the year that puts them at most a day after now.
// 0 when the stamp is unreadable.
std::int64_t to_unix_us(const LogTime& t, std::int64_t now_us);

}  // namespace cllavio::delivery
