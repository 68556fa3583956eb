#include "delivery/tracker.hpp"

#include <ctime>

#include "core/event.hpp"
#include "delivery/classify.hpp"
#include "policy/consent.hpp"
#include "store/keys.hpp"

namespace cllavio::delivery {

namespace {

constexpr std::size_t kCacheSize = 512;
constexpr std::size_t kMaxPending = 2000;
const std::string kActor = "cllavio-milter (delivery)";

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The record's status as the log tells it, for notices and the record's reason.
std::string rejection_detail(const LogLine& l) {
  std::string d(l.action);
  if (!l.stage.empty()) d.append(" ").append(l.stage);
  if (!l.reason.empty()) d.append(": ").append(l.reason);
  return d;
}

void queue_event(store::Tables& t, const core::Event& e, std::uint64_t max_outbox, BatchResult& out) {
  if (e.org.empty()) return;
  if (t.outbox.put(e.org, core::to_text(e), max_outbox))
    ++out.events;
  else
    ++out.outbox_full;
}

}  // namespace

std::int64_t to_unix_us(const LogTime& t, std::int64_t now_us) {
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31) return 0;
  std::tm tm{};
  tm.tm_mon = t.month - 1;
  tm.tm_mday = t.day;
  tm.tm_hour = t.hour;
  tm.tm_min = t.minute;
  tm.tm_sec = t.second;
  if (t.year != 0) {
    tm.tm_year = t.year - 1900;
    std::time_t secs = t.has_offset ? timegm(&tm) - t.offset_minutes * 60 : (tm.tm_isdst = -1, std::mktime(&tm));
    return static_cast<std::int64_t>(secs) * 1'000'000 + t.micros;
  }
  // No year: local time, in the year that does not put the line more than a day ahead.
  // mktime is slow (it reads the zone rules): consecutive lines share their minute.
  struct MinuteCache {
    int mon = -1, day = 0, hour = 0, minute = 0;
    std::int64_t now_day = 0;
    std::int64_t minute_us = 0;
  };
  thread_local MinuteCache cache;
  if (cache.mon == t.month && cache.day == t.day && cache.hour == t.hour && cache.minute == t.minute &&
      cache.now_day == now_us / 86'400'000'000)
    return cache.minute_us + std::int64_t{t.second} * 1'000'000 + t.micros;
  std::time_t now = static_cast<std::time_t>(now_us / 1'000'000);
  std::tm local{};
  localtime_r(&now, &local);
  for (int year : {local.tm_year, local.tm_year - 1}) {
    std::tm c = tm;
    c.tm_year = year;
    c.tm_isdst = -1;
    c.tm_sec = 0;
    std::time_t secs = std::mktime(&c);
    if (secs != static_cast<std::time_t>(-1) && secs + t.second <= now + 86400) {
      cache = MinuteCache{t.month, t.day, t.hour, t.minute, now_us / 86'400'000'000,
                          static_cast<std::int64_t>(secs) * 1'000'000};
      return cache.minute_us + std::int64_t{t.second} * 1'000'000 + t.micros;
    }
  }
  return 0;
}

std::shared_ptr<const Tracker::Cached> Tracker::record(store::Tables& t, std::uint64_t id) {
  if (auto it = cache_.find(id); it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.second);
    return it->second.first;
  }
  auto rec = t.records.get(id);
  if (!rec) return nullptr;
  auto c = std::make_shared<Cached>();
  c->rec = std::move(*rec);
  for (const auto& r : c->rec.recipients) c->keys.push_back(store::DeliveryTable::recipient_key(r));
  if (!c->rec.org.empty()) c->message_json = core::message_text(c->rec);
  lru_.push_front(id);
  cache_[id] = {c, lru_.begin()};
  if (cache_.size() > kCacheSize) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
  return c;
}

std::shared_ptr<const Tracker::Cached> Tracker::by_queue(store::Tables& t, std::string_view qid, std::int64_t line_us,
                                                         bool& found_any) {
  auto ids = t.records.ids_by_queue_id(qid);
  found_any = !ids.empty();
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    // Ids are microsecond timestamps of the record's creation.
    if (line_us != 0 && static_cast<std::int64_t>(*it) < line_us - s_.max_age_us) break;
    auto c = record(t, *it);
    if (c && c->rec.action == "accept") return c;
  }
  return nullptr;
}

void Tracker::apply(store::Tables& t, std::string_view raw, std::int64_t now_us, BatchResult& out) {
  ++out.lines;
  LogLine l = parse_line(raw);
  if (l.kind == LineKind::other || l.queue_id.empty()) {
    ++out.ignored;
    return;
  }
  if (auto own = postfix_own_.find(std::string(l.queue_id)); own != postfix_own_.end()) {  // Postfix's own: not ours
    // Its queue file is gone: Postfix may give the id to another message later.
    if (l.kind == LineKind::removed) postfix_own_.erase(own);
    ++out.ignored;
    return;
  }
  std::int64_t line_us = to_unix_us(l.time, now_us);
  // Lines of a queue id that already waits go behind it, in order.
  Outcome o = pending_qids_.count(std::string(l.queue_id)) ? Outcome::no_record : handle(t, l, line_us, out);
  if (o == Outcome::applied) {
    ++out.applied;
  } else if (o == Outcome::no_record && line_us >= now_us - s_.join_wait_us) {
    std::uint64_t seq = t.meta.u64(store::keys::kDeliveryPendingSeq) + 1;
    t.meta.put_u64(store::keys::kDeliveryPendingSeq, seq);
    t.delivery.pend(seq, now_us, raw);
    pending_qids_.insert(std::string(l.queue_id));
    ++out.pended;
  } else {
    ++out.ignored;
  }
}

void Tracker::retry_pending(store::Tables& t, std::int64_t now_us, BatchResult& out) {
  auto waiting = t.delivery.pending();
  pending_qids_.clear();
  std::size_t left = waiting.size();
  for (const auto& p : waiting) {
    LogLine l = parse_line(p.line);
    std::string qid(l.queue_id);
    Outcome o = pending_qids_.count(qid) ? Outcome::no_record : handle(t, l, to_unix_us(l.time, now_us), out);
    bool expired = p.first_seen_us < now_us - s_.join_wait_us || left > kMaxPending;
    if (o == Outcome::no_record && !expired) {
      pending_qids_.insert(std::move(qid));
      continue;
    }
    t.delivery.unpend(p.seq);
    --left;
    if (o == Outcome::applied)
      ++out.applied;
    else if (o == Outcome::ignored)
      ++out.ignored;
    else
      ++out.dropped;
  }
}

Tracker::Outcome Tracker::handle(store::Tables& t, const LogLine& l, std::int64_t line_us, BatchResult& out) {
  switch (l.kind) {
    case LineKind::recipient: return recipient_line(t, l, line_us, out);
    case LineKind::expired: return expired_line(t, l, line_us, out);
    case LineKind::rejected: return rejected_line(t, l, line_us, out);
    case LineKind::removed:
      return t.delivery.unchain(l.queue_id) > 0 ? Outcome::applied : Outcome::ignored;
    case LineKind::notification:  // Postfix's own mail about ours: its lines are not ours
      if (!l.next_queue_id.empty()) {
        if (postfix_own_.size() >= 10000) postfix_own_.clear();
        postfix_own_.insert(std::string(l.next_queue_id));
      }
      return Outcome::ignored;
    case LineKind::other: break;
  }
  return Outcome::ignored;
}

Tracker::Outcome Tracker::recipient_line(store::Tables& t, const LogLine& l, std::int64_t line_us,
                                         BatchResult& out) {
  std::string_view st = l.status;
  bool deferred = st == "deferred" || st == "SOFTBOUNCE";
  if (st != "sent" && st != "bounced" && st != "expired" && !deferred) return Outcome::ignored;  // probes
  std::string_view rcpt = l.orig_to.empty() ? l.to : l.orig_to;
  std::string key = store::DeliveryTable::recipient_key(rcpt);

  std::shared_ptr<const Cached> c;
  if (auto id = t.delivery.chained(l.queue_id, key)) c = record(t, *id);
  if (!c) {
    bool found_any = false;
    c = by_queue(t, l.queue_id, line_us, found_any);
    if (!c) return found_any ? Outcome::ignored : Outcome::no_record;
  }
  // The recipient as the record names it (orig_to when an alias expanded, else to).
  const std::string* named = nullptr;
  for (std::size_t i = 0; i < c->keys.size() && !named; ++i)
    if (c->keys[i] == key) named = &c->rec.recipients[i];
  if (!named && !l.orig_to.empty()) {
    key = store::DeliveryTable::recipient_key(l.to);
    for (std::size_t i = 0; i < c->keys.size() && !named; ++i)
      if (c->keys[i] == key) named = &c->rec.recipients[i];
  }
  if (!named && c->rec.recipient_count <= c->rec.recipients.size()) return Outcome::ignored;  // not its recipient
  std::string recipient = named ? *named : std::string(rcpt);

  store::DeliveryState s = t.delivery.get(c->rec.id, recipient).value_or(store::DeliveryState{});
  if (s.final()) return Outcome::ignored;  // the first final state wins
  s.dsn = std::string(l.dsn);
  s.reply = std::string(l.reply);
  s.relay = std::string(l.relay);
  s.delay_s = l.delay_s;
  s.at_us = line_us;
  s.queue_id = std::string(l.queue_id);

  if (st == "sent" && !l.next_queue_id.empty()) {
    bool forwarded = l.reply.find("forwarded as") != std::string_view::npos;
    bool filter = false;
    for (const auto& f : s_.filter_relays) filter = filter || f == l.relay;
    if (forwarded || filter) {  // the recipient goes on under the new queue id, in this same log
      t.delivery.chain(l.next_queue_id, recipient, c->rec.id);
      return Outcome::applied;
    }
  }
  if (deferred) {
    s.state = "deferred";
    ++s.attempts;
  } else if (st == "sent") {
    s.state = "delivered";
  } else if (st == "expired" || (st == "bounced" && starts_with(l.dsn, "4"))) {
    s.state = "expired";  // a 4.x.x bounce: the queue lifetime ran out
  } else {
    s.state = "bounced";
  }
  set_state(t, *c, recipient, s, out);
  if (c->rec.org.empty()) return Outcome::applied;
  if (s.state == "delivered" && s_.soft_bounce_limit > 0) {
    std::string a = policy::consent_address(recipient);
    if (!a.empty()) t.delivery.delivered(c->rec.org, a);  // expiries count again from here
  }
  if (s.state == "bounced" && classify_bounce(l.dsn, l.reply) == BounceClass::invalid_address &&
      suppresses(c->rec.org))
    suppress(t, c->rec.org, recipient, "bounced " + s.dsn, line_us, out);
  if (s.state == "expired") check_expiries(t, c->rec.org, recipient, line_us, out);
  return Outcome::applied;
}

Tracker::Outcome Tracker::expired_line(store::Tables& t, const LogLine& l, std::int64_t line_us, BatchResult& out) {
  // Every recipient still open expires: those of the record with this queue id, and
  // those that moved to it (forwarded).
  std::vector<std::pair<std::shared_ptr<const Cached>, std::string>> open;
  bool found_any = false;
  if (auto c = by_queue(t, l.queue_id, line_us, found_any))
    for (const auto& r : c->rec.recipients) open.emplace_back(c, r);
  for (const auto& [rcpt, id] : t.delivery.chains_of(l.queue_id))
    if (auto c = record(t, id)) open.emplace_back(c, rcpt);
  if (open.empty()) return found_any ? Outcome::ignored : Outcome::no_record;
  for (const auto& [c, rcpt] : open) {
    store::DeliveryState s = t.delivery.get(c->rec.id, rcpt).value_or(store::DeliveryState{});
    if (s.final()) continue;
    s.state = "expired";
    s.at_us = line_us;
    s.queue_id = std::string(l.queue_id);
    if (s.reply.empty()) s.reply = "message expired in the queue";
    set_state(t, *c, rcpt, s, out);
    if (!c->rec.org.empty()) check_expiries(t, c->rec.org, rcpt, line_us, out);
  }
  return Outcome::applied;
}

Tracker::Outcome Tracker::rejected_line(store::Tables& t, const LogLine& l, std::int64_t line_us,
                                        BatchResult& out) {
  bool found_any = false;
  auto c = by_queue(t, l.queue_id, line_us, found_any);
  if (!c) return found_any ? Outcome::ignored : Outcome::no_record;
  store::MessageRecord rec = c->rec;
  std::string detail = rejection_detail(l);
  rec.action = starts_with(l.reason, "4") ? "tempfail" : "reject";
  rec.reason = "after_milter: " + detail;
  bool given_back = false;
  if (rec.quota_charged_at_us != 0 && !rec.org.empty()) {
    if (auto rcpts = t.quota.uncharge(rec.org, rec.quota_charged_at_us, rec.id)) {
      out.uncharges.push_back(Uncharge{rec.org, rec.quota_txn, rec.quota_charged_at_us, *rcpts, rec.id});
      given_back = true;
    }
    rec.quota_charged_at_us = 0;
    rec.quota_txn.clear();
  }
  t.records.replace(rec);
  if (auto it = cache_.find(rec.id); it != cache_.end()) {
    lru_.erase(it->second.second);
    cache_.erase(it);
  }
  queue_event(t, core::rejected_after_milter_event(rec, line_us, detail), s_.max_outbox_bytes, out);
  out.notices.push_back("message " + store::format_id(rec.id) + " queue_id=" + rec.queue_id + " org=" +
                        (rec.org.empty() ? "-" : rec.org) + ": refused by Postfix after cllavio-milter accepted it (" +
                        detail + ")" + (given_back ? "; quota charge given back" : ""));
  return Outcome::applied;
}

void Tracker::set_state(store::Tables& t, const Cached& c, std::string_view rcpt, const store::DeliveryState& s,
                        BatchResult& out) {
  t.delivery.put(c.rec.id, rcpt, s);
  out.outcomes.emplace_back(c.rec.org, s.state);
  if (c.rec.org.empty()) return;
  if (t.outbox.put(c.rec.org, core::delivery_event_text(c.rec, c.message_json, rcpt, s), s_.max_outbox_bytes))
    ++out.events;
  else
    ++out.outbox_full;
}

void Tracker::suppress(store::Tables& t, const std::string& org, const std::string& address, const std::string& why,
                       std::int64_t at_us, BatchResult& out) {
  std::string a = policy::consent_address(address);
  if (a.empty()) return;
  policy::ConsentState now = t.consent.get(org, a).state;
  if (now == policy::ConsentState::unsubscribed || now == policy::ConsentState::bounced) return;
  auto ch = t.consent.set(org, a, policy::Consent{policy::ConsentState::bounced, at_us, "bounce"}, kActor,
                          "consent.bounce", why);
  if (!ch.audit) return;
  queue_event(t, core::from_audit(*ch.audit), s_.max_outbox_bytes, out);
  out.notices.push_back("suppressed <" + store::printable(a) + "> for org " + org + " (" + why +
                        "): campaigns refuse it from now on; `cllavioctl consent grant` lifts it");
}

void Tracker::check_expiries(store::Tables& t, const std::string& org, const std::string& address,
                             std::int64_t now_us, BatchResult& out) {
  if (s_.soft_bounce_limit == 0 || !suppresses(org)) return;
  std::string a = policy::consent_address(address);
  if (a.empty()) return;
  auto times = t.delivery.expired(org, a, now_us, now_us - s_.soft_bounce_window_us, s_.soft_bounce_limit);
  if (times.size() >= s_.soft_bounce_limit)
    suppress(t, org, a, "expired " + std::to_string(times.size()) + " times without a delivery", now_us, out);
}

}  // namespace cllavio::delivery
