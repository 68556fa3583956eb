// cllavioctl doctor: a Postfix instance as postconf shows it (parameters, their expansions,
// master.cf services and their -o overrides), and the instances postmulti knows.
#include <sys/stat.h>

#include <algorithm>
#include <future>
#include <sstream>

#include "doctor/gather.hpp"
#include "doctor/text.hpp"
#include "doctor/process.hpp"

namespace cllavio::doctor {

namespace {

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Joins continuation lines (starting with white space) to the line before.
std::vector<std::string> logical_lines(std::string_view text) {
  std::vector<std::string> out;
  for (auto& l : lines_of(text)) {
    if (!l.empty() && (l[0] == ' ' || l[0] == '\t') && !out.empty()) {
      out.back() += " " + trim(l);
    } else if (!trim(l).empty()) {
      out.push_back(l);
    }
  }
  return out;
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::string first_line(const std::string& s) {
  std::string t = trim(s);
  auto nl = t.find('\n');
  return nl == std::string::npos ? t : t.substr(0, nl);
}

}  // namespace

std::map<std::string, std::string> parse_postconf(std::string_view text) {
  std::map<std::string, std::string> out;
  for (const auto& l : logical_lines(text)) {
    auto eq = l.find('=');
    if (eq == std::string::npos) continue;
    out[trim(std::string_view(l).substr(0, eq))] = trim(std::string_view(l).substr(eq + 1));
  }
  return out;
}

std::vector<Service> parse_master(std::string_view m_text, std::string_view p_text) {
  std::vector<Service> services;
  for (const auto& l : logical_lines(m_text)) {
    if (trim(l)[0] == '#') continue;
    auto w = words(l);
    if (w.size() < 8) continue;
    Service s;
    s.name = w[0];
    s.type = w[1];
    s.chroot = w[4];
    s.command = w[7];
    services.push_back(std::move(s));
  }
  for (const auto& l : logical_lines(p_text)) {
    auto eq = l.find('=');
    if (eq == std::string::npos) continue;
    std::string key = trim(std::string_view(l).substr(0, eq));
    std::string value = trim(std::string_view(l).substr(eq + 1));
    // service/type/parameter; a service name may hold ':' (127.0.0.1:10025) but not '/'.
    auto s1 = key.find('/');
    auto s2 = s1 == std::string::npos ? s1 : key.find('/', s1 + 1);
    if (s2 == std::string::npos) continue;
    std::string name = key.substr(0, s1), type = key.substr(s1 + 1, s2 - s1 - 1), param = key.substr(s2 + 1);
    for (auto& s : services)
      if (s.name == name && s.type == type) s.overrides[param] = value;
  }
  return services;
}

std::vector<std::string> parse_postmulti_list(std::string_view text) {
  std::vector<std::string> dirs;
  for (const auto& l : lines_of(text)) {
    auto w = words(l);
    if (w.size() >= 4 && w[3][0] == '/') dirs.push_back(w[3]);
  }
  return dirs;
}

PostfixInstance read_postfix_instance(const std::string& dir) {
  PostfixInstance pi;
  pi.config_dir = dir;
  struct stat st{};
  if (::stat((dir + "/main.cf").c_str(), &st) != 0) {
    pi.error = "no main.cf in " + dir + " (Postfix is not configured there; give its config dir with -C DIR)";
    return pi;
  }
  // The four postconf runs at once (each reads main.cf and master.cf itself); the children
  // only exec, so forking from these threads is safe.
  auto start = [&](std::vector<std::string> argv) {
    return std::async(std::launch::async, [argv = std::move(argv)] { return run(argv); });
  };
  auto all_f = start({"postconf", "-c", dir});
  auto expanded_f = start({"postconf", "-c", dir, "-x"});
  auto m_f = start({"postconf", "-c", dir, "-M"});
  auto p_f = start({"postconf", "-c", dir, "-P"});
  auto all = all_f.get(), expanded = expanded_f.get(), m = m_f.get(), p = p_f.get();
  if (all.exit_code != 0) {
    pi.error = "postconf -c " + dir + " failed: " + first_line(all.err.empty() ? all.out : all.err);
    return pi;
  }
  pi.main = parse_postconf(all.out);
  if (expanded.exit_code == 0) pi.expanded = parse_postconf(expanded.out);
  if (m.exit_code != 0) {
    pi.error = "postconf -c " + dir + " -M failed: " + first_line(m.err);
    return pi;
  }
  pi.services = parse_master(m.out, p.exit_code == 0 ? p.out : "");
  if (auto it = pi.main.find("multi_instance_name"); it != pi.main.end()) pi.name = it->second;
  pi.readable = true;
  return pi;
}

std::vector<std::string> postmulti_instances(const PostfixInstance& pi) {
  std::vector<std::string> out;
  auto add = [&](const std::string& d) {
    if (d != pi.config_dir && std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  };
  const auto& params = pi.expanded.count("multi_instance_directories") ? pi.expanded : pi.main;
  if (auto it = params.find("multi_instance_directories"); it != params.end()) {
    std::string list = it->second;
    for (char& c : list)
      if (c == ',') c = ' ';
    for (const auto& d : words(list)) add(d);
  }
  if (pi.config_dir == "/etc/postfix" && have_program("postmulti")) {
    auto r = run({"postmulti", "-l"});
    if (r.exit_code == 0)
      for (const auto& d : parse_postmulti_list(r.out)) add(d);
  }
  return out;
}

}  // namespace cllavio::doctor
