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

Reply unsubscribed_reply(std::string_view address, std::string_view org) {
  std::string_view cut = address.substr(0, 200);
  std::string shown = "<" + std::string(cut) + (cut.size() < address.size() ? "...>" : ">");
  for (char& c : shown) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '%') c = '?';
  }
  return Reply{"550", "5.7.1", shown + " unsubscribed from " + std::string(org) + " mailings"};
}

Reply all_unsubscribed_reply(std::string_view org) {
  return Reply{"550", "5.7.1", "Every recipient unsubscribed from " + std::string(org) + " mailings"};
}

}  // namespace cllavio::policy
