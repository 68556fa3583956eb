// SharedQuota (quota/shared_quota.hpp): the shared ledger behind a circuit breaker, the
// fallback modes and the replay of what was charged while it could not be reached. The
// state and its locking rules: quota/shared_quota_impl.hpp.
#include "quota/shared_quota.hpp"

#include <algorithm>
#include <chrono>
#include <exception>

#include "quota/shared_quota_impl.hpp"

namespace cllavio::quota {

std::string_view to_string(OnBackendError e) {
  switch (e) {
    case OnBackendError::local: return "local";
    case OnBackendError::tempfail: return "tempfail";
    case OnBackendError::accept: return "accept";
  }
  return "local";
}

namespace {

using Clock = std::chrono::steady_clock;

// Each limit divided by the number of hosts, rounded down. A limit that becomes 0 refuses
// everything while the fallback lasts (more hosts than the limit allows for).
policy::QuotaPolicy divided(const policy::QuotaPolicy& p, unsigned hosts) {
  policy::QuotaPolicy d = p;
  if (hosts <= 1) return d;
  for (auto& w : d.messages) w.max /= hosts;
  for (auto& w : d.recipients) w.max /= hosts;
  return d;
}

// on_backend_error = tempfail: not over the quota, but it cannot be checked. The window is
// the first of the kind asked about (any window when the policy has none of that kind).
policy::QuotaRefusal unavailable(const policy::QuotaPolicy& p, bool recipients) {
  policy::QuotaRefusal r;
  r.unavailable = true;
  const auto& first = recipients ? p.recipients : p.messages;
  const auto& other = recipients ? p.messages : p.recipients;
  if (!first.empty()) {
    r.recipients = recipients;
    r.window = first.front();
  } else if (!other.empty()) {
    r.recipients = !recipients;
    r.window = other.front();
  }
  return r;
}

template <class Fn, class... A>
void notify(const Fn& fn, A&&... a) noexcept {
  if (!fn) return;
  try {
    fn(std::forward<A>(a)...);
  } catch (...) {  // an observer must not break a quota decision
  }
}

}  // namespace

// One ledger call, timed for the observer; the error's text when it failed. Any
// exception is a failure (LedgerError or not).
template <class F>
std::optional<std::string> SharedQuota::Impl::call(std::string_view op, F&& f) {
  auto t0 = Clock::now();
  std::optional<std::string> err;
  try {
    f();
  } catch (const LedgerError& e) {
    err = e.what();
  } catch (const std::exception& e) {
    err = std::string("unexpected error: ") + e.what();
  } catch (...) {
    err = "unexpected error";
  }
  notify(obs.call, op, std::chrono::duration<double>(Clock::now() - t0).count(), !err);
  return err;
}

void SharedQuota::Impl::succeeded() {
  std::lock_guard lock(mu);
  failures = 0;
}

// A failed ledger call: `breaker_failures` in a row open the breaker (once, loudly),
// with a new local fallback ledger rebuilt from the store.
void SharedQuota::Impl::failed(const std::string& error) {
  SharedQuotaSettings s;
  {
    std::lock_guard lock(mu);
    ++failures;
    if (open || failures < std::max(1, settings.breaker_failures)) return;
    open = true;
    opened_at = Clock::now();
    replayed_since_open = 0;
    local = std::make_shared<core::LocalQuota>(db);
    s = settings;
  }
  cv.notify_all();
  std::string what;
  switch (s.on_error) {
    case OnBackendError::local:
      what = "each host enforces 1/" + std::to_string(std::max(1u, s.hosts)) + " of every limit";
      break;
    case OnBackendError::tempfail: what = "mail under a volume quota is deferred (451 4.3.0)"; break;
    case OnBackendError::accept: what = "quotas are not enforced"; break;
  }
  log_line(conf::LogLevel::warning, "quota backend unreachable: " + error +
                                        "; on_backend_error=" + std::string(to_string(s.on_error)) + ": " + what);
  notify(obs.state, false);
}

void SharedQuota::Impl::remember_usage(const std::string& org, const std::vector<policy::WindowUsage>& usage) {
  std::lock_guard lock(mu);
  auto& cached = last_usage[org];
  for (const auto& u : usage) {
    auto it = std::find_if(cached.begin(), cached.end(), [&](const policy::WindowUsage& c) {
      return c.recipients == u.recipients && c.window.per_s == u.window.per_s;
    });
    if (it == cached.end()) cached.push_back(u);
    else *it = u;
  }
}

// With mu held: appends to the replay list, dropping the oldest entry when it is full.
// Returns the warning to log (empty when none).
std::string SharedQuota::Impl::add_pending_locked(Pending e) {
  std::string warning;
  while (!pending.empty() && pending.size() >= std::max<std::size_t>(1, pending_limit)) {
    auto oldest = pending.begin();
    if (!oldest->second.uncharge) {
      auto ix = pending_charges.find(oldest->second.txn);
      if (ix != pending_charges.end() && ix->second == oldest->first) pending_charges.erase(ix);
    }
    if (dropped++ % 1000 == 0)
      warning = "quota replay list full (" + std::to_string(pending.size()) + " entries): dropped the oldest " +
                (oldest->second.uncharge ? "uncharge" : "charge") + " of " + oldest->second.org + " (" +
                std::to_string(dropped) + " dropped so far); the shared count will miss it";
    pending.erase(oldest);
  }
  std::uint64_t seq = next_seq++;
  if (!e.uncharge) pending_charges[e.txn] = seq;
  pending.emplace(seq, std::move(e));
  return warning;
}

void SharedQuota::Impl::add_pending(Pending e) {
  std::string warning;
  {
    std::lock_guard lock(mu);
    warning = add_pending_locked(std::move(e));
  }
  cv.notify_all();  // a replay to do even while the breaker is closed
  if (!warning.empty()) log_line(conf::LogLevel::warning, warning);
}

// The transaction is over here: its local reservations go back where they were made.
void SharedQuota::Impl::forget(const core::TxnId& txn, const std::shared_ptr<core::LocalQuota>& except) {
  Txn t;
  {
    std::lock_guard lock(mu);
    auto it = txns.find(txn);
    if (it == txns.end()) return;
    t = std::move(it->second);
    txns.erase(it);
  }
  if (t.local > 0 && t.local_ledger && t.local_ledger != except) t.local_ledger->release(txn, t.org, t.local);
}

std::optional<policy::QuotaRefusal> SharedQuota::Impl::fallback_reserve(const Snapshot& st, const core::TxnId& txn,
                                                                       const std::string& org,
                                                                       const policy::QuotaPolicy& p,
                                                                       std::int64_t now_us) {
  notify(obs.fallback, to_string(st.settings.on_error));
  if (st.settings.on_error == OnBackendError::accept) return std::nullopt;
  if (st.settings.on_error == OnBackendError::tempfail) return unavailable(p, true);
  std::shared_ptr<core::LocalQuota> l = st.local;
  {
    std::lock_guard lock(mu);  // a transaction's local reservations stay in one local ledger
    auto it = txns.find(txn);
    if (it != txns.end() && it->second.local > 0 && it->second.local_ledger) l = it->second.local_ledger;
  }
  auto refused = l->reserve(txn, org, divided(p, st.settings.hosts), now_us);
  if (!refused) {
    std::lock_guard lock(mu);
    Txn& t = txns[txn];
    t.org = org;
    if (t.local == 0) t.local_ledger = l;
    ++t.local;
  }
  return refused;
}

std::optional<policy::QuotaRefusal> SharedQuota::Impl::fallback_charge(const Snapshot& st, const core::TxnId& txn,
                                                                      const std::string& org,
                                                                      const policy::QuotaPolicy& p, std::uint64_t rcpts,
                                                                      std::int64_t now_us,
                                                                      std::int64_t& charged_at_us) {
  notify(obs.fallback, to_string(st.settings.on_error));
  if (st.settings.on_error == OnBackendError::tempfail) return unavailable(p, false);
  if (st.settings.on_error == OnBackendError::accept) {
    charged_at_us = now_us;
    forget(txn);
    add_pending(Pending{false, txn, org, p, now_us, rcpts, false});
    return std::nullopt;
  }
  Txn t;
  {
    std::lock_guard lock(mu);
    auto it = txns.find(txn);
    if (it != txns.end()) t = it->second;
  }
  const std::shared_ptr<core::LocalQuota>& l = st.local;
  std::uint64_t release = t.local > 0 && t.local_ledger == l ? t.local : 0;
  std::int64_t at = now_us;
  if (auto refused = l->charge(txn, org, divided(p, st.settings.hosts), rcpts, release, now_us, at))
    return refused;  // the caller still holds its reservations
  forget(txn, l);    // given back by the charge when they were in l, else released where they are
  charged_at_us = at;
  add_pending(Pending{false, txn, org, p, at, rcpts, true});
  return std::nullopt;
}

// One probe (SharedQuota::probe_once). Open: ping, then replay. Closed with entries to
// replay (a call failed before the breaker opened): replay, a failure counting as one.
bool SharedQuota::Impl::probe() {
  std::unique_lock busy(probe_mu, std::try_to_lock);
  if (!busy.owns_lock()) return snapshot().open == false;  // another probe is running
  bool was_open;
  {
    std::lock_guard lock(mu);
    if (!open && pending.empty()) return true;
    was_open = open;
  }
  if (was_open) {
    if (auto err = call("ping", [&] { ledger.ping(); })) return false;
  }
  std::uint64_t n = 0;
  std::optional<std::string> err;
  bool closed = false;
  std::uint64_t total = 0;
  double down_s = 0;
  for (;;) {
    std::uint64_t seq;
    Pending e;
    {
      std::lock_guard lock(mu);
      if (pending.empty()) {
        closed = open;
        if (open) {
          open = false;
          failures = 0;
          down_s = std::chrono::duration<double>(Clock::now() - opened_at).count();
        }
        total = replayed_since_open += n;
        break;
      }
      auto it = pending.begin();
      seq = it->first;
      it->second.replaying = true;
      e = it->second;
    }
    if (e.uncharge)
      err = call("uncharge", [&] { ledger.uncharge(e.txn, e.org); });
    else
      err = call("replay", [&] { ledger.replay(e.txn, e.org, e.policy, e.at_us, e.rcpts); });
    std::lock_guard lock(mu);
    auto it = pending.find(seq);
    if (it == pending.end()) {  // dropped from a full list meanwhile
      if (err) break;
      continue;
    }
    if (!err && !e.uncharge) ++n;
    if (err && !it->second.cancelled) {
      it->second.replaying = false;  // stays first in the list for the next probe
      break;
    }
    if (!it->second.uncharge) {
      auto ix = pending_charges.find(it->second.txn);
      if (ix != pending_charges.end() && ix->second == seq) pending_charges.erase(ix);
    }
    pending.erase(it);
    if (err) break;
  }
  if (err) {
    {
      std::lock_guard lock(mu);
      replayed_since_open += n;
    }
    if (!was_open) failed(*err);
    if (n > 0) notify(obs.replayed, n);
    return !snapshot().open;
  }
  if (closed) {
    log_line(conf::LogLevel::notice, "quota backend back after " + std::to_string(static_cast<long long>(down_s)) +
                                         "s; replayed " + std::to_string(total) + " charges");
    notify(obs.state, true);
    notify(obs.replayed, n);
  } else if (n > 0) {
    notify(obs.replayed, n);
  }
  return true;
}

void SharedQuota::Impl::run() {
  std::unique_lock lock(mu);
  while (!stop) {
    if (!open && pending.empty()) {
      cv.wait(lock, [&] { return stop || open || !pending.empty(); });
      continue;
    }
    auto retry = std::chrono::milliseconds(std::max(1, settings.breaker_retry_ms));
    cv.wait_for(lock, retry, [&] { return stop; });
    if (stop) break;
    lock.unlock();
    try {
      probe();
    } catch (...) {  // never ends the thread
    }
    lock.lock();
  }
}

// ---- SharedQuota --------------------------------------------------------------------

SharedQuota::SharedQuota(std::unique_ptr<SharedLedger> ledger, const store::Db* db, SharedQuotaSettings s,
                         const core::Logger* log, SharedQuotaObserver obs)
    : ledger_(std::move(ledger)), impl_(std::make_unique<Impl>(*ledger_, db, s, log, std::move(obs))) {}

SharedQuota::~SharedQuota() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void SharedQuota::start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->thread.joinable() || impl_->stop) return;
  impl_->thread = std::thread([this] { impl_->run(); });
}

void SharedQuota::set_settings(SharedQuotaSettings s) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->settings = s;
  }
  impl_->cv.notify_all();
}

std::optional<policy::QuotaRefusal> SharedQuota::reserve(const core::TxnId& txn, const std::string& org,
                                                         const policy::QuotaPolicy& p, std::int64_t now_us) {
  try {
    Impl& m = *impl_;
    Impl::Snapshot st = m.snapshot();
    if (!st.open) {
      std::uint64_t held = 0;
      {
        std::lock_guard lock(m.mu);
        if (auto it = m.txns.find(txn); it != m.txns.end()) held = it->second.ledger;
      }
      LedgerReply r;
      auto err = m.call("reserve", [&] { r = m.ledger.reserve(txn, org, p, held + 1); });
      if (!err) {
        m.succeeded();
        m.remember_usage(org, r.usage);
        if (r.refused) return r.refused;  // over the quota: not a failure
        std::lock_guard lock(m.mu);
        Impl::Txn& t = m.txns[txn];
        t.org = org;
        t.ledger = held + 1;
        return std::nullopt;
      }
      m.failed(*err);
      {
        std::lock_guard lock(m.mu);
        Impl::Txn& t = m.txns[txn];
        t.org = org;
        t.maybe_ledger = true;  // released there at the end if the ledger answers by then
      }
      st = m.snapshot();  // the breaker may have just opened (a new local ledger)
    }
    return m.fallback_reserve(st, txn, org, p, now_us);
  } catch (...) {
    return unavailable(p, true);
  }
}

void SharedQuota::release(const core::TxnId& txn, const std::string&, std::uint64_t) {
  try {
    Impl& m = *impl_;
    Impl::Txn t;
    bool open;
    {
      std::lock_guard lock(m.mu);
      auto it = m.txns.find(txn);
      if (it == m.txns.end()) return;  // nothing held here (accept mode, or refused)
      t = std::move(it->second);
      m.txns.erase(it);
      open = m.open;
    }
    if ((t.ledger > 0 || t.maybe_ledger) && !open) {  // while open the lease expires
      if (auto err = m.call("release", [&] { m.ledger.release(txn, t.org); })) m.failed(*err);
      else m.succeeded();
    }
    if (t.local > 0 && t.local_ledger) t.local_ledger->release(txn, t.org, t.local);
  } catch (...) {
  }
}

std::optional<policy::QuotaRefusal> SharedQuota::charge(const core::TxnId& txn, const std::string& org,
                                                        const policy::QuotaPolicy& p, std::uint64_t rcpts,
                                                        std::uint64_t, std::int64_t now_us,
                                                        std::int64_t& charged_at_us) {
  try {
    Impl& m = *impl_;
    Impl::Snapshot st = m.snapshot();
    if (!st.open) {
      LedgerReply r;
      auto err = m.call("charge", [&] { r = m.ledger.charge(txn, org, p, rcpts); });
      if (!err) {
        m.succeeded();
        m.remember_usage(org, r.usage);
        if (r.refused) return r.refused;  // the caller still holds its reservations
        charged_at_us = r.at_us;
        m.forget(txn);  // the ledger dropped its reservation; local ones go back here
        return std::nullopt;
      }
      m.failed(*err);
      st = m.snapshot();
      auto refused = m.fallback_charge(st, txn, org, p, rcpts, now_us, charged_at_us);
      // The failed call may have charged in the ledger all the same (its reply lost when
      // Redis went away). The message is refused here, so that charge is undone once the
      // ledger is back (an uncharge of a transaction it does not have is ignored).
      if (refused) m.add_pending(Impl::Pending{true, txn, org, {}, now_us, rcpts});
      return refused;
    }
    return m.fallback_charge(st, txn, org, p, rcpts, now_us, charged_at_us);
  } catch (...) {
    return unavailable(p, false);
  }
}

void SharedQuota::uncharge(const core::TxnId& txn, const std::string& org, std::int64_t charged_at_us,
                           std::uint64_t rcpts) {
  try {
    Impl& m = *impl_;
    std::shared_ptr<core::LocalQuota> local;
    bool open;
    bool was_pending = false;
    std::string warning;
    {
      std::lock_guard lock(m.mu);
      local = m.local;
      open = m.open;
      auto ix = txn.empty() ? m.pending_charges.end() : m.pending_charges.find(txn);
      if (ix != m.pending_charges.end()) {  // charged while the ledger was away: not replayed now
        was_pending = true;
        auto it = m.pending.find(ix->second);
        if (it != m.pending.end() && !it->second.local) local.reset();  // accept mode: nothing charged here
        if (it != m.pending.end() && it->second.replaying) {
          it->second.cancelled = true;  // it may reach the ledger: undo it there too
          warning = m.add_pending_locked(Impl::Pending{true, txn, org, {}, charged_at_us, rcpts});
        } else if (it != m.pending.end()) {
          m.pending.erase(it);
        }
        m.pending_charges.erase(ix);
      }
    }
    if (!warning.empty()) m.log_line(conf::LogLevel::warning, warning);
    if (!was_pending && !txn.empty()) {  // an empty id cannot be found in a shared ledger
      if (!open) {
        auto err = m.call("uncharge", [&] { m.ledger.uncharge(txn, org); });
        if (!err) {
          m.succeeded();
          return;
        }
        m.failed(*err);
      }
      m.add_pending(Impl::Pending{true, txn, org, {}, charged_at_us, rcpts});
    }
    // The local view too: it may count this charge (loaded from the store, or charged in it).
    if (local) local->uncharge(txn, org, charged_at_us, rcpts);
  } catch (...) {
  }
}

std::vector<policy::WindowUsage> SharedQuota::usage(const std::string& org, const policy::QuotaPolicy& p,
                                                    std::int64_t now_us) const {
  try {
    std::shared_ptr<core::LocalQuota> local;
    std::vector<policy::WindowUsage> cached;
    {
      std::lock_guard lock(impl_->mu);
      if (impl_->open) local = impl_->local;
      else if (auto it = impl_->last_usage.find(org); it != impl_->last_usage.end()) cached = it->second;
    }
    if (local) return local->usage(org, p, now_us);
    std::vector<policy::WindowUsage> out;
    auto add = [&](bool recipients, const policy::QuotaWindow& w) {
      std::uint64_t used = 0;
      for (const auto& c : cached)
        if (c.recipients == recipients && c.window.per_s == w.per_s) used = c.used;
      out.push_back({recipients, w, used});
    };
    for (const auto& w : p.messages) add(false, w);
    for (const auto& w : p.recipients) add(true, w);
    return out;
  } catch (...) {
    return {};
  }
}

bool SharedQuota::up() const { return !impl_->snapshot().open; }

std::size_t SharedQuota::pending() const {
  std::lock_guard lock(impl_->mu);
  return impl_->pending.size();
}

bool SharedQuota::probe_once() {
  try {
    return impl_->probe();
  } catch (...) {
    return up();
  }
}

std::size_t SharedQuota::transactions() const {
  std::lock_guard lock(impl_->mu);
  return impl_->txns.size();
}

std::uint64_t SharedQuota::local_reserved(const std::string& org) const {
  return impl_->snapshot().local->ledger().reserved(org);
}

std::uint64_t SharedQuota::pending_dropped() const {
  std::lock_guard lock(impl_->mu);
  return impl_->dropped;
}

void SharedQuota::set_pending_limit(std::size_t n) {
  std::lock_guard lock(impl_->mu);
  impl_->pending_limit = n;
}

}  // namespace cllavio::quota
