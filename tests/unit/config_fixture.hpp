// Configurations the session and planner tests start from, built as the loader builds
// them (no files): org acme (SASL @acme.example), tracking on with consent implied, and
// with policy_config() a campaign stream for news@acme.example (consent required,
// suppression, List-Unsubscribe) under an optional quota.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "conf/config.hpp"

namespace session_test {

using namespace cllavio;

inline std::shared_ptr<const conf::Config> tracking_config(std::size_t max_bytes = 1 << 20) {
  auto cfg = std::make_shared<conf::Config>();
  policy::Org acme;
  acme.id = "acme";
  acme.sasl_users = {"@acme.example"};
  cfg->orgs = policy::OrgIndex({acme});
  tracking::TrackingPolicy t;
  t.opens = t.clicks = true;
  t.domain = "t.acme.example";
  cfg->tracking.emplace("acme", t);
  policy::OrgPolicy p;  // as the loader builds it: the default stream takes [tracking]'s switches
  p.streams.fallback.name = "default";
  p.streams.fallback.opens = p.streams.fallback.clicks = true;
  p.streams.fallback.consent = policy::ConsentMode::implied;
  cfg->policies.emplace("acme", p);
  cfg->tracking_limits.max_rewrite_bytes = max_bytes;
  cfg->tokens = std::make_shared<tracking::TokenCodec>(
      std::vector<tracking::TrackingKey>{{"k1", std::string(32, 'k')}});
  return cfg;
}

inline std::shared_ptr<const conf::Config> policy_config(policy::QuotaPolicy quota = {}) {
  auto cfg = std::const_pointer_cast<conf::Config>(tracking_config());
  policy::OrgPolicy p;
  p.streams.fallback.name = "default";
  p.streams.fallback.opens = p.streams.fallback.clicks = true;
  p.streams.fallback.consent = policy::ConsentMode::implied;
  policy::Stream campaigns;
  campaigns.name = "campaigns";
  campaigns.senders = {"news@acme.example"};
  campaigns.kind = policy::StreamKind::campaign;
  campaigns.opens = campaigns.clicks = true;
  campaigns.consent = policy::ConsentMode::required;
  campaigns.suppress_unsubscribed = true;
  campaigns.list_unsubscribe = true;
  p.streams.streams = {campaigns};
  p.quota = std::move(quota);
  cfg->policies["acme"] = p;
  cfg->any_rcpt_checks = cfg->any_modifications = true;
  return cfg;
}

inline std::string html_body() { return "<html><body><a href=\"https://example.com/a\">A</a></body></html>\r\n"; }

}  // namespace session_test
