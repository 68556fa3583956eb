// Policy decisions and the SMTP replies that carry them.
//
// A Decision is what the milter does with a transaction step; the milter shell
// maps it to SMFIS_* and smfi_setreply. Pure: no I/O, no clocks. The other policies'
// replies use the same Reply (quota_reply in quota.hpp, unsubscribed_reply in consent.hpp).
#pragma once

#include <string>
#include <string_view>

#include "policy/org_index.hpp"

namespace cllavio::policy {

enum class Action { accept, reject, tempfail };
std::string_view to_string(Action);

struct Reply {
  std::string rcode;  // "550"
  std::string xcode;  // "5.7.1"
  std::string text;   // one line, no CR/LF
};

struct Decision {
  Action action = Action::accept;
  std::string reason;  // machine-readable ("unknown_org"); empty when accepted
  Reply reply;         // set when action != accept
};

enum class UnknownOrg { accept, reject };

// The decision at MAIL FROM once the org is identified (or not).
Decision decide_sender(const Identification& id, UnknownOrg unknown, std::string_view sender);

}  // namespace cllavio::policy
