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

void Records::append(const MessageRecord& rec, std::string_view encoded) {
  if (rec.id == 0) throw lmdb::Error("record without an id", MDB_BAD_VALSIZE);
  auto key = lmdb::be64(rec.id);
  std::string own;
  if (encoded.empty()) encoded = own = encode(rec);
  lmdb::put(txn_, h_.messages, lmdb::view(key), encoded, MDB_NOOVERWRITE);
  if (!rec.queue_id.empty()) lmdb::put(txn_, h_.by_queue, rec.queue_id, lmdb::view(key));
  index_addresses(rec);
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
  lmdb::put(txn_, h_.messages, lmdb::view(key), encode(rec));
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
