// Fuzzes the policy parsers and the quota ledger: sender patterns and globbing, quota
// windows, consent import rows, and a ledger driven by the input (reserve, release,
// charge, uncharge, time jumps back and forth), checking that a message window never
// holds more than its max and that reservations never go negative.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>

#include "policy/consent.hpp"
#include "policy/quota.hpp"
#include "policy/stream.hpp"

using namespace cllavio::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::size_t nl = in.find('\n');
  std::string_view a = in.substr(0, nl), b = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);

  std::string pattern(a);
  if (check_sender_pattern(pattern).empty()) (void)sender_matches(pattern, b.substr(0, b.find('\n')));
  (void)parse_window(a);
  (void)parse_consent_row(b);

  QuotaPolicy p;
  p.messages = {{60, 3}, {3600, 10}};
  p.recipients = {{600, 7}};
  QuotaLedger ledger;
  std::int64_t now = 1'790'000'000'000'000, latest = now, last_charge = 0;
  std::uint64_t held = 0, last_rcpts = 0;
  for (unsigned char c : in) {
    switch (c % 6) {
      case 0: now += static_cast<std::int64_t>(c) * 1'000'000; break;
      case 1: now -= static_cast<std::int64_t>(c % 32) * 1'000'000; break;  // clock going backwards
      case 2:
        if (!ledger.reserve_recipient("o", p, now)) ++held;
        break;
      case 3:
        ledger.release_recipients("o", held);
        held = 0;
        break;
      case 4:
        if (!ledger.charge_message("o", p, held, now, &last_charge, held)) last_rcpts = held, held = 0;
        break;
      case 5:
        if (last_charge != 0) ledger.uncharge("o", last_charge, last_rcpts);
        last_charge = 0;
        break;
    }
    latest = std::max(latest, now);
    // Seen from the latest time the clock showed, no window holds more than its max. (From
    // an earlier time, after the clock went back, the count is deliberately pessimistic.)
    for (const auto& u : ledger.usage("o", p, latest))
      if (!u.recipients && u.used > u.window.max) std::abort();
    if (ledger.reserved("o") != held) std::abort();
  }
  return 0;
}
