// cllavioctl export: everything the store holds that names one address, as one JSON
// document (store/export.hpp; docs/privacy.md has the schema).
#include <cstdio>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "policy/consent.hpp"
#include "store/export.hpp"
#include "store/message_record.hpp"

namespace cllavio::cli {

namespace {

constexpr const char* kUsage = "usage: cllavioctl [-c FILE] export ORG ADDRESS | export --all-orgs ADDRESS";

}  // namespace

int cmd_export(const std::string& config_path, const Args& args) {
  bool all_orgs = false;
  std::vector<std::string> positional;
  for (const auto& a : args) {
    if (a == "--all-orgs") {
      all_orgs = true;
    } else if (a.size() > 1 && a[0] == '-' && a[1] == '-') {
      std::fprintf(stderr, "%s\n", kUsage);
      return kExitUsage;
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != (all_orgs ? 1u : 2u)) {
    std::fprintf(stderr, "%s\n", kUsage);
    return kExitUsage;
  }
  const std::string& address = positional.back();
  if (policy::consent_address(address).empty()) {
    std::fprintf(stderr, "cllavioctl export: not an address the store can hold: %s\n",
                 store::printable(address).c_str());
    return kExitUsage;
  }
  std::vector<std::string> orgs;
  if (!all_orgs) {
    auto cfg = load(config_path, true);
    if (!cfg) return kExitUnavailable;
    const std::string& org = positional.front();
    // Empty policies: the org files could not be read; the store decides then.
    if (!cfg->policies.empty() && !cfg->policies.count(org)) {
      std::fprintf(stderr, "cllavioctl: no organization '%s' in the configuration (--all-orgs looks in every org)\n",
                   store::printable(org).c_str());
      return kExitUsage;
    }
    orgs.push_back(org);
  }
  auto st = open_store(config_path);
  if (!st) return kExitUnavailable;
  nlohmann::ordered_json doc;
  {
    auto view = st->read();
    doc = store::export_address(*view, address, orgs, all_orgs);
  }
  // Envelope text may be invalid UTF-8: replaced, never an exception half-way through.
  std::printf("%s\n", doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  return kExitOk;
}

}  // namespace cllavio::cli
