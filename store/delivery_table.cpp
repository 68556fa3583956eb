// Delivery states per recipient, log lines waiting for their record, and queue-id chains.
#include <nlohmann/json.hpp>

#include "policy/consent.hpp"
#include "store/keys.hpp"
#include "store/tables.hpp"

namespace cllavio::store {

namespace {

using nlohmann::json;

std::string cbor(const json& j) {
  auto b = json::to_cbor(j);
  return std::string(b.begin(), b.end());
}

std::string encode_state(const DeliveryState& s) {
  return cbor(json{{"s", s.state},   {"n", s.attempts}, {"dsn", s.dsn},  {"r", s.reply},
                   {"relay", s.relay}, {"d", s.delay_s}, {"at", s.at_us}, {"q", s.queue_id}});
}

DeliveryState decode_state(std::string_view bytes) {
  json j = json::from_cbor(bytes.begin(), bytes.end());
  DeliveryState s;
  s.state = j.value("s", std::string());
  s.attempts = j.value("n", std::uint32_t{0});
  s.dsn = j.value("dsn", std::string());
  s.reply = j.value("r", std::string());
  s.relay = j.value("relay", std::string());
  s.delay_s = j.value("d", -1.0);
  s.at_us = j.value("at", std::int64_t{0});
  s.queue_id = j.value("q", std::string());
  return s;
}

}  // namespace

std::string DeliveryTable::recipient_key(std::string_view recipient) {
  std::string a = policy::consent_address(recipient);
  return a.empty() ? std::string(recipient) : a;
}

std::optional<DeliveryState> DeliveryTable::get(std::uint64_t message_id, std::string_view recipient) const {
  std::string_view v;
  if (h_.delivery == 0 || !lmdb::get(txn_, h_.delivery, keys::delivery(message_id, recipient_key(recipient)), v))
    return std::nullopt;
  return decode_state(v);
}

void DeliveryTable::put(std::uint64_t message_id, std::string_view recipient, const DeliveryState& s) {
  lmdb::put(txn_, h_.delivery, keys::delivery(message_id, recipient_key(recipient)), encode_state(s));
}

std::size_t DeliveryTable::forget(std::uint64_t message_id) {
  std::size_t n = 0;
  if (h_.delivery == 0) return n;
  auto id = lmdb::be64(message_id);
  for (const auto& e : lmdb::prefix_range(txn_, h_.delivery, std::string(lmdb::view(id)))) {
    e.erase();
    ++n;
  }
  return n;
}

bool DeliveryTable::forget(std::uint64_t message_id, std::string_view recipient) {
  return h_.delivery != 0 && lmdb::del(txn_, h_.delivery, keys::delivery(message_id, recipient_key(recipient)));
}

std::vector<std::pair<std::string, DeliveryState>> DeliveryTable::of(std::uint64_t message_id) const {
  std::vector<std::pair<std::string, DeliveryState>> out;
  if (h_.delivery == 0) return out;
  auto id = lmdb::be64(message_id);
  for (const auto& e : lmdb::prefix_range(txn_, h_.delivery, std::string(lmdb::view(id))))
    out.emplace_back(std::string(e.suffix()), decode_state(e.value));
  return out;
}

void DeliveryTable::scan(const std::function<bool(std::uint64_t, std::string_view, const DeliveryState&)>& fn,
                         std::uint64_t from_id) const {
  if (h_.delivery == 0) return;
  auto start = lmdb::be64(from_id);
  for (const auto& e : lmdb::prefix_range(txn_, h_.delivery, "", std::string(lmdb::view(start)))) {
    if (e.key.size() < 8) continue;
    if (!fn(lmdb::from_be64(e.key.substr(0, 8)), e.key.substr(8), decode_state(e.value))) break;
  }
}

void DeliveryTable::pend(std::uint64_t seq, std::int64_t first_seen_us, std::string_view line) {
  auto k = lmdb::be64(seq);
  lmdb::put(txn_, h_.delivery_pending, lmdb::view(k), cbor(json{{"at", first_seen_us}, {"line", std::string(line)}}));
}

std::vector<DeliveryTable::Pending> DeliveryTable::pending() const {
  std::vector<Pending> out;
  if (h_.delivery_pending == 0) return out;
  for (const auto& e : lmdb::prefix_range(txn_, h_.delivery_pending, "")) {
    if (e.key.size() != 8) continue;
    json j = json::from_cbor(e.value.begin(), e.value.end(), true, false);
    if (j.is_discarded()) continue;
    out.push_back(Pending{lmdb::from_be64(e.key), j.value("at", std::int64_t{0}), j.value("line", std::string())});
  }
  return out;
}

std::size_t DeliveryTable::pending_count() const {
  if (h_.delivery_pending == 0) return 0;
  MDB_stat st{};
  lmdb::check(mdb_stat(txn_.get(), h_.delivery_pending, &st), "mdb_stat");
  return st.ms_entries;
}

void DeliveryTable::unpend(std::uint64_t seq) {
  auto k = lmdb::be64(seq);
  lmdb::del(txn_, h_.delivery_pending, lmdb::view(k));
}

void DeliveryTable::chain(std::string_view next_queue_id, std::string_view recipient, std::uint64_t message_id) {
  auto v = lmdb::be64(message_id);
  lmdb::put(txn_, h_.delivery_chain, keys::chain(next_queue_id, recipient_key(recipient)), lmdb::view(v));
}

std::optional<std::uint64_t> DeliveryTable::chained(std::string_view queue_id, std::string_view recipient) const {
  std::string_view v;
  if (h_.delivery_chain == 0 ||
      !lmdb::get(txn_, h_.delivery_chain, keys::chain(queue_id, recipient_key(recipient)), v) || v.size() != 8)
    return std::nullopt;
  return lmdb::from_be64(v);
}

std::vector<std::pair<std::string, std::uint64_t>> DeliveryTable::chains_of(std::string_view queue_id) const {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  if (h_.delivery_chain == 0) return out;
  for (const auto& e : lmdb::prefix_range(txn_, h_.delivery_chain, keys::org_prefix(queue_id)))
    if (e.value.size() == 8) out.emplace_back(std::string(e.suffix()), lmdb::from_be64(e.value));
  return out;
}

std::vector<std::int64_t> DeliveryTable::expired(std::string_view org, std::string_view address, std::int64_t at_us,
                                                 std::int64_t window_start_us, std::size_t keep) {
  const std::string key = keys::consent(org, address);
  std::vector<std::int64_t> times;
  std::string_view v;
  if (lmdb::get(txn_, h_.delivery_expiries, key, v))
    for (std::size_t i = 0; i + 8 <= v.size(); i += 8) {
      auto t = static_cast<std::int64_t>(lmdb::from_be64(v.substr(i, 8)));
      if (t >= window_start_us) times.push_back(t);
    }
  times.push_back(at_us);
  if (times.size() > keep) times.erase(times.begin(), times.end() - static_cast<std::ptrdiff_t>(keep));
  std::string out;
  for (auto t : times) {
    auto b = lmdb::be64(static_cast<std::uint64_t>(t));
    out.append(b.data(), b.size());
  }
  lmdb::put(txn_, h_.delivery_expiries, key, out);
  return times;
}

void DeliveryTable::delivered(std::string_view org, std::string_view address) {
  if (h_.delivery_expiries != 0) lmdb::del(txn_, h_.delivery_expiries, keys::consent(org, address));
}

std::size_t DeliveryTable::unchain(std::string_view queue_id) {
  std::size_t n = 0;
  if (h_.delivery_chain == 0) return n;
  for (const auto& e : lmdb::prefix_range(txn_, h_.delivery_chain, keys::org_prefix(queue_id))) {
    e.erase();
    ++n;
  }
  return n;
}

}  // namespace cllavio::store
