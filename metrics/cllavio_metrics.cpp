#include "metrics/cllavio_metrics.hpp"

namespace cllavio::metrics {

const std::vector<std::string> kActions = {"accept", "reject", "tempfail"};
const std::vector<std::string> kTrackingStatuses = {
    "tracked",           "unchanged",         "skipped:tracking_off", "skipped:opted_out",
    "skipped:dkim_signed", "skipped:signed",  "skipped:encrypted",    "skipped:smime",
    "skipped:pgp",       "skipped:too_large", "skipped:mime_limits",  "skipped:malformed",
    "skipped:charset",   "skipped:no_key",    "skipped:self_check",   "skipped:internal_error",
    "skipped:no_consent"};
const std::vector<std::string> kRefusalReasons = {"unknown_org", "recipient_limit", "suppression", "quota"};
const std::vector<std::string> kApiStatuses = {"1xx", "2xx", "3xx", "4xx", "5xx", "error"};
const std::vector<std::string> kDeliveryStatuses = {"delivered", "deferred", "bounced", "expired"};
const std::vector<std::string> kSteps = {"connect", "mail", "rcpt", "eom"};
const std::vector<std::string> kQuotaOps = {"reserve", "release", "charge", "uncharge", "replay", "ping"};
const std::vector<std::string> kQuotaModes = {"local", "tempfail", "accept"};

namespace {

// Milter steps take microseconds to a few milliseconds (eom with a rewrite more); the
// tail up to the MTA's milter timeouts.
const std::vector<double> kStepBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                          0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 5, 10};

}  // namespace

Metrics::Metrics() {
  orgs_ = &reg_.label("org", {"unknown"}, kMaxOrgs);
  windows_ = &reg_.label("window", {}, kMaxWindows);
  const LabelSet& action = reg_.label("action", kActions, kActions.size() + 2);
  const LabelSet& status = reg_.label("status", kTrackingStatuses, kTrackingStatuses.size() + 2);
  const LabelSet& reason = reg_.label("reason", kRefusalReasons, kRefusalReasons.size() + 2);
  const LabelSet& api = reg_.label("status", kApiStatuses, kApiStatuses.size() + 2);
  const LabelSet& delivery = reg_.label("status", kDeliveryStatuses, kDeliveryStatuses.size() + 2);
  const LabelSet& step = reg_.label("step", kSteps, kSteps.size() + 2);

  messages_ = &reg_.counter("cllavio_messages_total",
                            "Messages by the milter's final answer (MAIL FROM refusals and end of message).",
                            {orgs_, &action});
  tracking_ = &reg_.counter("cllavio_tracking_total",
                            "Tracking outcomes of messages of tracking orgs (skipped:REASON as in the log).",
                            {orgs_, &status});
  refusals_ = &reg_.counter("cllavio_policy_refusals_total",
                            "Refusals by policy: unknown senders (MAIL FROM), recipients (RCPT TO), messages "
                            "(end of message).",
                            {orgs_, &reason});
  quota_ = &reg_.gauge("cllavio_quota_used",
                       "Quota use (messages or recipients charged in the sliding window) per org and window, as "
                       "of the org's last charge or quota refusal.",
                       {orgs_, windows_});
  api_ = &reg_.counter("cllavio_api_requests_total",
                       "Requests to the Cllavio API by HTTP status class; error: no HTTP answer.", {&api});
  delivery_ = &reg_.counter("cllavio_delivery_total", "Delivery outcomes per recipient from Postfix's log.",
                            {orgs_, &delivery});
  steps_ = &reg_.histogram("cllavio_milter_step_duration_seconds", "Time spent in a milter callback.",
                           kStepBuckets, {&step});
  const LabelSet& op = reg_.label("op", kQuotaOps, kQuotaOps.size() + 2);
  const LabelSet& mode = reg_.label("mode", kQuotaModes, kQuotaModes.size() + 2);
  backend_seconds_ = &reg_.histogram("cllavio_quota_backend_seconds",
                                     "Time of each call to the shared quota ledger (Redis), answered or not.",
                                     kStepBuckets, {&op});
  backend_errors_ = &reg_.counter("cllavio_quota_backend_errors_total",
                                  "Calls to the shared quota ledger that failed (unreachable, timeout, error).", {&op});
  backend_up_ = &reg_.gauge("cllavio_quota_backend_up",
                            "1 while the shared quota ledger is used, 0 while its circuit breaker is open.");
  backend_fallbacks_ = &reg_.counter("cllavio_quota_backend_fallbacks_total",
                                     "Quota questions answered by [quota] on_backend_error instead of the shared ledger.",
                                     {&mode});
  backend_replayed_ = &reg_.counter("cllavio_quota_backend_replayed_total",
                                    "Charges made while the shared ledger was unreachable, written to it afterwards.");
  rewrite_ = &reg_.histogram("cllavio_rewrite_duration_seconds", "Time spent in the tracking rewrite of one message.",
                             kStepBuckets);
}

void Metrics::refresh_labels(const std::vector<std::string>& orgs, const std::vector<std::string>& windows) {
  orgs_->refresh(orgs);
  windows_->refresh(windows);
}

void Metrics::message(std::string_view org, std::string_view action) {
  messages_->inc(messages_->cell(org_of(org), action));
}

void Metrics::tracking(std::string_view org, std::string_view status, std::string_view skipped) {
  if (status != "skipped") {
    tracking_->inc(tracking_->cell(org_of(org), status));
    return;
  }
  std::string s = "skipped:";
  s += skipped.substr(0, skipped.find(':'));  // "malformed: bad base64 in part 2" -> malformed
  tracking_->inc(tracking_->cell(org_of(org), s));
}

void Metrics::refusal(std::string_view org, std::string_view reason) {
  refusals_->inc(refusals_->cell(org_of(org), reason));
}

void Metrics::quota_used(std::string_view org, std::string_view window, double used) {
  quota_->set(quota_->cell(org_of(org), window), used);
}

void Metrics::api_request(long http_status) {
  static const char* kClass[] = {"error", "1xx", "2xx", "3xx", "4xx", "5xx"};
  long c = http_status / 100;
  api_->inc(api_->cell(c >= 1 && c <= 5 ? kClass[c] : "error"));
}

void Metrics::delivery(std::string_view org, std::string_view status) {
  delivery_->inc(delivery_->cell(org_of(org), status));
}

void Metrics::step(std::string_view step, double seconds) { steps_->observe(steps_->cell(step), seconds); }

void Metrics::rewrite(double seconds) { rewrite_->observe(0, seconds); }

void Metrics::quota_backend_call(std::string_view op, double seconds, bool ok) {
  std::size_t c = backend_seconds_->cell(op);
  backend_seconds_->observe(c, seconds);
  if (!ok) backend_errors_->inc(backend_errors_->cell(op));
}

void Metrics::quota_backend_up(bool up) { backend_up_->set(0, up ? 1 : 0); }

void Metrics::quota_backend_fallback(std::string_view mode) {
  backend_fallbacks_->inc(backend_fallbacks_->cell(mode));
}

void Metrics::quota_backend_replayed(std::uint64_t n) { backend_replayed_->inc(0, n); }

std::string Metrics::window_label(bool recipients, std::int64_t per_s) {
  std::string w = recipients ? "recipients:" : "messages:";
  if (per_s > 0 && per_s % 86400 == 0) return w + std::to_string(per_s / 86400) + "d";
  if (per_s > 0 && per_s % 3600 == 0) return w + std::to_string(per_s / 3600) + "h";
  if (per_s > 0 && per_s % 60 == 0) return w + std::to_string(per_s / 60) + "m";
  return w + std::to_string(per_s) + "s";
}

}  // namespace cllavio::metrics
