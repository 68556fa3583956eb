// The policy part of an organization file: [[stream]] tables, [quota], and the
// consent model of [tracking]; their schema keys and the checks across them.
//
// Contract: stream_keys()/quota_keys() are spliced into the org schema (so the
// reference documents them); build_org_policy() turns what a file declared into the
// immutable policy::OrgPolicy (streams + quota) the milter uses, reporting every
// inconsistency (suppression or List-Unsubscribe on a personal stream, tracking
// without a domain, duplicate names) with the file and line it comes from.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "conf/diagnostic.hpp"
#include "conf/schema.hpp"
#include "policy/org_policy.hpp"

namespace cllavio::conf {

struct StreamFile {
  std::string name;
  std::vector<std::string> senders;
  policy::StreamKind kind = policy::StreamKind::personal;
  std::optional<bool> opens, clicks;       // unset: the org's [tracking] switches
  std::string consent;                     // "": the org's tracking.consent; "required" | "implied"
  std::optional<bool> suppress_unsubscribed;  // unset: true for campaign streams
  bool list_unsubscribe = false;
};

struct QuotaWindowFile {
  std::int64_t per_s = 0;
  std::int64_t max = 0;
};

struct OrgPolicyFile {
  policy::ConsentMode consent = policy::ConsentMode::required;  // tracking.consent
  std::vector<StreamFile> streams;
  std::vector<QuotaWindowFile> quota_messages, quota_recipients;
  std::int64_t max_recipients_per_message = 0;
  policy::QuotaAction quota_action = policy::QuotaAction::defer;
};

// The keys of these settings (OrgFile embeds an OrgPolicyFile and lifts them, schema.hpp).
const std::vector<Key<OrgPolicyFile>>& org_policy_keys();

struct OrgTrackingSwitches {
  bool opens = false, clicks = false;
  bool has_domain = false, has_key = false;
};

// Validates and builds; problems go to diags with file and the lines in `lines`.
policy::OrgPolicy build_org_policy(const OrgPolicyFile& f, const OrgTrackingSwitches& t, const std::string& file,
                           const LineMap& lines, Diagnostics& diags);

}  // namespace cllavio::conf
