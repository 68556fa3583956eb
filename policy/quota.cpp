#include "policy/quota.hpp"

#include <algorithm>
#include <ctime>

namespace cllavio::policy {

namespace {

constexpr std::int64_t kUs = 1000000;
constexpr std::int64_t kMaxWindowS = 31 * 86400;

std::string utc_minute(std::int64_t at_us, std::int64_t now_us) {
  std::time_t at = static_cast<std::time_t>((at_us + 60 * kUs - 1) / kUs / 60 * 60);  // rounded up to the minute
  std::time_t now = static_cast<std::time_t>(now_us / kUs);
  std::tm a{}, n{};
  gmtime_r(&at, &a);
  gmtime_r(&now, &n);
  char buf[40];
  if (a.tm_year == n.tm_year && a.tm_yday == n.tm_yday)
    std::strftime(buf, sizeof buf, "%H:%M UTC", &a);
  else
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &a);
  return buf;
}

}  // namespace

std::int64_t QuotaPolicy::longest_s() const {
  std::int64_t l = 0;
  for (const auto& w : messages) l = std::max(l, w.per_s);
  for (const auto& w : recipients) l = std::max(l, w.per_s);
  return l;
}

std::optional<std::int64_t> parse_duration_s(std::string_view s) {
  if (s.size() < 2 || s.size() > 9) return std::nullopt;
  std::int64_t unit = 0;
  switch (s.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return std::nullopt;
  }
  std::int64_t n = 0;
  for (char c : s.substr(0, s.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n * unit;
}

std::optional<std::int64_t> parse_window(std::string_view s) {
  auto v = parse_duration_s(s);
  if (!v || *v < 1 || *v > kMaxWindowS) return std::nullopt;
  return v;
}

std::string describe_window(std::int64_t per_s) {
  auto unit = [](std::int64_t n, const char* one) {
    return n == 1 ? std::string(one) : std::to_string(n) + " " + one + "s";
  };
  if (per_s % 86400 == 0) return unit(per_s / 86400, "day");
  if (per_s % 3600 == 0) return unit(per_s / 3600, "hour");
  if (per_s % 60 == 0) return unit(per_s / 60, "minute");
  return unit(per_s, "second");
}

// ---- SlidingLog -----------------------------------------------------------------

std::int64_t SlidingLog::add(std::int64_t t_us, std::uint64_t rcpts) {
  if (!ev_.empty() && t_us < ev_.back().t) t_us = ev_.back().t;  // clock went backwards
  ev_.push_back({t_us, rcpts, cum_before(ev_.size()) + rcpts});
  return t_us;
}

bool SlidingLog::remove(std::int64_t t_us, std::uint64_t rcpts) {
  for (std::size_t i = ev_.size(); i-- > 0;) {
    if (ev_[i].t < t_us) break;
    if (ev_[i].t != t_us || ev_[i].rcpts != rcpts) continue;
    for (std::size_t k = i + 1; k < ev_.size(); ++k) ev_[k].cum_rcpts -= rcpts;
    ev_.erase(ev_.begin() + static_cast<std::ptrdiff_t>(i));
    return true;
  }
  return false;
}

void SlidingLog::expire(std::int64_t now_us, std::int64_t keep_us) {
  while (!ev_.empty() && ev_.front().t <= now_us - keep_us) {
    base_ = ev_.front().cum_rcpts;
    ev_.pop_front();
  }
}

std::size_t SlidingLog::first_in_window(std::int64_t now_us, std::int64_t per_us) const {
  // Window (now - per, now]; events after now (a clock that went back) count too.
  auto it = std::upper_bound(ev_.begin(), ev_.end(), now_us - per_us,
                             [](std::int64_t limit, const Event& e) { return limit < e.t; });
  return static_cast<std::size_t>(it - ev_.begin());
}

std::uint64_t SlidingLog::messages(std::int64_t now_us, std::int64_t per_us) const {
  return ev_.size() - first_in_window(now_us, per_us);
}

std::uint64_t SlidingLog::recipients(std::int64_t now_us, std::int64_t per_us) const {
  return cum_before(ev_.size()) - cum_before(first_in_window(now_us, per_us));
}

std::optional<std::int64_t> SlidingLog::fits_at(bool rcpts, std::int64_t now_us, std::int64_t per_us,
                                                std::uint64_t max, std::uint64_t need) const {
  if (need > max) return std::nullopt;
  std::size_t i0 = first_in_window(now_us, per_us);
  std::uint64_t used = rcpts ? recipients(now_us, per_us) : ev_.size() - i0;
  if (used + need <= max) return now_us;
  std::uint64_t drop = used + need - max;  // must leave the window first
  std::size_t j;
  if (rcpts) {
    std::uint64_t target = cum_before(i0) + drop;
    auto it = std::lower_bound(ev_.begin() + static_cast<std::ptrdiff_t>(i0), ev_.end(), target,
                               [](const Event& e, std::uint64_t v) { return e.cum_rcpts < v; });
    j = static_cast<std::size_t>(it - ev_.begin());
  } else {
    j = i0 + drop - 1;
  }
  if (j >= ev_.size()) return std::nullopt;  // reservations, not charges, fill the window
  return std::max(now_us, ev_[j].t + per_us);
}

// ---- replies ----------------------------------------------------------------------

Reply quota_reply(std::string_view org, const QuotaRefusal& r, QuotaAction action, std::int64_t now_us) {
  if (r.unavailable)
    return Reply{"451", "4.3.0", "Sending quota of " + std::string(org) + " cannot be checked now; try again later"};
  std::string text = "Sending quota of " + std::string(org) + " exceeded (" + std::to_string(r.window.max) +
                     (r.recipients ? " recipient" : " message") +
                     (r.window.max == 1 ? "" : "s") + " per " + describe_window(r.window.per_s) + ")";
  if (action == QuotaAction::reject) return Reply{"550", "5.7.1", text};
  if (r.retry_at_us) text += "; retry after " + utc_minute(*r.retry_at_us, now_us);
  return Reply{"451", "4.7.1", text};
}

Reply too_many_recipients_reply(std::uint32_t max) {
  return Reply{"452", "4.5.3",
               "Too many recipients (at most " + std::to_string(max) + " per message); send the rest in another message"};
}

// ---- QuotaLedger ------------------------------------------------------------------

QuotaLedger::OrgState& QuotaLedger::state(const std::string& org) {
  auto it = orgs_.find(org);
  if (it == orgs_.end()) it = orgs_.emplace(org, OrgState{}).first;
  return it->second;
}

std::optional<QuotaRefusal> QuotaLedger::reserve_recipient(const std::string& org, const QuotaPolicy& p,
                                                           std::int64_t now_us) {
  std::lock_guard lock(mu_);
  OrgState& st = state(org);
  st.log.expire(now_us, p.longest_s() * kUs);
  for (const QuotaWindow& w : p.recipients) {
    std::uint64_t used = st.log.recipients(now_us, w.per_s * kUs) + st.reserved;
    if (used + 1 > w.max)
      return QuotaRefusal{true, w, st.log.fits_at(true, now_us, w.per_s * kUs, w.max, st.reserved + 1)};
  }
  ++st.reserved;
  return std::nullopt;
}

void QuotaLedger::release_recipients(const std::string& org, std::uint64_t n) {
  std::lock_guard lock(mu_);
  OrgState& st = state(org);
  st.reserved -= std::min(st.reserved, n);
}

std::optional<QuotaRefusal> QuotaLedger::charge_message(const std::string& org, const QuotaPolicy& p,
                                                        std::uint64_t rcpts, std::int64_t now_us,
                                                        std::int64_t* charged_at_us, std::uint64_t release) {
  std::lock_guard lock(mu_);
  OrgState& st = state(org);
  st.log.expire(now_us, p.longest_s() * kUs);
  for (const QuotaWindow& w : p.messages)
    if (st.log.messages(now_us, w.per_s * kUs) + 1 > w.max)
      return QuotaRefusal{false, w, st.log.fits_at(false, now_us, w.per_s * kUs, w.max, 1)};
  std::int64_t t = st.log.add(now_us, rcpts);
  if (charged_at_us) *charged_at_us = t;
  st.reserved -= std::min(st.reserved, release);
  return std::nullopt;
}

void QuotaLedger::uncharge(const std::string& org, std::int64_t charged_at_us, std::uint64_t rcpts) {
  std::lock_guard lock(mu_);
  state(org).log.remove(charged_at_us, rcpts);
}

std::uint64_t QuotaLedger::epoch(const std::string& org) const {
  std::lock_guard lock(mu_);
  auto it = orgs_.find(org);
  return it == orgs_.end() ? 0 : it->second.epoch;
}

void QuotaLedger::reload(const std::string& org, std::uint64_t epoch,
                         const std::vector<std::pair<std::int64_t, std::uint64_t>>& events) {
  SlidingLog log;
  for (const auto& [t, n] : events) log.add(t, n);
  std::lock_guard lock(mu_);
  OrgState& st = state(org);
  st.log = std::move(log);
  st.epoch = epoch;  // reservations in flight stay
}

std::vector<WindowUsage> QuotaLedger::usage(const std::string& org, const QuotaPolicy& p, std::int64_t now_us) const {
  std::lock_guard lock(mu_);
  std::vector<WindowUsage> out;
  auto it = orgs_.find(org);
  for (const QuotaWindow& w : p.messages)
    out.push_back({false, w, it == orgs_.end() ? 0 : it->second.log.messages(now_us, w.per_s * kUs)});
  for (const QuotaWindow& w : p.recipients)
    out.push_back({true, w, it == orgs_.end() ? 0 : it->second.log.recipients(now_us, w.per_s * kUs)});
  return out;
}

std::uint64_t QuotaLedger::reserved(const std::string& org) const {
  std::lock_guard lock(mu_);
  auto it = orgs_.find(org);
  return it == orgs_.end() ? 0 : it->second.reserved;
}

}  // namespace cllavio::policy
