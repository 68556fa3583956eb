// Message records and their indexes (by queue id, by address); meta values.
#include <algorithm>

#include "policy/consent.hpp"
#include "store/keys.hpp"
#include "store/tables.hpp"

namespace cllavio::store {

std::optional<std::string> Meta::get(std::string_view key) const {
  std::string_view v;
  if (dbi_ == 0 || !lmdb::get(txn_, dbi_, key, v)) return std::nullopt;
  return std::string(v);
}

std::uint64_t Meta::u64(std::string_view key) const {
  std::string_view v;
  return dbi_ != 0 && lmdb::get(txn_, dbi_, key, v) && v.size() == 8 ? lmdb::from_be64(v) : 0;
}

void Meta::put(std::string_view key, std::string_view value) { lmdb::put(txn_, dbi_, key, value); }

void Meta::put_u64(std::string_view key, std::uint64_t value) {
  auto b = lmdb::be64(value);
  lmdb::put(txn_, dbi_, key, lmdb::view(b));
}

std::vector<std::pair<std::string, unsigned>> Records::addresses_of(const MessageRecord& rec) {
  std::vector<std::pair<std::string, unsigned>> out;
  auto add = [&](std::string_view raw, unsigned role) {
    std::string a = policy::consent_address(raw);
    if (a.empty()) return;  // the null sender, or nothing an address index can key
    for (auto& [addr, roles] : out)
      if (addr == a) {
        roles |= role;
        return;
      }
    out.emplace_back(std::move(a), role);
  };
  add(rec.sender, keys::sender);
  for (const auto& r : rec.recipients) add(r, keys::recipient);
  for (const auto& r : rec.suppressed) add(r, keys::suppressed);
  return out;
}

void Records::index_addresses(const MessageRecord& rec) {
  for (const auto& [addr, roles] : addresses_of(rec)) {
    char role = static_cast<char>(roles);
    lmdb::put(txn_, h_.by_address, keys::address(addr, rec.id), std::string_view(&role, 1));
  }
}

char Records::kind_of(const MessageRecord& rec) {
  return rec.action == "reject" || rec.action == "tempfail" ? keys::refused : keys::accepted;
}

void Records::index_org(const MessageRecord& rec) {
  if (h_.by_org != 0) lmdb::put(txn_, h_.by_org, keys::by_org(rec.org, kind_of(rec), rec.id), "");
}

void Records::append(const MessageRecord& rec, std::string_view encoded) {
  if (rec.id == 0) throw lmdb::Error("record without an id", MDB_BAD_VALSIZE);
  auto key = lmdb::be64(rec.id);
  std::string own;
  if (encoded.empty()) encoded = own = encode(rec);
  lmdb::put(txn_, h_.messages, lmdb::view(key), encoded, MDB_NOOVERWRITE);
  if (!rec.queue_id.empty()) lmdb::put(txn_, h_.by_queue, rec.queue_id, lmdb::view(key));
  index_addresses(rec);
  index_org(rec);
}

std::optional<MessageRecord> Records::remove(std::uint64_t id) {
  auto rec = get(id);
  if (!rec) return std::nullopt;
  auto key = lmdb::be64(id);
  lmdb::del(txn_, h_.messages, lmdb::view(key));
  if (!rec->queue_id.empty()) {
    MDB_val k = lmdb::val(rec->queue_id), v = lmdb::val(lmdb::view(key));
    int rc = mdb_del(txn_.get(), h_.by_queue, &k, &v);
    if (rc != MDB_NOTFOUND) lmdb::check(rc, "mdb_del by_queue");
  }
  if (h_.by_address != 0)
    for (const auto& [addr, roles] : addresses_of(*rec)) lmdb::del(txn_, h_.by_address, keys::address(addr, id));
  if (h_.by_org != 0) lmdb::del(txn_, h_.by_org, keys::by_org(rec->org, kind_of(*rec), id));
  return rec;
}

std::optional<MessageRecord> Records::get(std::uint64_t id) const {
  auto key = lmdb::be64(id);
  std::string_view bytes;
  if (!lmdb::get(txn_, h_.messages, lmdb::view(key), bytes)) return std::nullopt;
  MessageRecord r = decode(bytes);
  r.id = id;
  return r;
}

std::vector<MessageRecord> Records::by_queue_id(std::string_view queue_id) const {
  std::vector<MessageRecord> out;
  for (std::uint64_t id : ids_by_queue_id(queue_id))
    if (auto r = get(id)) out.push_back(std::move(*r));
  return out;
}

std::vector<std::uint64_t> Records::ids_by_queue_id(std::string_view queue_id) const {
  std::vector<std::uint64_t> out;
  if (queue_id.empty()) return out;
  lmdb::Cursor cur(txn_, h_.by_queue);
  MDB_val k = lmdb::val(queue_id), v{};
  for (bool ok = cur.get(k, v, MDB_SET_KEY); ok; ok = cur.get(k, v, MDB_NEXT_DUP))
    out.push_back(lmdb::from_be64(lmdb::view(v)));
  return out;
}

void Records::replace(const MessageRecord& rec) {
  auto key = lmdb::be64(rec.id);
  std::string_view old;
  if (!lmdb::get(txn_, h_.messages, lmdb::view(key), old))
    throw lmdb::Error("no record " + format_id(rec.id) + " to replace", MDB_NOTFOUND);
  MessageRecord before = decode(old);
  before.id = rec.id;
  lmdb::put(txn_, h_.messages, lmdb::view(key), encode(rec));
  auto was = addresses_of(before), now = addresses_of(rec);
  if (was != now && h_.by_address != 0) {
    for (const auto& [addr, roles] : was) lmdb::del(txn_, h_.by_address, keys::address(addr, rec.id));
    index_addresses(rec);
  }
  if (kind_of(before) != kind_of(rec) && h_.by_org != 0) {
    lmdb::del(txn_, h_.by_org, keys::by_org(before.org, kind_of(before), rec.id));
    index_org(rec);
  }
}

void Records::scan(const std::function<bool(const MessageRecord&)>& fn, std::uint64_t from_id) const {
  auto start = lmdb::be64(from_id);
  for (const auto& e : lmdb::prefix_range(txn_, h_.messages, "", std::string(lmdb::view(start)))) {
    MessageRecord r = decode(e.value);
    r.id = lmdb::from_be64(e.key);
    if (!fn(r)) break;
  }
}

std::vector<std::pair<std::uint64_t, unsigned>> Records::by_address(std::string_view address) const {
  std::vector<std::pair<std::uint64_t, unsigned>> out;
  if (h_.by_address == 0) return out;
  for (const auto& e : lmdb::prefix_range(txn_, h_.by_address, keys::address_prefix(address)))
    if (e.suffix().size() == 8)
      out.emplace_back(lmdb::from_be64(e.suffix()), e.value.empty() ? 0u : static_cast<unsigned char>(e.value[0]));
  return out;
}

std::uint64_t Records::last_id() const {
  lmdb::Cursor cur(txn_, h_.messages);
  MDB_val k{}, v{};
  return cur.get(k, v, MDB_LAST) ? lmdb::from_be64(lmdb::view(k)) : 0;
}

}  // namespace cllavio::store
