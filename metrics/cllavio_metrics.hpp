// The daemon's metrics (docs/metrics.md): every cllavio_* family, with the label values
// each may take, over a Registry (metrics/registry.hpp).
//
// Contract: built once at daemon start (before any thread uses it), then shared by
// pointer; a null pointer anywhere means "no metrics" (tests, cllavioctl). Every
// recording method is lock-free and never throws (allocation aside: label lookups make
// a std::string of the value). Org ids become labels only for configured orgs
// (refresh_orgs(), at start and on SIGHUP; counts of orgs that went away stay); an
// unidentified sender is org="unknown", anything else org="other".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/registry.hpp"

namespace cllavio::metrics {

// Label values (also what docs/metrics.md lists).
extern const std::vector<std::string> kActions;          // accept reject tempfail
extern const std::vector<std::string> kTrackingStatuses; // tracked unchanged skipped:REASON...
extern const std::vector<std::string> kRefusalReasons;   // unknown_org recipient_limit suppression quota
extern const std::vector<std::string> kApiStatuses;      // 1xx..5xx error
extern const std::vector<std::string> kDeliveryStatuses; // delivered deferred bounced expired
extern const std::vector<std::string> kSteps;            // connect mail rcpt eom
extern const std::vector<std::string> kQuotaOps;         // reserve release charge uncharge replay ping
extern const std::vector<std::string> kQuotaModes;       // local tempfail accept

class Metrics {
 public:
  static constexpr std::size_t kMaxOrgs = 256;     // org label values (other, overflow included)
  static constexpr std::size_t kMaxWindows = 64;   // quota window label values

  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The configured org ids and quota windows ("messages:1h", see window_label()).
  void refresh_labels(const std::vector<std::string>& orgs, const std::vector<std::string>& windows);

  void message(std::string_view org, std::string_view action);
  // store::TrackingOutcome's status and skip reason ("dkim_signed", "malformed: ..." -> "malformed").
  void tracking(std::string_view org, std::string_view status, std::string_view skipped);
  void refusal(std::string_view org, std::string_view reason);
  void quota_used(std::string_view org, std::string_view window, double used);
  // An HTTP status (0: no HTTP answer, counted as "error").
  void api_request(long http_status);
  void delivery(std::string_view org, std::string_view status);
  void step(std::string_view step, double seconds);
  void rewrite(double seconds);
  // The shared quota ledger ([quota] backend = "redis"): each call's time and outcome,
  // the breaker's state, answers given by on_backend_error, charges written back.
  void quota_backend_call(std::string_view op, double seconds, bool ok);
  void quota_backend_up(bool up);
  void quota_backend_fallback(std::string_view mode);
  void quota_backend_replayed(std::uint64_t n);

  Registry& registry() { return reg_; }
  std::string render() const { return reg_.render(); }

  // "messages:1h", "recipients:1d", "messages:90s": the kind and the window, in the
  // largest unit that divides it.
  static std::string window_label(bool recipients, std::int64_t per_s);

 private:
  static std::string_view org_of(std::string_view org) { return org.empty() ? std::string_view("unknown") : org; }
  Registry reg_;
  LabelSet* orgs_;
  LabelSet* windows_;
  Family* messages_;
  Family* tracking_;
  Family* refusals_;
  Family* quota_;
  Family* api_;
  Family* delivery_;
  Family* steps_;
  Family* rewrite_;
  Family* backend_seconds_;
  Family* backend_errors_;
  Family* backend_up_;
  Family* backend_fallbacks_;
  Family* backend_replayed_;
};

}  // namespace cllavio::metrics
