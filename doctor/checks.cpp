// cllavioctl doctor: check() and the milter's own side (config, secrets, store, outbox, API,
// socket probe, delivery log). The Postfix side is in checks_milter.cpp and checks_params.cpp.
#include "doctor/checks.hpp"

#include <cctype>
#include <cstdio>

#include "doctor/checks_internal.hpp"
#include "doctor/milter_list.hpp"

namespace cllavio::doctor {

namespace detail {

namespace {

// A word the shell passes through unchanged.
bool shell_safe(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::string_view("/._-+:,=@%").find(c) == std::string_view::npos)
      return false;
  return true;
}

}  // namespace

std::string Instance::param(const std::string& name, std::string_view fallback) const {
  if (auto it = pf.expanded.find(name); it != pf.expanded.end()) return it->second;
  if (auto it = pf.main.find(name); it != pf.main.end()) return expand(it->second, pf.main);
  return std::string(fallback);
}

std::optional<std::string> Instance::override_of(const Service& svc, const std::string& name) const {
  auto it = svc.overrides.find(name);
  if (it == svc.overrides.end()) return std::nullopt;
  // -o values may name main.cf parameters ($mua_milters) or the service's other -o settings.
  Params params = pf.main;
  for (const auto& [k, v] : svc.overrides)
    if (k != name) params[k] = v;
  return expand(it->second, params);
}

std::string Instance::postconf() const {
  if (pf.config_dir.empty() || pf.config_dir == kDefaultConfigDir) return "postconf";
  return "postconf -c " + (shell_safe(pf.config_dir) ? pf.config_dir : shell_quote(pf.config_dir));
}

std::string Instance::set_main(std::string_view name, std::string_view value) const {
  return postconf() + " -e " + shell_quote(std::string(name) + " = " + std::string(value));
}

std::string Instance::unset_main(std::string_view name) const { return postconf() + " -X " + std::string(name); }

std::string Instance::set_service(const Service& svc, std::string_view name, std::string_view value) const {
  // master.cf splits -o arguments at whitespace: write the list without it ("a,b,{c,default_action=accept}").
  std::string compact;
  for (char c : value)
    if (c != ' ' && c != '\t') compact += c;
  return postconf() + " -P " + shell_quote(service_label(svc) + "/" + std::string(name) + "=" + compact);
}

std::string Instance::unset_service(const Service& svc, std::string_view name) const {
  return postconf() + " -PX " + shell_quote(service_label(svc) + "/" + std::string(name));
}

Finding make(std::string id, Severity sev, std::string instance, std::string title, std::string why,
             std::string fix) {
  return Finding{std::move(id), sev, std::move(instance), std::move(title), std::move(why), std::move(fix)};
}

bool is_smtpd(const Service& svc) { return svc.command == "smtpd" || svc.command.starts_with("smtpd "); }
bool is_cleanup(const Service& svc) { return svc.command == "cleanup" || svc.command.starts_with("cleanup "); }
bool chrooted(const Service& svc) { return svc.chroot == "y"; }

bool loopback_service(const Service& svc) {
  if (svc.type != "inet") return false;
  const auto colon = svc.name.rfind(':');
  if (colon == std::string::npos) return false;  // "smtp": every address in inet_interfaces
  std::string host = svc.name.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::string service_label(const Service& svc) { return svc.name + "/" + svc.type; }

}  // namespace detail

using detail::make;

std::vector<Finding> check_instance(const PostfixInstance& pf, const Facts& facts) {
  std::vector<Finding> out;
  const std::string& dir = pf.config_dir;
  if (!pf.readable) {
    out.push_back(make("postfix.unreadable", Severity::error, dir, "postconf -c " + dir + " failed: " + pf.error,
                       "Without Postfix's configuration nothing about the milter chain can be checked; " + dir +
                           " is not a Postfix configuration directory (main.cf, master.cf) or postconf cannot read it.",
                       ""));
    return out;
  }
  out.push_back(make("postfix.unreadable", Severity::ok, dir, "Postfix configuration in " + dir + " read"));
  const detail::Instance in{pf, facts};
  detail::check_milter_lists(in, out);
  detail::check_services(in, out);
  detail::check_chroot(in, out);
  detail::check_parameters(in, out);
  return out;
}

std::vector<Finding> check_milter_side(const MilterSide& m) {
  std::vector<Finding> out;
  const std::string cfg = m.config_file.empty() ? "the milter's configuration" : m.config_file;

  if (!m.config_ok) {
    std::string why = "cllavio-milter refuses to start (and a reload is refused) with this configuration:";
    for (const auto& e : m.config_errors) why += "\n  " + e;
    why += "\nCorrect them, then check again with: cllavio-milter" +
           (m.config_file.empty() ? std::string() : " -c " + shell_quote(m.config_file)) + " -n";
    out.push_back(make("config.invalid", Severity::error, "", cfg + " fails cllavio-milter -n", why));
  } else {
    out.push_back(make("config.invalid", Severity::ok, "", cfg + " passes cllavio-milter -n"));
  }

  if (m.connect.tried) {
    if (!m.connect.ok)
      out.push_back(make("socket.connect", Severity::error, "",
                         "user postfix cannot connect to " + m.socket_postfix + ": " + m.connect.error,
                         "Postfix connects to the milter as user postfix; when it cannot, every message gets "
                         "milter_default_action (tempfail: mail is deferred). Check that cllavio-milter runs, "
                         "that the socket's folder is searchable and the socket writable by postfix (group postfix, "
                         "[milter] socket_mode)."));
    else
      out.push_back(make("socket.connect", Severity::ok, "", "user postfix connects to " + m.socket_postfix));
  }

  if (m.delivery_enabled && m.delivery_log_readable.has_value()) {
    if (!*m.delivery_log_readable)
      out.push_back(make("delivery.log", Severity::error, "",
                         "the delivery log " + m.delivery_log + " is not readable by " +
                             (m.milter_user.empty() ? "the milter's user" : m.milter_user),
                         "[delivery] reads Postfix's log to learn what happened to each message; without it no "
                         "delivery outcome is recorded. On Debian mail.log is root:adm 0640: add the milter's "
                         "user to group adm, or set [delivery] log = \"journal\"."));
    else
      out.push_back(make("delivery.log", Severity::ok, "", "the delivery log " + m.delivery_log + " is readable"));
  }

  if (!m.secrets_file.empty() && m.secrets_mode.has_value()) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(*m.secrets_mode));
    if ((*m.secrets_mode & 077) != 0)
      out.push_back(make("secrets.mode", Severity::error, "",
                         "the secrets file " + m.secrets_file + " has mode " + mode + " (group or others have access)",
                         "It holds the tracking keys and the API signing secret: anyone who reads it can forge "
                         "tracking links and API requests. cllavio-milter -n refuses it.",
                         "chmod 600 " + shell_quote(m.secrets_file)));
    else
      out.push_back(make("secrets.mode", Severity::ok, "", "the secrets file " + m.secrets_file + " has mode " + mode));
    if (!m.secrets_owner.empty()) {
      const std::string& user = m.milter_user;
      const bool drops = !user.empty() && user != "root";  // the daemon runs as user after start
      if (m.secrets_owner != "root" && m.secrets_owner != user)
        out.push_back(make("secrets.owner", Severity::warning, "",
                           "the secrets file " + m.secrets_file + " is owned by " + m.secrets_owner,
                           "Its owner can read and change the keys; only the milter's user" +
                               (drops ? " (" + user + ")" : std::string()) + " or root should own it.",
                           "chown " + (drops ? user : std::string("root")) + " " + shell_quote(m.secrets_file)));
      else if (m.secrets_owner == "root" && drops && (*m.secrets_mode & 0400) != 0)
        out.push_back(make("secrets.owner", Severity::warning, "",
                           "the secrets file " + m.secrets_file + " is owned by root, the milter runs as " + user,
                           "With mode " + std::string(mode) + " only root reads it, but the milter reads it as " + user +
                               " on reload (SIGHUP, after dropping privileges) and at start when it starts as " + user +
                               ": the keys cannot be loaded then and the reload or start is refused.",
                           "chown " + user + " " + shell_quote(m.secrets_file)));
      else
        out.push_back(
            make("secrets.owner", Severity::ok, "", "the secrets file " + m.secrets_file + " is owned by " + m.secrets_owner));
    }
  }

  if (!m.store_map_used_ratio.has_value()) {
    if (!m.store_error.empty())
      out.push_back(make("store.unavailable", Severity::warning, "", "the store could not be opened: " + m.store_error,
                         "Its map space, outbox and dead letters cannot be checked. If the milter cannot open it "
                         "either, it does not start."));
  } else {
    out.push_back(make("store.unavailable", Severity::ok, "", "the store opens read-only"));
    const double r = *m.store_map_used_ratio;
    char pct[16];
    std::snprintf(pct, sizeof pct, "%.0f%%", r * 100);
    const std::string why =
        "When the map is full the milter cannot record messages (tracking stops, mail follows "
        "[milter] on_error). Raise [store] map_size_mb in the milter's configuration and restart, "
        "or shorten [retention] messages.";
    if (r >= 0.95)
      out.push_back(make("store.map_space", Severity::error, "", std::string("the store's map is ") + pct + " full", why));
    else if (r >= 0.80)
      out.push_back(make("store.map_space", Severity::warning, "", std::string("the store's map is ") + pct + " full", why));
    else
      out.push_back(make("store.map_space", Severity::ok, "", std::string("the store's map is ") + pct + " full"));
  }

  if (m.outbox_oldest_age_s.has_value()) {
    const auto age = *m.outbox_oldest_age_s;
    if (age > 3600)
      out.push_back(make("outbox.age", Severity::warning, "",
                         "the oldest event in the outbox waits for " + std::to_string(age) + " s",
                         "Events are not reaching the Cllavio API (down, refusing, or unreachable): opens, clicks "
                         "and consent changes arrive late. `cllavioctl outbox stats` shows the queue; "
                         "`cllavioctl outbox flush` sends now and reports the API's answer."));
    else
      out.push_back(make("outbox.age", Severity::ok, "", "the outbox's oldest event is " + std::to_string(age) + " s old"));
  } else if (m.outbox_events.has_value() && *m.outbox_events == 0) {
    out.push_back(make("outbox.age", Severity::ok, "", "the outbox is empty"));
  }

  if (m.dead_letters.has_value()) {
    if (*m.dead_letters > 0)
      out.push_back(make("outbox.dead_letters", Severity::warning, "",
                         std::to_string(*m.dead_letters) + " event(s) refused by the API (dead letters)",
                         "The API refused these events for good; they are kept but not sent again until retried.",
                         "cllavioctl outbox list --dead\ncllavioctl outbox retry-dead"));
    else
      out.push_back(make("outbox.dead_letters", Severity::ok, "", "no dead letters"));
  }

  if (!m.api_url.empty() && m.api_reachable.has_value()) {
    if (!*m.api_reachable)
      out.push_back(make("api.unreachable", Severity::error, "",
                         "the API " + m.api_url + " is unreachable: " + m.api_error,
                         "Events wait in the outbox until the API answers (with a valid TLS certificate); "
                         "consent and erasure updates from the API do not arrive."));
    else
      out.push_back(make("api.unreachable", Severity::ok, "", "the API " + m.api_url + " answers"));
  }

  if (!m.redis_url.empty() && m.redis_reachable.has_value()) {
    if (!*m.redis_reachable) {
      out.push_back(make("quota.redis_unreachable", Severity::error, "",
                         "the quota ledger's Redis " + m.redis_url + " is unreachable: " + m.redis_error,
                         "Quotas shared by several hosts are answered by [quota] on_backend_error until it "
                         "answers (each host alone at limit / hosts, 451 4.3.0, or no limit).",
                         "redis-cli -u " + m.redis_url + " ping"));
    } else {
      out.push_back(make("quota.redis_unreachable", Severity::ok, "", "the quota ledger's Redis " + m.redis_url + " answers"));
      if (m.redis_eviction && *m.redis_eviction != "noeviction")
        out.push_back(make("quota.redis_eviction", Severity::error, "",
                           "Redis evicts keys (maxmemory-policy " + *m.redis_eviction + ")",
                           "Under memory pressure Redis may drop quota keys: counts restart from zero and quotas "
                           "silently stop limiting. With noeviction a full Redis refuses writes, which the "
                           "milter sees and handles per on_backend_error.",
                           "redis-cli CONFIG SET maxmemory-policy noeviction   (and in redis.conf)"));
      else if (m.redis_eviction)
        out.push_back(make("quota.redis_eviction", Severity::ok, "", "Redis keeps quota keys (maxmemory-policy noeviction)"));
      else
        out.push_back(make("quota.redis_eviction", Severity::warning, "",
                           "cannot read Redis's maxmemory-policy: " + m.redis_eviction_error,
                           "It must be noeviction (evicted quota keys silently disable quotas); check it on the "
                           "Redis host.",
                           "redis-cli CONFIG GET maxmemory-policy"));
    }
  }
  return out;
}

std::vector<Finding> check(const Facts& facts) {
  std::vector<Finding> out;
  for (const auto& pf : facts.instances) {
    auto f = check_instance(pf, facts);
    out.insert(out.end(), f.begin(), f.end());
  }
  auto f = check_milter_side(facts.milter);
  out.insert(out.end(), f.begin(), f.end());
  return out;
}

}  // namespace cllavio::doctor
