// cllavioctl doctor: the DKIM/ARC signers on this machine, by their sockets in Postfix's
// syntax: from opendkim.conf, dkimpy-milter.conf, openarc.conf (libmilter syntax) and rspamd's
// worker-proxy.inc (bind_socket), or their well-known sockets when their config is absent.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "doctor/gather.hpp"
#include "doctor/text.hpp"

namespace cllavio::doctor {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

std::string inet(std::string host, std::string_view port) {
  if (host.empty() || host == "*" || host == "0.0.0.0" || host == "::") host = "localhost";
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return "inet:" + host + ":" + std::string(port);
}

}  // namespace

namespace {

// The first line of text (comments after '#' removed, trimmed) for which value(line) has one.
template <typename F>
std::optional<std::string> first_value(std::string_view text, F value) {
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    auto hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    if (auto v = value(trim(line))) return v;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> conf_value(std::string_view text, std::string_view key) {
  return first_value(text, [&](const std::string& t) -> std::optional<std::string> {
    auto sp = t.find_first_of(" \t");
    if (sp == std::string::npos || !iequals(std::string_view(t).substr(0, sp), key)) return std::nullopt;
    return trim(std::string_view(t).substr(sp));
  });
}

std::optional<std::string> ucl_value(std::string_view text, std::string_view key) {
  return first_value(text, [&](const std::string& t) -> std::optional<std::string> {
    if (t.compare(0, key.size(), key) != 0) return std::nullopt;
    std::string rest = trim(std::string_view(t).substr(key.size()));
    if (rest.empty() || (rest[0] != '=' && rest[0] != ':')) return std::nullopt;
    rest = trim(std::string_view(rest).substr(1));
    if (!rest.empty() && rest.back() == ';') rest.pop_back();
    rest = trim(rest);
    if (rest.size() >= 2 && (rest.front() == '"' || rest.front() == '\'') && rest.back() == rest.front())
      rest = rest.substr(1, rest.size() - 2);
    return rest;
  });
}

std::optional<std::string> signer_socket_to_postfix(std::string_view s0) {
  std::string s = trim(s0);
  if (s.empty()) return std::nullopt;
  if (s[0] == '/') return "unix:" + s;
  auto colon = s.find(':');
  if (colon == std::string::npos) {
    if (all_digits(s)) return inet("", s);  // a bare port: opendkim listens on every address
    return std::nullopt;
  }
  std::string proto = s.substr(0, colon), rest = s.substr(colon + 1);
  if (proto == "local" || proto == "unix") return rest.empty() ? std::nullopt : std::optional("unix:" + rest);
  if (proto != "inet" && proto != "inet6") return std::nullopt;
  auto at = rest.find('@');
  std::string port = at == std::string::npos ? rest : rest.substr(0, at);
  std::string host = at == std::string::npos ? "" : rest.substr(at + 1);
  if (!all_digits(port)) {
    // Already Postfix's HOST:PORT (dkimpy-milter accepts both).
    auto c = rest.rfind(':');
    if (c == std::string::npos || !all_digits(rest.substr(c + 1))) return std::nullopt;
    host = rest.substr(0, c);
    port = rest.substr(c + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  }
  if (host.empty() && proto == "inet6") host = "::1";
  return inet(host, port);
}

std::optional<std::string> rspamd_to_postfix(std::string_view s0) {
  std::string s = trim(s0);
  auto sp = s.find_first_of(" \t");
  if (sp != std::string::npos) s = s.substr(0, sp);  // "/path mode=0666"
  if (s.empty()) return std::nullopt;
  if (s[0] == '/') return "unix:" + s;
  auto c = s.rfind(':');
  if (c == std::string::npos) return all_digits(s) ? std::optional(inet("", s)) : std::nullopt;
  std::string host = s.substr(0, c), port = s.substr(c + 1);
  if (!all_digits(port)) return std::nullopt;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return inet(host, port);
}

std::vector<SignerSocket> find_signers(const std::string& sysconfdir) {
  std::vector<SignerSocket> out;
  auto add = [&](const char* product, std::optional<std::string> socket, const std::string& source) {
    if (socket) out.push_back({product, *socket, source});
  };
  // opendkim, dkimpy-milter, openarc: "Socket" in libmilter syntax.
  struct LibmilterSigner {
    const char* product;
    std::string file;
    std::vector<std::string> well_known;
  };
  const std::vector<LibmilterSigner> libmilter_signers = {
      {"opendkim", sysconfdir + "/opendkim.conf",
       {"inet:localhost:8891", "unix:/var/spool/postfix/opendkim/opendkim.sock", "unix:opendkim/opendkim.sock"}},
      {"dkimpy-milter", sysconfdir + "/dkimpy-milter/dkimpy-milter.conf", {}},
      {"openarc", sysconfdir + "/openarc.conf", {}},
  };
  for (const auto& s : libmilter_signers) {
    if (auto text = read_file(s.file)) {
      if (auto sock = conf_value(*text, "Socket")) add(s.product, signer_socket_to_postfix(*sock), s.file);
    } else {
      for (const auto& w : s.well_known) add(s.product, w, "well-known");
    }
  }
  // rspamd: the proxy worker's bind_socket; its default when only rspamd's folder exists.
  std::string rspamd_dir = sysconfdir + "/rspamd";
  std::string proxy = rspamd_dir + "/local.d/worker-proxy.inc";
  std::optional<std::string> bind;
  for (const auto& f : {rspamd_dir + "/override.d/worker-proxy.inc", proxy})
    if (auto text = read_file(f))
      if ((bind = ucl_value(*text, "bind_socket"))) {
        add("rspamd", rspamd_to_postfix(*bind), f);
        break;
      }
  if (!bind) add("rspamd", std::string("inet:localhost:11332"), read_file(rspamd_dir + "/rspamd.conf") ? rspamd_dir + "/rspamd.conf (default)" : "well-known");
  return out;
}

}  // namespace cllavio::doctor
