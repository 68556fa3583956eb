#include "conf/schemas.hpp"

#include <grp.h>
#include <pwd.h>

#include "policy/address.hpp"
#include "policy/network.hpp"
#include "tracking/encoding.hpp"

namespace cllavio::conf {

namespace {

using policy::UnknownOrg;

std::variant<SocketSpec, std::string> parse_socket(std::string_view text, const KeyContext& ctx) {
  auto r = parse_socket_spec(text);
  if (auto* spec = std::get_if<SocketSpec>(&r); spec && spec->kind == SocketSpec::Kind::unix_path) {
    spec->path = resolve_path(ctx.base_dir, spec->path);
    if (spec->path.size() > 107)
      return "unix socket path " + toml_quote(spec->path) + " is longer than 107 bytes";
  }
  return r;
}

std::variant<unsigned, std::string> parse_mode(std::string_view text) {
  if (text.empty() || text.size() > 4) return std::string("expected an octal mode such as \"0660\"");
  unsigned mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return "invalid mode " + toml_quote(text) + "; expected octal digits such as \"0660\"";
    mode = mode * 8 + static_cast<unsigned>(c - '0');
  }
  if (mode > 0777) return "mode " + toml_quote(text) + " out of range \"0000\"..\"0777\"";
  return mode;
}

std::string check_path(std::string& v, const KeyContext& ctx) {
  if (v.empty()) return "path must not be empty";
  v = resolve_path(ctx.base_dir, v);
  return {};
}

// user/group: optional strings naming an existing account.
Key<Config> account_key(std::string path, std::optional<std::string> MilterSettings::*field, bool is_user,
                        std::string doc) {
  Key<Config> k{std::move(path), "string", "", is_user ? "an existing user" : "an existing group", std::move(doc),
                false, {}, {}};
  k.reset = [field](Config& c) { c.milter.*field = std::nullopt; };
  k.set = [field, is_user](const toml::node& n, Config& c, const KeyContext&, Reporter& rep) {
    const auto* s = n.as_string();
    if (s == nullptr) return rep.error(n, "expected a string, found " + toml_type_name(n));
    const std::string& name = s->get();
    bool exists = is_user ? getpwnam(name.c_str()) != nullptr : getgrnam(name.c_str()) != nullptr;
    if (!exists) return rep.error(n, std::string(is_user ? "unknown user " : "unknown group ") + toml_quote(name));
    c.milter.*field = name;
  };
  return k;
}

Key<Config> socket_mode_key() {
  Key<Config> k{"milter.socket_mode", "string (octal)", "\"0660\"", "\"0000\"..\"0777\"",
                "Permissions of a unix socket. 0660 with `group` set to Postfix's group lets smtpd connect.",
                false, {}, {}};
  k.reset = [](Config& c) { c.milter.socket_mode = 0660; };
  k.set = [](const toml::node& n, Config& c, const KeyContext&, Reporter& rep) {
    std::variant<unsigned, std::string> r;
    if (const auto* s = n.as_string())
      r = parse_mode(s->get());
    else if (const auto* i = n.as_integer();
             i && !!(i->flags() & toml::value_flags::format_as_octal) && i->get() >= 0 && i->get() <= 0777)
      r = static_cast<unsigned>(i->get());  // TOML octal integer 0o660 (a decimal 438 is a mistake)
    else
      r = std::string("expected an octal mode string such as \"0660\", found ") + toml_type_name(n);
    if (auto* err = std::get_if<std::string>(&r)) return rep.error(n, *err);
    c.milter.socket_mode = std::get<unsigned>(r);
  };
  return k;
}

// "HOST:PORT" or "[V6]:PORT" -> host, port; "" -> off.
std::string parse_listen(const std::string& v, std::string& host, int& port) {
  host.clear();
  port = 0;
  if (v.empty()) return {};
  std::string::size_type colon;
  if (v.front() == '[') {
    auto close = v.find(']');
    if (close == std::string::npos || close + 1 >= v.size() || v[close + 1] != ':')
      return "expected [IPV6]:PORT, e.g. \"[::1]:9899\"";
    host = v.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = v.rfind(':');
    if (colon == std::string::npos || colon == 0) return "expected HOST:PORT, e.g. \"127.0.0.1:9899\"";
    host = v.substr(0, colon);
    if (host.find(':') != std::string::npos) return "an IPv6 address goes in brackets: \"[::1]:9899\"";
  }
  std::string digits = v.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos)
    return "invalid port " + toml_quote(digits);
  port = std::stoi(digits);
  if (port < 1 || port > 65535) return "port " + digits + " out of range 1..65535";
  if (host.empty()) return "empty host";
  return {};
}

Key<Config> metrics_listen_key() {
  Key<Config> k{"metrics.listen", "string", "\"\"", "HOST:PORT | [IPV6]:PORT",
                "Address of the Prometheus endpoint (`GET /metrics`, text format; docs/metrics.md), served by its "
                "own thread. Keep it on loopback or a management network: it has no authentication. Unset: no "
                "endpoint. Takes effect at start.",
                false, {}, {}};
  k.reset = [](Config& c) { c.metrics = MetricsSettings{}; };
  k.set = [](const toml::node& n, Config& c, const KeyContext&, Reporter& rep) {
    const auto* s = n.as_string();
    if (s == nullptr) return rep.error(n, "expected a string, found " + toml_type_name(n));
    MetricsSettings m;
    m.listen = s->get();
    if (std::string err = parse_listen(m.listen, m.host, m.port); !err.empty())
      return rep.error(n, err);
    c.metrics = std::move(m);
  };
  return k;
}

}  // namespace

// keys followed by more (the main file's keys declared in other files).
static std::vector<Key<Config>> with(std::vector<Key<Config>> more, std::vector<Key<Config>> keys) {
  for (auto& k : more) keys.push_back(std::move(k));
  return keys;
}

// [api] defaults are the struct's own (conf/config.hpp), written once.
const ApiSettings kApi{};

const Schema<Config>& main_schema() {
  static const Schema<Config> schema(
      {"milter", "store", "orgs", "log", "secrets", "tracking", "api", "delivery", "retention", "metrics", "quota",
       "redis"},
      with(quota_backend_keys(), {
          parsed_key<Config, SocketSpec>(
              "milter.socket", "string", [](Config& c) -> SocketSpec& { return c.milter.socket; },
              "unix:/run/cllavio/milter.sock", "unix:/path | inet:PORT@HOST | inet:HOST:PORT",
              "Where the milter listens. A unix socket is the recommendation; a missing parent folder is "
              "created. Postfix's `smtpd_milters` takes the same address in its own syntax "
              "(`inet:HOST:PORT`).",
              parse_socket),
          socket_mode_key(),
          account_key("milter.user", &MilterSettings::user, true,
                      "When started as root: after opening the socket and the store, drop privileges to this "
                      "user (and its primary group). Unset: no privilege drop."),
          account_key("milter.group", &MilterSettings::group, false,
                      "Group owning the unix socket (mode `socket_mode`) so that Postfix's smtpd can connect; "
                      "normally Postfix's group `postfix`."),
          enum_key<Config, OnError>(
              "milter.on_error", [](Config& c) -> OnError& { return c.milter.on_error; }, OnError::accept,
              {{"accept", OnError::accept}, {"tempfail", OnError::tempfail}},
              "What a message gets when the milter hits an internal error (store full, bug): `accept` passes "
              "it unmodified (mail is never held hostage by the milter), `tempfail` answers 451 so the "
              "client retries. Either way it is logged. A message refused by policy stays refused, and one "
              "carrying compact tokens (`tracking.token_version = 2`) whose record cannot be written is "
              "tempfailed (its links would resolve nowhere)."),
          int_key<Config, int>("milter.timeout_s", [](Config& c) -> int& { return c.milter.timeout_s; }, 7210,
                               10, 86400,
                               "libmilter I/O timeout towards Postfix, in seconds. Must exceed Postfix's idle "
                               "times (smtpd_timeout) or idle SMTP sessions lose the milter."),
          int_key<Config, int>("milter.backlog", [](Config& c) -> int& { return c.milter.backlog; }, 128, 1,
                               65535, "Listen backlog of the milter socket."),
          int_key<Config, int>("milter.shutdown_timeout_s",
                               [](Config& c) -> int& { return c.milter.shutdown_timeout_s; }, 30, 0, 600,
                               "On SIGTERM: stop accepting connections, then wait at most this long for the "
                               "messages in flight to finish before exiting."),
          string_key<Config>("store.path", [](Config& c) -> std::string& { return c.store.path; },
                             "/var/lib/cllavio",
                             "Folder of the LMDB store (`cllavio.mdb`). Created when missing.", check_path),
          int_key<Config, std::uint64_t>("store.map_size_mb",
                                         [](Config& c) -> std::uint64_t& { return c.store.map_size_mb; }, 1024,
                                         1, 1048576,
                                         "Maximum size of the store in MiB (LMDB map size). When it is full, "
                                         "messages pass per `milter.on_error` and it is logged loudly."),
          enum_key<Config, StoreSync>(
              "store.sync", [](Config& c) -> StoreSync& { return c.store.sync; }, StoreSync::meta,
              {{"full", StoreSync::full}, {"meta", StoreSync::meta}, {"none", StoreSync::none}},
              "Durability of each store commit. `meta`: one data sync per commit, the metadata page is "
              "synced with the next one (a power failure may undo the last commit, never corrupt the "
              "store). `full`: also syncs the metadata page (every commit durable, about 1.7x the sync "
              "cost). `none`: no syncs (a crash of the milter loses nothing, but a power failure may lose "
              "recent commits or corrupt the store). Concurrent messages share commits either way."),
          int_key<Config, int>(
              "store.reject_records_per_minute",
              [](Config& c) -> int& { return c.store.reject_records_per_minute; }, 10, 0, 100000,
              "How many rejected transactions (unknown sender) per minute are recorded in the store; more "
              "are only logged, so a flood of refused senders cannot fill the store. 0: never record them."),
          string_key<Config>("orgs.dir", [](Config& c) -> std::string& { return c.orgs_settings.dir; },
                             "/etc/cllavio/orgs.d",
                             "Folder of organization files (`*.toml`, one organization each).", check_path),
          enum_key<Config, UnknownOrg>(
              "orgs.unknown", [](Config& c) -> UnknownOrg& { return c.orgs_settings.unknown; },
              UnknownOrg::accept, {{"accept", UnknownOrg::accept}, {"reject", UnknownOrg::reject}},
              "Mail that matches no organization: `accept` passes it untouched (and logs it), `reject` "
              "answers `550 5.7.1` at MAIL FROM."),
          enum_key<Config, LogTarget>(
              "log.target", [](Config& c) -> LogTarget& { return c.log.target; }, LogTarget::syslog,
              {{"syslog", LogTarget::syslog}, {"stderr", LogTarget::stderr_stream}},
              "Where log lines go: syslog (facility mail, like Postfix) or standard error (for systemd's "
              "journal or a terminal)."),
          enum_key<Config, LogLevel>(
              "log.level", [](Config& c) -> LogLevel& { return c.log.level; }, LogLevel::info,
              {{"debug", LogLevel::debug},
               {"info", LogLevel::info},
               {"notice", LogLevel::notice},
               {"warning", LogLevel::warning},
               {"error", LogLevel::error}},
              "Least important level logged. `info` logs one line per message."),
          string_key<Config>(
              "secrets.file", [](Config& c) -> std::string& { return c.secrets.file; }, "",
              "File with the tracking keys (see below). It must not be readable by group or others, and "
              "readable by `milter.user` for reloads. Required once an organization enables tracking.",
              [](std::string& v, const KeyContext& ctx) -> std::string {
                if (!v.empty()) v = resolve_path(ctx.base_dir, v);
                return {};
              }),
          int_key<Config, std::size_t>(
              "tracking.max_rewrite_bytes",
              [](Config& c) -> std::size_t& { return c.tracking_limits.max_rewrite_bytes; }, 10 << 20, 1024,
              1 << 30,
              "Messages with a larger body are not rewritten (they pass unchanged); the milter buffers at "
              "most this much of a body."),
          int_key<Config, int>("tracking.max_mime_depth",
                               [](Config& c) -> int& { return c.tracking_limits.mime.max_depth; }, 20, 1, 100,
                               "Deeper MIME nesting: the message passes unchanged."),
          int_key<Config, int>("tracking.max_mime_parts",
                               [](Config& c) -> int& { return c.tracking_limits.mime.max_parts; }, 500, 1,
                               100000, "More MIME parts: the message passes unchanged."),
          int_key<Config, std::size_t>(
              "tracking.max_header_bytes",
              [](Config& c) -> std::size_t& { return c.tracking_limits.mime.max_header_bytes; }, 65536, 1024,
              1 << 20, "A larger header block (message or MIME part): the message passes unchanged."),
          int_key<Config, std::size_t>(
              "tracking.max_links", [](Config& c) -> std::size_t& { return c.tracking_limits.max_links; }, 1000, 0,
              100000, "Links tracked per message; further links stay as they are."),
          string_key<Config>(
              "api.url", [](Config& c) -> std::string& { return c.api.url; }, "",
              "Base URL of the Cllavio API (`https://...`). Unset: events wait in the outbox (inspect them with "
              "`cllavioctl outbox list`) until one is configured.",
              [](std::string& v, const KeyContext&) -> std::string {
                while (!v.empty() && v.back() == '/') v.pop_back();
                if (v.empty()) return {};
                if (v.rfind("https://", 0) != 0 || v.size() <= 8) return "api.url must be an https:// URL";
                for (char ch : v)
                  if (static_cast<unsigned char>(ch) <= ' ' || ch == '"' || ch == '\\') return "invalid character in api.url";
                return {};
              },
              "https://HOST[:PORT][/PATH]"),
          string_key<Config>(
              "api.ca_file", [](Config& c) -> std::string& { return c.api.ca_file; }, "",
              "PEM file of the CA that signed the API's certificate (a private CA). Unset: the system's trust "
              "store. Peer and host verification are always on.",
              [](std::string& v, const KeyContext& ctx) -> std::string {
                if (!v.empty()) v = resolve_path(ctx.base_dir, v);
                return {};
              }),
          int_key<Config, int>("api.batch_max", [](Config& c) -> int& { return c.api.batch_max; }, kApi.batch_max, 1, 10000,
                               "Most events per request."),
          int_key<Config, int>("api.batch_max_kb", [](Config& c) -> int& { return c.api.batch_max_kb; }, kApi.batch_max_kb, 1,
                               65536, "Most KiB of events per request (a single larger event is sent alone)."),
          int_key<Config, int>("api.linger_ms", [](Config& c) -> int& { return c.api.linger_ms; }, kApi.linger_ms, 0, 60000,
                               "How long the forwarder waits for more events before sending a partial batch."),
          int_key<Config, std::uint64_t>(
              "api.max_outbox_mb", [](Config& c) -> std::uint64_t& { return c.api.max_outbox_mb; }, kApi.max_outbox_mb, 1,
              1048576,
              "Bound of the outbox. When full, mail keeps flowing, new events are counted as dropped and logged "
              "loudly; nothing already queued is discarded. Except mail with compact tokens "
              "(`tracking.token_version = 2`), which needs its event: it is tempfailed until there is room. Keep "
              "it well below `store.map_size_mb`."),
          int_key<Config, int>("api.consent_poll_s", [](Config& c) -> int& { return c.api.consent_poll_s; }, kApi.consent_poll_s, 0,
                               86400, "How often consent changes and erasure requests are fetched from the API; 0: never."),
          int_key<Config, int>("api.timeout_ms", [](Config& c) -> int& { return c.api.timeout_ms; }, kApi.timeout_ms, 100,
                               600000, "Connect-plus-transfer timeout of one request."),
          string_key<Config>(
              "delivery.log", [](Config& c) -> std::string& { return c.delivery.log; }, "",
              "Postfix's log, followed for delivery outcomes (docs/delivery.md): a file that syslog or Postfix's "
              "own `maillog_file` writes (readable by `milter.user`), `journal` (the systemd journal, mail "
              "facility) or `journal:DIR` (the journal files in DIR). Unset: outcomes are not followed.",
              [](std::string& v, const KeyContext& ctx) -> std::string {
                if (v.empty() || v == "journal") return {};
                if (v.rfind("journal:", 0) == 0) {
                  if (v.size() == 8) return "journal: needs a folder (journal:/var/log/journal)";
                  v = "journal:" + resolve_path(ctx.base_dir, v.substr(8));
                  return {};
                }
                v = resolve_path(ctx.base_dir, v);
                return {};
              },
              "PATH | journal | journal:DIR"),
          bool_key<Config>("delivery.suppress_hard_bounces",
                           [](Config& c) -> bool& { return c.delivery.suppress_hard_bounces; }, true,
                           "An address that bounces as non-existent (5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10, 5.2.1, "
                           "null MX) is refused by the org's campaign streams from then on "
                           "(`550 5.1.1 ... bounced permanently`); person-to-person mail still passes. An org "
                           "file's `[delivery]` may say otherwise."),
          int_key<Config, int>("delivery.soft_bounce_limit",
                               [](Config& c) -> int& { return c.delivery.soft_bounce_limit; }, 3, 0, 100,
                               "Expiries (deferred until Postfix gave up) of one address within "
                               "`soft_bounce_window_days`, without a delivery in between, that suppress it like a "
                               "hard bounce. 0: expiries never suppress."),
          int_key<Config, int>("delivery.soft_bounce_window_days",
                               [](Config& c) -> int& { return c.delivery.soft_bounce_window_days; }, 14, 1, 365,
                               "The window `soft_bounce_limit` counts in."),
          int_key<Config, int>("delivery.join_wait_s", [](Config& c) -> int& { return c.delivery.join_wait_s; }, 30,
                               1, 3600,
                               "A recent log line whose queue id has no record yet waits this long for it (in the "
                               "store, so a restart keeps it); then it is dropped as not ours."),
          int_key<Config, int>("delivery.max_age_days", [](Config& c) -> int& { return c.delivery.max_age_days; }, 7,
                               1, 365,
                               "A line joins the newest record with its queue id received at most this many days "
                               "earlier (short queue ids repeat; `enable_long_queue_ids = yes` avoids it). Keep it "
                               "above Postfix's `maximal_queue_lifetime`."),
          string_list_key<Config>(
              "delivery.filter_relays", [](Config& c) -> std::vector<std::string>& { return c.delivery.filter_relays; },
              "`relay=` values (as Postfix logs them, e.g. `127.0.0.1[127.0.0.1]:10025`) of after-queue content "
              "filters that re-inject into this Postfix: `queued as NEWQID` through them is not a delivery, the "
              "recipient's outcome comes under NEWQID. `forwarded as` (aliases) is always followed.",
              [](std::string& v) -> std::string { return v.empty() ? "empty relay" : ""; }),
          duration_key<Config>("retention.messages",
                               [](Config& c) -> std::int64_t& { return c.retention.defaults.messages_s; }, "90d",
                               "How long records of accepted mail are kept, with their link tables (so click "
                               "tokens of older mail no longer resolve here) and their recipients' delivery "
                               "states. Consent states are never pruned; queued events go only once sent."),
          duration_key<Config>("retention.audit",
                               [](Config& c) -> std::int64_t& { return c.retention.defaults.audit_s; }, "400d",
                               "How long audit entries (consent changes, quota resets, erasures) are kept."),
          duration_key<Config>("retention.dead_letters",
                               [](Config& c) -> std::int64_t& { return c.retention.defaults.dead_letters_s; }, "30d",
                               "How long events the API refused for good (`cllavioctl outbox list --dead`) are kept."),
          duration_key<Config>("retention.rejects",
                               [](Config& c) -> std::int64_t& { return c.retention.defaults.rejects_s; }, "7d",
                               "How long records of refused transactions (reject, tempfail) are kept."),
          int_key<Config, int>("retention.prune_interval_s",
                               [](Config& c) -> int& { return c.retention.prune_interval_s; }, 60, 1, 86400,
                               "How often the daemon's pruner removes what is past its retention (in small "
                               "transactions; one log line per run). Main file only."),
          metrics_listen_key(),
      }),
      {
          {"`api.max_outbox_mb` leaves at least half of `store.map_size_mb` to records and the other tables.",
           [](const Config& c, const RuleContext& ctx, Reporter& rep) {
             if (c.api.max_outbox_mb * 2 > c.store.map_size_mb)
               rep.error_at(ctx.line("api.max_outbox_mb"),
                            "api.max_outbox_mb = " + std::to_string(c.api.max_outbox_mb) +
                                " leaves too little of store.map_size_mb = " + std::to_string(c.store.map_size_mb) +
                                " for records: keep it at most half the map (" +
                                std::to_string(c.store.map_size_mb / 2) + ")");
           }},
          {"`api.url` needs `[api] signing_secret` in the secrets file: every request is signed.",
           [](const Config& c, const RuleContext& ctx, Reporter& rep) {
             if (!c.api.url.empty() && !ctx.has_api_signing_secret)
               rep.error_at(ctx.line("api.url"), "api.url is set but the secrets file has no [api] signing_secret");
           }},
      });
  return schema;
}

const Schema<OrgFile>& org_schema() {
  static const Schema<OrgFile> schema(
      {"tracking", "quota", "delivery", "retention"},
      [] {
      std::vector<Key<OrgFile>> keys{
          [] {
            auto k = string_key<OrgFile>(
                "id", [](OrgFile& o) -> std::string& { return o.id; }, "",
                "Short stable identifier, used in logs, the store and the API (`unknown` is reserved).",
                [](std::string& v, const KeyContext&) -> std::string {
                  if (v == "unknown") return "org id \"unknown\" is reserved for mail that matches no organization";
                  bool ok = !v.empty() && v.size() <= 64 && v.front() != '-' && v.front() != '.';
                  for (char c : v)
                    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                                c == '.');
                  return ok ? "" : "invalid org id " + toml_quote(v) +
                                       "; use 1..64 of a-z 0-9 . _ - (not starting with . or -)";
                },
                "1..64 of `a-z 0-9 . _ -`");
            k.required = true;
            k.default_text.clear();
            return k;
          }(),
          string_key<OrgFile>("name", [](OrgFile& o) -> std::string& { return o.name; }, "",
                              "Display name."),
          string_list_key<OrgFile>(
              "domains", [](OrgFile& o) -> std::vector<std::string>& { return o.domains; },
              "Envelope-sender domains of this organization (exact match, no subdomains). A domain belongs "
              "to one organization only.",
              [](std::string& v) -> std::string {
                v = policy::ascii_lower(v);
                if (!v.empty() && v.back() == '.') v.pop_back();
                return policy::is_valid_domain(v) ? "" : "invalid domain " + toml_quote(v);
              },
              "DNS names"),
          string_list_key<OrgFile>(
              "sasl_users", [](OrgFile& o) -> std::vector<std::string>& { return o.sasl_users; },
              "SASL logins (Postfix `{auth_authen}`) that identify this organization: exact logins, or "
              "`@domain` for every login of that domain. Compared case-insensitively. A login (or login "
              "domain) belongs to one organization only.",
              [](std::string& v) -> std::string {
                v = policy::ascii_lower(v);
                if (v.empty()) return "empty SASL login";
                for (char c : v)
                  if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
                    return "invalid SASL login " + toml_quote(v) + " (no spaces or control characters)";
                if (v.front() == '@' && !policy::is_valid_domain(v.substr(1)))
                  return "invalid login domain " + toml_quote(v);
                return {};
              },
              "logins or `@domain`"),
          string_list_key<OrgFile>(
              "networks", [](OrgFile& o) -> std::vector<std::string>& { return o.networks; },
              "Client networks (smarthosts such as Exchange or Microsoft 365 connectors) that relay for this "
              "organization without SASL. A message matches when the client is in one of these networks "
              "and the envelope sender's domain is one of `domains`.",
              [](std::string& v) -> std::string {
                auto n = policy::parse_network(v);
                if (!n)
                  return "invalid network " + toml_quote(v) +
                         " (expected 192.0.2.0/24 or 2001:db8::/32, host bits zero)";
                v = n->to_string();
                return {};
              },
              "CIDR networks"),
          bool_key<OrgFile>("trust_sender_domain",
                            [](OrgFile& o) -> bool& { return o.trust_sender_domain; }, false,
                            "Also attribute mail to this organization by envelope-sender domain alone, from "
                            "any client. Only for servers where senders cannot forge other domains."),
          bool_key<OrgFile>("tracking.opens", [](OrgFile& o) -> bool& { return o.tracking.opens; }, false,
                            "Add an open-tracking pixel to every HTML body part."),
          bool_key<OrgFile>("tracking.clicks", [](OrgFile& o) -> bool& { return o.tracking.clicks; }, false,
                            "Rewrite http(s) links of HTML parts through signed click tokens."),
          bool_key<OrgFile>("tracking.text_links", [](OrgFile& o) -> bool& { return o.tracking.text_links; },
                            false, "Also rewrite bare http(s) URLs in text/plain parts (with `clicks`)."),
          string_key<OrgFile>(
              "tracking.domain", [](OrgFile& o) -> std::string& { return o.tracking.domain; }, "",
              "Tracking host; links are always https://DOMAIN/c/TOKEN, pixels https://DOMAIN/o/TOKEN. Required "
              "when `opens` or `clicks` is on.",
              [](std::string& v, const KeyContext&) -> std::string {
                v = policy::ascii_lower(v);
                return v.empty() || policy::is_valid_domain(v) ? "" : "invalid domain " + toml_quote(v);
              },
              "a DNS name"),
          enum_key<OrgFile, tracking::PixelPosition>(
              "tracking.pixel_position", [](OrgFile& o) -> tracking::PixelPosition& { return o.tracking.pixel; },
              tracking::PixelPosition::bottom,
              {{"bottom", tracking::PixelPosition::bottom}, {"top", tracking::PixelPosition::top}},
              "Where the pixel goes: before `</body>`, or right after `<body>` (Gmail clips messages over "
              "about 102 KB, and a bottom pixel of a clipped message never loads)."),
          bool_key<OrgFile>("tracking.skip_signed", [](OrgFile& o) -> bool& { return o.tracking.skip_signed; },
                            true,
                            "Leave messages that already carry a DKIM-Signature or ARC-Seal alone: changing them "
                            "would break the signature."),
          int_key<OrgFile, std::uint8_t>(
              "tracking.token_version", [](OrgFile& o) -> std::uint8_t& { return o.tracking.token_version; }, 1, 1,
              2,
              "Token layout (docs/tokens.md). 1: the click token carries its destination (and the recipient of "
              "a single-recipient message), so the endpoint redirects with nothing but its keys; the link grows "
              "by about 120 characters. 2: compact opens and clicks (message id and link number, about 50 "
              "characters): the endpoint resolves them from the `message.accepted` event, which must reach the "
              "Cllavio API first, and pixels and links show no address or destination (List-Unsubscribe stays "
              "version 1). Use 2 only once the Cllavio side verifies version 2; needs `api.url` and the org's "
              "API key."),
      };
      for (const auto& k : org_policy_keys()) keys.push_back(lift(k, &OrgFile::policy));
      return keys;
      }(),
      [] {
        std::vector<Rule<OrgFile>> rules{
            {"`tracking.domain` is required when `tracking.opens` or `tracking.clicks` is on.",
             [](const OrgFile& o, const RuleContext& ctx, Reporter& rep) {
               if ((o.tracking.opens || o.tracking.clicks) && o.tracking.domain.empty())
                 rep.error_at(ctx.line(o.tracking.opens ? "tracking.opens" : "tracking.clicks"),
                              "tracking.domain is required when tracking.opens or tracking.clicks is on");
             }},
            {"Tracking (`tracking.opens`, `tracking.clicks`) needs a tracking key: a secrets file (`secrets.file`) "
             "with a `[[tracking_key]]`.",
             [](const OrgFile& o, const RuleContext& ctx, Reporter& rep) {
               if ((o.tracking.opens || o.tracking.clicks) && !ctx.has_tracking_key)
                 rep.error_at(ctx.line(o.tracking.opens ? "tracking.opens" : "tracking.clicks"),
                              "tracking is on but no tracking key is configured ([secrets] file with [[tracking_key]])");
             }},
            {"`tracking.token_version = 2` needs `api.url` and an API key for the org (`[api.org_keys]` in the "
             "secrets file): the endpoint resolves compact tokens from the org's events.",
             [](const OrgFile& o, const RuleContext& ctx, Reporter& rep) {
               if (o.tracking.token_version != 2) return;
               if (!ctx.has_api)
                 rep.error_at(ctx.line("tracking.token_version"),
                              "tracking.token_version = 2 needs api.url: the Cllavio endpoint resolves compact "
                              "tokens from the message.accepted events, which only the API receives");
               else if (ctx.api_org_keys == nullptr || ctx.api_org_keys->count(o.id) == 0)
                 rep.error_at(ctx.line("tracking.token_version"),
                              "tracking.token_version = 2 needs an API key for org \"" + o.id +
                                  "\" ([api.org_keys] in the secrets file): without one its events never leave "
                                  "the outbox and its compact tokens never resolve");
             }},
        };
        for (const auto& r : org_policy_rules()) rules.push_back(r);
        return rules;
      }());
  return schema;
}

namespace {

const Schema<TrackingKeyFile>& tracking_key_schema() {
  static const Schema<TrackingKeyFile> schema(
      {},
      {
          [] {
            auto k = string_key<TrackingKeyFile>(
                "id", [](TrackingKeyFile& t) -> std::string& { return t.id; }, "",
                "Names the key in every token it signs.",
                [](std::string& v, const KeyContext&) -> std::string {
                  bool ok = !v.empty() && v.size() <= 32;
                  for (char c : v)
                    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                c == '.' || c == '_' || c == '-');
                  return ok ? "" : "must be 1..32 of A-Z a-z 0-9 . _ -";
                },
                "1..32 of `A-Z a-z 0-9 . _ -`");
            k.required = true;
            return k;
          }(),
          [] {
            // Checked, never echoed: a message must not carry the secret.
            auto k = string_key<TrackingKeyFile>(
                "secret", [](TrackingKeyFile& t) -> std::string& { return t.secret; }, "",
                "The key: base64 of at least 32 random bytes (`openssl rand -base64 32`).",
                [](std::string& v, const KeyContext&) -> std::string {
                  std::string raw;
                  return tracking::base64_decode(v, raw) && raw.size() >= 32
                             ? ""
                             : "must be base64 of at least 32 bytes (openssl rand -base64 32)";
                },
                "base64 of >= 32 bytes");
            k.required = true;
            return k;
          }(),
      });
  return schema;
}

}  // namespace

Key<SecretsFile> org_keys_key() {
  Key<SecretsFile> k{"api.org_keys", "table of strings", "{}", "org id = \"key\"",
                     "Bearer key of each organization for the Cllavio API (`[api.org_keys]` then `acme = \"...\"`). "
                     "Events of an org without a key stay in the outbox.",
                     false, {}, {}};
  k.reset = [](SecretsFile& s) { s.api_org_keys.clear(); };
  k.set = [](const toml::node& n, SecretsFile& s, const KeyContext&, Reporter& rep) {
    const auto* tbl = n.as_table();
    if (tbl == nullptr) return rep.error(n, "expected a table of org = \"key\", found " + toml_type_name(n));
    for (auto&& [org, v] : *tbl) {
      const auto* str = v.as_string();
      if (str == nullptr || str->get().empty() || str->get().find_first_of(" \t\r\n") != std::string::npos)
        rep.error(v, "the key of org '" + std::string(org.str()) + "' must be a non-empty string without spaces");
      else
        s.api_org_keys[std::string(org.str())] = str->get();
    }
  };
  return k;
}

const Schema<SecretsFile>& secrets_schema() {
  static const Schema<SecretsFile> schema(
      {"api", "redis"},
      {table_array_key<SecretsFile, TrackingKeyFile>(
           "tracking_key", [](SecretsFile& s) -> std::vector<TrackingKeyFile>& { return s.tracking_keys; },
           tracking_key_schema(), "`[[tracking_key]]` tables",
           "Keys that sign tracking tokens: the first signs, all verify (rotate by adding a new key first and removing "
           "the old one once its tokens no longer matter)."),
       string_key<SecretsFile>("api.signing_secret", [](SecretsFile& s) -> std::string& { return s.api_signing_secret; },
                               "",
                               "Secret of the `Cllavio-Signature` HMAC over every request to the API (docs/api.md).",
                               [](std::string& v, const KeyContext&) -> std::string {
                                 return v.empty() || v.size() >= 16 ? "" : "api.signing_secret is too short (16+)";
                               }),
       org_keys_key(), redis_password_key()},
      {
          {"Tracking key ids are unique.",
           [](const SecretsFile& s, const RuleContext& ctx, Reporter& rep) {
             for (std::size_t i = 0; i < s.tracking_keys.size(); ++i)
               for (std::size_t j = 0; j < i; ++j)
                 if (s.tracking_keys[j].id == s.tracking_keys[i].id) {
                   rep.error_at(ctx.line("tracking_key[" + std::to_string(i) + "]"),
                                "tracking key id " + toml_quote(s.tracking_keys[i].id) + " is listed twice");
                   break;
                 }
           }},
      });
  return schema;
}

std::vector<tracking::TrackingKey> SecretsFile::keys() const {
  std::vector<tracking::TrackingKey> out;
  for (const auto& k : tracking_keys) {
    tracking::TrackingKey key{k.id, {}};
    tracking::base64_decode(k.secret, key.secret);
    out.push_back(std::move(key));
  }
  return out;
}

}  // namespace cllavio::conf
