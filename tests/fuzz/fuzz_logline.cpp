// Fuzzes the Postfix log-line parser and the bounce classification with arbitrary bytes:
// the whole input as one line, then each '\n'-separated piece. Invariants: every view the
// parser returns lies inside its line; a line of kind other carries nothing but its prefix
// (time, host, service, program); a readable stamp is in range; classify_bounce on the
// dsn and reply (and on the raw bytes) neither crashes nor returns an unknown class.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "delivery/classify.hpp"
#include "delivery/logline.hpp"

namespace {

using namespace cllavio::delivery;

void inside(std::string_view v, std::string_view line) {
  if (v.empty()) {
    if (v.data() != nullptr && (v.data() < line.data() || v.data() > line.data() + line.size())) std::abort();
    return;
  }
  if (v.data() < line.data() || v.data() + v.size() > line.data() + line.size()) std::abort();
}

void check_class(BounceClass c) {
  if (to_string(c) != "invalid_address" && to_string(c) != "block" && to_string(c) != "content" &&
      to_string(c) != "mailbox_full" && to_string(c) != "other")
    std::abort();
}

void one_line(std::string_view line) {
  LogLine l = parse_line(line);
  std::string_view fields[] = {l.queue_id, l.to, l.orig_to, l.relay, l.dsn, l.status, l.reply, l.next_queue_id,
                               l.from, l.action, l.stage, l.reason};
  for (auto v : fields) inside(v, line);
  for (auto v : {l.host, l.service, l.program}) inside(v, line);

  const LogTime& t = l.time;
  if (t.month != 0 && (t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59 || t.second > 60 ||
                       t.micros < 0 || t.micros > 999999))
    std::abort();
  if (t.month == 0 && (!l.host.empty() || !l.service.empty() || l.kind != LineKind::other)) std::abort();

  if (l.kind == LineKind::other) {
    for (auto v : fields)
      if (!v.empty()) std::abort();
    if (l.delay_s != -1) std::abort();
  } else {
    if (l.queue_id.empty() || l.program.empty() || l.service.substr(0, 7) != "postfix") std::abort();
    if (l.delay_s < -1) std::abort();
  }
  if (l.kind == LineKind::recipient && l.status.empty()) std::abort();
  if (l.kind == LineKind::notification && l.next_queue_id.empty()) std::abort();
  if (l.kind == LineKind::rejected && (l.action.empty() || l.stage.empty() || l.program != "cleanup")) std::abort();
  check_class(classify_bounce(l.dsn, l.reply));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  one_line(in);
  for (std::size_t p = 0; p < in.size();) {
    const void* nl = std::memchr(in.data() + p, '\n', in.size() - p);
    std::size_t e = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - in.data()) : in.size();
    one_line(in.substr(p, e - p));
    p = e + 1;
  }
  // The raw bytes as a dsn and as a reply.
  std::size_t half = size / 2;
  check_class(classify_bounce(in.substr(0, half), in.substr(half)));
  check_class(classify_bounce("", in));
  return 0;
}
