// cllavioctl doctor: where the milter sits in Postfix's milter lists (main.cf and master.cf
// overrides), which services drop it, and whether chrooted smtpd/cleanup reach its socket.
#include <algorithm>
#include <map>

#include "doctor/checks_internal.hpp"
#include "doctor/milter_list.hpp"

namespace cllavio::doctor::detail {

namespace {

// One milter list: main.cf's smtpd_milters / non_smtpd_milters or a master.cf -o override.
struct Site {
  std::string param;
  const Service* svc = nullptr;  // nullptr: main.cf
  std::string value;             // $-expanded
  std::string where() const { return svc ? service_label(*svc) + " -o " + param : param; }
};

std::vector<Site> sites(const Instance& in) {
  std::vector<Site> out;
  for (const char* p : {"smtpd_milters", "non_smtpd_milters"}) out.push_back({p, nullptr, in.param(p)});
  for (const auto& svc : in.pf.services)
    for (const char* p : {"smtpd_milters", "non_smtpd_milters"})
      if (auto v = in.override_of(svc, p)) out.push_back({p, &svc, *v});
  return out;
}

const std::string& ours(const Instance& in) { return in.facts.milter.socket_postfix; }

std::string normal(std::string_view p) { return seen_path(p, false, "/"); }

// The form to list our socket with: a unix socket under queue_directory relative to it
// (the same file for chrooted and unchrooted processes), anything else as the milter has it.
std::string our_form(const Instance& in) {
  const Endpoint e = parse_endpoint(ours(in));
  if (e.kind == Endpoint::Kind::unix_path && !e.path.empty() && e.path.front() == '/') {
    const std::string q = normal(in.queue_directory()), p = normal(e.path);
    if (p.size() > q.size() + 1 && p.starts_with(q) && p[q.size()] == '/') return "unix:" + p.substr(q.size() + 1);
  }
  return ours(in);
}

bool is_ours(const Instance& in, std::string_view endpoint) {
  return !ours(in).empty() && same_endpoint(endpoint, ours(in), in.queue_directory());
}

const SignerSocket* signer_of(const Instance& in, std::string_view endpoint) {
  for (const auto& s : in.facts.signers)
    if (same_endpoint(endpoint, s.socket, in.queue_directory())) return &s;
  return nullptr;
}

std::optional<std::size_t> find_ours(const Instance& in, const std::vector<MilterEntry>& entries) {
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (is_ours(in, entries[i].endpoint)) return i;
  return std::nullopt;
}

// The list rewritten: libmilter-syntax entries in Postfix's syntax; with place_ours, our
// socket present (a unix one in our_form) and before the first DKIM/ARC signer.
std::string fixed_list(const Instance& in, const std::string& value, bool place_ours) {
  auto entries = parse_milter_list(value);
  for (auto& e : entries)
    if (auto pf = libmilter_to_postfix(e.endpoint)) {
      e.text = e.with_endpoint(*pf);
      e.endpoint = *pf;
    }
  if (place_ours) {
    const std::string form = our_form(in);
    auto i = find_ours(in, entries);
    if (i && parse_endpoint(form).kind == Endpoint::Kind::unix_path) {
      entries[*i].text = entries[*i].with_endpoint(form);
      entries[*i].endpoint = form;
    }
    std::size_t first_signer = entries.size();
    for (std::size_t j = 0; j < entries.size(); ++j)
      if ((!i || j != *i) && signer_of(in, entries[j].endpoint)) {
        first_signer = j;
        break;
      }
    if (!i) {
      entries.insert(entries.begin() + static_cast<std::ptrdiff_t>(first_signer), MilterEntry{form, {}, form});
    } else if (first_signer < *i) {
      MilterEntry e = entries[*i];
      entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(*i));
      entries.insert(entries.begin() + static_cast<std::ptrdiff_t>(first_signer), std::move(e));
    }
  }
  return join_milter_list(entries);
}

std::string fix_line(const Instance& in, const Site& site, const std::string& value) {
  return site.svc ? in.set_service(*site.svc, site.param, value) : in.set_main(site.param, value);
}

bool has_no_milters(const std::string& value) {
  const auto items = split_list(value);
  return std::find(items.begin(), items.end(), "no_milters") != items.end();
}

// receive_override_options without no_milters, comma-joined.
std::string without_no_milters(const std::string& value) {
  std::string out;
  for (const auto& item : split_list(value))
    if (item != "no_milters") out += (out.empty() ? "" : ",") + item;
  return out;
}

// A content filter that re-injects mail: main.cf's content_filter, a service's -o content_filter,
// or a re-injection service's own `-o content_filter=` (empty, so re-injected mail is not filtered again).
bool content_filter_seen(const Instance& in) {
  if (!in.param("content_filter").empty()) return true;
  for (const auto& svc : in.pf.services)
    if (svc.overrides.count("content_filter")) return true;
  return false;
}

std::string shown(const std::string& value) { return value.empty() ? "(empty)" : value; }

}  // namespace

void check_milter_lists(const Instance& in, std::vector<Finding>& out) {
  const std::string& dir = in.pf.config_dir;
  const auto all = sites(in);

  // libmilter's syntax anywhere.
  bool any_libmilter = false;
  for (const auto& site : all) {
    std::string bad;
    for (const auto& e : parse_milter_list(site.value))
      if (auto pf = libmilter_to_postfix(e.endpoint)) bad += (bad.empty() ? "" : ", ") + e.endpoint + " (Postfix: " + *pf + ")";
    if (bad.empty()) continue;
    any_libmilter = true;
    out.push_back(make("milter.libmilter_syntax", Severity::error, dir, site.where() + " uses libmilter's socket syntax: " + bad,
                       "Postfix names milters as inet:host:port or unix:/path; port@host and inet:port@host are the "
                       "syntax of libmilter (opendkim's Socket, cllavio.toml), which Postfix cannot connect to, so "
                       "every message gets milter_default_action.",
                       fix_line(in, site, fixed_list(in, site.value, false))));
  }
  if (!any_libmilter)
    out.push_back(make("milter.libmilter_syntax", Severity::ok, dir, "every milter list uses Postfix's socket syntax"));

  if (!ours(in).empty()) {
    // Present in main.cf's two lists.
    const Site& smtpd = all[0];
    const Site& non_smtpd = all[1];
    if (!find_ours(in, parse_milter_list(smtpd.value)))
      out.push_back(make("milter.not_in_smtpd_milters", Severity::error, dir,
                         "the milter's socket " + ours(in) + " is not in smtpd_milters = " + shown(smtpd.value),
                         "Mail received over SMTP never reaches the milter: no tracking, no quota or consent enforcement.",
                         fix_line(in, smtpd, fixed_list(in, smtpd.value, true))));
    else
      out.push_back(make("milter.not_in_smtpd_milters", Severity::ok, dir, "smtpd_milters lists the milter's socket " + ours(in)));
    if (!find_ours(in, parse_milter_list(non_smtpd.value)))
      out.push_back(make("milter.not_in_non_smtpd_milters", Severity::warning, dir,
                         "the milter's socket " + ours(in) + " is not in non_smtpd_milters = " + shown(non_smtpd.value),
                         "Mail submitted with sendmail(1) (scripts, cron, web applications) is picked up and cleaned "
                         "up without the milter: it leaves untracked and unchecked. Leave it out only deliberately.",
                         fix_line(in, non_smtpd, fixed_list(in, non_smtpd.value, true))));
    else
      out.push_back(
          make("milter.not_in_non_smtpd_milters", Severity::ok, dir, "non_smtpd_milters lists the milter's socket " + ours(in)));

    // Before every DKIM/ARC signer, in every list that has it.
    bool after = false;
    for (const auto& site : all) {
      const auto entries = parse_milter_list(site.value);
      const auto i = find_ours(in, entries);
      if (!i) continue;
      for (std::size_t j = 0; j < *i; ++j) {
        const SignerSocket* s = signer_of(in, entries[j].endpoint);
        if (!s) continue;
        after = true;
        out.push_back(make("milter.after_signer", Severity::error, dir,
                           "in " + site.where() + " the milter comes after " + s->product + "'s socket " + entries[j].endpoint,
                           "Postfix passes each message through the milters in list order. " + s->product +
                               " (" + s->socket + ", from " + s->source + ") signs before the milter rewrites links "
                               "and adds headers, so the DKIM/ARC signature no longer matches and fails at every receiver.",
                           fix_line(in, site, fixed_list(in, site.value, true))));
        break;
      }
    }
    if (!after)
      out.push_back(make("milter.after_signer", Severity::ok, dir,
                         in.facts.signers.empty() ? "no DKIM/ARC signer found to order the milter against"
                                                  : "the milter comes before every DKIM/ARC signer"));
  }

  // main.cf's receive_override_options.
  const std::string ro = in.param("receive_override_options");
  if (has_no_milters(ro)) {
    const std::string rest = without_no_milters(ro);
    out.push_back(make("milter.no_milters_main", Severity::warning, dir, "main.cf's receive_override_options = " + ro + " turns milters off",
                       "With no_milters in main.cf no service calls any milter unless master.cf overrides it; "
                       "this belongs on the re-injection service after a content filter, not in main.cf.",
                       rest.empty() ? in.unset_main("receive_override_options")
                                    : in.set_main("receive_override_options", rest)));
  } else {
    out.push_back(make("milter.no_milters_main", Severity::ok, dir, "main.cf's receive_override_options keeps milters on"));
  }

  // smtpd_milter_maps.
  const std::string maps = in.param("smtpd_milter_maps");
  if (!maps.empty()) {
    std::string how;
    for (const auto& m : split_list(maps)) how += "\n  postmap -q CLIENT_ADDRESS " + m;
    out.push_back(make("milter.maps", Severity::warning, dir, "smtpd_milter_maps = " + maps + " may replace or disable milters per client",
                       "For a client whose address the maps match, Postfix uses the result instead of smtpd_milters, "
                       "and DISABLE turns milters off for it: that client's mail is not tracked unless the result "
                       "lists the milter's socket. See what a client gets with:" + how));
  } else {
    out.push_back(make("milter.maps", Severity::ok, dir, "smtpd_milter_maps is empty"));
  }

  // Per-milter default_action settings.
  std::string per;
  for (const auto& site : all)
    for (const auto& e : parse_milter_list(site.value))
      if (const std::string* a = e.setting("default_action"))
        per += (per.empty() ? "" : "; ") + site.where() + ": " + e.endpoint + " default_action=" + *a;
  if (!per.empty())
    out.push_back(make("default_action.per_milter", Severity::info, dir, "per-milter default_action: " + per,
                       "A default_action inside { ... } overrides milter_default_action for that milter when it "
                       "cannot be reached or fails (Postfix 3.0+): accept lets mail through untracked, tempfail "
                       "defers it, reject bounces it."));
}

void check_services(const Instance& in, std::vector<Finding>& out) {
  const std::string& dir = in.pf.config_dir;
  bool error = false, any = false;
  for (const auto& svc : in.pf.services) {
    if (!is_smtpd(svc)) continue;
    any = true;
    std::vector<std::string> how, fixes;
    if (auto ov = in.override_of(svc, "smtpd_milters"); ov && !ours(in).empty() && !find_ours(in, parse_milter_list(*ov))) {
      how.push_back("-o smtpd_milters=" + svc.overrides.at("smtpd_milters"));
      fixes.push_back(parse_milter_list(*ov).empty() ? in.unset_service(svc, "smtpd_milters")
                                                     : in.set_service(svc, "smtpd_milters", fixed_list(in, *ov, true)));
    }
    if (auto ro = in.override_of(svc, "receive_override_options"); ro && has_no_milters(*ro)) {
      how.push_back("-o receive_override_options=" + svc.overrides.at("receive_override_options"));
      const std::string rest = without_no_milters(*ro);
      fixes.push_back(rest.empty() ? in.unset_service(svc, "receive_override_options")
                                   : in.set_service(svc, "receive_override_options", rest));
    }
    if (how.empty()) continue;
    std::string what;
    for (const auto& h : how) what += (what.empty() ? "" : ", ") + h;
    const bool reinjection = loopback_service(svc) || svc.type == "unix";
    if (reinjection) {
      std::string why =
          "This service takes mail back from a content filter (amavis, spamassassin, ...) on loopback. "
          "The milter already handled each message when it first arrived; running it again here "
          "would track and count every message twice. This is normally right.";
      if (!content_filter_seen(in))
        why += " But no content_filter is set in main.cf or master.cf: if local applications submit mail "
               "through " + svc.name + " instead, that mail is not tracked.";
      out.push_back(make("milter.service_drops", Severity::info, dir,
                         "re-injection service " + service_label(svc) + " skips the milter (" + what + ")", why));
    } else {
      error = true;
      std::string fix;
      for (const auto& f : fixes) fix += (fix.empty() ? "" : "\n") + f;
      out.push_back(make("milter.service_drops", Severity::error, dir,
                         "master.cf service " + service_label(svc) + " drops the milter (" + what + ")",
                         "Mail that clients send to " + svc.name + " (" + svc.type +
                             ") never reaches the milter: no tracking, no quota or consent enforcement for it.",
                         fix));
    }
  }
  if (any && !error)
    out.push_back(make("milter.service_drops", Severity::ok, dir, "no public smtpd service in master.cf drops the milter"));
}

void check_chroot(const Instance& in, std::vector<Finding>& out) {
  const Endpoint o = parse_endpoint(ours(in));
  if (o.kind != Endpoint::Kind::unix_path) return;
  const std::string& dir = in.pf.config_dir;
  const std::string qdir = in.queue_directory();
  const std::string target = normal(o.path);
  const auto all = sites(in);

  struct Miss {
    const Site* site;
    std::vector<std::string> who;  // "smtp/inet (chrooted) sees /var/spool/postfix/run/x.sock"
  };
  std::vector<Miss> misses;
  bool checked = false;
  for (const auto& svc : in.pf.services) {
    std::string param;
    if (is_smtpd(svc)) {
      if (auto ro = in.override_of(svc, "receive_override_options"); ro && has_no_milters(*ro)) continue;
      param = "smtpd_milters";
    } else if (is_cleanup(svc)) {
      param = "non_smtpd_milters";
    } else {
      continue;
    }
    const Site* site = &all[param == "smtpd_milters" ? 0 : 1];
    for (const auto& s : all)
      if (s.svc == &svc && s.param == param) site = &s;
    const auto entries = parse_milter_list(site->value);
    const auto i = find_ours(in, entries);
    if (!i) continue;
    checked = true;
    const Endpoint e = parse_endpoint(entries[*i].endpoint);
    const std::string seen = seen_path(e.path, chrooted(svc), qdir);
    if (seen == target) continue;
    auto m = std::find_if(misses.begin(), misses.end(), [&](const Miss& x) { return x.site == site; });
    if (m == misses.end()) m = misses.insert(misses.end(), Miss{site, {}});
    m->who.push_back(service_label(svc) + (chrooted(svc) ? " (chrooted)" : " (not chrooted)") + " opens " + seen);
  }
  for (const auto& m : misses) {
    std::string who;
    for (const auto& w : m.who) who += (who.empty() ? "" : "; ") + w;
    const std::string form = our_form(in);
    const bool under = form != ours(in);
    std::string why =
        "A chrooted smtpd/cleanup (master.cf chroot column y) lives inside queue_directory (" + qdir +
        "): unix:/path means " + qdir + "/path there, and a relative unix:path means " + qdir +
        "/path for every process. The path it opens does not lead to the milter's socket " + target +
        ", so it cannot connect and every message gets milter_default_action.";
    if (!under)
      why += " The socket is outside " + qdir + ": move it there ([milter] socket = \"unix:" + qdir +
             "/cllavio/milter.sock\" in the milter's configuration, as Debian's opendkim uses " + qdir +
             "/opendkim) and list it as unix:cllavio/milter.sock.";
    out.push_back(make("socket.not_in_chroot", Severity::error, dir,
                       "in " + m.site->where() + " the milter's socket is not reachable: " + who, why,
                       under ? fix_line(in, *m.site, fixed_list(in, m.site->value, true)) : ""));
  }
  if (checked && misses.empty())
    out.push_back(make("socket.not_in_chroot", Severity::ok, dir,
                       "every smtpd/cleanup that lists the milter opens " + target + " (chroot considered)"));
}

}  // namespace cllavio::doctor::detail
