// Export by address (store/export.hpp): records, consent, suppression and audit entries
// naming one address, read in the caller's transaction.
#include "store/export.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include "policy/consent.hpp"
#include "store/keys.hpp"

namespace cllavio::store {

namespace {

using ojson = nlohmann::ordered_json;
using nlohmann::json;

std::string normalized(std::string_view address) {
  std::string a = policy::consent_address(address);
  return a.empty() ? std::string(address) : a;
}

policy::Consent decode_consent(std::string_view bytes) {
  json j = json::from_cbor(bytes.begin(), bytes.end(), true, false);
  policy::Consent c;
  if (!j.is_object()) return c;
  c.state = policy::parse_consent_state(j.value("s", std::string())).value_or(policy::ConsentState::none);
  c.at_us = j.value("at", std::int64_t{0});
  c.source = j.value("src", std::string());
  return c;
}

ojson time_or_null(std::int64_t us) { return us != 0 ? ojson(format_time_us(us)) : ojson(nullptr); }

// The distinct orgs of a table keyed org '\0' ...: one seek per org, whatever it holds.
std::vector<std::string> orgs_of(lmdb::Txn& txn, MDB_dbi dbi) {
  std::vector<std::string> out;
  if (dbi == 0) return out;
  lmdb::Cursor cur(txn, dbi);
  MDB_val k{}, v{};
  for (bool ok = cur.get(k, v, MDB_FIRST); ok;) {
    std::string_view key = lmdb::view(k);
    std::size_t nul = key.find('\0');
    if (nul == std::string_view::npos) break;  // not an org-keyed entry: stop rather than loop
    std::string org(key.substr(0, nul));
    std::string next = keys::org_prefix(org);
    next.back() = '\1';  // the first key after every key of this org
    out.push_back(std::move(org));
    k = lmdb::val(next);
    ok = cur.get(k, v, MDB_SET_RANGE);
  }
  return out;
}

// The record's tracking outcome with its link table, present whether or not the org tracks.
ojson tracking_json(const MessageRecord& r) {
  ojson t = ojson::object();
  t["status"] = r.tracking.status;
  t["skipped"] = r.tracking.skipped;
  t["pixels"] = r.tracking.pixels;
  ojson links = ojson::array();
  for (const auto& l : r.tracking.links) links.push_back(ojson{{"index", l.index}, {"url", l.url}});
  t["links"] = std::move(links);
  t["links_kept"] = r.tracking.links_kept;
  t["per_recipient"] = r.tracking.per_recipient;
  if (!r.tracking.pixel_skipped.empty()) t["pixel_skipped"] = r.tracking.pixel_skipped;
  return t;
}

// What became of the mail to `address` in one record (the field names of `cllavioctl show`).
ojson delivery_of(const Tables& t, const MessageRecord& r, const std::string& address) {
  ojson out = ojson::array();
  for (const auto& rcpt : r.recipients) {
    if (normalized(rcpt) != address) continue;
    auto s = t.delivery.get(r.id, rcpt);
    if (!s) {
      out.push_back(ojson{{"recipient", rcpt}, {"state", r.action == "accept" ? "pending" : "none"}});
      break;
    }
    ojson d{{"recipient", rcpt}, {"state", s->state}, {"attempts", s->attempts}, {"dsn", s->dsn},
            {"reply", s->reply}, {"relay", s->relay}};
    d["delay_s"] = s->delay_s < 0 ? ojson(nullptr) : ojson(s->delay_s);
    d["at"] = format_time_us(s->at_us);
    d["queue_id"] = s->queue_id;
    out.push_back(std::move(d));
    break;  // one state per (record, address): recipients are keyed normalized
  }
  return out;
}

bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.empty()) return false;
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != hay.end();
}

}  // namespace

nlohmann::ordered_json export_address(const Tables& t, std::string_view address_in,
                                      const std::vector<std::string>& orgs_in, bool all_orgs) {
  const std::string address = normalized(address_in);
  const std::set<std::string> scope(orgs_in.begin(), orgs_in.end());
  auto in_scope = [&](const std::string& org) { return all_orgs || scope.count(org) > 0; };
  std::set<std::string> holding;  // orgs that hold something of it

  ojson messages = ojson::array();
  for (const auto& [id, roles] : t.records.by_address(address)) {
    auto rec = t.records.get(id);
    if (!rec || !in_scope(rec->org)) continue;
    ojson m = display_json(*rec);
    ojson r = ojson::array();
    if (roles & keys::sender) r.push_back("sender");
    if (roles & keys::recipient) r.push_back("recipient");
    if (roles & keys::suppressed) r.push_back("suppressed");
    m["roles"] = std::move(r);
    m["tracking"] = tracking_json(*rec);
    m["delivery"] = delivery_of(t, *rec, address);
    messages.push_back(std::move(m));
    if (!rec->org.empty()) holding.insert(rec->org);
  }

  // Consent and expiries are keyed org '\0' address: the orgs asked, or (all_orgs) every
  // org these tables hold, one lookup each. The raw rows only: an erased address's
  // tombstone is not its data (the export of an erased address finds nothing).
  const Handles& h = t.handles;
  auto orgs_to_look = [&](MDB_dbi dbi) {
    return all_orgs ? orgs_of(t.txn, dbi) : std::vector<std::string>(scope.begin(), scope.end());
  };
  ojson consent = ojson::array(), suppression = ojson::array();
  if (h.consent != 0)
    for (const auto& org : orgs_to_look(h.consent)) {
      std::string_view bytes;
      if (!lmdb::get(t.txn, h.consent, keys::consent(org, address), bytes)) continue;
      policy::Consent c = decode_consent(bytes);
      holding.insert(org);
      consent.push_back(ojson{{"org", org},
                              {"state", policy::to_string(c.state)},
                              {"at", time_or_null(c.at_us)},
                              {"source", c.source}});
      if (c.state == policy::ConsentState::unsubscribed || c.state == policy::ConsentState::bounced)
        suppression.push_back(ojson{{"org", org},
                                    {"state", policy::to_string(c.state)},
                                    {"since", time_or_null(c.at_us)},
                                    {"source", c.source}});
    }
  if (h.delivery_expiries != 0)
    for (const auto& org : orgs_to_look(h.delivery_expiries)) {
      std::string_view v;
      if (!lmdb::get(t.txn, h.delivery_expiries, keys::consent(org, address), v) || v.size() < 8) continue;
      std::int64_t latest = 0;
      std::size_t n = 0;
      for (std::size_t i = 0; i + 8 <= v.size(); i += 8, ++n)
        latest = std::max(latest, static_cast<std::int64_t>(lmdb::from_be64(v.substr(i, 8))));
      holding.insert(org);
      suppression.push_back(ojson{{"org", org}, {"expiries", n}, {"latest", time_or_null(latest)}});
    }

  ojson audit = ojson::array();
  t.audit.scan(0, [&](const AuditEntry& e) {
    if (!in_scope(e.org)) return true;
    bool names = (!e.address.empty() && normalized(e.address) == address) || contains_ci(e.detail, address) ||
                 (address_in != address && contains_ci(e.detail, address_in));
    if (!names) return true;
    audit.push_back(ojson{{"at", format_time_us(e.at_us)}, {"actor", e.actor}, {"action", e.action},
                          {"org", e.org}, {"address", e.address}, {"from", e.from}, {"to", e.to},
                          {"source", e.source}, {"detail", e.detail}});
    if (!e.org.empty()) holding.insert(e.org);
    return true;
  });

  ojson out = ojson::object();
  out["address"] = address;
  out["orgs"] = std::vector<std::string>(holding.begin(), holding.end());
  out["messages"] = std::move(messages);
  out["consent"] = std::move(consent);
  out["suppression"] = std::move(suppression);
  out["audit"] = std::move(audit);
  return out;
}

}  // namespace cllavio::store
