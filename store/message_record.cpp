#include "store/message_record.hpp"

#include <algorithm>
#include <ctime>

namespace cllavio::store {

using nlohmann::json;

namespace {

// The one field mapping, in display order; JSON object type is a parameter so that
// the store (json) and people (ordered_json) share it. The link table is the one
// difference: people read [{"index","url"}...], the store keeps two parallel arrays
// (a 500-link newsletter costs a fifth of the allocations and bytes).
template <class Json>
void put_fields(Json& j, const MessageRecord& r, bool compact_links) {
  j["queue_id"] = r.queue_id;
  j["org"] = r.org;
  j["identified_by"] = r.identified_by;
  j["action"] = r.action;
  j["reason"] = r.reason;
  j["client_addr"] = r.client_addr;
  j["client_name"] = r.client_name;
  j["sasl_login"] = r.sasl_login;
  j["from"] = r.sender;
  j["recipients"] = r.recipients;
  j["recipient_count"] = r.recipient_count;
  j["message_id"] = r.message_id;
  j["size"] = r.size;
  if (!r.stream.empty()) j["stream"] = r.stream;
  if (!r.suppressed.empty()) j["suppressed"] = r.suppressed;
  if (r.quota_charged_at_us != 0) j["quota_charged_at_us"] = r.quota_charged_at_us;
  if (!r.quota_txn.empty()) j["quota_txn"] = r.quota_txn;
  if (!r.list_unsubscribe.empty()) j["list_unsubscribe"] = r.list_unsubscribe;
  if (!r.tracking.status.empty()) {
    Json t = Json::object();
    t["status"] = r.tracking.status;
    t["skipped"] = r.tracking.skipped;
    t["pixels"] = r.tracking.pixels;
    if (compact_links) {
      Json index = Json::array(), url = Json::array();
      index.template get_ref<typename Json::array_t&>().reserve(r.tracking.links.size());
      url.template get_ref<typename Json::array_t&>().reserve(r.tracking.links.size());
      for (const auto& l : r.tracking.links) {
        index.push_back(l.index);
        url.push_back(l.url);
      }
      t["link_index"] = std::move(index);
      t["link_url"] = std::move(url);
    } else {
      Json links = Json::array();
      for (const auto& l : r.tracking.links) links.push_back(Json{{"index", l.index}, {"url", l.url}});
      t["links"] = std::move(links);
    }
    t["links_kept"] = r.tracking.links_kept;
    t["per_recipient"] = r.tracking.per_recipient;
    if (!r.tracking.pixel_skipped.empty()) t["pixel_skipped"] = r.tracking.pixel_skipped;
    j["tracking"] = std::move(t);
  }
}

}  // namespace

json to_json(const MessageRecord& r) {
  json j = json::object();
  put_fields(j, r, true);
  j["received_at_us"] = r.received_at_us;
  return j;
}

MessageRecord from_json(const json& j) {
  MessageRecord r;
  auto str = [&](const char* k, std::string& out) {
    if (auto it = j.find(k); it != j.end()) out = it->get<std::string>();
  };
  str("queue_id", r.queue_id);
  str("org", r.org);
  str("identified_by", r.identified_by);
  str("client_addr", r.client_addr);
  str("client_name", r.client_name);
  str("sasl_login", r.sasl_login);
  str("from", r.sender);
  str("message_id", r.message_id);
  str("action", r.action);
  str("reason", r.reason);
  str("stream", r.stream);
  str("list_unsubscribe", r.list_unsubscribe);
  if (auto it = j.find("suppressed"); it != j.end()) r.suppressed = it->get<std::vector<std::string>>();
  if (auto it = j.find("quota_charged_at_us"); it != j.end()) r.quota_charged_at_us = it->get<std::int64_t>();
  if (auto it = j.find("quota_txn"); it != j.end()) r.quota_txn = it->get<std::string>();
  if (auto it = j.find("recipients"); it != j.end()) r.recipients = it->get<std::vector<std::string>>();
  if (auto it = j.find("size"); it != j.end()) r.size = it->get<std::uint64_t>();
  r.recipient_count = r.recipients.size();
  if (auto it = j.find("recipient_count"); it != j.end()) r.recipient_count = it->get<std::uint64_t>();
  if (auto it = j.find("tracking"); it != j.end() && it->is_object()) {
    const json& t = *it;
    r.tracking.status = t.value("status", std::string());
    r.tracking.skipped = t.value("skipped", std::string());
    r.tracking.pixels = t.value("pixels", 0u);
    r.tracking.links_kept = t.value("links_kept", 0u);
    r.tracking.per_recipient = t.value("per_recipient", false);
    r.tracking.pixel_skipped = t.value("pixel_skipped", std::string());
    auto index = t.find("link_index"), url = t.find("link_url");
    if (index != t.end() && url != t.end() && index->is_array() && url->is_array()) {
      // at(): arrays of different lengths raise json::out_of_range, like any corrupt record.
      std::size_t n = std::max(index->size(), url->size());
      r.tracking.links.reserve(n);
      for (std::size_t i = 0; i < n; ++i)
        r.tracking.links.push_back({index->at(i).get<std::uint32_t>(), url->at(i).get<std::string>()});
    }
  }
  if (auto it = j.find("received_at_us"); it != j.end()) r.received_at_us = it->get<std::int64_t>();
  return r;
}

namespace {

// CBOR (RFC 8949) as nlohmann::json::to_cbor writes to_json(r): definite lengths, the
// shortest heads, map keys in to_json's (sorted) order, text as given. Written in one
// pass straight from the record: no JSON tree, no copy of the link table.
class CborWriter {
 public:
  explicit CborWriter(std::string& out) : out_(out) {}
  void head(unsigned major, std::uint64_t n) {
    const auto m = static_cast<char>(major << 5);
    if (n <= 0x17) {
      out_.push_back(static_cast<char>(m | static_cast<char>(n)));
    } else if (n <= 0xff) {
      out_.push_back(static_cast<char>(m | 0x18));
      out_.push_back(static_cast<char>(n));
    } else if (n <= 0xffff) {
      out_.push_back(static_cast<char>(m | 0x19));
      be(n, 2);
    } else if (n <= 0xffffffff) {
      out_.push_back(static_cast<char>(m | 0x1a));
      be(n, 4);
    } else {
      out_.push_back(static_cast<char>(m | 0x1b));
      be(n, 8);
    }
  }
  void text(std::string_view s) {
    head(3, s.size());
    out_.append(s);
  }
  void key(std::string_view k) { text(k); }
  void uint(std::uint64_t v) { head(0, v); }
  void sint(std::int64_t v) {
    if (v >= 0) head(0, static_cast<std::uint64_t>(v));
    else head(1, static_cast<std::uint64_t>(-1 - v));
  }
  void boolean(bool b) { out_.push_back(b ? '\xf5' : '\xf4'); }
  void texts(const std::vector<std::string>& v) {
    head(4, v.size());
    for (const auto& s : v) text(s);
  }

 private:
  void be(std::uint64_t n, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out_.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  std::string& out_;
};

std::size_t text_bytes(const std::vector<std::string>& v) {
  std::size_t n = 0;
  for (const auto& s : v) n += s.size() + 9;
  return n;
}

}  // namespace

std::string encode(const MessageRecord& r) {
  const TrackingOutcome& t = r.tracking;
  const bool tracked = !t.status.empty();
  std::size_t reserve = 512 + text_bytes(r.recipients) + text_bytes(r.suppressed) + r.message_id.size() +
                        r.client_name.size() + r.sender.size() + r.sasl_login.size();
  for (const auto& l : t.links) reserve += l.url.size() + 14;
  std::string out;
  out.reserve(reserve);
  CborWriter w(out);
  w.head(5, 14 + !r.list_unsubscribe.empty() + (r.quota_charged_at_us != 0) + !r.quota_txn.empty() +
                !r.stream.empty() + !r.suppressed.empty() + tracked);
  // The keys in byte order, as a sorted JSON object gives them.
  w.key("action"), w.text(r.action);
  w.key("client_addr"), w.text(r.client_addr);
  w.key("client_name"), w.text(r.client_name);
  w.key("from"), w.text(r.sender);
  w.key("identified_by"), w.text(r.identified_by);
  if (!r.list_unsubscribe.empty()) w.key("list_unsubscribe"), w.text(r.list_unsubscribe);
  w.key("message_id"), w.text(r.message_id);
  w.key("org"), w.text(r.org);
  w.key("queue_id"), w.text(r.queue_id);
  if (r.quota_charged_at_us != 0) w.key("quota_charged_at_us"), w.sint(r.quota_charged_at_us);
  if (!r.quota_txn.empty()) w.key("quota_txn"), w.text(r.quota_txn);
  w.key("reason"), w.text(r.reason);
  w.key("received_at_us"), w.sint(r.received_at_us);
  w.key("recipient_count"), w.uint(r.recipient_count);
  w.key("recipients"), w.texts(r.recipients);
  w.key("sasl_login"), w.text(r.sasl_login);
  w.key("size"), w.uint(r.size);
  if (!r.stream.empty()) w.key("stream"), w.text(r.stream);
  if (!r.suppressed.empty()) w.key("suppressed"), w.texts(r.suppressed);
  if (tracked) {
    w.key("tracking");
    w.head(5, 7 + !t.pixel_skipped.empty());
    w.key("link_index");
    w.head(4, t.links.size());
    for (const auto& l : t.links) w.uint(l.index);
    w.key("link_url");
    w.head(4, t.links.size());
    for (const auto& l : t.links) w.text(l.url);
    w.key("links_kept"), w.uint(t.links_kept);
    w.key("per_recipient"), w.boolean(t.per_recipient);
    if (!t.pixel_skipped.empty()) w.key("pixel_skipped"), w.text(t.pixel_skipped);
    w.key("pixels"), w.uint(t.pixels);
    w.key("skipped"), w.text(t.skipped);
    w.key("status"), w.text(t.status);
  }
  return out;
}

MessageRecord decode(std::string_view bytes) {
  return from_json(json::from_cbor(bytes.begin(), bytes.end()));
}

std::string printable(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

std::string format_id(std::uint64_t id) {
  static const char* hex = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[i] = hex[id & 15];
    id >>= 4;
  }
  return s;
}

std::string format_time_us(std::int64_t unix_us) {
  std::time_t secs = static_cast<std::time_t>(unix_us / 1000000);
  long micros = static_cast<long>(unix_us % 1000000);
  if (micros < 0) {
    micros += 1000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
  return buf;
}

nlohmann::ordered_json display_json(const MessageRecord& r) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["id"] = format_id(r.id);
  j["received_at"] = format_time_us(r.received_at_us);
  put_fields(j, r, false);
  return j;
}

std::optional<std::int64_t> parse_time_us(std::string_view text) {
  std::string s(text);
  if (!s.empty() && s.size() <= 12 && s.find_first_not_of("0123456789") == std::string::npos)
    return std::stoll(s) * 1000000;
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  std::string rest = end;
  if (!rest.empty() && rest[0] == '.') {
    std::size_t digits = rest.find_first_not_of("0123456789", 1);
    rest = digits == std::string::npos ? "" : rest.substr(digits);
  }
  if (rest != "Z" && rest != "+00:00") return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000000;
}

}  // namespace cllavio::store
