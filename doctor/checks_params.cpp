// cllavioctl doctor: main.cf parameters the milter depends on: milter_default_action,
// milter_protocol, the milter timeouts, the macros it reads, enable_long_queue_ids.
#include <algorithm>
#include <cctype>
#include <optional>

#include "doctor/checks_internal.hpp"
#include "doctor/milter_list.hpp"

namespace cllavio::doctor::detail {

namespace {

// Postfix time values: 30s, 5m, 1h, 1d, 1w, or a bare number in the parameter's default unit (s).
std::optional<long long> seconds(const std::string& v) {
  std::size_t i = 0;
  long long n = 0;
  while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) {
    n = n * 10 + (v[i] - '0');
    if (n > 1'000'000'000LL) return std::nullopt;
    ++i;
  }
  if (i == 0) return std::nullopt;
  if (i == v.size()) return n;
  if (i + 1 != v.size()) return std::nullopt;
  switch (std::tolower(static_cast<unsigned char>(v[i]))) {
    case 's': return n;
    case 'm': return n * 60;
    case 'h': return n * 3600;
    case 'd': return n * 86400;
    case 'w': return n * 604800;
    default: return std::nullopt;
  }
}

// A macro list carries `name` as {name} or bare (Postfix and libmilter accept both).
bool has_macro(const std::string& list, std::string_view name) {
  for (const auto& m : split_list(list)) {
    std::string_view s = m;
    if (s.size() >= 2 && s.front() == '{' && s.back() == '}') s = s.substr(1, s.size() - 2);
    if (s == name) return true;
  }
  return false;
}

void timeout(const Instance& in, std::vector<Finding>& out, const char* id, const std::string& param,
             long long minimum, const char* fallback, const char* recommended, const char* why) {
  const std::string& dir = in.pf.config_dir;
  const std::string v = in.param(param, fallback);
  const auto s = seconds(v);
  if (!s || *s < minimum)
    out.push_back(make(id, Severity::warning, dir,
                       param + " = " + v + (s ? " is below " + std::to_string(minimum) + "s" : " is not a time value"),
                       why, in.set_main(param, recommended)));
  else
    out.push_back(make(id, Severity::ok, dir, param + " = " + v));
}

}  // namespace

void check_parameters(const Instance& in, std::vector<Finding>& out) {
  const std::string& dir = in.pf.config_dir;

  // milter_default_action.
  const std::string action = in.param("milter_default_action", "tempfail");
  if (action == "reject")
    out.push_back(make("default_action.reject", Severity::warning, dir, "milter_default_action = reject",
                       "While the milter restarts or is unreachable, Postfix rejects every message with a 5xx: "
                       "senders bounce it and the mail is lost. tempfail defers it (senders retry), accept lets it "
                       "through untracked.",
                       in.set_main("milter_default_action", "tempfail")));
  else if (action == "tempfail")
    out.push_back(make("default_action.unset", Severity::info, dir, "milter_default_action = tempfail (Postfix's default)",
                       "While the milter is unreachable Postfix answers 4xx: senders retry later and no mail passes "
                       "untracked, but mail waits until the milter is back. Set accept if delivery matters more than "
                       "tracking every message; set it explicitly either way."));
  else
    out.push_back(make("default_action.unset", Severity::ok, dir, "milter_default_action = " + action + " (set deliberately)"));

  // milter_protocol.
  const std::string proto = in.param("milter_protocol", "6");
  const bool number = !proto.empty() && proto.size() < 6 &&
                      std::all_of(proto.begin(), proto.end(), [](char c) { return c >= '0' && c <= '9'; });
  const bool protocol6 = number && std::stoi(proto) >= 6;
  if (!protocol6)
    out.push_back(make("protocol.old", Severity::error, dir, "milter_protocol = " + proto + " (below 6)",
                       "cllavio-milter speaks milter protocol 6: with an older protocol Postfix cannot negotiate the "
                       "steps and macros it needs (header changes, the queue id at end of data).",
                       in.set_main("milter_protocol", "6")));
  else
    out.push_back(make("protocol.old", Severity::ok, dir, "milter_protocol = " + proto));

  timeout(in, out, "timeout.command", "milter_command_timeout", 10, "30s", "30s",
          "Postfix gives up on a milter command after this long and applies milter_default_action; a short "
          "timeout turns a busy moment (store sync, a slow disk) into deferred or untracked mail.");
  timeout(in, out, "timeout.content", "milter_content_timeout", 60, "300s", "300s",
          "The milter reads and rewrites the whole body at end of data; a large message needs time. When Postfix "
          "gives up it applies milter_default_action.");

  // Macros.
  const std::string mail_macros =
      in.param("milter_mail_macros", "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}");
  // With protocol 6 the milter asks for the macros it reads at MAIL FROM itself
  // (smfi_setsymlist), whatever milter_mail_macros says.
  if (protocol6)
    out.push_back(make("macros.auth_authen", Severity::ok, dir,
                       "the milter asks for {auth_authen} itself (milter protocol 6)"));
  else if (!has_macro(mail_macros, "auth_authen"))
    out.push_back(make("macros.auth_authen", Severity::error, dir, "milter_mail_macros lacks {auth_authen}",
                       "The milter identifies SASL-authenticated senders by {auth_authen}; without it they are "
                       "treated as unauthenticated: org matching by login, quotas and consent do not apply to them.",
                       in.set_main("milter_mail_macros", mail_macros.empty() ? "{auth_authen}" : mail_macros + " {auth_authen}")));
  else
    out.push_back(make("macros.auth_authen", Severity::ok, dir, "milter_mail_macros carries {auth_authen}"));
  const std::string eod_macros = in.param("milter_end_of_data_macros", "i");
  if (!has_macro(eod_macros, "i"))
    out.push_back(make("macros.queue_id", Severity::warning, dir, "milter_end_of_data_macros lacks i (the queue id)",
                       "Records are stored without Postfix's queue id: log lines and delivery outcomes cannot be "
                       "matched to them.",
                       in.set_main("milter_end_of_data_macros", eod_macros.empty() ? "i" : eod_macros + " i")));
  else
    out.push_back(make("macros.queue_id", Severity::ok, dir, "milter_end_of_data_macros carries i"));

  // [delivery] needs long queue ids.
  if (in.facts.milter.delivery_enabled) {
    const std::string v = in.param("enable_long_queue_ids", "no");
    if (v != "yes")
      out.push_back(make("delivery.long_queue_ids", Severity::error, dir, "enable_long_queue_ids = " + v + " while [delivery] is on",
                         "Short queue ids are reused over time and [delivery] joins a log line to the newest record "
                         "with that id: an outcome can land on the wrong message. Long queue ids are unique.",
                         in.set_main("enable_long_queue_ids", "yes")));
    else
      out.push_back(make("delivery.long_queue_ids", Severity::ok, dir, "enable_long_queue_ids = yes"));
  }
}

}  // namespace cllavio::doctor::detail
