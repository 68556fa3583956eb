#include "core/event.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace cllavio::core {

using nlohmann::json;

std::string rfc3339_us(std::int64_t unix_us) { return store::format_time_us(unix_us); }

namespace {

json message_of(const store::MessageRecord& r, bool with_size) {
  json m{{"id", store::format_id(r.id)},
         {"queue_id", r.queue_id},
         {"message_id", r.message_id},
         {"from", r.sender},
         {"recipients", r.recipients},
         {"stream", r.stream.empty() ? json(nullptr) : json(r.stream)}};
  if (with_size) m["size"] = r.size;
  return m;
}

std::string rejection_reason(const store::MessageRecord& r) {
  if (r.reason == "quota" || r.reason == "suppression" || r.reason == "unknown_org") return r.reason;
  return "policy";
}

}  // namespace

std::optional<Event> from_record(const store::MessageRecord& r) {
  if (r.org.empty() || r.id == 0) return std::nullopt;  // no org to send it to
  Event e;
  e.org = r.org;
  e.occurred_at_us = r.received_at_us;
  std::string id = store::format_id(r.id);
  if (r.action == "accept") {
    e.id = "evt_" + id + "_accepted";
    e.type = "message.accepted";
    e.payload["message"] = message_of(r, true);
    if (r.tracking.status.empty()) {
      e.payload["tracking"] = nullptr;
    } else {
      json tokens = json::array();
      for (const auto& l : r.tracking.links) tokens.push_back({{"link", l.index}, {"url", l.url}});
      e.payload["tracking"] = {{"pixel", r.tracking.pixels > 0},
                               {"links_rewritten", r.tracking.links.size()},
                               {"tokens", std::move(tokens)},
                               {"recipient_count", r.recipient_count},
                               {"skipped", r.tracking.skipped.empty() ? json(nullptr) : json(r.tracking.skipped)}};
    }
    return e;
  }
  if (r.action == "reject" || (r.action == "tempfail" && (r.reason == "quota" || r.reason == "suppression"))) {
    e.id = "evt_" + id + "_rejected";
    e.type = "message.rejected";
    e.payload["message"] = message_of(r, r.size != 0);
    e.payload["reason"] = rejection_reason(r);
    return e;
  }
  return std::nullopt;  // a tempfail for an internal error: the client retries, the retry is the event
}

namespace {

// JSON text as nlohmann's dump(-1, ' ', false, replace) writes it. Printable ASCII
// without '"' and '\\' is written as is; anything else (escapes, UTF-8, invalid bytes)
// goes through nlohmann, so the bytes are the same whatever the text.
// A byte that put_string must give to nlohmann: a control, DEL, >= 0x80, '"' or '\\'.
// 16 bytes per step (the link table's URLs are most of an event's text).
bool needs_escape(std::string_view s) {
  const char* d = s.data();
  const std::size_t n = s.size();
  std::size_t i = 0;
#if defined(__SSE2__)
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i));
    // As signed bytes, < 0x20 is the controls and every byte >= 0x80.
    __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
    const __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"')), backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    bad = _mm_or_si128(bad, _mm_or_si128(quote, backslash));
    if (_mm_movemask_epi8(bad) != 0) return true;
  }
#endif
  for (; i < n; ++i) {
    auto u = static_cast<unsigned char>(d[i]);
    if (u < 0x20 || u >= 0x7f || d[i] == '"' || d[i] == '\\') return true;
  }
  return false;
}

void put_string(std::string& out, std::string_view s) {
  if (needs_escape(s)) {
    out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
    return;
  }
  out.push_back('"');
  out.append(s);
  out.push_back('"');
}

void put_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out.append(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

// message.accepted as to_text(to_json(from_record(r))) writes it: keys sorted at every level.
std::string accepted_text(const store::MessageRecord& r) {
  std::size_t reserve = 512 + r.message_id.size() + r.sender.size();
  for (const auto& a : r.recipients) reserve += a.size() + 3;
  for (const auto& l : r.tracking.links) reserve += l.url.size() + 24;
  std::string out;
  out.reserve(reserve);
  const std::string id = store::format_id(r.id);
  out += "{\"id\":\"evt_" + id + "_accepted\",\"message\":{\"from\":";
  put_string(out, r.sender);
  out += ",\"id\":\"" + id + "\",\"message_id\":";
  put_string(out, r.message_id);
  out += ",\"queue_id\":";
  put_string(out, r.queue_id);
  out += ",\"recipients\":[";
  for (std::size_t i = 0; i < r.recipients.size(); ++i) {
    if (i) out.push_back(',');
    put_string(out, r.recipients[i]);
  }
  out += "],\"size\":";
  put_uint(out, r.size);
  out += ",\"stream\":";
  if (r.stream.empty()) out += "null";
  else put_string(out, r.stream);
  out += "},\"occurred_at\":\"" + rfc3339_us(r.received_at_us) + "\",\"org\":";
  put_string(out, r.org);
  out += ",\"tracking\":";
  if (r.tracking.status.empty()) {
    out += "null";
  } else {
    out += "{\"links_rewritten\":";
    put_uint(out, r.tracking.links.size());
    out += r.tracking.pixels > 0 ? ",\"pixel\":true" : ",\"pixel\":false";
    out += ",\"recipient_count\":";
    put_uint(out, r.recipient_count);
    out += ",\"skipped\":";
    if (r.tracking.skipped.empty()) out += "null";
    else put_string(out, r.tracking.skipped);
    out += ",\"tokens\":[";
    for (std::size_t i = 0; i < r.tracking.links.size(); ++i) {
      out += i ? ",{\"link\":" : "{\"link\":";
      put_uint(out, r.tracking.links[i].index);
      out += ",\"url\":";
      put_string(out, r.tracking.links[i].url);
      out.push_back('}');
    }
    out += "]}";
  }
  out += ",\"type\":\"message.accepted\"}";
  return out;
}

}  // namespace

std::string record_event_text(const store::MessageRecord& r) {
  if (r.org.empty() || r.id == 0) return {};
  if (r.action == "accept") return accepted_text(r);
  auto e = from_record(r);
  return e ? to_text(*e) : std::string();
}

namespace {

// FNV-1a 64 of the recipient as the store keys it: short, stable, no address in the id.
std::string recipient_tag(std::string_view recipient) {
  std::string key = store::DeliveryTable::recipient_key(recipient);
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return store::format_id(h);
}

}  // namespace

namespace {

std::string delivery_id(const store::MessageRecord& r, std::string_view recipient, const store::DeliveryState& s) {
  std::string id = "evt_" + store::format_id(r.id) + "_" + s.state + "_" + recipient_tag(recipient);
  if (s.state == "deferred") id += "_" + std::to_string(s.attempts);
  return id;
}

json delivery_of(std::string_view recipient, const store::DeliveryState& s) {
  return {{"recipient", std::string(recipient)},
          {"status", s.state},
          {"dsn", s.dsn},
          {"reply", s.reply},
          {"relay", s.relay},
          {"delay_s", s.delay_s < 0 ? json(nullptr) : json(s.delay_s)},
          {"attempt", s.attempts}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

Event delivery_event(const store::MessageRecord& r, std::string_view recipient, const store::DeliveryState& s) {
  Event e;
  e.org = r.org;
  e.occurred_at_us = s.at_us;
  e.type = "message." + s.state;
  e.id = delivery_id(r, recipient, s);
  e.payload["message"] = message_of(r, true);
  e.payload["delivery"] = delivery_of(recipient, s);
  return e;
}

std::string message_text(const store::MessageRecord& r) { return dump(message_of(r, true)); }

std::string delivery_event_text(const store::MessageRecord& r, std::string_view message_text,
                                std::string_view recipient, const store::DeliveryState& s) {
  // The keys in to_json's order (nlohmann objects are sorted): id, type, occurred_at, org,
  // then the payload's delivery and message.
  std::string out = "{\"id\":" + dump(delivery_id(r, recipient, s)) + ",\"type\":\"message." + s.state +
                    "\",\"occurred_at\":\"" + rfc3339_us(s.at_us) + "\",\"org\":" + dump(r.org) +
                    ",\"delivery\":" + dump(delivery_of(recipient, s)) + ",\"message\":";
  out.append(message_text);
  out.push_back('}');
  return out;
}

Event rejected_after_milter_event(const store::MessageRecord& r, std::int64_t at_us, const std::string& detail) {
  Event e;
  e.org = r.org;
  e.occurred_at_us = at_us;
  e.id = "evt_" + store::format_id(r.id) + "_rejected";
  e.type = "message.rejected";
  e.payload["message"] = message_of(r, true);
  e.payload["reason"] = "after_milter";
  e.payload["detail"] = detail;
  return e;
}

Event from_audit(const store::AuditEntry& a) {
  Event e;
  e.id = "evt_audit_" + store::format_id(a.id);
  e.type = "consent.changed";
  e.occurred_at_us = a.at_us;
  e.org = a.org;
  e.payload["consent"] = {{"address", a.address}, {"from", a.from}, {"to", a.to}, {"source", a.source}};
  return e;
}

Event subject_erased_event(const std::string& org, const std::string& address, std::int64_t at_us,
                           const std::string& source, std::uint64_t audit_id) {
  Event e;
  e.id = "evt_audit_" + store::format_id(audit_id) + "_erased_" + org;
  e.type = "subject.erased";
  e.occurred_at_us = at_us;
  e.org = org;
  e.payload["subject"] = {{"address", address}, {"source", source}};
  return e;
}

json to_json(const Event& e) {
  json j{{"id", e.id}, {"type", e.type}, {"occurred_at", rfc3339_us(e.occurred_at_us)}, {"org", e.org}};
  for (const auto& [k, v] : e.payload.items()) j[k] = v;
  return j;
}

std::string to_text(const Event& e) { return to_json(e).dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace cllavio::core
