// Envelope address helpers: strip SMTP angle brackets, normalize, extract domains.
//
// Contract: pure functions over untrusted text, no throwing, no allocation beyond
// the returned strings. Normalization lowercases the domain only (local parts are
// case-sensitive per RFC 5321); SASL logins are compared lowercased as a whole.
#pragma once

#include <string>
#include <string_view>

namespace cllavio::policy {

// "<User@Example.COM>" -> "User@example.com"; "<>" -> "" (the null sender).
// Surrounding whitespace and one pair of angle brackets are removed; a trailing
// dot on the domain is dropped.
std::string normalize_address(std::string_view raw);

// Lowercased domain of an address (after the last '@'), "" when there is none.
std::string domain_of(std::string_view address);

// Lowercase ASCII copy.
std::string ascii_lower(std::string_view s);

// A DNS name as config may list it: ASCII letters, digits, '-', dots between
// labels of 1..63 octets, 253 octets at most. Expects lowercase input.
bool is_valid_domain(std::string_view domain);

}  // namespace cllavio::policy
