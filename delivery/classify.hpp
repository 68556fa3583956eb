// What a bounce says about the recipient: the classification that decides whether an
// address is suppressed for campaigns (docs/delivery.md). Pure.
//
// Invalid address (suppress at once): 5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10, 5.2.1, a null MX
// (5.1.10, or "null MX" / Postfix's "(nullMX)" in the text); 5.0.0 (or a code-less 5xx)
// only with text such as "user unknown", "no such user", "does not exist", "unknown
// recipient" ("mailbox unavailable" alone is not enough).
// Block (5.7.x, also a 4.7.x deferral; a rejection "in reply to MAIL FROM", HELO/EHLO or at
// connect, whatever its code), content (5.6.x, 5.3.4, 5.2.3), mailbox full (x.2.2, or
// "mailbox full"/"over quota" with a generic code) and everything else: no suppression.
// A 4xx is never invalid_address. The code is dsn when specific, else the first enhanced
// code in the reply ("550 5.1.1 ...", "host X said: 550 5.1.1 ..."); text is matched
// ignoring case.
#pragma once

#include <string_view>

namespace cllavio::delivery {

enum class BounceClass { invalid_address, block, content, mailbox_full, other };

BounceClass classify_bounce(std::string_view dsn, std::string_view reply);
std::string_view to_string(BounceClass);

}  // namespace cllavio::delivery
