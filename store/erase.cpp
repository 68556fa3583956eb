// Erase by address (store/erase.hpp): every table, in the caller's write transaction.
#include "store/erase.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "policy/consent.hpp"
#include "store/keys.hpp"

namespace cllavio::store {

namespace {

using nlohmann::json;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// What one erase looks for: the address normalized, and lowercased for free text.
struct Target {
  std::string address, lowered;
  bool is(std::string_view raw) const { return policy::consent_address(raw) == address; }
  // Free text quoting it (without case): not inside a longer address ("jimbob@...", "...net.example").
  bool in_text(std::string_view text) const {
    std::string l = lower(text);
    auto local = [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || std::string_view(".!#$%&'*+/=?^_`{|}~-").find(c) != std::string_view::npos;
    };
    auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    for (std::size_t at = l.find(lowered); at != std::string::npos; at = l.find(lowered, at + 1)) {
      std::size_t end = at + lowered.size();
      if (at > 0 && local(l[at - 1])) continue;
      if (end < l.size() && (alnum(l[end]) || l[end] == '-' ||
                             (l[end] == '.' && end + 1 < l.size() && alnum(l[end + 1]))))
        continue;
      return true;
    }
    return false;
  }
  // A value that is an address is compared normalized; any other text is searched.
  bool names(std::string_view s) const {
    std::string a = policy::consent_address(s);
    return a.empty() ? in_text(s) : a == address;
  }
};

// Per org: what went (the audit entry's detail).
struct Counts {
  std::uint64_t records_deleted = 0, records_edited = 0, delivery_states = 0, consent_rows = 0, tombstones = 0,
                audit_entries = 0, events_dropped = 0, events_edited = 0, dead_letters = 0, chains = 0,
                expiries = 0;
};

enum class Fate { keep, edited, drop };

// An event's JSON without the address: removed where it is one element of an array of
// strings, the whole event dropped where it is any other string value (or text quoting
// it), or where it was the only element of a `recipients` list.
Fate scrub(json& j, const Target& t) {
  Fate fate = Fate::keep;
  auto worse = [&](Fate f) {
    if (f == Fate::drop) fate = Fate::drop;
    else if (f == Fate::edited && fate == Fate::keep) fate = Fate::edited;
  };
  if (j.is_object()) {
    for (auto& [key, v] : j.items()) {
      if (v.is_string()) {
        if (t.names(v.get_ref<const std::string&>())) return Fate::drop;
      } else {
        Fate f = scrub(v, t);
        // A list of recipients it was the only one of: the event was about it alone.
        if (f == Fate::edited && key == "recipients" && v.is_array() && v.empty()) return Fate::drop;
        worse(f);
        if (fate == Fate::drop) return fate;
      }
    }
  } else if (j.is_array()) {
    for (auto it = j.begin(); it != j.end();) {
      if (it->is_string()) {
        const auto& s = it->get_ref<const std::string&>();
        if (t.is(s)) {
          it = j.erase(it);
          worse(Fate::edited);
          continue;
        }
        if (t.names(s)) return Fate::drop;
      } else {
        worse(scrub(*it, t));
        if (fate == Fate::drop) return fate;
      }
      ++it;
    }
  } else if (j.is_string()) {
    if (t.names(j.get_ref<const std::string&>())) return Fate::drop;
  }
  return fate;
}

// An event as stored (JSON text): its fate and, when edited, its new text.
Fate scrub_text(std::string_view text, const Target& t, std::string& out) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return t.in_text(text) ? Fate::drop : Fate::keep;
  Fate f = scrub(j, t);
  if (f == Fate::edited) out = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return f;
}

std::string detail_of(const std::string& hash_hex, const Counts& c, std::uint64_t pending_lines) {
  auto n = [](std::uint64_t v) { return std::to_string(v); };
  return "hash=" + hash_hex + " records deleted " + n(c.records_deleted) + ", edited " + n(c.records_edited) +
         ", delivery states " + n(c.delivery_states) + ", consent rows " + n(c.consent_rows) + ", tombstones " +
         n(c.tombstones) + ", audit entries " + n(c.audit_entries) + ", events dropped " + n(c.events_dropped) +
         ", edited " + n(c.events_edited) + ", dead letters " + n(c.dead_letters) + ", chains " + n(c.chains) +
         ", expiries " + n(c.expiries) + ", waiting log lines " + n(pending_lines);
}

}  // namespace

EraseReport erase_address(Tables& t, const EraseRequest& req) {
  Target target;
  target.address = policy::consent_address(req.address);
  if (target.address.empty()) throw std::invalid_argument("not an address: " + req.address.substr(0, 200));
  target.lowered = lower(target.address);
  auto secret = t.meta.get(keys::kEraseSecret);
  if (!secret || secret->empty()) throw std::runtime_error("the store has no erase secret (open it writable once)");

  const Handles& h = t.handles;
  lmdb::Txn& txn = t.txn;
  EraseReport r;
  r.address = target.address;
  const std::string hash = address_hash(*secret, target.address);
  r.hash_hex = hex(hash);

  std::set<std::string> named(req.orgs.begin(), req.orgs.end());
  auto in_scope = [&](const std::string& org) { return req.all_orgs || named.count(org) > 0; };
  std::map<std::string, Counts> per_org;  // orgs that held something of the address

  // Queue-id chains first: their org is their record's, which may go below. A chain
  // whose record is gone already belongs to no org: it goes too.
  if (h.delivery_chain != 0) {
    for (const auto& e : lmdb::prefix_range(txn, h.delivery_chain, "")) {
      auto nul = e.key.find('\0');
      if (nul == std::string_view::npos || !target.is(e.key.substr(nul + 1))) continue;
      std::optional<MessageRecord> rec;
      if (e.value.size() == 8) rec = t.records.get(lmdb::from_be64(e.value));
      if (rec && !in_scope(rec->org)) continue;
      e.erase();
      ++r.chains;
      if (rec) ++per_org[rec->org].chains;
    }
  }

  // Records, through the address index.
  for (const auto& [id, roles] : t.records.by_address(target.address)) {
    auto rec = t.records.get(id);
    if (!rec) {  // an index entry without its record: it names the address, it goes
      lmdb::del(txn, h.by_address, keys::address(target.address, id));
      continue;
    }
    if (!in_scope(rec->org)) continue;
    Counts& c = per_org[rec->org];
    auto without = [&](std::vector<std::string>& list) {
      std::size_t before = list.size();
      std::erase_if(list, [&](const std::string& a) { return target.is(a); });
      return before != list.size();
    };
    MessageRecord edited = *rec;
    without(edited.recipients);
    without(edited.suppressed);
    if (target.is(rec->sender) || (edited.recipients.empty() && edited.suppressed.empty())) {
      t.records.remove(id);
      std::size_t states = t.delivery.forget(id);
      r.delivery_states += states;
      c.delivery_states += states;
      ++r.records_deleted;
      ++c.records_deleted;
      continue;
    }
    if (target.is(edited.sasl_login)) edited.sasl_login.clear();
    t.records.replace(edited);  // recipient_count stays: how many there were
    if (t.delivery.forget(id, target.address)) {
      ++r.delivery_states;
      ++c.delivery_states;
    }
    // Another recipient's state whose reply quotes the address goes too.
    for (const auto& [rcpt, st] : t.delivery.of(id))
      if (target.in_text(st.reply) || target.in_text(st.relay) || target.in_text(st.dsn)) {
        t.delivery.forget(id, rcpt);
        ++r.delivery_states;
        ++c.delivery_states;
      }
    ++r.records_edited;
    ++c.records_edited;
  }

  // Soft-bounce expiries: org '\0' address.
  if (h.delivery_expiries != 0) {
    for (const auto& e : lmdb::prefix_range(txn, h.delivery_expiries, "")) {
      auto nul = e.key.find('\0');
      if (nul == std::string_view::npos) continue;
      std::string org(e.key.substr(0, nul));
      if (!in_scope(org) || !target.is(e.key.substr(nul + 1))) continue;
      e.erase();
      ++r.expiries;
      ++per_org[org].expiries;
    }
  }

  // Consent rows, with a tombstone for a suppressing state.
  auto erase_consent = [&](const std::string& org, const std::string& stored_address) {
    policy::Consent c = t.consent.get(org, stored_address);
    Counts& pc = per_org[org];
    if (c.state == policy::ConsentState::unsubscribed || c.state == policy::ConsentState::bounced) {
      t.consent.put_tombstone(org, hash, c);
      ++r.tombstones;
      ++pc.tombstones;
    }
    if (t.consent.remove_row(org, stored_address)) {
      ++r.consent_rows;
      ++pc.consent_rows;
    }
  };
  if (h.consent != 0) {
    std::vector<std::pair<std::string, std::string>> rows;  // org, address as stored
    if (req.all_orgs) {
      for (const auto& e : lmdb::prefix_range(txn, h.consent, "")) {
        auto nul = e.key.find('\0');
        if (nul != std::string_view::npos && target.is(e.key.substr(nul + 1)))
          rows.emplace_back(std::string(e.key.substr(0, nul)), std::string(e.key.substr(nul + 1)));
      }
    } else {
      for (const auto& org : named) {
        std::string_view v;
        if (lmdb::get(txn, h.consent, keys::consent(org, target.address), v)) rows.emplace_back(org, target.address);
      }
    }
    for (const auto& [org, addr] : rows) erase_consent(org, addr);
  }

  // Audit entries naming it (before the erasure's own entries are written).
  if (h.audit != 0) {
    for (const auto& e : lmdb::prefix_range(txn, h.audit, "")) {
      json j = json::from_cbor(e.value.begin(), e.value.end(), true, false);
      if (j.is_discarded() || !j.is_object()) continue;
      std::string org = j.value("org", std::string());
      if (!in_scope(org)) continue;
      if (!target.names(j.value("address", std::string())) && !target.in_text(j.value("detail", std::string())))
        continue;
      e.erase();
      ++r.audit_entries;
      ++per_org[org].audit_entries;
    }
  }

  // Queued events, keeping the outbox's byte count right.
  if (h.outbox != 0) {
    std::int64_t delta = 0;
    std::vector<std::pair<std::string, std::string>> rewrites;  // written after the walk
    for (const auto& e : lmdb::prefix_range(txn, h.outbox, "")) {
      auto k = keys::parse_outbox(e.key);
      if (!k || !in_scope(k->first) || e.value.size() < 8) continue;
      std::string_view text = e.value.substr(8);
      std::string rewritten;
      Fate f = scrub_text(text, target, rewritten);
      if (f == Fate::keep) continue;
      Counts& c = per_org[k->first];
      if (f == Fate::drop) {
        delta -= static_cast<std::int64_t>(text.size() + 8);
        e.erase();
        ++r.events_dropped;
        ++c.events_dropped;
      } else {
        delta += static_cast<std::int64_t>(rewritten.size()) - static_cast<std::int64_t>(text.size());
        std::string value(e.value.substr(0, 8));
        value += rewritten;
        rewrites.emplace_back(std::string(e.key), std::move(value));
        ++r.events_edited;
        ++c.events_edited;
      }
    }
    for (const auto& [key, value] : rewrites) lmdb::put(txn, h.outbox, key, value);
    if (delta != 0) {
      std::uint64_t bytes = t.meta.u64(keys::kOutboxBytes);
      std::int64_t now = static_cast<std::int64_t>(bytes) + delta;
      t.meta.put_u64(keys::kOutboxBytes, now < 0 ? 0 : static_cast<std::uint64_t>(now));
    }
  }

  // Dead letters: CBOR {org, event, error, at}; the error text may quote the address too.
  if (h.outbox_dead != 0) {
    std::vector<std::pair<std::string, std::string>> rewrites;
    for (const auto& e : lmdb::prefix_range(txn, h.outbox_dead, "")) {
      json j = json::from_cbor(e.value.begin(), e.value.end(), true, false);
      if (j.is_discarded() || !j.is_object()) continue;
      std::string org = j.value("org", std::string());
      if (!in_scope(org)) continue;
      std::string event = j.value("event", std::string()), rewritten;
      Fate f = scrub_text(event, target, rewritten);
      if (f != Fate::drop && target.in_text(j.value("error", std::string()))) f = Fate::drop;
      if (f == Fate::keep) continue;
      ++r.dead_letters;
      ++per_org[org].dead_letters;
      if (f == Fate::drop) {
        e.erase();
        continue;
      }
      j["event"] = rewritten;
      auto bytes = json::to_cbor(j);
      rewrites.emplace_back(std::string(e.key), std::string(bytes.begin(), bytes.end()));
    }
    for (const auto& [key, value] : rewrites) lmdb::put(txn, h.outbox_dead, key, value);
  }

  // Log lines waiting for their record: raw text, no org.
  if (h.delivery_pending != 0) {
    for (const auto& e : lmdb::prefix_range(txn, h.delivery_pending, "")) {
      json j = json::from_cbor(e.value.begin(), e.value.end(), true, false);
      std::string line = j.is_object() ? j.value("line", std::string()) : std::string(e.value);
      if (!target.in_text(line)) continue;
      e.erase();
      ++r.pending_lines;
    }
  }

  // The orgs concerned, each with its audit entry.
  if (req.all_orgs) {
    for (const auto& [org, c] : per_org) r.orgs.push_back(org);
  } else {
    r.orgs.assign(named.begin(), named.end());
  }
  if (r.orgs.empty()) r.orgs.push_back("");  // all_orgs and nothing held: the request is still on record
  for (const auto& org : r.orgs) {
    auto it = per_org.find(org);
    r.audited.push_back(t.audit.append(AuditEntry{0, 0, req.actor, "subject.erase", org, "", "", "", req.source,
                                                   detail_of(r.hash_hex, it == per_org.end() ? Counts{} : it->second,
                                                             r.pending_lines)}));
  }
  return r;
}

}  // namespace cllavio::store
