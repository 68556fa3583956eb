// cllavioctl doctor: checks how Postfix is wired to the milter and how the milter is doing
// (docs/doctor.md). Gathers the facts (doctor/gather.hpp), judges them (doctor/checks.hpp),
// prints one block per finding (or --json) and exits 0 (nothing wrong), 1 (warnings) or 2 (errors).
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "doctor/checks.hpp"
#include "doctor/gather.hpp"

namespace cllavio::cli {

namespace {

int usage_doctor() {
  std::fprintf(stderr, "usage: cllavioctl [-c FILE] doctor [-C POSTFIX_CONFIG_DIR]... [--json] [--offline]\n");
  return kExitUsage;
}

std::string label(doctor::Severity s) {
  switch (s) {
    case doctor::Severity::ok: return "ok";
    case doctor::Severity::info: return "info";
    case doctor::Severity::warning: return "WARNING";
    case doctor::Severity::error: return "ERROR";
  }
  return "?";
}

void print_indented(const std::string& text, const char* indent) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) std::printf("%s%s\n", indent, line.c_str());
}

void print_text(const std::vector<doctor::Finding>& findings, int exit) {
  std::size_t counts[4] = {0, 0, 0, 0};
  for (const auto& f : findings) {
    ++counts[static_cast<int>(f.severity)];
    std::printf("%-7s %s%s%s: %s\n", label(f.severity).c_str(), f.id.c_str(), f.instance.empty() ? "" : " [",
                f.instance.empty() ? "" : (f.instance + "]").c_str(), f.title.c_str());
    if (!f.why.empty()) print_indented(f.why, "        ");
    if (!f.fix.empty()) {
      std::printf("        fix:\n");
      print_indented(f.fix, "          ");
    }
  }
  std::printf("\n%zu ok, %zu info, %zu warning(s), %zu error(s): exit %d\n", counts[0], counts[1], counts[2], counts[3],
              exit);
}

}  // namespace

int cmd_doctor(const std::string& config_path, const Args& args) {
  doctor::GatherOptions o;
  o.config_path = config_path;
  if (const char* d = std::getenv("CLLAVIO_DOCTOR_SYSCONFDIR"); d && *d) o.sysconfdir = d;  // for tests
  bool json = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-C" && i + 1 < args.size()) {
      o.postfix_dirs.push_back(args[++i]);
    } else if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--offline") {
      o.offline = true;
    } else {
      return usage_doctor();
    }
  }
  auto facts = doctor::gather(o);
  auto findings = doctor::check(facts);
  int exit = doctor::exit_code(findings);
  if (json) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& f : findings)
      arr.push_back({{"id", f.id},
                     {"severity", std::string(doctor::to_string(f.severity))},
                     {"instance", f.instance},
                     {"title", f.title},
                     {"why", f.why},
                     {"fix", f.fix}});
    nlohmann::ordered_json j{{"findings", arr}, {"exit", exit}};
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  } else {
    print_text(findings, exit);
  }
  return exit;
}

}  // namespace cllavio::cli
