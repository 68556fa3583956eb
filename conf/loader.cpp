#include "conf/loader.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "conf/schemas.hpp"
#include "policy/address.hpp"

namespace cllavio::conf {

namespace fs = std::filesystem;

std::string_view to_string(OnError e) { return e == OnError::accept ? "accept" : "tempfail"; }

std::string_view to_string(LogLevel l) {
  switch (l) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::notice: return "notice";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "info";
}

namespace {

// Parse one TOML file; problems go to diags. Returns nullopt when unreadable or invalid TOML.
std::optional<toml::table> parse_file(const std::string& path, Diagnostics& diags) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diags.push_back({path, 0, std::string("cannot read: ") + std::strerror(errno)});
    return std::nullopt;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string text = buf.str();
  if (text.size() > 1024 * 1024) {
    diags.push_back({path, 0, "file larger than 1 MiB"});
    return std::nullopt;
  }
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    diags.push_back({path, e.source().begin.line, std::string(e.description())});
    return std::nullopt;
  }
}

struct LoadedOrg {
  OrgFile org;
  std::string file;
  LineMap lines;

  unsigned line(const std::string& key) const {
    auto it = lines.find(key);
    return it == lines.end() ? 0 : it->second;
  }
  std::string where(const std::string& key) const {
    unsigned l = line(key);
    return l == 0 ? file : file + ":" + std::to_string(l);
  }
};

struct Claim {
  const LoadedOrg* owner;
  std::string key;  // "domains[2]"
};

// Cross-file rules. Problems are reported at the later claim, naming the earlier.
void check_claims(const std::vector<LoadedOrg>& orgs, Diagnostics& diags) {
  std::map<std::string, const LoadedOrg*> ids;
  std::map<std::string, Claim> domains, logins, login_domains;
  auto conflict = [&](const LoadedOrg& o, const std::string& key, const std::string& what, const Claim& prev) {
    diags.push_back({o.file, o.line(key),
                     what + " is already claimed by org '" + prev.owner->org.id + "' (" + prev.owner->where(prev.key) +
                         ")"});
  };
  for (const auto& o : orgs) {
    if (auto [it, fresh] = ids.emplace(o.org.id, &o); !fresh)
      diags.push_back({o.file, o.line("id"),
                       "org id '" + o.org.id + "' is already defined in " + it->second->where("id")});
    for (std::size_t i = 0; i < o.org.domains.size(); ++i) {
      std::string key = "domains[" + std::to_string(i) + "]";
      auto [it, fresh] = domains.emplace(o.org.domains[i], Claim{&o, key});
      if (!fresh) conflict(o, key, "domain '" + o.org.domains[i] + "'", it->second);
    }
    for (std::size_t i = 0; i < o.org.sasl_users.size(); ++i) {
      const std::string& login = o.org.sasl_users[i];
      std::string key = "sasl_users[" + std::to_string(i) + "]";
      if (login.front() == '@') {
        std::string dom = login.substr(1);
        auto [it, fresh] = login_domains.emplace(dom, Claim{&o, key});
        if (!fresh) {
          conflict(o, key, "SASL login domain '" + login + "'", it->second);
          continue;
        }
        for (const auto& [exact, claim] : logins)
          if (claim.owner != &o && policy::domain_of(exact) == dom)
            conflict(o, key, "SASL login domain '" + login + "' overlaps login '" + exact + "', which",
                     claim);
      } else {
        auto [it, fresh] = logins.emplace(login, Claim{&o, key});
        if (!fresh) {
          conflict(o, key, "SASL login '" + login + "'", it->second);
          continue;
        }
        std::string dom = policy::domain_of(login);
        if (auto d = login_domains.find(dom); !dom.empty() && d != login_domains.end() && d->second.owner != &o)
          conflict(o, key, "SASL login '" + login + "' (covered by '@" + dom + "')", d->second);
      }
    }
  }
}

// The secrets file: only the owner may read it (it holds signing keys).
void load_secrets(const std::string& path, const std::string& cfg_file, unsigned line, SecretsFile& out,
                  Diagnostics& diags) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    diags.push_back({cfg_file, line, "secrets.file '" + path + "': " + std::strerror(errno)});
    return;
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    diags.push_back({path, 0, std::string("refusing to read a secrets file that group or others can access (mode ") +
                                  mode + "); chmod 600 it"});
    return;
  }
  auto table = parse_file(path, diags);
  if (!table) return;
  LineMap lines;
  KeyContext ctx{fs::path(path).parent_path().string(), &lines};
  Reporter rep(path, diags);
  secrets_schema().apply(*table, out, ctx, rep);
  secrets_schema().check_rules(out, RuleContext{lines}, rep);
}

std::vector<std::string> org_files(const std::string& dir, const std::string& cfg_file, unsigned line,
                                   Diagnostics& diags) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    diags.push_back({cfg_file, line, "orgs.dir '" + dir + "' is not a readable folder"});
    return files;
  }
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.empty() || name.front() == '.' || it->path().extension() != ".toml") continue;
    if (!it->is_regular_file(ec)) continue;
    files.push_back(it->path().string());
  }
  if (ec) diags.push_back({cfg_file, line, "cannot list orgs.dir '" + dir + "': " + ec.message()});
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

LoadResult load_config(const std::string& path) {
  LoadResult result;
  Diagnostics& diags = result.errors;
  std::error_code ec;
  std::string file = fs::absolute(path, ec).lexically_normal().string();
  if (ec) file = path;

  auto cfg = std::make_shared<Config>();
  cfg->file = file;
  const auto& schema = main_schema();
  schema.apply_defaults(*cfg);

  auto root = parse_file(file, diags);
  if (!root) return result;
  LineMap main_lines;
  KeyContext ctx{fs::path(file).parent_path().string(), &main_lines};
  Reporter rep(file, diags);
  schema.apply(*root, *cfg, ctx, rep);

  SecretsFile secrets;
  secrets_schema().apply_defaults(secrets);
  if (!cfg->secrets.file.empty()) {
    unsigned line = main_lines.count("secrets.file") ? main_lines["secrets.file"] : 0;
    load_secrets(cfg->secrets.file, file, line, secrets, diags);
  }

  const bool has_key = !secrets.tracking_keys.empty();
  schema.check_rules(*cfg, RuleContext{main_lines, has_key, !secrets.api_signing_secret.empty()}, rep);
  bool main_ok = diags.empty();
  std::vector<LoadedOrg> loaded;
  unsigned dir_line = main_lines.count("orgs.dir") ? main_lines["orgs.dir"] : 0;
  for (const auto& org_path : org_files(cfg->orgs_settings.dir, file, dir_line, diags)) {
    auto table = parse_file(org_path, diags);
    if (!table) continue;
    LoadedOrg lo;
    lo.file = org_path;
    org_schema().apply_defaults(lo.org);
    KeyContext octx{fs::path(org_path).parent_path().string(), &lo.lines};
    Reporter orep(org_path, diags);
    std::size_t before = diags.size();
    org_schema().apply(*table, lo.org, octx, orep);
    org_schema().check_rules(lo.org,
                             RuleContext{.lines = lo.lines,
                                         .has_tracking_key = has_key,
                                         .has_api = !cfg->api.url.empty(),
                                         .api_org_keys = &secrets.api_org_keys},
                             orep);
    if (diags.size() == before || !lo.org.id.empty()) loaded.push_back(std::move(lo));
  }
  check_claims(loaded, diags);
  if (!diags.empty()) {
    // Main file first, then org files in name order; each in line order.
    std::stable_sort(diags.begin(), diags.end(), [&](const Diagnostic& a, const Diagnostic& b) {
      auto rank = [&](const Diagnostic& d) { return std::make_pair(d.file == file ? 0 : 1, d.file); };
      return std::make_pair(rank(a), a.line) < std::make_pair(rank(b), b.line);
    });
    if (main_ok) result.main_only = cfg;
    return result;
  }

  std::map<std::string, policy::OrgPolicy> policies;
  std::vector<policy::Org> orgs;
  for (auto& lo : loaded) {
    policies[lo.org.id] = build_org_policy(lo.org);
    policy::Org o;
    o.id = lo.org.id;
    o.name = lo.org.name;
    o.domains = lo.org.domains;
    o.sasl_users = lo.org.sasl_users;
    for (const auto& n : lo.org.networks) o.networks.push_back(*policy::parse_network(n));
    o.trust_sender_domain = lo.org.trust_sender_domain;
    orgs.push_back(std::move(o));
    const policy::OrgPolicy& op = policies[lo.org.id];
    if (op.any_tracking() || op.any_list_unsubscribe()) cfg->tracking.emplace(lo.org.id, lo.org.tracking);
    cfg->any_rcpt_checks = cfg->any_rcpt_checks || op.needs_rcpt_checks();
    cfg->any_modifications = cfg->any_modifications || op.may_modify();
  }
  cfg->orgs = policy::OrgIndex(std::move(orgs));
  cfg->policies = std::move(policies);
  cfg->tokens = std::make_shared<const tracking::TokenCodec>(secrets.keys());
  cfg->api.signing_secret = std::move(secrets.api_signing_secret);
  cfg->api.org_keys = std::move(secrets.api_org_keys);
  cfg->redis.password = std::move(secrets.redis_password);
  result.config = std::move(cfg);
  return result;
}

int check_config(const std::string& path, std::FILE* out, std::FILE* err) {
  auto r = load_config(path);
  for (const auto& d : r.errors) std::fprintf(err, "%s\n", d.str().c_str());
  if (!r.config) {
    std::fprintf(err, "%s: %zu problem%s found\n", path.c_str(), r.errors.size(), r.errors.size() == 1 ? "" : "s");
    return kExitConfig;
  }
  std::fprintf(out, "%s: OK (%zu organization%s, socket %s, store %s)\n", r.config->file.c_str(),
               r.config->orgs.orgs().size(), r.config->orgs.orgs().size() == 1 ? "" : "s",
               r.config->milter.socket.libmilter().c_str(), r.config->store.path.c_str());
  return 0;
}

}  // namespace cllavio::conf
