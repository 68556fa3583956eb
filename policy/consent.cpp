#include "policy/consent.hpp"

namespace cllavio::policy {

std::string_view to_string(ConsentState s) {
  switch (s) {
    case ConsentState::granted: return "granted";
    case ConsentState::revoked: return "revoked";
    case ConsentState::unsubscribed: return "unsubscribed";
    case ConsentState::none: break;
  }
  return "none";
}

std::optional<ConsentState> parse_consent_state(std::string_view s) {
  if (s == "granted") return ConsentState::granted;
  if (s == "revoked") return ConsentState::revoked;
  if (s == "unsubscribed") return ConsentState::unsubscribed;
  return std::nullopt;
}

bool may_track(ConsentMode mode, ConsentState state) {
  if (state == ConsentState::granted) return true;
  if (state == ConsentState::none) return mode == ConsentMode::implied;
  return false;  // revoked, unsubscribed
}

bool suppressed(const Stream& stream, ConsentState state) {
  return stream.suppresses() && state == ConsentState::unsubscribed;
}

TrackingConsent consent_for_message(ConsentMode mode, const std::vector<ConsentState>& recipients) {
  TrackingConsent c;
  for (ConsentState s : recipients)
    if (!may_track(mode, s)) ++c.refused;
  c.allowed = !recipients.empty() && c.refused == 0;
  return c;
}

}  // namespace cllavio::policy
