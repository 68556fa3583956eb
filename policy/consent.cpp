#include "policy/consent.hpp"

#include "policy/address.hpp"

namespace cllavio::policy {

std::string_view to_string(ConsentState s) {
  switch (s) {
    case ConsentState::granted: return "granted";
    case ConsentState::revoked: return "revoked";
    case ConsentState::unsubscribed: return "unsubscribed";
    case ConsentState::bounced: return "bounced";
    case ConsentState::none: break;
  }
  return "none";
}

std::optional<ConsentState> parse_consent_state(std::string_view s) {
  if (s == "granted") return ConsentState::granted;
  if (s == "revoked") return ConsentState::revoked;
  if (s == "unsubscribed") return ConsentState::unsubscribed;
  if (s == "bounced") return ConsentState::bounced;
  return std::nullopt;
}

bool may_track(ConsentMode mode, ConsentState state) {
  if (state == ConsentState::granted) return true;
  if (state == ConsentState::none || state == ConsentState::bounced) return mode == ConsentMode::implied;
  return false;  // revoked, unsubscribed
}

bool suppressed(const Stream& stream, ConsentState state) {
  if (state == ConsentState::bounced) return stream.kind == StreamKind::campaign;
  return stream.suppresses() && state == ConsentState::unsubscribed;
}

TrackingConsent consent_for_message(ConsentMode mode, const std::vector<ConsentState>& recipients) {
  TrackingConsent c;
  for (ConsentState s : recipients)
    if (!may_track(mode, s)) ++c.refused;
  c.allowed = !recipients.empty() && c.refused == 0;
  return c;
}

std::string consent_address(std::string_view raw) {
  std::string a = normalize_address(raw);
  std::size_t at = a.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 >= a.size() || a.size() > 320) return {};
  for (char c : a)
    if (static_cast<unsigned char>(c) <= ' ' || c == '<' || c == '>' || c == ',' || c == 0x7f) return {};
  return a;
}

std::variant<ConsentRow, std::string> parse_consent_row(std::string_view line) {
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r' || v.back() == '\n'))
      v.remove_suffix(1);
    return v;
  };
  line = trim(line);
  if (line.empty() || line.front() == '#') return ConsentRow{};
  std::vector<std::string_view> f;
  for (std::size_t pos = 0;;) {
    std::size_t comma = line.find(',', pos);
    f.push_back(trim(line.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos)));
    if (comma == std::string_view::npos || f.size() > 3) break;
    pos = comma + 1;
  }
  if (f[0] == "address") return ConsentRow{};  // a header line
  if (f.size() < 2 || f.size() > 3) return std::string("expected address,state[,timestamp]");
  ConsentRow row;
  row.address = consent_address(f[0]);
  if (row.address.empty()) return "not an address: " + std::string(f[0].substr(0, 200));
  auto state = parse_consent_state(f[1]);
  if (!state) return "state must be granted, revoked, unsubscribed or bounced, not " + std::string(f[1].substr(0, 40));
  row.state = *state;
  if (f.size() == 3) row.timestamp = std::string(f[2]);
  return row;
}

namespace {

std::string shown_address(std::string_view address) {
  std::string_view cut = address.substr(0, 200);
  std::string shown = "<" + std::string(cut) + (cut.size() < address.size() ? "...>" : ">");
  for (char& c : shown) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '%') c = '?';
  }
  return shown;
}

}  // namespace

Reply unsubscribed_reply(std::string_view address, std::string_view org) {
  return Reply{"550", "5.7.1", shown_address(address) + " unsubscribed from " + std::string(org) + " mailings"};
}

Reply bounced_reply(std::string_view address, std::string_view org) {
  return Reply{"550", "5.1.1",
               shown_address(address) + " bounced permanently; not sent to again by " + std::string(org)};
}

Reply suppression_reply(std::string_view address, std::string_view org, ConsentState state) {
  return state == ConsentState::bounced ? bounced_reply(address, org) : unsubscribed_reply(address, org);
}

Reply all_unsubscribed_reply(std::string_view org) {
  return Reply{"550", "5.7.1", "Every recipient unsubscribed from " + std::string(org) + " mailings"};
}

}  // namespace cllavio::policy
