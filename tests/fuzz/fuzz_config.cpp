// Fuzzes the configuration path: TOML parsing plus both schemas (types, ranges,
// list normalization, unknown keys). Must never crash, leak or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "conf/schemas.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio::conf;
  if (size > 64 * 1024) return 0;
  toml::table root;
  try {
    root = toml::parse(std::string_view(reinterpret_cast<const char*>(data), size), std::string_view("fuzz.toml"));
  } catch (const toml::parse_error&) {
    return 0;
  }
  Diagnostics diags;
  KeyContext ctx{"/etc/cllavio", nullptr};
  Reporter rep("fuzz.toml", diags);
  Config cfg;
  main_schema().apply_defaults(cfg);
  main_schema().apply(root, cfg, ctx, rep);
  OrgFile org;
  org_schema().apply_defaults(org);
  LineMap lines;
  KeyContext org_ctx{"/etc/cllavio/orgs.d", &lines};
  org_schema().apply(root, org, org_ctx, rep);
  (void)build_org_policy(org.policy, OrgTrackingSwitches{org.tracking.opens, org.tracking.clicks,
                                                          !org.tracking.domain.empty(), true},
                         "fuzz.toml", lines, diags);
  for (const auto& d : diags) (void)d.str();
  return 0;
}
