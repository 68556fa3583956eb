// Quota charges per org, and the event outbox with its dead-letter table.
#include <nlohmann/json.hpp>

#include "store/keys.hpp"
#include "store/tables.hpp"

namespace cllavio::store {

// ---- quota ---------------------------------------------------------------------

void QuotaTable::charge(const std::string& org, std::int64_t at_us, std::uint64_t message_id, std::uint64_t rcpts,
                        std::int64_t prune_before_us) {
  auto n = lmdb::be64(rcpts);
  lmdb::put(txn_, h_.quota, keys::quota(org, at_us, message_id), lmdb::view(n));
  // Events no window can see any more: a few per write, so the table stays bounded.
  int removed = 0;
  for (const auto& e : lmdb::prefix_range(txn_, h_.quota, keys::org_prefix(org))) {
    auto k = keys::parse_quota(e.suffix());
    if (!k || k->at_us >= prune_before_us || removed >= 16) break;
    e.erase();
    ++removed;
  }
}

std::vector<std::pair<std::int64_t, std::uint64_t>> QuotaTable::events(const std::string& org,
                                                                       std::int64_t since_us) const {
  std::vector<std::pair<std::int64_t, std::uint64_t>> out;
  if (h_.quota == 0) return out;
  std::string start = keys::quota(org, std::max<std::int64_t>(since_us, 0), 0);
  for (const auto& e : lmdb::prefix_range(txn_, h_.quota, keys::org_prefix(org), start)) {
    auto k = keys::parse_quota(e.suffix());
    if (!k) break;
    out.emplace_back(k->at_us, lmdb::from_be64(e.value));
  }
  return out;
}

std::optional<std::uint64_t> QuotaTable::uncharge(const std::string& org, std::int64_t at_us,
                                                  std::uint64_t message_id) {
  const std::string key = keys::quota(org, at_us, message_id);
  std::string_view v;
  if (h_.quota == 0 || !lmdb::get(txn_, h_.quota, key, v) || v.size() != 8) return std::nullopt;
  std::uint64_t rcpts = lmdb::from_be64(v);
  lmdb::del(txn_, h_.quota, key);
  return rcpts;
}

std::uint64_t QuotaTable::epoch(const std::string& org) const {
  return Meta(txn_, h_.meta).u64(keys::quota_epoch(org));
}

std::size_t QuotaTable::reset(const std::string& org, const std::string& actor) {
  std::size_t removed = 0;
  for (const auto& e : lmdb::prefix_range(txn_, h_.quota, keys::org_prefix(org))) {
    e.erase();
    ++removed;
  }
  Meta meta(txn_, h_.meta);
  meta.put_u64(keys::quota_epoch(org), meta.u64(keys::quota_epoch(org)) + 1);
  audit_.append(AuditEntry{0, 0, actor, "quota.reset", org, "", "", "", "cli",
                           "removed " + std::to_string(removed) + " charged messages"});
  return removed;
}

// ---- outbox --------------------------------------------------------------------
// Value of an outbox entry: be64(stored at, unix us) + the event JSON.

namespace {

std::string_view json_of(std::string_view value) { return value.size() >= 8 ? value.substr(8) : std::string_view(); }

std::string outbox_value(std::int64_t at_us, std::string_view json) {
  auto at = lmdb::be64(static_cast<std::uint64_t>(at_us));
  std::string value(at.data(), at.size());
  value.append(json);
  return value;
}

}  // namespace

bool OutboxTable::put(const std::string& org, std::string_view json, std::uint64_t max_bytes) {
  Meta meta(txn_, h_.meta);
  std::uint64_t bytes = meta.u64(keys::kOutboxBytes);
  if (bytes + json.size() + 8 > max_bytes) {
    meta.put_u64(keys::kOutboxDropped, meta.u64(keys::kOutboxDropped) + 1);
    return false;
  }
  std::uint64_t seq = meta.u64(keys::kOutboxSeq) + 1;
  meta.put_u64(keys::kOutboxSeq, seq);
  meta.put_u64(keys::kOutboxBytes, bytes + json.size() + 8);
  lmdb::put(txn_, h_.outbox, keys::outbox(org, seq), outbox_value(now_us_, json));
  return true;
}

std::vector<std::string> OutboxTable::orgs() const {
  std::vector<std::string> out;
  if (h_.outbox == 0) return out;
  lmdb::Cursor cur(txn_, h_.outbox);
  MDB_val k{}, v{};
  for (bool ok = cur.get(k, v, MDB_FIRST); ok;) {
    std::string_view key = lmdb::view(k);
    std::string org(key.substr(0, key.find('\0')));
    std::string next = keys::org_prefix(org);
    next.back() = '\1';  // the first key after every key of this org
    out.push_back(std::move(org));
    k = lmdb::val(next);
    ok = cur.get(k, v, MDB_SET_RANGE);
  }
  return out;
}

std::vector<OutboxItem> OutboxTable::peek(const std::string& org, std::size_t max_events,
                                          std::size_t max_bytes) const {
  std::vector<OutboxItem> out;
  if (h_.outbox == 0) return out;
  std::size_t bytes = 0;
  for (const auto& e : lmdb::prefix_range(txn_, h_.outbox, keys::org_prefix(org))) {
    if (out.size() >= max_events || e.suffix().size() != 8) break;
    std::string_view json = json_of(e.value);
    if (!out.empty() && bytes + json.size() > max_bytes) break;
    bytes += json.size();
    out.push_back({lmdb::from_be64(e.suffix()), org, std::string(json)});
  }
  return out;
}

void OutboxTable::remove(const OutboxItem& item) {
  if (!lmdb::del(txn_, h_.outbox, keys::outbox(item.org, item.seq))) return;
  Meta meta(txn_, h_.meta);
  std::uint64_t bytes = meta.u64(keys::kOutboxBytes);
  meta.put_u64(keys::kOutboxBytes, bytes - std::min<std::uint64_t>(bytes, item.json.size() + 8));
}

void OutboxTable::ack(const std::vector<OutboxItem>& delivered) {
  for (const auto& it : delivered) remove(it);
}

void OutboxTable::bury(const OutboxItem& item, const std::string& error) {
  remove(item);
  auto cbor = nlohmann::json::to_cbor(
      nlohmann::json{{"org", item.org}, {"event", item.json}, {"error", error}, {"at", now_us_}});
  auto s = lmdb::be64(item.seq);
  lmdb::put(txn_, h_.outbox_dead, lmdb::view(s),
            std::string_view(reinterpret_cast<const char*>(cbor.data()), cbor.size()));
}

void OutboxTable::set_error(const std::string& error) { Meta(txn_, h_.meta).put(keys::kOutboxError, error); }

std::size_t OutboxTable::retry_dead() {
  std::size_t n = 0;
  Meta meta(txn_, h_.meta);
  std::uint64_t bytes = meta.u64(keys::kOutboxBytes);
  for (const auto& e : lmdb::prefix_range(txn_, h_.outbox_dead, "")) {
    auto j = nlohmann::json::from_cbor(e.value.begin(), e.value.end());
    std::string org = j.value("org", std::string()), event = j.value("event", std::string());
    // The same sequence number: it goes back where it was in its org's order.
    lmdb::put(txn_, h_.outbox, keys::outbox(org, lmdb::from_be64(e.key)), outbox_value(now_us_, event));
    bytes += event.size() + 8;
    e.erase();
    ++n;
  }
  meta.put_u64(keys::kOutboxBytes, bytes);
  return n;
}

std::vector<OutboxItem> OutboxTable::list(bool dead, std::size_t limit) const {
  std::vector<OutboxItem> out;
  if (h_.outbox == 0) return out;
  for (const auto& e : lmdb::prefix_range(txn_, dead ? h_.outbox_dead : h_.outbox, "")) {
    if (out.size() >= limit) break;
    if (dead) {
      auto j = nlohmann::json::from_cbor(e.value.begin(), e.value.end());
      out.push_back({lmdb::from_be64(e.key), j.value("org", std::string()),
                     j.value("event", std::string()) + "\t" + j.value("error", std::string())});
    } else if (auto k = keys::parse_outbox(e.key)) {
      out.push_back({k->second, k->first, std::string(json_of(e.value))});
    }
  }
  return out;
}

// Queued and dead events: LMDB's entry counts, O(1).
OutboxStats OutboxTable::counts() const {
  OutboxStats s;
  if (h_.outbox == 0) return s;
  MDB_stat st{};
  lmdb::check(mdb_stat(txn_.get(), h_.outbox, &st), "mdb_stat");
  s.queued = st.ms_entries;
  lmdb::check(mdb_stat(txn_.get(), h_.outbox_dead, &st), "mdb_stat");
  s.dead = st.ms_entries;
  return s;
}

OutboxStats OutboxTable::stats() const {
  OutboxStats s = counts();
  if (h_.outbox == 0) return s;
  Meta meta(txn_, h_.meta);
  s.queued_bytes = meta.u64(keys::kOutboxBytes);
  s.dropped = meta.u64(keys::kOutboxDropped);
  s.last_error = meta.get(keys::kOutboxError).value_or("");
  // The oldest event: the smallest stored-at of all queued entries (a scan: for the CLI).
  for (const auto& e : lmdb::prefix_range(txn_, h_.outbox, "")) {
    if (e.value.size() < 8) continue;
    auto at = static_cast<std::int64_t>(lmdb::from_be64(e.value.substr(0, 8)));
    if (s.oldest_at_us == 0 || at < s.oldest_at_us) s.oldest_at_us = at;
  }
  return s;
}

OutboxStats OutboxTable::quick_stats() const {
  OutboxStats s = counts();
  if (h_.outbox == 0) return s;
  lmdb::Cursor cur(txn_, h_.outbox);
  MDB_val k{}, v{};
  for (bool ok = cur.get(k, v, MDB_FIRST); ok;) {  // one seek per org with events
    std::string_view key = lmdb::view(k), value = lmdb::view(v);
    if (value.size() >= 8) {
      auto at = static_cast<std::int64_t>(lmdb::from_be64(value.substr(0, 8)));
      if (s.oldest_at_us == 0 || at < s.oldest_at_us) s.oldest_at_us = at;
    }
    std::string next = keys::org_prefix(key.substr(0, key.find('\0')));
    next.back() = '\1';  // the first key after every key of this org
    k = lmdb::val(next);
    ok = cur.get(k, v, MDB_SET_RANGE);
  }
  return s;
}

}  // namespace cllavio::store
