// Export by address: everything the store holds that names one person, as one JSON
// document (docs/privacy.md has the schema; field names are stable).
//
//   {"address", "orgs": [...], "messages": [...], "consent": [...], "suppression": [...], "audit": [...]}
//
// messages: every record where the address is sender or recipient (display_json fields,
// plus "roles": ["sender","recipient","suppressed"], the tracking outcome with its link
// table, and "delivery": the address's delivery states); consent: per org the state, when
// and from where; suppression: per org why mail to it is refused (unsubscribed, bounced,
// erased tombstone does not apply: an export after an erase finds nothing); audit: entries
// naming it. An address with no data gives empty lists. Read-only.
#pragma once

#include <string_view>
#include <vector>
#include <string>

#include <nlohmann/json.hpp>

#include "store/tables.hpp"

namespace cllavio::store {

// orgs: the orgs to look in (ignored with all_orgs: every org, and records of no org).
nlohmann::ordered_json export_address(const Tables& t, std::string_view address, const std::vector<std::string>& orgs,
                                      bool all_orgs);

}  // namespace cllavio::store
