// End of message as a plan, applied once.
//
// plan_end_of_message() decides everything that happens to a message when its data is
// complete: its stream (an X-Cllavio-Stream header may pick it), unsubscribed recipients
// removed when a header picked a suppressing stream after RCPT TO, the message quota
// charged, List-Unsubscribe added, consent for tracking, and the tracking rewrite. It
// returns an EomPlan: the verdict, the recipients to delete, the header edits in order,
// the new body (or none), the record as it will be written, and the quota charge.
//
// The planner is pure: no libmilter, no LMDB, no clock of its own. Consent, the
// transaction's quota reservations, the message id and the time come in as lookups.
// apply() hands the plan's effects to the MTA through MilterActions (the milter), and
// apply_to_message() applies them to a message file (`cllavioctl rewrite`), so a
// preview is exactly what the milter sends.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"
#include "core/actions.hpp"
#include "core/message.hpp"
#include "core/quota.hpp"
#include "core/verdict.hpp"
#include "store/message_record.hpp"
#include "tracking/rewrite.hpp"

namespace cllavio::core {

struct EomLookups {
  ConsentLookup consent;                      // empty: nothing recorded for anyone
  QuotaHold* quota = nullptr;                 // the transaction's reservations; null: quotas not enforced
  std::function<std::uint64_t()> message_id;  // an id for the record when tokens need one (unless rec.id is set)
  std::int64_t now_us = 0;
  std::function<void(double seconds)> rewrite_seconds = nullptr;  // how long the tracking rewrite took (metrics); empty: not timed
  tracking::LinkTableLookup old_links = nullptr;  // earlier messages' link tables (quoted compact tokens); empty: none
};

struct EomPlan {
  Verdict verdict;
  store::MessageRecord record;                     // what will be recorded (action is set by the caller)
  std::vector<std::string> delete_recipients;      // as the MTA gave them at RCPT TO
  std::vector<tracking::HeaderEdit> header_edits;  // in this order
  std::optional<std::string> body;                 // the new body; none: unchanged
  QuotaCharge charge;                              // undone unless committed
  std::optional<tracking::RewriteResult> rewrite;  // what tracking did (its body moved to `body`, its
                                                   // link table to record.tracking.links)
  std::string error;                               // a step that failed and was left out (for the log)

  bool changes_message() const { return !delete_recipients.empty() || !header_edits.empty() || body.has_value(); }
};

EomPlan plan_end_of_message(const conf::Config& cfg, MessageState&& m, const EomLookups& lookups);

// Every effect of the plan, in order; false as soon as the MTA refuses one (the message
// may then be half changed and must not be delivered).
bool apply(const EomPlan& plan, MilterActions& actions);

// The header block and body as the MTA writes them after apply() (header edits as
// tracking::apply_header_edits does them).
std::string apply_to_message(const EomPlan& plan, std::string_view header, std::string_view body);

}  // namespace cllavio::core
