// What a bounce says about the recipient: the classification that decides whether an
// address is suppressed for campaigns (docs/delivery.md). Pure.
//
// Invalid address (suppress at once): 5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10, 5.2.1, a null MX
// (5.1.10, or "null MX" in the text); 5.0.0 (or a code-less 5xx) only with text such as
// "user unknown", "no such user", "does not exist", "unknown recipient".
// Block (5.7.x; a rejection "in reply to MAIL FROM" or at connect), content (5.6.x, 5.3.4,
// 5.2.3), mailbox full (x.2.2) and everything else: no suppression.
#pragma once

#include <string_view>

namespace cllavio::delivery {

enum class BounceClass { invalid_address, block, content, mailbox_full, other };

BounceClass classify_bounce(std::string_view dsn, std::string_view reply);
std::string_view to_string(BounceClass);

}  // namespace cllavio::delivery
