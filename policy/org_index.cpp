#include "policy/org_index.hpp"

#include "policy/address.hpp"

namespace cllavio::policy {

std::string_view to_string(IdentifiedBy by) {
  switch (by) {
    case IdentifiedBy::sasl: return "sasl";
    case IdentifiedBy::network: return "network";
    case IdentifiedBy::sender_domain: return "sender_domain";
    case IdentifiedBy::none: break;
  }
  return "none";
}

OrgIndex::OrgIndex(std::vector<Org> orgs) : orgs_(std::move(orgs)) {
  for (std::size_t i = 0; i < orgs_.size(); ++i) {
    for (const auto& login : orgs_[i].sasl_users) {
      if (!login.empty() && login.front() == '@')
        sasl_domain_.emplace(login.substr(1), i);
      else
        sasl_exact_.emplace(login, i);
    }
    for (const auto& d : orgs_[i].domains) domain_.emplace(d, i);
  }
}

const Org* OrgIndex::find(std::string_view id) const {
  for (const auto& o : orgs_)
    if (o.id == id) return &o;
  return nullptr;
}

Identification OrgIndex::identify(const Envelope& env) const {
  if (!env.sasl_login.empty()) {
    std::string login = ascii_lower(env.sasl_login);
    if (auto it = sasl_exact_.find(login); it != sasl_exact_.end())
      return {&orgs_[it->second], IdentifiedBy::sasl};
    if (auto at = login.rfind('@'); at != std::string::npos) {
      if (auto it = sasl_domain_.find(login.substr(at + 1)); it != sasl_domain_.end())
        return {&orgs_[it->second], IdentifiedBy::sasl};
    }
  }

  std::string domain = domain_of(env.sender);
  auto by_domain = domain.empty() ? domain_.end() : domain_.find(domain);

  if (env.client) {
    auto in_networks = [&](const Org& o) {
      for (const auto& n : o.networks)
        if (n.contains(*env.client)) return true;
      return false;
    };
    if (by_domain != domain_.end()) {
      const Org& o = orgs_[by_domain->second];
      if (in_networks(o)) return {&o, IdentifiedBy::network};
    } else if (env.sender.empty()) {
      const Org* only = nullptr;
      for (const auto& o : orgs_) {
        if (!in_networks(o)) continue;
        if (only != nullptr) return {};  // ambiguous: several orgs share this network
        only = &o;
      }
      if (only != nullptr) return {only, IdentifiedBy::network};
    }
  }

  if (by_domain != domain_.end() && orgs_[by_domain->second].trust_sender_domain)
    return {&orgs_[by_domain->second], IdentifiedBy::sender_domain};
  return {};
}

}  // namespace cllavio::policy
