// The configuration reference in Markdown (docs/configuration.md's tables): every key of
// the three schemas with type, default, allowed values and meaning, and the rules across
// keys. Rendered from the schemas themselves, so the page cannot drift from the loader.
#include <string>
#include <string_view>

#include "conf/schemas.hpp"

namespace cllavio::conf {

namespace {

std::string cell(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

template <class T>
void render_table(std::string& out, const Schema<T>& schema) {
  out += "| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n";
  for (const auto& k : schema.keys()) {
    std::string def = k.required ? "(required)" : k.default_text.empty() ? "(unset)" : "`" + k.default_text + "`";
    out += "| `" + k.path + "` | " + cell(k.type) + " | " + cell(def) + " | " + cell(k.allowed) + " | " + cell(k.doc) +
           " |\n";
    for (const auto& r : k.rows) {
      std::string d = r[2] == "(required)" ? r[2] : r[2].empty() ? "(unset)" : "`" + r[2] + "`";
      out += "| `" + r[0] + "` | " + cell(r[1]) + " | " + cell(d) + " | " + cell(r[3]) + " | " + cell(r[4]) + " |\n";
    }
  }
  if (schema.rules().empty()) return;
  out += "\nRules across keys:\n\n";
  for (const auto& r : schema.rules()) out += "- " + r.doc + "\n";
}

}  // namespace

std::string render_reference() {
  std::string out = "### Main file\n\n";
  render_table(out, main_schema());
  out += "\n### Organization file (`orgs.d/*.toml`)\n\n";
  render_table(out, org_schema());
  out += "\n### Secrets file (`[secrets] file`)\n\n";
  render_table(out, secrets_schema());
  return out;
}

}  // namespace cllavio::conf
