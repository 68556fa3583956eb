// Fuzzes the configuration path: TOML parsing plus the three schemas (types, ranges,
// list normalization, unknown keys, arrays of tables) and their rules across keys, then
// the org policy built from a file that passed them. Must never crash, leak or hang.
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
  SecretsFile secrets;
  secrets_schema().apply_defaults(secrets);
  LineMap secret_lines;
  KeyContext secrets_ctx{"/etc/cllavio", &secret_lines};
  secrets_schema().apply(root, secrets, secrets_ctx, rep);
  std::size_t before_rules = diags.size();
  const bool has_key = !secrets.tracking_keys.empty();
  main_schema().check_rules(cfg, RuleContext{lines, has_key, !secrets.api_signing_secret.empty()}, rep);
  org_schema().check_rules(
      org, RuleContext{.lines = lines, .has_tracking_key = has_key, .has_api = !cfg.api.url.empty(),
                       .api_org_keys = &secrets.api_org_keys},
      rep);
  secrets_schema().check_rules(secrets, RuleContext{secret_lines}, rep);
  if (diags.size() == before_rules) {
    (void)build_org_policy(org);
    (void)secrets.keys();
  }
  for (const auto& d : diags) (void)d.str();
  return 0;
}
