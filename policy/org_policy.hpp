// Everything the milter decides per organization beyond identification: its streams
// (tracking, consent model, suppression, List-Unsubscribe) and its sending quota.
// Built by the config loader (conf/org_policy_schema.hpp) and immutable afterwards.
#pragma once

#include <optional>

#include "policy/quota.hpp"
#include "policy/retention.hpp"
#include "policy/stream.hpp"

namespace cllavio::policy {

struct OrgPolicy {
  StreamSet streams;
  QuotaPolicy quota;
  std::optional<bool> suppress_hard_bounces;  // [delivery]; unset: the main file's
  RetentionOverride retention;                // [retention]; unset keys: the main file's

  bool any_tracking() const {  // some stream tracks opens or clicks
    if (streams.fallback.tracks()) return true;
    for (const auto& s : streams.streams)
      if (s.tracks()) return true;
    return false;
  }
  bool any_list_unsubscribe() const {
    for (const auto& s : streams.streams)
      if (s.list_unsubscribe) return true;
    return false;
  }
  bool any_suppression() const {
    for (const auto& s : streams.streams)
      if (s.suppresses()) return true;
    return false;
  }
  // Something to decide at RCPT TO: quota, a recipient limit or suppression.
  bool needs_rcpt_checks() const { return !quota.empty() || any_suppression(); }
  // Something that may edit the message: tracking, List-Unsubscribe, or streams (the
  // X-Cllavio-Stream header is removed) or suppression after a header selected a stream.
  bool may_modify() const { return any_tracking() || any_list_unsubscribe() || !streams.streams.empty(); }
};

}  // namespace cllavio::policy
