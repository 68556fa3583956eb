// Recipient consent: the states a recipient can be in per organization, and the
// decisions that follow from them. Pure; the states themselves live in the store
// (store/tables.hpp, ConsentTable), written by cllavioctl, imports and the API's consent sync.
//
//   granted       the recipient agreed to be tracked
//   revoked       the recipient withdrew consent: never tracked
//   unsubscribed  the recipient left the org's mailings: never tracked, and refused
//                 by campaign streams that suppress unsubscribed recipients
//   bounced       the address proved not to exist (a hard bounce, or repeated expiries:
//                 delivery/): refused by every campaign stream, person-to-person mail
//                 still passes; tracked as if nothing were recorded
//   none          nothing recorded: tracked only where the stream's consent is "implied"
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "policy/decision.hpp"
#include "policy/stream.hpp"

namespace cllavio::policy {

enum class ConsentState { none, granted, revoked, unsubscribed, bounced };
std::string_view to_string(ConsentState);
std::optional<ConsentState> parse_consent_state(std::string_view);  // granted | revoked | unsubscribed | bounced

struct Consent {
  ConsentState state = ConsentState::none;
  std::int64_t at_us = 0;  // when it was given, revoked or unsubscribed
  std::string source;      // cli | import | api | unsubscribe
  friend bool operator==(const Consent&, const Consent&) = default;
};

// May this recipient's copy be tracked under this stream's consent model?
bool may_track(ConsentMode mode, ConsentState state);

// Is this recipient refused by this stream? Unsubscribed: by campaign streams with
// suppress_unsubscribed; bounced: by every campaign stream.
bool suppressed(const Stream& stream, ConsentState state);

// Tracking of a whole message: one body goes to every recipient, so it is tracked only
// when every recipient may be tracked.
struct TrackingConsent {
  bool allowed = false;
  std::size_t refused = 0;  // recipients that may not be tracked
};
TrackingConsent consent_for_message(ConsentMode mode, const std::vector<ConsentState>& recipients);

// An address as consent is keyed: normalized (domain lowercase), or "" when it is not a
// plain address (no local part or domain, spaces, brackets, commas, control bytes).
std::string consent_address(std::string_view raw);

// One line of a consent import, "address,state[,timestamp]" (fields trimmed); the
// timestamp is left as text for the caller to read. Empty lines, '#' comments and the
// header line ("address,...") give a row with an empty address and no error.
struct ConsentRow {
  std::string address;  // normalized; "" for a line to skip
  ConsentState state = ConsentState::none;
  std::string timestamp;
};
std::variant<ConsentRow, std::string> parse_consent_row(std::string_view line);

// 550 5.7.1 <addr> unsubscribed from ORG mailings (the address made printable, cut to 200 bytes).
Reply unsubscribed_reply(std::string_view address, std::string_view org);
// 550 5.1.1 <addr> bounced permanently; not sent to again by ORG
Reply bounced_reply(std::string_view address, std::string_view org);
// The reply for a recipient suppressed in this state (unsubscribed or bounced).
Reply suppression_reply(std::string_view address, std::string_view org, ConsentState state);
// 550 5.7.1 when a header picked a suppressing stream and every recipient had unsubscribed.
Reply all_unsubscribed_reply(std::string_view org);

}  // namespace cllavio::policy
