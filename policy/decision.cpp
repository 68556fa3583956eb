#include "policy/decision.hpp"

namespace cllavio::policy {

std::string_view to_string(Action a) {
  switch (a) {
    case Action::reject: return "reject";
    case Action::tempfail: return "tempfail";
    case Action::accept: break;
  }
  return "accept";
}

Decision decide_sender(const Identification& id, UnknownOrg unknown, std::string_view sender) {
  if (id.org != nullptr || unknown == UnknownOrg::accept) return {};
  // The sender is untrusted text that ends up in an SMTP reply: printable ASCII only,
  // and short enough for libmilter's reply limit (980 bytes).
  std::string_view cut = sender.substr(0, 200);
  std::string shown = "<" + std::string(cut) + (cut.size() < sender.size() ? "...>" : ">");
  for (char& c : shown) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '%') c = '?';
  }
  return Decision{Action::reject, "unknown_org",
                  Reply{"550", "5.7.1",
                        "Sender " + shown +
                            " is not authorized to send through this server: no organization "
                            "matches this login, client address or sender domain"}};
}

}  // namespace cllavio::policy
