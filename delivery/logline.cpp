// The Postfix log-line parser (contract in delivery/logline.hpp): one pass over the line
// with memchr and fixed-position checks, no regex, no allocation, no exceptions. Every
// view it returns is a substring of the line. Anything it does not recognise exactly is
// LineKind::other with only time/host/service/program filled (as far as they were read).
#include "delivery/logline.hpp"

#include <array>
#include <cstdint>
#include <cstring>

namespace cllavio::delivery {

namespace {

using sv = std::string_view;
constexpr std::size_t npos = sv::npos;

bool digit(char c) { return c >= '0' && c <= '9'; }

// The number in s[p, p+n) when all n bytes are digits, else -1.
int number(sv s, std::size_t p, std::size_t n) {
  if (p + n > s.size()) return -1;
  int v = 0;
  for (std::size_t i = p; i < p + n; ++i) {
    if (!digit(s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

int month_of(sv m) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i)
    if (std::memcmp(m.data(), kMonths[i], 3) == 0) return i + 1;
  return 0;
}

// "hh:mm:ss" at s[p]; fills t and returns true when the clock is plausible.
bool read_clock(sv s, std::size_t p, LogTime& t) {
  if (p + 8 > s.size() || s[p + 2] != ':' || s[p + 5] != ':') return false;
  t.hour = number(s, p, 2);
  t.minute = number(s, p + 3, 2);
  t.second = number(s, p + 6, 2);
  return t.hour >= 0 && t.hour <= 23 && t.minute >= 0 && t.minute <= 59 && t.second >= 0 && t.second <= 60;
}

// `Mmm dd hh:mm:ss ` / `Mmm  d hh:mm:ss ` (also `Mmm d hh:mm:ss `). p: after the blank.
bool read_syslog_stamp(sv s, std::size_t& p, LogTime& t) {
  if (s.size() < 16 || s[3] != ' ') return false;
  t.month = month_of(s);
  std::size_t q;
  if (s[4] == ' ' && digit(s[5])) t.day = s[5] - '0', q = 6;
  else if (digit(s[4]) && digit(s[5])) t.day = (s[4] - '0') * 10 + (s[5] - '0'), q = 6;
  else if (digit(s[4]) && s[5] == ' ') t.day = s[4] - '0', q = 5;
  else return false;
  if (t.month == 0 || t.day < 1 || t.day > 31 || s[q] != ' ' || !read_clock(s, q + 1, t)) return false;
  if (q + 9 >= s.size() || s[q + 9] != ' ') return false;
  p = q + 10;
  return true;
}

// `YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm) `. p: after the blank.
bool read_rfc3339_stamp(sv s, std::size_t& p, LogTime& t) {
  if (s.size() < 21 || s[4] != '-' || s[7] != '-' || s[10] != 'T') return false;
  t.year = number(s, 0, 4);
  t.month = number(s, 5, 2);
  t.day = number(s, 8, 2);
  if (t.year < 0 || t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || !read_clock(s, 11, t)) return false;
  std::size_t q = 19;
  if (s[q] == '.') {
    std::size_t f = ++q;
    int scale = 100000;
    while (q < s.size() && digit(s[q])) {
      if (scale > 0) t.micros += (s[q] - '0') * scale, scale /= 10;
      ++q;
    }
    if (q == f || q - f > 9) return false;
  }
  if (q < s.size() && s[q] == 'Z') {
    t.has_offset = true;
    ++q;
  } else if (q < s.size() && (s[q] == '+' || s[q] == '-')) {
    int h = number(s, q + 1, 2), m = q + 6 <= s.size() && s[q + 3] == ':' ? number(s, q + 4, 2) : -1;
    if (h < 0 || h > 23 || m < 0 || m > 59) return false;
    t.has_offset = true;
    t.offset_minutes = (s[q] == '-' ? -1 : 1) * (h * 60 + m);
    q += 6;
  } else {
    return false;
  }
  if (q >= s.size() || s[q] != ' ') return false;
  p = q + 1;
  return true;
}

// Postfix queue ids. Short: the microseconds as 5 hex digits, then the inode in hex.
// Long (enable_long_queue_ids): seconds and microseconds in Postfix's 52-character safe
// alphabet (no vowels), 'z', the inode in base 51 (no 'z'); the separator is the last 'z'
// and comes after at least 10 characters.
constexpr unsigned char kHex = 1, kSafe = 2;
constexpr std::array<unsigned char, 256> make_id_chars() {
  std::array<unsigned char, 256> t{};
  for (char c : std::string_view("0123456789ABCDEF")) t[static_cast<unsigned char>(c)] |= kHex;
  for (char c : std::string_view("0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"))
    t[static_cast<unsigned char>(c)] |= kSafe;
  return t;
}
constexpr auto kIdChars = make_id_chars();

bool queue_id_ok(sv q) {
  if (q.size() < 6 || q.size() > 32) return false;
  unsigned char all = kHex | kSafe;
  for (char c : q) all &= kIdChars[static_cast<unsigned char>(c)];
  if (all & kHex) return true;
  std::size_t z = q.rfind('z');
  return (all & kSafe) && z != npos && z >= 10 && z + 1 < q.size();
}

bool key_char(char c) { return (c >= 'a' && c <= 'z') || c == '_' || digit(c); }

// ", key=" at s[i]: where a key=value field ends.
bool field_follows(sv s, std::size_t i) {
  if (i + 2 >= s.size() || s[i] != ',' || s[i + 1] != ' ' || !(s[i + 2] >= 'a' && s[i + 2] <= 'z')) return false;
  for (std::size_t j = i + 3; j < s.size(); ++j)
    if (!key_char(s[j])) return s[j] == '=';
  return false;
}

// The end of a value starting at s[p]: the next ", key=" or the end of the line, so a
// value may hold commas (but not ", key=").
std::size_t value_end(sv s, std::size_t p) {
  const char* d = s.data();
  while (p < s.size()) {
    const void* c = std::memchr(d + p, ',', s.size() - p);
    if (c == nullptr) break;
    p = static_cast<std::size_t>(static_cast<const char*>(c) - d);
    if (field_follows(s, p)) return p;
    ++p;
  }
  return s.size();
}

// Whether one of the 8 bytes at p is '(' or ')' (0x28, 0x29: equal to 0x28 without bit 0).
bool has_paren(const char* p) {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  std::uint64_t x = (w & ~ones) ^ (ones * 0x28);  // a zero byte where the byte is '(' or ')'
  return ((x - ones) & ~x & highs) != 0;
}

// The reply after "status=X (": up to the matching ')' when it ends the line or a field
// follows it; an inner ')' that closes nothing is taken as text. Without such a ')'
// (Postfix truncated the line) the rest of the line. Returns the position after it.
std::size_t read_reply(sv s, std::size_t p, sv& reply) {
  int depth = 1;
  for (std::size_t i = p; i < s.size(); ++i) {
    while (i + 8 <= s.size() && !has_paren(s.data() + i)) i += 8;
    if (i >= s.size()) break;
    if (s[i] == '(') {
      ++depth;
    } else if (s[i] == ')' && --depth == 0) {
      if (i + 1 == s.size() || field_follows(s, i + 1)) {
        reply = s.substr(p, i - p);
        return i + 1;
      }
      depth = 1;
    }
  }
  reply = s.substr(p);
  return s.size();
}

// "<addr>" -> addr; false when the brackets are missing.
bool unbracket(sv v, sv& out) {
  if (v.size() < 2 || v.front() != '<' || v.back() != '>') return false;
  out = v.substr(1, v.size() - 2);
  return true;
}

// "0.5", "12", "0.01": seconds; -1 when it is not such a number.
double seconds_of(sv v) {
  double x = 0, scale = 1;
  bool dot = false, any = false;
  for (char c : v) {
    if (c == '.' && !dot) {
      dot = true;
    } else if (digit(c)) {
      any = true;
      if (dot) scale /= 10, x += (c - '0') * scale;
      else x = x * 10 + (c - '0');
    } else {
      return -1;
    }
  }
  return any ? x : -1;
}

struct Fields {
  sv to, orig_to, relay, dsn, status, reply, from;
  double delay = -1;
  bool has_to = false, has_status = false, ok = true;
};

// "to=<a>, orig_to=<o>, relay=R, delay=D, ..., dsn=X, status=S (reply)", in any order;
// unknown keys are skipped. Stops at the first text that is not a field (", returned to
// sender" after qmgr's status=expired).
Fields read_fields(sv s) {
  Fields f;
  std::size_t p = 0;
  while (p < s.size()) {
    std::size_t k = p;
    while (p < s.size() && key_char(s[p])) ++p;
    if (p == k || p >= s.size() || s[p] != '=') break;
    sv key = s.substr(k, p - k);
    ++p;
    if (key == "status") {
      std::size_t v = p;
      while (p < s.size() && s[p] != ' ' && s[p] != ',') ++p;
      f.status = s.substr(v, p - v);
      f.has_status = true;
      if (p + 1 < s.size() && s[p] == ' ' && s[p + 1] == '(') p = read_reply(s, p + 2, f.reply);
    } else {
      std::size_t e = value_end(s, p);
      sv v = s.substr(p, e - p);
      p = e;
      if (key == "to") {
        f.ok = f.ok && unbracket(v, f.to);
        f.has_to = true;
      } else if (key == "orig_to") {
        f.ok = f.ok && unbracket(v, f.orig_to);
      } else if (key == "from") {
        f.ok = f.ok && unbracket(v, f.from);
      } else if (key == "relay") {
        f.relay = v;
      } else if (key == "dsn") {
        f.dsn = v;
      } else if (key == "delay") {
        f.delay = seconds_of(v);
      }
    }
    if (p + 1 < s.size() && s[p] == ',' && s[p + 1] == ' ') p += 2;
    else break;
  }
  return f;
}

bool status_ok(sv s) {
  return s == "sent" || s == "deferred" || s == "bounced" || s == "expired" || s == "SOFTBOUNCE" ||
         s == "deliverable" || s == "undeliverable";
}

// The queue id after "forwarded as " or "queued as " (any case) in a reply.
sv moved_to(sv reply) {
  auto lower_is = [&](std::size_t at, sv w) {  // reply[at, at+|w|) is w, ignoring case
    if (at + w.size() > reply.size()) return false;
    for (std::size_t i = 0; i < w.size(); ++i)
      if ((reply[at + i] | 0x20) != w[i]) return false;
    return true;
  };
  for (std::size_t a = reply.find(' '); a != npos; a = reply.find(' ', a + 1)) {
    if (!lower_is(a, " as ")) continue;  // ' ' | 0x20 == ' '
    bool queued = a >= 6 && lower_is(a - 6, "queued") && (a == 6 || reply[a - 7] == ' ' || reply[a - 7] == ':');
    bool forwarded = a >= 9 && lower_is(a - 9, "forwarded") && (a == 9 || reply[a - 10] == ' ');
    if (!queued && !forwarded) continue;
    std::size_t p = a + 4, e = p;
    while (e < reply.size() && (digit(reply[e]) || ((reply[e] | 0x20) >= 'a' && (reply[e] | 0x20) <= 'z'))) ++e;
    if (e > p) return reply.substr(p, e - p);
  }
  return {};
}

// Where the "; from=<..> to=<..> proto=.. helo=<..>" trailer of a cleanup rejection
// starts (at its ';'), or npos. Searched from the end: the logged content before it
// (a header, a milter's reply) is the sender's text.
std::size_t trailer_start(sv s) {
  for (sv key : {sv("; from=<"), sv("; to=<"), sv("; proto="), sv("; helo=<")}) {
    std::size_t t = s.rfind(key);
    if (t != npos) return t;
  }
  return npos;
}

// The end ('>') of "<addr>" whose '<' is at s[p-1]: the first '>' followed by a blank,
// ':' or the end.
std::size_t angle_end(sv s, std::size_t p) {
  for (std::size_t i = s.find('>', p); i != npos; i = s.find('>', i + 1))
    if (i + 1 == s.size() || s[i + 1] == ' ' || s[i + 1] == ':') return i;
  return npos;
}

// Reads the trailer at s[t] ("; from=<..> ..."): fills from, returns the position after it.
std::size_t read_trailer(sv s, std::size_t t, sv& from) {
  std::size_t p = t + 2;
  while (p < s.size()) {
    sv r = s.substr(p);
    std::size_t e;
    if (r.starts_with("from=<") || r.starts_with("to=<")) {
      std::size_t open = p + (r[0] == 'f' ? 6 : 4);
      if ((e = angle_end(s, open)) == npos) return s.size();
      if (r[0] == 'f') from = s.substr(open, e - open);
      ++e;
    } else if (r.starts_with("proto=")) {
      e = p + 6;
      while (e < s.size() && s[e] != ' ' && s[e] != ':') ++e;
    } else if (r.starts_with("helo=<")) {
      e = s.find(">: ", p + 6);  // the HELO name is the client's text: the reason follows ">: "
      if (e == npos) return s.size();
      ++e;
    } else {
      return p;
    }
    p = e;
    if (p < s.size() && s[p] == ' ') ++p;
  }
  return p;
}

// cleanup: "milter-reject: STAGE from NAME[ADDR]: REASON; from=<..> to=<..> proto=.. helo=<..>"
//          "reject: STAGE CONTENT from ORIGIN; from=<..> to=<..> proto=.. helo=<..>[: REASON]"
bool read_rejection(sv m, LogLine& r) {
  static constexpr sv kActions[] = {"milter-reject", "milter-discard", "reject", "discard"};
  for (sv a : kActions) {
    if (m.size() <= a.size() + 2 || !m.starts_with(a) || m[a.size()] != ':' || m[a.size() + 1] != ' ') continue;
    sv rest = m.substr(a.size() + 2);
    std::size_t sp = rest.find(' ');
    sv stage = rest.substr(0, sp);
    if (stage.empty()) return false;
    sv after = sp == npos ? sv() : rest.substr(sp + 1);
    std::size_t t = trailer_start(after);
    std::size_t end = t == npos ? after.size() : read_trailer(after, t, r.from);
    if (a.starts_with("milter-")) {
      sv head = after.substr(0, t == npos ? after.size() : t);
      std::size_t c = head.find("]: ");
      if (c != npos) r.reason = head.substr(c + 3);
      if (t == npos && r.reason.ends_with(';')) r.reason.remove_suffix(1);
    } else if (end + 1 < after.size() && after[end] == ':' && after[end + 1] == ' ') {
      r.reason = after.substr(end + 2);
    }
    r.action = m.substr(0, a.size());
    r.stage = stage;
    return true;
  }
  return false;
}

bool read_notification(sv m, LogLine& r) {
  static constexpr sv kNotices[] = {"sender non-delivery notification: ", "postmaster non-delivery notification: ",
                                    "sender delay notification: ", "postmaster delay notification: ",
                                    "sender delivery status notification: "};
  for (sv n : kNotices) {
    if (!m.starts_with(n)) continue;
    sv q = m.substr(n.size());
    if (!queue_id_ok(q)) return false;
    r.next_queue_id = q;
    return true;
  }
  return false;
}

// What the message (after "QID: ") says: returns its kind and fills r, which it leaves
// untouched when the kind is other.
LineKind read_message(sv m, LogLine& r) {
  if (m.starts_with("to=<")) {
    Fields f = read_fields(m);
    if (!f.ok || !f.has_to || !f.has_status || !status_ok(f.status)) return LineKind::other;
    r.to = f.to, r.orig_to = f.orig_to, r.relay = f.relay, r.dsn = f.dsn, r.status = f.status;
    r.reply = f.reply, r.delay_s = f.delay;
    r.next_queue_id = moved_to(f.reply);
    return LineKind::recipient;
  }
  if (m.starts_with("from=<")) {
    Fields f = read_fields(m);
    if (!f.ok || !f.has_status || f.status != "expired") return LineKind::other;
    r.from = f.from;
    r.status = f.status;
    return LineKind::expired;
  }
  sv prog = r.program;
  if (m == "removed")
    return prog == "qmgr" || prog == "oqmgr" || prog == "postsuper" ? LineKind::removed : LineKind::other;
  if (prog == "bounce") return read_notification(m, r) ? LineKind::notification : LineKind::other;
  if (prog == "cleanup") return read_rejection(m, r) ? LineKind::rejected : LineKind::other;
  return LineKind::other;
}

// `STAMP HOST TAG[PID]: ` or `STAMP HOST TAG: `: fills time, host, service, program;
// returns the position of the message, or npos.
std::size_t read_prefix(sv line, LogLine& r) {
  std::size_t p = 0;
  bool stamp = !line.empty() && digit(line[0]) ? read_rfc3339_stamp(line, p, r.time)
                                                : read_syslog_stamp(line, p, r.time);
  if (!stamp) return npos;
  std::size_t h = line.find(' ', p);
  if (h == npos || h == p) return npos;
  std::size_t t = h + 1, e = t;
  while (e < line.size() && line[e] != '[' && line[e] != ':' && line[e] != ' ') ++e;
  if (e == t || e == line.size()) return npos;
  std::size_t m = e;
  if (line[m] == '[') {
    ++m;
    while (m < line.size() && digit(line[m])) ++m;
    if (m == e + 1 || m >= line.size() || line[m] != ']') return npos;
    ++m;
  }
  if (m + 1 >= line.size() || line[m] != ':' || line[m + 1] != ' ') return npos;
  r.host = line.substr(p, h - p);
  r.service = line.substr(t, e - t);
  std::size_t slash = r.service.rfind('/');
  r.program = slash == npos ? r.service : r.service.substr(slash + 1);
  return m + 2;
}

}  // namespace

LogLine parse_line(std::string_view line) {
  LogLine r;
  std::size_t m = read_prefix(line, r);
  if (m == npos) {
    r.time = LogTime{};  // the only field read_prefix() may have set when it fails
    return r;
  }
  // Postfix: a first component "postfix" or "postfix-NAME" (multi-instance), and a service.
  sv first = r.service.substr(0, r.service.find('/'));
  if (first.size() == r.service.size() || r.program.empty() || !(first == "postfix" || first.starts_with("postfix-")))
    return r;

  sv msg = line.substr(m);
  std::size_t c = msg.substr(0, 33).find(':');  // a queue id has at most 32 characters
  if (c == npos || c + 1 >= msg.size() || msg[c + 1] != ' ' || !queue_id_ok(msg.substr(0, c))) return r;

  // read_message() writes to r only when it returns a kind other than other.
  r.kind = read_message(msg.substr(c + 2), r);
  if (r.kind != LineKind::other) r.queue_id = msg.substr(0, c);
  return r;
}

}  // namespace cllavio::delivery
