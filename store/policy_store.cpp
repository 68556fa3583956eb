#include "store/policy_store.hpp"

#include <nlohmann/json.hpp>

namespace cllavio::store {

namespace {

using nlohmann::json;

std::string org_key(std::string_view org, std::string_view rest) {
  std::string k(org);
  k.push_back('\0');
  k.append(rest);
  return k;
}

std::string encode_consent(const policy::Consent& c) {
  return [](const std::vector<std::uint8_t>& b) { return std::string(b.begin(), b.end()); }(
      json::to_cbor(json{{"s", policy::to_string(c.state)}, {"at", c.at_us}, {"src", c.source}}));
}

policy::Consent decode_consent(std::string_view bytes) {
  json j = json::from_cbor(bytes.begin(), bytes.end());
  policy::Consent c;
  c.state = policy::parse_consent_state(j.value("s", std::string())).value_or(policy::ConsentState::none);
  c.at_us = j.value("at", std::int64_t{0});
  c.source = j.value("src", std::string());
  return c;
}

}  // namespace

PolicyStore::PolicyStore(Store& store) : store_(store) {
  store.open_tables({{"meta", &meta_}, {"consent", &consent_}, {"audit", &audit_}, {"quota", &quota_}});
}

policy::Consent PolicyStore::consent(std::string_view org, std::string_view address) const {
  if (missing()) return {};
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_only);
  std::string_view bytes;
  if (!lmdb::get(txn, consent_, org_key(org, address), bytes)) return {};
  return decode_consent(bytes);
}

void PolicyStore::audit(lmdb::Txn& txn, AuditEntry e) {
  // Ids: max(now, last + 1) inside the write transaction, so unique across processes.
  std::uint64_t last = 0;
  {
    lmdb::Cursor cur(txn, audit_);
    MDB_val k{}, v{};
    if (cur.get(k, v, MDB_LAST)) last = lmdb::from_be64(lmdb::view(k));
  }
  std::uint64_t now = static_cast<std::uint64_t>(store_.now_us());
  e.id = now > last ? now : last + 1;
  if (e.at_us == 0) e.at_us = static_cast<std::int64_t>(now);
  json j{{"at", e.at_us}, {"actor", e.actor}, {"action", e.action}, {"org", e.org}, {"address", e.address},
         {"from", e.from}, {"to", e.to}, {"source", e.source}, {"detail", e.detail}};
  auto b = json::to_cbor(j);
  auto key = lmdb::be64(e.id);
  lmdb::put(txn, audit_, lmdb::view(key), std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  if (hook_) hook_(txn, e);
}

PolicyStore::Change PolicyStore::set_consent(const std::string& org, const std::string& address,
                                             const policy::Consent& c, const std::string& actor,
                                             const std::string& action) {
  if (store_.read_only()) throw lmdb::Error("store opened read-only", EACCES);
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_write);
  std::string key = org_key(org, address);
  Change ch;
  std::string_view bytes;
  if (lmdb::get(txn, consent_, key, bytes)) ch.before = decode_consent(bytes);
  ch.changed = ch.before.state != c.state;
  if (!ch.changed) return ch;
  lmdb::put(txn, consent_, key, encode_consent(c));
  audit(txn, AuditEntry{0, 0, actor, action, org, address, std::string(policy::to_string(ch.before.state)),
                        std::string(policy::to_string(c.state)), c.source, ""});
  txn.commit();
  return ch;
}

PolicyStore::ImportResult PolicyStore::import_consent(const std::string& org, const std::vector<ImportRow>& rows,
                                                      const std::string& actor, const std::string& action,
                                                      const std::string* cursor) {
  if (store_.read_only()) throw lmdb::Error("store opened read-only", EACCES);
  ImportResult r;
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_write);
  for (const ImportRow& row : rows) {
    std::string key = org_key(org, row.address);
    policy::Consent before;
    std::string_view bytes;
    if (lmdb::get(txn, consent_, key, bytes)) before = decode_consent(bytes);
    if (before.state == row.consent.state) {
      ++r.unchanged;
      continue;
    }
    if (before.state != policy::ConsentState::none && before.at_us > row.consent.at_us) {
      ++r.older;  // the store knows something newer (an unsubscribe after the export)
      continue;
    }
    lmdb::put(txn, consent_, key, encode_consent(row.consent));
    audit(txn, AuditEntry{0, 0, actor, action, org, row.address,
                          std::string(policy::to_string(before.state)),
                          std::string(policy::to_string(row.consent.state)), row.consent.source, ""});
    ++r.changed;
  }
  if (r.changed > 0 || cursor == nullptr)
    audit(txn, AuditEntry{0, 0, actor, action, org, "", "", "", cursor ? "api" : "import",
                          std::to_string(r.changed) + " changed, " + std::to_string(r.unchanged) + " unchanged, " +
                              std::to_string(r.older) + " older than the stored state"});
  if (cursor != nullptr) lmdb::put(txn, meta_, "consent_cursor:" + org, *cursor);
  txn.commit();
  return r;
}

std::string PolicyStore::consent_cursor(const std::string& org) const {
  if (missing()) return {};
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_only);
  std::string_view v;
  return lmdb::get(txn, meta_, "consent_cursor:" + org, v) ? std::string(v) : std::string();
}

void PolicyStore::scan_consent(const std::string& org,
                               const std::function<bool(const std::string&, const policy::Consent&)>& fn) const {
  if (missing()) return;
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_only);
  lmdb::Cursor cur(txn, consent_);
  std::string prefix = org_key(org, "");
  MDB_val k = lmdb::val(prefix), v{};
  for (bool ok = cur.get(k, v, MDB_SET_RANGE); ok; ok = cur.get(k, v, MDB_NEXT)) {
    std::string_view key = lmdb::view(k);
    if (key.substr(0, prefix.size()) != prefix) break;
    if (!fn(std::string(key.substr(prefix.size())), decode_consent(lmdb::view(v)))) break;
  }
}

void PolicyStore::put_quota_event(lmdb::Txn& txn, const std::string& org, std::int64_t at_us,
                                  std::uint64_t message_id, std::uint64_t rcpts, std::int64_t prune_before_us) {
  std::string key = org_key(org, "");
  auto t = lmdb::be64(static_cast<std::uint64_t>(at_us)), id = lmdb::be64(message_id), n = lmdb::be64(rcpts);
  key.append(t.data(), t.size()).append(id.data(), id.size());
  lmdb::put(txn, quota_, key, lmdb::view(n));
  // Events no window can see any more: a few per write, so the table stays bounded.
  lmdb::Cursor cur(txn, quota_);
  std::string prefix = org_key(org, "");
  MDB_val k = lmdb::val(prefix), v{};
  int removed = 0;
  for (bool ok = cur.get(k, v, MDB_SET_RANGE); ok && removed < 16; ok = cur.get(k, v, MDB_NEXT)) {
    std::string_view kk = lmdb::view(k);
    if (kk.size() != prefix.size() + 16 || kk.substr(0, prefix.size()) != prefix) break;
    if (static_cast<std::int64_t>(lmdb::from_be64(kk.substr(prefix.size(), 8))) >= prune_before_us) break;
    cur.del();
    ++removed;
  }
}

std::vector<std::pair<std::int64_t, std::uint64_t>> PolicyStore::quota_events(const std::string& org,
                                                                              std::int64_t since_us) const {
  std::vector<std::pair<std::int64_t, std::uint64_t>> out;
  if (missing()) return out;
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_only);
  lmdb::Cursor cur(txn, quota_);
  std::string prefix = org_key(org, "");
  auto since = lmdb::be64(static_cast<std::uint64_t>(std::max<std::int64_t>(since_us, 0)));
  std::string start = prefix + std::string(since.data(), since.size());
  MDB_val k = lmdb::val(start), v{};
  for (bool ok = cur.get(k, v, MDB_SET_RANGE); ok; ok = cur.get(k, v, MDB_NEXT)) {
    std::string_view kk = lmdb::view(k);
    if (kk.size() != prefix.size() + 16 || kk.substr(0, prefix.size()) != prefix) break;
    out.emplace_back(static_cast<std::int64_t>(lmdb::from_be64(kk.substr(prefix.size(), 8))),
                     lmdb::from_be64(lmdb::view(v)));
  }
  return out;
}

std::uint64_t PolicyStore::quota_epoch(const std::string& org) const {
  if (missing()) return 0;
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_only);
  std::string_view bytes;
  return lmdb::get(txn, meta_, "quota_epoch:" + org, bytes) ? lmdb::from_be64(bytes) : 0;
}

std::size_t PolicyStore::reset_quota(const std::string& org, const std::string& actor) {
  if (store_.read_only()) throw lmdb::Error("store opened read-only", EACCES);
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_write);
  std::size_t removed = 0;
  {
    lmdb::Cursor cur(txn, quota_);
    std::string prefix = org_key(org, "");
    MDB_val k = lmdb::val(prefix), v{};
    for (bool ok = cur.get(k, v, MDB_SET_RANGE); ok; ok = cur.get(k, v, MDB_NEXT)) {
      if (lmdb::view(k).substr(0, prefix.size()) != prefix) break;
      cur.del();
      ++removed;
    }
  }
  std::string_view bytes;
  std::uint64_t epoch = lmdb::get(txn, meta_, "quota_epoch:" + org, bytes) ? lmdb::from_be64(bytes) : 0;
  auto next = lmdb::be64(epoch + 1);
  lmdb::put(txn, meta_, "quota_epoch:" + org, lmdb::view(next));
  audit(txn, AuditEntry{0, 0, actor, "quota.reset", org, "", "", "", "cli",
                        "removed " + std::to_string(removed) + " charged messages"});
  txn.commit();
  return removed;
}

void PolicyStore::scan_audit(std::int64_t since_us, const std::function<bool(const AuditEntry&)>& fn) const {
  if (missing()) return;
  lmdb::Txn txn(store_.env(), lmdb::Txn::read_only);
  lmdb::Cursor cur(txn, audit_);
  auto start = lmdb::be64(static_cast<std::uint64_t>(std::max<std::int64_t>(since_us, 0)));
  MDB_val k = lmdb::val(lmdb::view(start)), v{};
  for (bool ok = cur.get(k, v, MDB_SET_RANGE); ok; ok = cur.get(k, v, MDB_NEXT)) {
    std::string_view bytes = lmdb::view(v);
    json j = json::from_cbor(bytes.begin(), bytes.end());
    AuditEntry e;
    e.id = lmdb::from_be64(lmdb::view(k));
    e.at_us = j.value("at", std::int64_t{0});
    for (auto [field, name] : {std::pair{&e.actor, "actor"}, {&e.action, "action"}, {&e.org, "org"},
                               {&e.address, "address"}, {&e.from, "from"}, {&e.to, "to"}, {&e.source, "source"},
                               {&e.detail, "detail"}})
      *field = j.value(name, std::string());
    if (!fn(e)) break;
  }
}

}  // namespace cllavio::store
