#include "store/outbox.hpp"

#include <nlohmann/json.hpp>

namespace cllavio::store {

namespace {

std::uint64_t get_u64(lmdb::Txn& txn, MDB_dbi meta, const char* key) {
  std::string_view v;
  return lmdb::get(txn, meta, key, v) && v.size() == 8 ? lmdb::from_be64(v) : 0;
}

void put_u64(lmdb::Txn& txn, MDB_dbi meta, const char* key, std::uint64_t value) {
  auto b = lmdb::be64(value);
  lmdb::put(txn, meta, key, lmdb::view(b));
}

std::string org_prefix(std::string_view org) {
  std::string k(org);
  k.push_back('\0');
  return k;
}

// Value: be64(stored at, unix us) + the event JSON.
std::string_view json_of(std::string_view value) { return value.size() >= 8 ? value.substr(8) : std::string_view(); }

}  // namespace

Outbox::Outbox(Store& store) : store_(store) {
  store.open_tables({{"meta", &meta_}, {"outbox", &outbox_}, {"outbox_dead", &dead_}});
}

bool Outbox::put(lmdb::Txn& txn, const std::string& org, std::string_view json, std::uint64_t max_bytes) {
  std::uint64_t bytes = get_u64(txn, meta_, "outbox_bytes");
  if (bytes + json.size() + 8 > max_bytes) {
    put_u64(txn, meta_, "outbox_dropped", get_u64(txn, meta_, "outbox_dropped") + 1);
    return false;
  }
  std::uint64_t seq = get_u64(txn, meta_, "outbox_seq") + 1;
  put_u64(txn, meta_, "outbox_seq", seq);
  put_u64(txn, meta_, "outbox_bytes", bytes + json.size() + 8);
  auto s = lmdb::be64(seq), at = lmdb::be64(static_cast<std::uint64_t>(store_.now_us()));
  std::string key = org_prefix(org).append(s.data(), s.size());
  std::string value(at.data(), at.size());
  value.append(json);
  lmdb::put(txn, outbox_, key, value);
  return true;
}

std::vector<std::string> Outbox::orgs() const {
  std::vector<std::string> out;
  if (missing()) return out;
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_only);
  lmdb::Cursor cur(txn, outbox_);
  MDB_val k{}, v{};
  for (bool ok = cur.get(k, v, MDB_FIRST); ok;) {
    std::string_view key = lmdb::view(k);
    std::string org(key.substr(0, key.find('\0')));
    out.push_back(org);
    std::string next = org_prefix(org);
    next.back() = '\1';  // the first key after every key of this org
    k = lmdb::val(next);
    ok = cur.get(k, v, MDB_SET_RANGE);
  }
  return out;
}

std::vector<OutboxItem> Outbox::peek(const std::string& org, std::size_t max_events, std::size_t max_bytes) const {
  std::vector<OutboxItem> out;
  if (missing()) return out;
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_only);
  lmdb::Cursor cur(txn, outbox_);
  std::string prefix = org_prefix(org);
  MDB_val k = lmdb::val(prefix), v{};
  std::size_t bytes = 0;
  for (bool ok = cur.get(k, v, MDB_SET_RANGE); ok && out.size() < max_events; ok = cur.get(k, v, MDB_NEXT)) {
    std::string_view key = lmdb::view(k);
    if (key.size() != prefix.size() + 8 || key.substr(0, prefix.size()) != prefix) break;
    std::string_view json = json_of(lmdb::view(v));
    if (!out.empty() && bytes + json.size() > max_bytes) break;
    bytes += json.size();
    out.push_back({lmdb::from_be64(key.substr(prefix.size())), org, std::string(json)});
  }
  return out;
}

void Outbox::ack(const std::vector<OutboxItem>& delivered) {
  if (delivered.empty()) return;
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_write);
  std::uint64_t bytes = get_u64(txn, meta_, "outbox_bytes");
  for (const auto& it : delivered) {
    auto s = lmdb::be64(it.seq);
    if (lmdb::del(txn, outbox_, org_prefix(it.org).append(s.data(), s.size())))
      bytes -= std::min<std::uint64_t>(bytes, it.json.size() + 8);
  }
  put_u64(txn, meta_, "outbox_bytes", bytes);
  txn.commit();
}

void Outbox::bury(const OutboxItem& item, const std::string& error) {
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_write);
  auto s = lmdb::be64(item.seq);
  if (lmdb::del(txn, outbox_, org_prefix(item.org).append(s.data(), s.size()))) {
    std::uint64_t bytes = get_u64(txn, meta_, "outbox_bytes");
    put_u64(txn, meta_, "outbox_bytes", bytes - std::min<std::uint64_t>(bytes, item.json.size() + 8));
  }
  auto cbor = nlohmann::json::to_cbor(
      nlohmann::json{{"org", item.org}, {"event", item.json}, {"error", error}, {"at", store_.now_us()}});
  lmdb::put(txn, dead_, lmdb::view(s), std::string_view(reinterpret_cast<const char*>(cbor.data()), cbor.size()));
  txn.commit();
}

void Outbox::set_error(const std::string& error) {
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_write);
  lmdb::put(txn, meta_, "outbox_error", error);
  txn.commit();
}

std::size_t Outbox::retry_dead() {
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_write);
  std::size_t n = 0;
  std::uint64_t bytes = get_u64(txn, meta_, "outbox_bytes");
  {
    lmdb::Cursor cur(txn, dead_);
    MDB_val k{}, v{};
    for (bool ok = cur.get(k, v, MDB_FIRST); ok; ok = cur.get(k, v, MDB_NEXT)) {
      std::string_view bytes_v = lmdb::view(v);
      auto j = nlohmann::json::from_cbor(bytes_v.begin(), bytes_v.end());
      std::string org = j.value("org", std::string()), event = j.value("event", std::string());
      auto at = lmdb::be64(static_cast<std::uint64_t>(store_.now_us()));
      std::string value(at.data(), at.size());
      value += event;
      // The same sequence number: it goes back where it was in its org's order.
      lmdb::put(txn, outbox_, org_prefix(org).append(lmdb::view(k)), value);
      bytes += event.size() + 8;
      cur.del();
      ++n;
    }
  }
  put_u64(txn, meta_, "outbox_bytes", bytes);
  txn.commit();
  return n;
}

std::vector<OutboxItem> Outbox::list(bool dead, std::size_t limit) const {
  std::vector<OutboxItem> out;
  if (missing()) return out;
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_only);
  lmdb::Cursor cur(txn, dead ? dead_ : outbox_);
  MDB_val k{}, v{};
  for (bool ok = cur.get(k, v, MDB_FIRST); ok && out.size() < limit; ok = cur.get(k, v, MDB_NEXT)) {
    std::string_view key = lmdb::view(k), val = lmdb::view(v);
    if (dead) {
      auto j = nlohmann::json::from_cbor(val.begin(), val.end());
      out.push_back({lmdb::from_be64(key), j.value("org", std::string()),
                     j.value("event", std::string()) + "\t" + j.value("error", std::string())});
    } else {
      std::size_t nul = key.find('\0');
      out.push_back({lmdb::from_be64(key.substr(nul + 1)), std::string(key.substr(0, nul)), std::string(json_of(val))});
    }
  }
  return out;
}

OutboxStats Outbox::stats() const {
  OutboxStats s;
  if (missing()) return s;
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_only);
  MDB_stat st{};
  lmdb::check(mdb_stat(txn.get(), outbox_, &st), "mdb_stat");
  s.queued = st.ms_entries;
  lmdb::check(mdb_stat(txn.get(), dead_, &st), "mdb_stat");
  s.dead = st.ms_entries;
  s.queued_bytes = get_u64(txn, meta_, "outbox_bytes");
  s.dropped = get_u64(txn, meta_, "outbox_dropped");
  std::string_view err;
  if (lmdb::get(txn, meta_, "outbox_error", err)) s.last_error = std::string(err);
  // The oldest event: the smallest stored-at of all queued entries (a scan: for the CLI).
  lmdb::Cursor cur(txn, outbox_);
  MDB_val k{}, v{};
  for (bool ok = cur.get(k, v, MDB_FIRST); ok; ok = cur.get(k, v, MDB_NEXT)) {
    std::string_view val = lmdb::view(v);
    if (val.size() < 8) continue;
    auto at = static_cast<std::int64_t>(lmdb::from_be64(val.substr(0, 8)));
    if (s.oldest_at_us == 0 || at < s.oldest_at_us) s.oldest_at_us = at;
  }
  return s;
}

}  // namespace cllavio::store
