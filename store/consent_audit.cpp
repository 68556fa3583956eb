// Consent states and the audit log that records every change to them.
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

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

std::string encode_consent(const policy::Consent& c) {
  return cbor(json{{"s", policy::to_string(c.state)}, {"at", c.at_us}, {"src", c.source}});
}

policy::Consent decode_consent(std::string_view bytes) {
  json j = json::from_cbor(bytes.begin(), bytes.end());
  policy::Consent c;
  c.state = policy::parse_consent_state(j.value("s", std::string())).value_or(policy::ConsentState::none);
  c.at_us = j.value("at", std::int64_t{0});
  c.source = j.value("src", std::string());
  return c;
}

AuditEntry decode_audit(std::uint64_t id, std::string_view bytes) {
  json j = json::from_cbor(bytes.begin(), bytes.end());
  AuditEntry e;
  e.id = id;
  e.at_us = j.value("at", std::int64_t{0});
  for (auto [field, name] : {std::pair{&e.actor, "actor"}, {&e.action, "action"}, {&e.org, "org"},
                             {&e.address, "address"}, {&e.from, "from"}, {&e.to, "to"}, {&e.source, "source"},
                             {&e.detail, "detail"}})
    *field = j.value(name, std::string());
  return e;
}

std::string state_name(policy::ConsentState s) { return std::string(policy::to_string(s)); }

}  // namespace

AuditEntry AuditLog::append(AuditEntry e) {
  std::uint64_t last = 0;
  {
    lmdb::Cursor cur(txn_, h_.audit);
    MDB_val k{}, v{};
    if (cur.get(k, v, MDB_LAST)) last = lmdb::from_be64(lmdb::view(k));
  }
  auto now = static_cast<std::uint64_t>(now_us_);
  e.id = now > last ? now : last + 1;
  if (e.at_us == 0) e.at_us = static_cast<std::int64_t>(now);
  auto key = lmdb::be64(e.id);
  lmdb::put(txn_, h_.audit, lmdb::view(key),
            cbor(json{{"at", e.at_us}, {"actor", e.actor}, {"action", e.action}, {"org", e.org},
                      {"address", e.address}, {"from", e.from}, {"to", e.to}, {"source", e.source},
                      {"detail", e.detail}}));
  return e;
}

void AuditLog::scan(std::int64_t since_us, const std::function<bool(const AuditEntry&)>& fn) const {
  if (h_.audit == 0) return;
  auto start = lmdb::be64(static_cast<std::uint64_t>(std::max<std::int64_t>(since_us, 0)));
  for (const auto& e : lmdb::prefix_range(txn_, h_.audit, "", std::string(lmdb::view(start))))
    if (!fn(decode_audit(lmdb::from_be64(e.key), e.value))) break;
}

std::string address_hash(std::string_view secret, std::string_view address) {
  if (secret.empty()) return {};
  std::string a = policy::consent_address(address);
  if (a.empty()) a = std::string(address);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(a.data()), a.size(), md, &len) == nullptr)
    throw std::runtime_error("HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string hex(std::string_view bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

policy::Consent ConsentTable::get(std::string_view org, std::string_view address) const {
  std::string_view bytes;
  if (h_.consent != 0 && lmdb::get(txn_, h_.consent, keys::consent(org, address), bytes)) return decode_consent(bytes);
  // An erased address that had unsubscribed (or bounced) stays suppressed: look for its
  // tombstone, hashing only when this org has any.
  if (h_.erased == 0) return {};
  {
    lmdb::Cursor cur(txn_, h_.erased);
    std::string prefix = keys::org_prefix(org);
    MDB_val k = lmdb::val(prefix), v{};
    if (!cur.get(k, v, MDB_SET_RANGE) || lmdb::view(k).substr(0, prefix.size()) != prefix) return {};
  }
  auto secret = Meta(txn_, h_.meta).get(keys::kEraseSecret);
  if (!secret) return {};
  return tombstone(org, address_hash(*secret, address)).value_or(policy::Consent{});
}

void ConsentTable::put_tombstone(const std::string& org, std::string_view hash, const policy::Consent& c) {
  lmdb::put(txn_, h_.erased, keys::erased(org, hash), encode_consent(c));
}

std::optional<policy::Consent> ConsentTable::tombstone(std::string_view org, std::string_view hash) const {
  std::string_view bytes;
  if (h_.erased == 0 || hash.empty() || !lmdb::get(txn_, h_.erased, keys::erased(org, hash), bytes))
    return std::nullopt;
  return decode_consent(bytes);
}

bool ConsentTable::remove_row(const std::string& org, const std::string& address) {
  return h_.consent != 0 && lmdb::del(txn_, h_.consent, keys::consent(org, address));
}

void ConsentTable::scan(const std::string& org,
                        const std::function<bool(const std::string&, const policy::Consent&)>& fn) const {
  if (h_.consent == 0) return;
  for (const auto& e : lmdb::prefix_range(txn_, h_.consent, keys::org_prefix(org)))
    if (!fn(std::string(e.suffix()), decode_consent(e.value))) break;
}

ConsentTable::Change ConsentTable::set(const std::string& org, const std::string& address, const policy::Consent& c,
                                       const std::string& actor, const std::string& action,
                                       const std::string& detail) {
  Change ch;
  ch.before = get(org, address);
  ch.changed = ch.before.state != c.state;
  if (!ch.changed) return ch;
  lmdb::put(txn_, h_.consent, keys::consent(org, address), encode_consent(c));
  ch.audit = audit_.append(
      AuditEntry{0, 0, actor, action, org, address, state_name(ch.before.state), state_name(c.state), c.source, detail});
  return ch;
}

ConsentTable::ImportResult ConsentTable::import(const std::string& org, const std::vector<ImportRow>& rows,
                                                const std::string& actor, const std::string& action,
                                                const std::string* cursor) {
  ImportResult r;
  for (const ImportRow& row : rows) {
    policy::Consent before = get(org, row.address);
    if (before.state == row.consent.state) {
      ++r.unchanged;
      continue;
    }
    if (before.state != policy::ConsentState::none && before.at_us > row.consent.at_us) {
      ++r.older;  // the store knows something newer (an unsubscribe after the export)
      continue;
    }
    lmdb::put(txn_, h_.consent, keys::consent(org, row.address), encode_consent(row.consent));
    r.audited.push_back(audit_.append(AuditEntry{0, 0, actor, action, org, row.address, state_name(before.state),
                                                 state_name(row.consent.state), row.consent.source, ""}));
    ++r.changed;
  }
  if (r.changed > 0 || cursor == nullptr)
    audit_.append(AuditEntry{0, 0, actor, action, org, "", "", "", cursor ? "api" : "import",
                             std::to_string(r.changed) + " changed, " + std::to_string(r.unchanged) + " unchanged, " +
                                 std::to_string(r.older) + " older than the stored state"});
  if (cursor != nullptr) Meta(txn_, h_.meta).put(keys::consent_cursor(org), *cursor);
  return r;
}

std::string ConsentTable::cursor(const std::string& org) const {
  return Meta(txn_, h_.meta).get(keys::consent_cursor(org)).value_or("");
}

}  // namespace cllavio::store
