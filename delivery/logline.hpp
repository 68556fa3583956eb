// One line of Postfix's log, read as far as delivery outcomes need it.
//
// Contract: pure, no allocation, never throws. parse_line() takes one line without its
// newline and returns what it says; every string_view points into that line (valid as
// long as the line is). Lines of other programs, Postfix lines that say nothing about a
// message's fate, and anything malformed give kind == LineKind::other.
//
// Understood prefixes: traditional syslog `Mmm d hh:mm:ss HOST PROG[PID]: ` (day padded
// with a space or a zero; Postfix's maillog_file pads with a zero), RFC 3339 stamps
// (`2026-12-01T03:59:52.123456+00:00 HOST PROG[PID]: `, rsyslog's high-precision
// format). PROG is a Postfix service name such as `postfix/smtp`,
// `postfix/submission/smtpd`, `postfix-out/smtp`: `program` is its last component, and
// the line counts only when the first component is "postfix" or starts with "postfix-"
// (a postmulti instance; `postfixadmin` is not Postfix) and the tag has a '/'.
// A line of kind other carries nothing but time, host, service and program (as far as
// its prefix was readable: an unreadable stamp leaves all of them empty, month 0).
//
// Per-recipient lines are read as comma-separated key=value fields, in any order, so
// fields added by newer Postfix versions (`tls=`, `conn_use=`) are skipped. A value ends
// at the next ", key=" (so it may hold commas); the reply after status= ends at its
// matching ')' when that ends the line or a field follows, else at the end of the line
// (Postfix truncates long lines). Queue ids are checked: short (6+ uppercase hex digits)
// or long (Postfix's safe alphabet, 'z' separator); "NOQUEUE" is not one.
#pragma once

#include <cstdint>
#include <string_view>

namespace cllavio::delivery {

struct LogTime {
  int year = 0;          // 0: the prefix has no year (traditional syslog)
  int month = 0;         // 1..12; 0 when the line had no readable stamp
  int day = 0, hour = 0, minute = 0, second = 0;
  int micros = 0;
  bool has_offset = false;   // RFC 3339: the stamp says its UTC offset
  int offset_minutes = 0;    // east of UTC
};

enum class LineKind {
  other,         // nothing for us
  recipient,     // QID: to=<...>, ... status=sent|deferred|bounced|expired|... (reply)
  expired,       // qmgr: QID: from=<...>, status=expired, returned to sender
  removed,       // qmgr/postsuper: QID: removed (postsuper: deleted by an admin)
  notification,  // bounce: QID: sender non-delivery notification: NEWQID (and the other notices)
  rejected,      // cleanup: QID: milter-reject|reject|discard|milter-discard: ...
};

struct LogLine {
  LineKind kind = LineKind::other;
  LogTime time;
  std::string_view host;
  std::string_view service;   // the whole tag before [pid]: "postfix/submission/smtpd"
  std::string_view program;   // its last component: "smtpd", "smtp", "qmgr", "cleanup", "bounce", "postsuper"
  std::string_view queue_id;

  // recipient
  std::string_view to;        // without the angle brackets
  std::string_view orig_to;   // "" when absent
  std::string_view relay;     // "mx.example.com[192.0.2.1]:25", "none", "local"
  std::string_view dsn;       // "5.1.1"; "" when absent
  std::string_view status;    // sent | deferred | bounced | expired | SOFTBOUNCE | deliverable | undeliverable
                              // (only these: another status is kind other); "expired" for kind expired
  std::string_view reply;     // the text in parentheses after status ("" when none)
  double delay_s = -1;        // delay=; -1 when absent or unreadable
  // "forwarded as NEWQID" / "queued as NEWQID" (any case; the alphanumerics after "as")
  // in a recipient's reply, or the notification's new queue id.
  std::string_view next_queue_id;

  // expired: from=; rejected: from= when the line carries it
  std::string_view from;

  // rejected
  std::string_view action;    // milter-reject | reject | discard | milter-discard
  std::string_view stage;     // END-OF-MESSAGE, header, body, ... (the word after the action)
  std::string_view reason;    // the reply text, e.g. "5.7.1 Spam message rejected"; "" when none
};

LogLine parse_line(std::string_view line);

}  // namespace cllavio::delivery
