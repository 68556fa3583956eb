// Postfix log parser throughput: delivery::parse_line over a generated log of a busy
// server, printed beside the cost of only splitting the same buffer into lines (memchr),
// measured in the same run.
//
//   delivery_bench [--lines N] [--seed S] [--rounds R] [--write PATH] [--no-parse] [--no-join]
//
// The log is deterministic for a seed (default 1; N default 1,000,000): smtpd connect/
// disconnect and client=, cleanup message-id=, qmgr from= and removed, smtp/lmtp/local
// status=sent/deferred/bounced with varied replies, bounce notices, cleanup rejections,
// warnings, NOQUEUE rejections and other programs' lines. --write PATH saves it (one line
// per '\n') for other benchmarks; --no-parse only writes. Prints the median over rounds
// (default 5) of lines/s and MB/s on one core, and the ratio to the split. Times are the
// thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so other work on a shared machine does not
// count against the parser.
//
// Then the join (delivery::Tracker, what the log follower runs): a record is written to a
// temporary store for every queue id the log's recipient, expiry and rejection lines name
// (with those recipients), and the whole log is applied in batches of 2,000 lines per store
// write, as the follower does (states, events in the outbox, suppressions, given-back
// charges; sync none). Its figure is process CPU time (the group commit may run the write
// on another thread), printed beside the parser's.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <time.h>

#include <filesystem>
#include <map>
#include <set>

#include "delivery/classify.hpp"
#include "delivery/logline.hpp"
#include "delivery/tracker.hpp"
#include "store/db.hpp"

using namespace cllavio::delivery;

namespace {

struct Rng {  // splitmix64: the same log on every machine
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  unsigned below(unsigned n) { return static_cast<unsigned>(next() % n); }
};

const char* const kDomains[] = {"gmail.com", "yahoo.com", "outlook.com", "example.org", "shop.example",
                                "mail.example.net", "uni.example.edu", "corp.example.com"};
const char* const kUsers[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "news", "info"};
const char* const kClients[] = {"unknown[192.0.2.5]", "mail-wr1-f54.google.com[209.85.221.54]",
                                "laptop.example[198.51.100.4]", "localhost[127.0.0.1]"};
const char* const kSent[] = {"250 2.0.0 Ok: queued as %s", "250 2.0.0 OK  1733025592 m12si123abc.1 - gsmtp",
                             "250 2.6.0 <%s@mail.example> [InternalId=1234, Hostname=AM0PR01] Queued mail for "
                             "delivery",
                             "250 ok dirdel", "250 2.0.0 <x@y> hGfPJ1x+TGkAAA Saved"};
const char* const kDeferred[] = {
    "connect to mx.%s[203.0.113.5]:25: Connection timed out",
    "host mx.%s[192.0.2.1] said: 451 4.7.1 Greylisted, please try again later (in reply to RCPT TO command)",
    "host mx.%s[192.0.2.1] said: 421 4.7.0 Try again later, closing connection. (EHLO) (in reply to EHLO command)",
    "Host or domain name not found. Name service error for name=%s type=MX: Host not found, try again"};
const char* const kBounced[] = {
    "host mx.%s[192.0.2.1] said: 550 5.1.1 <x@y>: Recipient address rejected: User unknown in virtual mailbox "
    "table (in reply to RCPT TO command)",
    "host mx.%s[192.0.2.1] said: 550-5.1.1 The email account that you tried to reach does not exist. Please try "
    "550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. "
    "https://support.google.com/mail/?p=NoSuchUser a1si2 - gsmtp (in reply to RCPT TO command)",
    "host mx.%s[192.0.2.1] said: 554 5.7.1 Service unavailable; Client host [198.51.100.9] blocked using "
    "zen.spamhaus.org (in reply to RCPT TO command)",
    "host mx.%s[192.0.2.1] said: 552 5.2.2 Mailbox full (in reply to end of DATA command)"};

std::string qid(Rng& r) {
  char b[16];
  std::snprintf(b, sizeof b, "%05X%05X", r.below(0xfffff), r.below(0xfffff));
  return b;
}

std::string generate(std::size_t n, std::uint64_t seed) {
  Rng r{seed};
  std::string out;
  out.reserve(n * 150);
  std::string q = qid(r), nq = qid(r);
  char line[1024], reply[512];
  int sec = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 7 == 0) q = qid(r), nq = qid(r);
    sec += r.below(3) == 0;
    int h = sec / 3600 % 24, m = sec / 60 % 60, s = sec % 60, day = 1 + sec / 86400 % 28;
    char stamp[40];
    std::snprintf(stamp, sizeof stamp, "Dec %2d %02d:%02d:%02d mail", day, h, m, s);
    const char* user = kUsers[r.below(10)];
    const char* dom = kDomains[r.below(8)];
    unsigned pid = 1000 + r.below(30000), pick = r.below(100);
    char relay[128];
    std::snprintf(relay, sizeof relay, "mx.%s[192.0.2.%u]:25", dom, r.below(250) + 1);
    if (pick < 14) {
      std::snprintf(line, sizeof line, "%s postfix/smtpd[%u]: connect from %s", stamp, pid, kClients[r.below(4)]);
    } else if (pick < 28) {
      std::snprintf(line, sizeof line,
                    "%s postfix/smtpd[%u]: disconnect from %s ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5", stamp,
                    pid, kClients[r.below(4)]);
    } else if (pick < 36) {
      std::snprintf(line, sizeof line, "%s postfix/submission/smtpd[%u]: %s: client=%s, sasl_method=PLAIN, "
                    "sasl_username=%s@corp.example.com", stamp, pid, q.c_str(), kClients[r.below(4)], user);
    } else if (pick < 44) {
      std::snprintf(line, sizeof line, "%s postfix/cleanup[%u]: %s: message-id=<%u.%u@corp.example.com>", stamp,
                    pid, q.c_str(), r.below(1u << 30), pid);
    } else if (pick < 52) {
      std::snprintf(line, sizeof line, "%s postfix/qmgr[812]: %s: from=<%s@corp.example.com>, size=%u, nrcpt=%u "
                    "(queue active)", stamp, q.c_str(), user, 2000 + r.below(200000), 1 + r.below(5));
    } else if (pick < 72) {
      std::snprintf(reply, sizeof reply, kSent[r.below(5)], nq.c_str());
      std::snprintf(line, sizeof line, "%s postfix/smtp[%u]: %s: to=<%s@%s>, relay=%s, delay=%u.%02u, "
                    "delays=0.1/0.01/0.3/0.%u, dsn=2.0.0, status=sent (%s)", stamp, pid, q.c_str(), user, dom, relay,
                    r.below(5), r.below(100), r.below(9), reply);
    } else if (pick < 78) {
      std::snprintf(reply, sizeof reply, kDeferred[r.below(4)], dom);
      std::snprintf(line, sizeof line, "%s postfix/smtp[%u]: %s: to=<%s@%s>, relay=%s, conn_use=2, delay=%u, "
                    "delays=%u/0.02/30/0, dsn=4.4.1, status=deferred (%s)", stamp, pid, q.c_str(), user, dom, relay,
                    300 + r.below(9000), 300 + r.below(9000), reply);
    } else if (pick < 82) {
      unsigned b = r.below(4);
      std::snprintf(reply, sizeof reply, kBounced[b], dom);
      static const char* const dsn[] = {"5.1.1", "5.1.1", "5.7.1", "5.2.2"};
      std::snprintf(line, sizeof line, "%s postfix/smtp[%u]: %s: to=<%s@%s>, relay=%s, delay=1.2, "
                    "delays=0.05/0/0.9/0.25, dsn=%s, status=bounced (%s)", stamp, pid, q.c_str(), user, dom, relay,
                    dsn[b], reply);
    } else if (pick < 85) {
      std::snprintf(line, sizeof line, "%s postfix/lmtp[%u]: %s: to=<%s@corp.example.com>, orig_to=<team@corp."
                    "example.com>, relay=mail.corp.example.com[private/dovecot-lmtp], delay=0.04, delays=0.01/0/0/0.03,"
                    " dsn=2.0.0, status=sent (250 2.0.0 <%s@corp.example.com> hGfPJ1x+TGkAAA Saved)", stamp, pid,
                    q.c_str(), user, user);
    } else if (pick < 92) {
      std::snprintf(line, sizeof line, "%s postfix/qmgr[812]: %s: removed", stamp, q.c_str());
    } else if (pick < 93) {
      std::snprintf(line, sizeof line, "%s postfix/qmgr[812]: %s: from=<%s@corp.example.com>, status=expired, "
                    "returned to sender", stamp, q.c_str(), user);
    } else if (pick < 94) {
      std::snprintf(line, sizeof line, "%s postfix/bounce[%u]: %s: sender non-delivery notification: %s", stamp, pid,
                    q.c_str(), nq.c_str());
    } else if (pick < 95) {
      std::snprintf(line, sizeof line, "%s postfix/cleanup[%u]: %s: milter-reject: END-OF-MESSAGE from %s: 5.7.1 "
                    "Spam message rejected; from=<%s@%s> to=<x@corp.example.com> proto=ESMTP helo=<mail.%s>", stamp,
                    pid, q.c_str(), kClients[r.below(4)], user, dom, dom);
    } else if (pick < 97) {
      std::snprintf(line, sizeof line, "%s postfix/smtpd[%u]: NOQUEUE: reject: RCPT from %s: 554 5.7.1 <%s@%s>: "
                    "Relay access denied; from=<x@y> to=<%s@%s> proto=ESMTP helo=<x>", stamp, pid,
                    kClients[r.below(4)], user, dom, user, dom);
    } else if (pick < 98) {
      std::snprintf(line, sizeof line, "%s postfix/smtpd[%u]: warning: hostname %s does not resolve to address "
                    "192.0.2.%u: Name or service not known", stamp, pid, dom, r.below(250));
    } else {
      std::snprintf(line, sizeof line, "%s dovecot: imap-login: Login: user=<%s@corp.example.com>, method=PLAIN, "
                    "rip=198.51.100.%u, lip=192.0.2.1, mpid=%u, TLS, session=<x%u>", stamp, user, r.below(250),
                    pid, pid);
    }
    out += line;
    out += '\n';
  }
  return out;
}

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class F>
void each_line(const std::string& buf, F&& f) {
  const char* d = buf.data();
  std::size_t p = 0, n = buf.size();
  while (p < n) {
    const void* nl = std::memchr(d + p, '\n', n - p);
    std::size_t e = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - d) : n;
    f(std::string_view(d + p, e - p));
    p = e + 1;
  }
}

}  // namespace

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct JoinResult {
  double lines_per_s = 0;
  std::size_t records = 0, applied = 0, ignored = 0, events = 0;
};

// The log applied by a Tracker to a store holding a record for each queue id it names.
JoinResult join(const std::string& log) {
  setenv("TZ", "UTC", 1);
  tzset();
  timespec real{};
  clock_gettime(CLOCK_REALTIME, &real);
  std::tm now_tm{};
  gmtime_r(&real.tv_sec, &now_tm);
  std::tm end{};
  end.tm_year = now_tm.tm_year;
  end.tm_mon = 11;
  end.tm_mday = 29;  // the generated stamps run from Dec 1 to Dec 28: all of them "this year"
  const std::int64_t now_us = static_cast<std::int64_t>(timegm(&end)) * 1'000'000;

  std::map<std::string, std::pair<std::int64_t, std::set<std::string>>> queues;
  each_line(log, [&](std::string_view l) {
    LogLine p = parse_line(l);
    if (p.kind != LineKind::recipient && p.kind != LineKind::expired && p.kind != LineKind::rejected) return;
    auto& q = queues[std::string(p.queue_id)];
    if (q.first == 0) q.first = to_unix_us(p.time, now_us);
    if (p.kind == LineKind::recipient) q.second.insert(std::string(p.orig_to.empty() ? p.to : p.orig_to));
  });

  char tmpl[] = "/tmp/cllavio-delivery-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  JoinResult res;
  {
    cllavio::store::StoreOptions o;
    o.dir = dir;
    o.map_size_mb = 4096;
    o.sync = cllavio::store::Sync::none;
    o.now_us = [now_us] { return now_us; };
    cllavio::store::Db db(o);
    std::uint64_t n = 0;
    auto it = queues.begin();
    while (it != queues.end()) {
      db.write([&](cllavio::store::Tables& t) {
        for (int k = 0; k < 10000 && it != queues.end(); ++k, ++it) {
          cllavio::store::MessageRecord r;
          // Unique (n < 1,000,000 = one second of ids) and received just before its first line.
          r.id = static_cast<std::uint64_t>(it->second.first - 1'000'000) + ++n;
          r.queue_id = it->first;
          r.org = "bench";
          r.sender = "news@corp.example.com";
          r.recipients.assign(it->second.second.begin(), it->second.second.end());
          r.recipient_count = r.recipients.size();
          r.action = "accept";
          r.received_at_us = it->second.first - 1'000'000;
          r.quota_charged_at_us = r.received_at_us;
          t.records.append(r);
        }
      });
    }
    res.records = queues.size();
    cllavio::delivery::TrackerSettings ts;
    ts.max_outbox_bytes = 1ull << 40;
    cllavio::delivery::Tracker tracker(ts);
    std::vector<std::string_view> batch;
    cllavio::delivery::BatchResult total;
    auto flush = [&] {
      db.write([&](cllavio::store::Tables& t) {
        cllavio::delivery::BatchResult r;
        tracker.retry_pending(t, now_us, r);
        for (auto l : batch) tracker.apply(t, l, now_us, r);
        total.lines += r.lines, total.applied += r.applied, total.ignored += r.ignored, total.events += r.events;
      });
      batch.clear();
    };
    double t0 = process_cpu_seconds();
    each_line(log, [&](std::string_view l) {
      batch.push_back(l);
      if (batch.size() == 2000) flush();
    });
    if (!batch.empty()) flush();
    double t1 = process_cpu_seconds();
    res.lines_per_s = total.lines / (t1 - t0);
    res.applied = total.applied;
    res.ignored = total.ignored;
    res.events = total.events;
  }
  std::filesystem::remove_all(dir);
  return res;
}

int main(int argc, char** argv) {
  std::size_t lines = 1'000'000;
  std::uint64_t seed = 1;
  int rounds = 5;
  std::string write_path;
  bool parse = true, with_join = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool more = i + 1 < argc;
    if (a == "--lines" && more) lines = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--seed" && more) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--rounds" && more) rounds = std::max(1, std::atoi(argv[++i]));
    else if (a == "--write" && more) write_path = argv[++i];
    else if (a == "--no-parse") parse = false;
    else if (a == "--no-join") with_join = false;
    else lines = 0;
    if (lines == 0) {
      std::fprintf(stderr, "usage: %s [--lines N] [--seed S] [--rounds R] [--write PATH] [--no-parse] [--no-join]\n",
                   argv[0]);
      return 2;
    }
  }
  std::string log = generate(lines, seed);
  if (!write_path.empty()) {
    std::ofstream out(write_path, std::ios::binary);
    out.write(log.data(), static_cast<std::streamsize>(log.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", write_path.c_str());
      return 1;
    }
    std::printf("wrote %zu lines (%zu bytes) to %s\n", lines, log.size(), write_path.c_str());
  }
  if (!parse) return 0;

  std::size_t kinds[6] = {}, sink = 0;
  std::vector<double> split_ls, parse_ls, classify_ls;
  for (int r = -1; r < rounds; ++r) {  // round -1 warms the caches
    std::size_t count = 0;
    double t0 = cpu_seconds();
    each_line(log, [&](std::string_view l) { sink += l.size(), ++count; });
    double t1 = cpu_seconds();
    std::size_t k[6] = {};
    each_line(log, [&](std::string_view l) {
      LogLine p = parse_line(l);
      ++k[static_cast<int>(p.kind)];
      sink += p.queue_id.size();
    });
    double t2 = cpu_seconds();
    each_line(log, [&](std::string_view l) {
      LogLine p = parse_line(l);
      if (p.kind == LineKind::recipient && p.status != "sent")
        sink += static_cast<std::size_t>(classify_bounce(p.dsn, p.reply));
    });
    double t3 = cpu_seconds();
    if (r < 0) continue;
    std::copy(std::begin(k), std::end(k), std::begin(kinds));
    split_ls.push_back(count / (t1 - t0));
    parse_ls.push_back(count / (t2 - t1));
    classify_ls.push_back(count / (t3 - t2));
  }
  double mb = log.size() / 1e6, ms = median(split_ls), mp = median(parse_ls), mc = median(classify_ls);
  std::printf("delivery parser: %zu generated lines (%.1f MB, seed %llu), %d rounds, one core; median\n", lines, mb,
              static_cast<unsigned long long>(seed), rounds);
  std::printf("%-26s %14s %10s %8s\n", "pass", "lines/s", "MB/s", "x split");
  std::printf("%-26s %14.0f %10.0f %8.3f\n", "split (memchr)", ms, ms * mb / lines, 1.0);
  std::printf("%-26s %14.0f %10.0f %8.3f\n", "parse_line", mp, mp * mb / lines, mp / ms);
  std::printf("%-26s %14.0f %10.0f %8.3f\n", "parse_line + classify(*)", mc, mc * mb / lines, mc / ms);
  std::printf("kinds: other %zu, recipient %zu, expired %zu, removed %zu, notification %zu, rejected %zu\n",
              kinds[0], kinds[1], kinds[2], kinds[3], kinds[4], kinds[5]);
  std::printf("(*) classify_bounce on every recipient line whose status is not sent\n");
  if (sink == 0) std::printf("(nothing read)\n");
  if (with_join) {
    JoinResult j = join(log);
    std::printf("%-26s %14.0f %10.0f %8.3f   (process CPU, one run; target >= 200,000 lines/s)\n",
                "parse + join (tracker)", j.lines_per_s, j.lines_per_s * mb / lines, j.lines_per_s / ms);
    std::printf("join: %zu records, %zu lines applied, %zu ignored, %zu events queued\n", j.records, j.applied,
                j.ignored, j.events);
  }
  return 0;
}
