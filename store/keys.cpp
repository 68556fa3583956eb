#include "store/keys.hpp"

#include "store/lmdb.hpp"

namespace cllavio::store::keys {

namespace {

void append_be64(std::string& k, std::uint64_t v) {
  auto b = lmdb::be64(v);
  k.append(b.data(), b.size());
}

}  // namespace

std::string org_prefix(std::string_view org) {
  std::string k(org);
  k.push_back('\0');
  return k;
}

std::string consent(std::string_view org, std::string_view address) { return org_prefix(org).append(address); }

std::string quota(std::string_view org, std::int64_t at_us, std::uint64_t message_id) {
  std::string k = org_prefix(org);
  append_be64(k, static_cast<std::uint64_t>(at_us));
  append_be64(k, message_id);
  return k;
}

std::optional<QuotaKey> parse_quota(std::string_view suffix) {
  if (suffix.size() != 16) return std::nullopt;
  return QuotaKey{static_cast<std::int64_t>(lmdb::from_be64(suffix.substr(0, 8))), lmdb::from_be64(suffix.substr(8))};
}

std::string outbox(std::string_view org, std::uint64_t seq) {
  std::string k = org_prefix(org);
  append_be64(k, seq);
  return k;
}

std::optional<std::pair<std::string, std::uint64_t>> parse_outbox(std::string_view key) {
  std::size_t nul = key.find('\0');
  if (nul == std::string_view::npos || key.size() != nul + 9) return std::nullopt;
  return std::pair{std::string(key.substr(0, nul)), lmdb::from_be64(key.substr(nul + 1))};
}

std::string address_prefix(std::string_view address) { return org_prefix(address); }

std::string address(std::string_view address, std::uint64_t message_id) {
  std::string k = address_prefix(address);
  append_be64(k, message_id);
  return k;
}

std::string delivery(std::uint64_t message_id, std::string_view recipient) {
  std::string k;
  append_be64(k, message_id);
  return k.append(recipient);
}

std::string chain(std::string_view queue_id, std::string_view recipient) {
  return org_prefix(queue_id).append(recipient);
}

std::string by_org_prefix(std::string_view org, char kind) {
  std::string k = org_prefix(org);
  k.push_back(kind);
  return k;
}

std::string by_org(std::string_view org, char kind, std::uint64_t message_id) {
  std::string k = by_org_prefix(org, kind);
  append_be64(k, message_id);
  return k;
}

std::string erased(std::string_view org, std::string_view hash) { return org_prefix(org).append(hash); }

std::string quota_epoch(std::string_view org) { return "quota_epoch:" + std::string(org); }
std::string consent_cursor(std::string_view org) { return "consent_cursor:" + std::string(org); }
std::string erasure_cursor(std::string_view org) { return "erasure_cursor:" + std::string(org); }

}  // namespace cllavio::store::keys
