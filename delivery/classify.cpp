// The bounce classification (contract in delivery/classify.hpp): what a DSN code and a
// reply say about the recipient. Conservative by design: only a clear "this address does
// not exist" is invalid_address (which suppresses the recipient); a block of the sending
// server, a content rejection, a full mailbox or anything unclear is not.
//
// The enhanced status code is Postfix's dsn= when it is specific; when dsn is absent or
// generic (X.0.0), the first code of the reply ("550 5.1.1 ...", "host mx[..] said: 550
// 5.1.1 ..."). Order: null MX (invalid), rejection at connect/HELO/MAIL FROM (block),
// X.7.X (block), X.2.2 (mailbox full), content codes, invalid-address codes; generic
// codes fall back to a few unambiguous phrases. Text matching ignores case.
#include "delivery/classify.hpp"

#include <cstddef>

namespace cllavio::delivery {

namespace {

using sv = std::string_view;

bool digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// needle is lower case.
bool contains(sv hay, sv needle) {
  if (needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    if (lower(hay[i]) != needle[0]) continue;
    std::size_t j = 1;
    while (j < needle.size() && lower(hay[i + j]) == needle[j]) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

bool contains_any(sv hay, std::initializer_list<sv> needles) {
  for (sv n : needles)
    if (contains(hay, n)) return true;
  return false;
}

struct Code {
  int cls = 0, subject = -1, detail = -1;
  bool valid() const { return cls != 0; }
  bool generic() const { return !valid() || (subject == 0 && detail == 0); }
};

// "C.S.D" at s[p] (class 2, 4 or 5; subject and detail 1-3 digits) not followed by a
// digit or a dot. Sets end to the position after it.
bool read_code(sv s, std::size_t p, Code& c, std::size_t& end) {
  if (p + 5 > s.size() || (s[p] != '2' && s[p] != '4' && s[p] != '5') || s[p + 1] != '.') return false;
  int part[2] = {0, 0};
  std::size_t q = p + 2;
  for (int k = 0; k < 2; ++k) {
    std::size_t start = q;
    while (q < s.size() && digit(s[q]) && q - start < 4) part[k] = part[k] * 10 + (s[q++] - '0');
    if (q == start || q - start > 3) return false;
    if (k == 0 && (q >= s.size() || s[q++] != '.')) return false;
  }
  if (q < s.size() && (digit(s[q]) || s[q] == '.')) return false;
  c = {s[p] - '0', part[0], part[1]};
  end = q;
  return true;
}

// The first reply code of the text: at its start or after a ": " ("host X said: 550 5.1.1
// ..."), an SMTP code "550 " / "550-" optionally followed by an enhanced code, or an
// enhanced code alone.
void reply_codes(sv r, int& basic, Code& enhanced) {
  for (std::size_t p = 0; p < r.size();) {
    std::size_t end;
    if (p + 4 <= r.size() && (r[p] == '2' || r[p] == '4' || r[p] == '5') && digit(r[p + 1]) && digit(r[p + 2]) &&
        (r[p + 3] == ' ' || r[p + 3] == '-')) {
      basic = (r[p] - '0') * 100 + (r[p + 1] - '0') * 10 + (r[p + 2] - '0');
      read_code(r, p + 4, enhanced, end);
      return;
    }
    if (read_code(r, p, enhanced, end)) return;
    std::size_t c = r.find(": ", p);
    if (c == sv::npos) return;
    p = c + 2;
  }
}

}  // namespace

BounceClass classify_bounce(std::string_view dsn, std::string_view reply) {
  Code code, from_reply;
  std::size_t end = 0;
  if (!read_code(dsn, 0, code, end) || end != dsn.size()) code = {};
  int basic = 0;
  reply_codes(reply, basic, from_reply);
  if (code.generic() && from_reply.valid() && !from_reply.generic()) code = from_reply;
  if (!code.valid()) code = from_reply;
  const int cls = code.valid() ? code.cls : basic / 100;  // 0: no code at all

  // Null MX (RFC 7505): the domain says it takes no mail. Postfix: dsn 5.1.10,
  // "Domain example.com does not accept mail (nullMX)".
  if ((code.cls == 5 && code.subject == 1 && code.detail == 10) ||
      ((cls == 5 || cls == 0) && contains_any(reply, {"null mx", "nullmx"})))
    return BounceClass::invalid_address;
  if (cls != 4 && cls != 5) return BounceClass::other;

  // Refused before any recipient was named: about the sending server, not the address.
  if (contains_any(reply, {"in reply to mail from", "in reply to helo", "in reply to ehlo", "refused to talk to me",
                           "in reply to initial greeting"}))
    return BounceClass::block;
  if (code.subject == 7) return BounceClass::block;
  if (code.subject == 2 && code.detail == 2) return BounceClass::mailbox_full;
  if (cls == 5 && !code.generic()) {
    if (code.subject == 6 || (code.subject == 3 && code.detail == 4) || (code.subject == 2 && code.detail == 3))
      return BounceClass::content;
    if ((code.subject == 1 && (code.detail == 1 || code.detail == 2 || code.detail == 3 || code.detail == 6 ||
                               code.detail == 10)) ||
        (code.subject == 2 && code.detail == 1))
      return BounceClass::invalid_address;
    return BounceClass::other;
  }
  if (!code.generic()) return BounceClass::other;

  // Generic code (X.0.0 or none): only unambiguous phrasings. "mailbox unavailable"
  // alone is also said of blocked senders and disabled mailboxes: other.
  if (contains_any(reply, {"mailbox full", "mailbox is full", "over quota", "quota exceeded"}))
    return BounceClass::mailbox_full;
  if (cls == 5 && contains_any(reply, {"user unknown", "unknown user", "no such user", "does not exist",
                                       "recipient unknown", "unknown recipient"}))
    return BounceClass::invalid_address;
  return BounceClass::other;
}

std::string_view to_string(BounceClass c) {
  switch (c) {
    case BounceClass::invalid_address: return "invalid_address";
    case BounceClass::block: return "block";
    case BounceClass::content: return "content";
    case BounceClass::mailbox_full: return "mailbox_full";
    case BounceClass::other: return "other";
  }
  return "other";
}

}  // namespace cllavio::delivery
