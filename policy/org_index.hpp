// Organizations and how a message is attributed to one.
//
// identify() is a pure function of the envelope and the configured orgs:
//   1. SASL login ({auth_authen}): an exact login, else the login's "@domain";
//   2. client address in an org's networks AND envelope-sender domain in that
//      org's domains (a null sender matches when exactly one org lists the
//      network, so DSNs relayed by an org's smarthost are not orphaned);
//   3. envelope-sender domain alone, only for orgs with trust_sender_domain.
// No match: Identification{nullptr, IdentifiedBy::none}; the caller applies
// [orgs] unknown. The index assumes the loader already rejected ambiguous
// configs (a domain or login claimed twice).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/network.hpp"

namespace cllavio::policy {

struct Org {
  std::string id;
  std::string name;
  std::vector<std::string> domains;     // lowercase, no trailing dot
  std::vector<std::string> sasl_users;  // lowercase; "@domain" = every login of that domain
  std::vector<Network> networks;
  bool trust_sender_domain = false;
};

enum class IdentifiedBy { none, sasl, network, sender_domain };
std::string_view to_string(IdentifiedBy);

struct Envelope {
  std::string_view sasl_login;          // "" when not authenticated
  std::optional<IpAddress> client;      // nullopt when unknown
  std::string_view sender;              // normalized, "" for the null sender
};

struct Identification {
  const Org* org = nullptr;
  IdentifiedBy by = IdentifiedBy::none;
};

class OrgIndex {
 public:
  OrgIndex() = default;
  explicit OrgIndex(std::vector<Org> orgs);

  Identification identify(const Envelope& env) const;
  const Org* find(std::string_view id) const;
  const std::vector<Org>& orgs() const { return orgs_; }

 private:
  std::vector<Org> orgs_;
  std::unordered_map<std::string, std::size_t> sasl_exact_;
  std::unordered_map<std::string, std::size_t> sasl_domain_;  // key without '@'
  std::unordered_map<std::string, std::size_t> domain_;
};

}  // namespace cllavio::policy
