// The policy part of an organization file: [[stream]] tables, [quota], and the
// consent model of [tracking]; their schema keys and the rules across them.
//
// Contract: org_policy_keys() and org_policy_rules() are spliced into the org schema
// (so the reference documents them, conf/schemas.cpp); the rules report every
// inconsistency (suppression or List-Unsubscribe on a personal stream, tracking
// without a domain or key, duplicate names, two windows of one length) with the file
// and line it comes from. build_org_policy() turns a file that passed them into the
// immutable policy::OrgPolicy (streams + quota) the milter uses.
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
  std::optional<policy::ConsentMode> consent;  // unset: the org's tracking.consent
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
  std::optional<bool> suppress_hard_bounces;  // delivery.suppress_hard_bounces
  policy::RetentionOverride retention;        // [retention]
};

// The keys of these settings (OrgFile embeds an OrgPolicyFile and lifts them, schema.hpp).
const std::vector<Key<OrgPolicyFile>>& org_policy_keys();

struct OrgFile;  // conf/schemas.hpp: the whole organization file
// The rules across the stream, quota and tracking keys of an organization file.
const std::vector<Rule<OrgFile>>& org_policy_rules();

// The org's streams and quota, from a file that passed the rules.
policy::OrgPolicy build_org_policy(const OrgFile& f);

}  // namespace cllavio::conf
