// How long the store keeps each kind of data (docs/configuration.md, [retention]).
//
// Contract: plain values. The main file's [retention] gives every org its durations; an
// org file's [retention] overrides some of them for that org. Consent states and events
// the API has not acknowledged are never subject to retention (store/retention.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "policy/quota.hpp"

namespace cllavio::policy {

struct Retention {
  std::int64_t messages_s = 90 * 86400;     // accepted mail: records, link tables, delivery states
  std::int64_t audit_s = 400 * 86400;       // audit entries
  std::int64_t dead_letters_s = 30 * 86400; // events the API refused for good
  std::int64_t rejects_s = 7 * 86400;       // records of refused transactions (reject, tempfail)
  friend bool operator==(const Retention&, const Retention&) = default;
};

struct RetentionOverride {
  std::optional<std::int64_t> messages_s, audit_s, dead_letters_s, rejects_s;
  Retention over(const Retention& base) const {
    return {messages_s.value_or(base.messages_s), audit_s.value_or(base.audit_s),
            dead_letters_s.value_or(base.dead_letters_s), rejects_s.value_or(base.rejects_s)};
  }
  bool empty() const { return !messages_s && !audit_s && !dead_letters_s && !rejects_s; }
};

// A retention duration: "90d", "12h", "30s": 1 s .. 100 years; nullopt otherwise.
inline std::optional<std::int64_t> parse_retention(std::string_view s) {
  auto v = parse_duration_s(s);
  if (!v || *v < 1 || *v > 36500LL * 86400) return std::nullopt;
  return v;
}

}  // namespace cllavio::policy
