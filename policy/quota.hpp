// Sending quotas: exact sliding windows over the messages and recipients an
// organization has sent, with reservations for transactions in flight.
//
// Contract: pure logic (times are passed in, in microseconds); QuotaLedger is
// thread-safe (one mutex, held for a few lookups). Windows slide: a message counts
// in a window of `per` from the moment it was charged until `per` later, so there is
// no burst at the boundary of a fixed window. Recipients are reserved at RCPT TO and
// charged with their message at end of message; only accepted mail is charged, and
// release_recipients()/uncharge() give back what a failed transaction held. A clock
// that goes backwards never frees quota early: events are kept in time order and a
// time earlier than the last event counts as the last event's time.
//
// The ledger is the process's view; the store keeps the charged events (the message
// record's transaction), so a restart rebuilds it (reload()). The milter reaches it
// through core::QuotaBackend (core/quota.hpp), which a ledger shared by several hosts
// implements too.
#pragma once

#include <climits>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/decision.hpp"

namespace cllavio::policy {

struct QuotaWindow {
  std::int64_t per_s = 0;  // window length
  std::uint64_t max = 0;
  friend bool operator==(const QuotaWindow&, const QuotaWindow&) = default;
};

enum class QuotaAction { defer, reject };

struct QuotaPolicy {
  std::vector<QuotaWindow> messages;
  std::vector<QuotaWindow> recipients;
  std::uint32_t max_recipients_per_message = 0;  // 0: no limit
  QuotaAction action = QuotaAction::defer;

  bool limits_volume() const { return !messages.empty() || !recipients.empty(); }
  bool empty() const { return !limits_volume() && max_recipients_per_message == 0; }
  std::int64_t longest_s() const;
};

// "90s", "15m", "24h", "7d" -> seconds (up to 8 characters); nullopt when malformed.
std::optional<std::int64_t> parse_duration_s(std::string_view);
// A quota window: a duration within 1s..31d.
std::optional<std::int64_t> parse_window(std::string_view);
// 60 -> "minute", 7200 -> "2 hours", 86400 -> "day".
std::string describe_window(std::int64_t per_s);

// The charged messages of one org in time order; exact counts over any window.
class SlidingLog {
 public:
  // Appends a message with `rcpts` recipients at time t (clamped to the last event's time).
  std::int64_t add(std::int64_t t_us, std::uint64_t rcpts);
  // Removes the message added at exactly t with rcpts (the newest such); false when absent.
  bool remove(std::int64_t t_us, std::uint64_t rcpts);
  // Forgets events that no window of length keep_us can still see at now_us.
  void expire(std::int64_t now_us, std::int64_t keep_us);

  std::uint64_t messages(std::int64_t now_us, std::int64_t per_us) const;
  std::uint64_t recipients(std::int64_t now_us, std::int64_t per_us) const;
  // Earliest time >= now when `need` more fits under max in that window (messages or
  // recipients); nullopt when it never can (need > max).
  std::optional<std::int64_t> fits_at(bool recipients, std::int64_t now_us, std::int64_t per_us, std::uint64_t max,
                                      std::uint64_t need) const;
  std::size_t size() const { return ev_.size(); }
  std::int64_t last_time() const { return ev_.empty() ? INT64_MIN : ev_.back().t; }

 private:
  struct Event {
    std::int64_t t;
    std::uint64_t rcpts;
    std::uint64_t cum_rcpts;  // recipients of all events up to and including this one, since base
  };
  std::size_t first_in_window(std::int64_t now_us, std::int64_t per_us) const;
  std::uint64_t cum_before(std::size_t i) const { return i == 0 ? base_ : ev_[i - 1].cum_rcpts; }
  std::deque<Event> ev_;
  std::uint64_t base_ = 0;  // cum_rcpts of the last expired event
};

// Why a recipient or message does not fit.
struct QuotaRefusal {
  bool recipients = false;                // which kind of window
  QuotaWindow window;
  std::optional<std::int64_t> retry_at_us;  // when it would fit again
  // Not over the quota: the shared ledger could not be asked ([quota] on_backend_error =
  // "tempfail"); answered 451 4.3.0 whatever the org's quota action.
  bool unavailable = false;
};

// The SMTP reply for a refusal: 451 4.7.1 (defer) or 550 5.7.1 (reject), e.g.
// "Sending quota of acme exceeded (1000 messages per hour); retry after 14:32 UTC";
// 451 4.3.0 when the ledger was unavailable.
Reply quota_reply(std::string_view org, const QuotaRefusal& r, QuotaAction action, std::int64_t now_us);
// 452 4.5.3 for RCPTs past max_recipients_per_message.
Reply too_many_recipients_reply(std::uint32_t max);

struct WindowUsage {
  bool recipients = false;
  QuotaWindow window;
  std::uint64_t used = 0;
};

class QuotaLedger {
 public:
  // One more recipient for a transaction in flight: reserved when it fits every
  // recipient window (counting what is charged and what others have reserved).
  std::optional<QuotaRefusal> reserve_recipient(const std::string& org, const QuotaPolicy& p, std::int64_t now_us);
  void release_recipients(const std::string& org, std::uint64_t n);
  // End of message: charge one message with `rcpts` recipients when it fits every
  // message window, and in the same step give back the caller's `release` reserved
  // recipients (the charged ones now count as charged). On refusal nothing changes (the
  // caller still holds its reservations). Sets the charge time.
  std::optional<QuotaRefusal> charge_message(const std::string& org, const QuotaPolicy& p, std::uint64_t rcpts,
                                             std::int64_t now_us, std::int64_t* charged_at_us,
                                             std::uint64_t release = 0);
  // The charged message was not accepted after all (a later step failed).
  void uncharge(const std::string& org, std::int64_t charged_at_us, std::uint64_t rcpts);

  // Rebuilding from the store, and `cllavioctl quota reset`: the store's epoch for the
  // org changes on reset; a ledger that sees another epoch reloads the org.
  std::uint64_t epoch(const std::string& org) const;
  void reload(const std::string& org, std::uint64_t epoch,
              const std::vector<std::pair<std::int64_t, std::uint64_t>>& events);

  std::vector<WindowUsage> usage(const std::string& org, const QuotaPolicy& p, std::int64_t now_us) const;
  std::uint64_t reserved(const std::string& org) const;

 private:
  struct OrgState {
    SlidingLog log;
    std::uint64_t reserved = 0;
    std::uint64_t epoch = 0;
  };
  OrgState& state(const std::string& org);  // with mu_ held
  mutable std::mutex mu_;
  std::map<std::string, OrgState, std::less<>> orgs_;
};

}  // namespace cllavio::policy
