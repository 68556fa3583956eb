#include "conf/org_policy_schema.hpp"

#include "conf/schemas.hpp"

#include <map>

namespace cllavio::conf {

namespace {

using policy::ConsentMode;
using policy::StreamKind;

std::string check_stream_name(std::string& v, const KeyContext&) {
  bool ok = !v.empty() && v.size() <= 64;
  for (char c : v) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.');
  if (!ok) return "invalid stream name " + toml_quote(v) + "; use 1..64 of a-z 0-9 . _ -";
  if (v == "default") return "stream name \"default\" is reserved for the org's default stream";
  return "";
}

const Schema<StreamFile>& stream_schema() {
  static const Schema<StreamFile> schema(
      {"tracking"},
      {
          [] {
            auto k = string_key<StreamFile>("name", [](StreamFile& s) -> std::string& { return s.name; }, "",
                                            "Stream name; also what `X-Cllavio-Stream: NAME` selects.",
                                            check_stream_name, "1..64 of `a-z 0-9 . _ -`, not `default`");
            k.required = true;
            return k;
          }(),
          string_list_key<StreamFile>(
              "senders", [](StreamFile& s) -> std::vector<std::string>& { return s.senders; },
              "Envelope senders of this stream: `news@acme.example`, `@acme.example` (the whole domain), "
              "`news*@acme.example` or `news*@` (`*` and `?` glob over the local part).",
              [](std::string& v) { return policy::check_sender_pattern(v); }, "sender patterns"),
          enum_key<StreamFile, StreamKind>(
              "kind", [](StreamFile& s) -> StreamKind& { return s.kind; }, StreamKind::personal,
              {{"personal", StreamKind::personal}, {"campaign", StreamKind::campaign}},
              "`campaign`: bulk mail, where unsubscribed recipients are refused and List-Unsubscribe may be "
              "added; `personal`: person-to-person mail, never blocked by an unsubscribe."),
          optional_bool_key<StreamFile>("tracking.opens", [](StreamFile& s) -> std::optional<bool>& { return s.opens; },
                                        "(the org's tracking.opens)", "Open pixel for this stream's mail."),
          optional_bool_key<StreamFile>("tracking.clicks",
                                        [](StreamFile& s) -> std::optional<bool>& { return s.clicks; },
                                        "(the org's tracking.clicks)", "Click tracking for this stream's mail."),
          optional_enum_key<StreamFile, ConsentMode>(
              "consent", [](StreamFile& s) -> std::optional<ConsentMode>& { return s.consent; },
              "(the org's tracking.consent)", {{"required", ConsentMode::required}, {"implied", ConsentMode::implied}},
              "`required`: track only recipients who granted consent; `implied`: track unless they revoked it or "
              "unsubscribed."),
          optional_bool_key<StreamFile>(
              "suppress_unsubscribed", [](StreamFile& s) -> std::optional<bool>& { return s.suppress_unsubscribed; },
              "(true for campaign streams)",
              "Refuse recipients who unsubscribed from the org's mailings (`550 5.7.1` at RCPT TO). Campaign "
              "streams only."),
          bool_key<StreamFile>("list_unsubscribe", [](StreamFile& s) -> bool& { return s.list_unsubscribe; }, false,
                               "Add `List-Unsubscribe: <https://TRACKING_DOMAIN/u/TOKEN>` and "
                               "`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058) to messages with one "
                               "recipient. Campaign streams only; needs tracking.domain and a tracking key."),
      });
  return schema;
}

const Schema<QuotaWindowFile>& window_schema() {
  static const Schema<QuotaWindowFile> schema(
      {},
      {
          [] {
            auto k = parsed_key<QuotaWindowFile, std::int64_t>(
                "per", "string", [](QuotaWindowFile& w) -> std::int64_t& { return w.per_s; }, "1h",
                "`30s`, `1m`, `1h`, `1d`: 1s..31d", "Window length; the window slides.",
                [](std::string_view s, const KeyContext&) -> std::variant<std::int64_t, std::string> {
                  if (auto v = policy::parse_window(s)) return *v;
                  return "invalid window " + toml_quote(s) + "; expected a number and s, m, h or d (1s..31d)";
                });
            k.required = true;
            return k;
          }(),
          [] {
            auto k = int_key<QuotaWindowFile, std::int64_t>(
                "max", [](QuotaWindowFile& w) -> std::int64_t& { return w.max; }, 1, 1, 1000000000,
                "Most messages (or recipients) within any window of that length.");
            k.required = true;
            return k;
          }(),
      });
  return schema;
}

}  // namespace

const std::vector<Key<OrgPolicyFile>>& org_policy_keys() {
  static const std::vector<Key<OrgPolicyFile>> keys = {
      enum_key<OrgPolicyFile, ConsentMode>(
          "tracking.consent", [](OrgPolicyFile& f) -> ConsentMode& { return f.consent; }, ConsentMode::required,
          {{"required", ConsentMode::required}, {"implied", ConsentMode::implied}},
          "Consent model of the default stream (and of streams that set none): `required` tracks only "
          "recipients who granted consent; `implied` tracks unless they revoked it or unsubscribed. A message "
          "is tracked only when every recipient may be tracked."),
      table_array_key<OrgPolicyFile, StreamFile>(
          "stream", [](OrgPolicyFile& f) -> std::vector<StreamFile>& { return f.streams; }, stream_schema(),
          "`[[stream]]` tables",
          "Streams that classify this org's mail: the first whose `senders` match the envelope sender, or the "
          "one named by an `X-Cllavio-Stream` header (removed before delivery); else the default stream "
          "(personal, the org's [tracking])."),
      table_array_key<OrgPolicyFile, QuotaWindowFile>(
          "quota.messages", [](OrgPolicyFile& f) -> std::vector<QuotaWindowFile>& { return f.quota_messages; },
          window_schema(), "`[{ per = \"1h\", max = 1000 }, ...]`",
          "Messages accepted per sliding window, counted at end of message (only accepted mail counts)."),
      table_array_key<OrgPolicyFile, QuotaWindowFile>(
          "quota.recipients", [](OrgPolicyFile& f) -> std::vector<QuotaWindowFile>& { return f.quota_recipients; },
          window_schema(), "`[{ per = \"1h\", max = 5000 }, ...]`",
          "Recipients per sliding window, reserved at RCPT TO and charged with their message; an aborted or "
          "refused transaction gives them back."),
      int_key<OrgPolicyFile, std::int64_t>(
          "quota.max_recipients_per_message",
          [](OrgPolicyFile& f) -> std::int64_t& { return f.max_recipients_per_message; }, 0, 0, 100000,
          "RCPTs past this number get `452 4.5.3 Too many recipients` (clients send the rest in another "
          "transaction). 0: no limit."),
      enum_key<OrgPolicyFile, policy::QuotaAction>(
          "quota.action", [](OrgPolicyFile& f) -> policy::QuotaAction& { return f.quota_action; },
          policy::QuotaAction::defer, {{"defer", policy::QuotaAction::defer}, {"reject", policy::QuotaAction::reject}},
          "Over quota: `defer` answers `451 4.7.1 ... retry after HH:MM UTC` (the client retries), `reject` "
          "answers `550 5.7.1`."),
      optional_bool_key<OrgPolicyFile>(
          "delivery.suppress_hard_bounces",
          [](OrgPolicyFile& f) -> std::optional<bool>& { return f.suppress_hard_bounces; },
          "the main file's `delivery.suppress_hard_bounces`",
          "This organization's choice: addresses that hard-bounce (or expire `soft_bounce_limit` times) are "
          "refused by its campaign streams from then on."),
      optional_duration_key<OrgPolicyFile>(
          "retention.messages", [](OrgPolicyFile& f) -> std::optional<std::int64_t>& { return f.retention.messages_s; },
          "the main file's `retention.messages`", "This organization's retention of records of accepted mail."),
      optional_duration_key<OrgPolicyFile>(
          "retention.audit", [](OrgPolicyFile& f) -> std::optional<std::int64_t>& { return f.retention.audit_s; },
          "the main file's `retention.audit`", "This organization's retention of audit entries."),
      optional_duration_key<OrgPolicyFile>(
          "retention.dead_letters",
          [](OrgPolicyFile& f) -> std::optional<std::int64_t>& { return f.retention.dead_letters_s; },
          "the main file's `retention.dead_letters`", "This organization's retention of refused events."),
      optional_duration_key<OrgPolicyFile>(
          "retention.rejects", [](OrgPolicyFile& f) -> std::optional<std::int64_t>& { return f.retention.rejects_s; },
          "the main file's `retention.rejects`", "This organization's retention of records of refused transactions."),
  };
  return keys;
}

namespace {

std::string stream_at(std::size_t i) { return "stream[" + std::to_string(i) + "]"; }
std::string who(const StreamFile& s) { return "stream " + toml_quote(s.name) + ": "; }
bool tracks(const OrgFile& o, const StreamFile& s) {
  return s.opens.value_or(o.tracking.opens) || s.clicks.value_or(o.tracking.clicks);
}

void unique_streams(const OrgFile& o, const RuleContext& ctx, Reporter& rep) {
  std::map<std::string, unsigned> names;
  for (std::size_t i = 0; i < o.policy.streams.size(); ++i) {
    const StreamFile& s = o.policy.streams[i];
    unsigned line = ctx.line(stream_at(i));
    if (auto [it, fresh] = names.emplace(s.name, line); !fresh)
      rep.error_at(line, "stream " + toml_quote(s.name) + " is declared twice (first at line " +
                             std::to_string(it->second) + ")");
  }
}

void campaign_only(const OrgFile& o, const RuleContext& ctx, Reporter& rep) {
  for (std::size_t i = 0; i < o.policy.streams.size(); ++i) {
    const StreamFile& s = o.policy.streams[i];
    if (s.kind != StreamKind::personal) continue;
    if (s.suppress_unsubscribed.value_or(false))
      rep.error_at(ctx.line(stream_at(i) + ".suppress_unsubscribed"),
                   who(s) + "suppress_unsubscribed applies to campaign streams only (person-to-person mail is never "
                            "blocked by a newsletter unsubscribe)");
    if (s.list_unsubscribe)
      rep.error_at(ctx.line(stream_at(i) + ".list_unsubscribe"), who(s) + "list_unsubscribe applies to campaign streams only");
  }
}

void stream_tracking_needs(const OrgFile& o, const RuleContext& ctx, Reporter& rep) {
  for (std::size_t i = 0; i < o.policy.streams.size(); ++i) {
    const StreamFile& s = o.policy.streams[i];
    if (!tracks(o, s) && !s.list_unsubscribe) continue;
    if (o.tracking.domain.empty())
      rep.error_at(ctx.line(stream_at(i)), who(s) + "tracking or list_unsubscribe needs tracking.domain");
    if (!ctx.has_tracking_key)
      rep.error_at(ctx.line(stream_at(i)),
                   who(s) + "tracking or list_unsubscribe needs a tracking key ([secrets] file with [[tracking_key]])");
  }
}

void distinct_windows(const std::vector<QuotaWindowFile>& in, const std::string& key, const RuleContext& ctx,
                      Reporter& rep) {
  for (std::size_t i = 0; i < in.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (in[j].per_s == in[i].per_s) {
        rep.error_at(ctx.line(key + "[" + std::to_string(i) + "]"),
                     key + ": two windows of " + policy::describe_window(in[i].per_s));
        break;
      }
}

}  // namespace

const std::vector<Rule<OrgFile>>& org_policy_rules() {
  static const std::vector<Rule<OrgFile>> rules = {
      {"Stream names are unique within an organization.", unique_streams},
      {"`suppress_unsubscribed` and `list_unsubscribe` apply to campaign streams only: person-to-person mail is "
       "never blocked by a newsletter unsubscribe.",
       campaign_only},
      {"A stream that tracks (its own `tracking` or the org's) or adds List-Unsubscribe needs `tracking.domain` and "
       "a tracking key (`[[tracking_key]]` in the secrets file).",
       stream_tracking_needs},
      {"Two windows of `quota.messages` (or of `quota.recipients`) may not have the same length.",
       [](const OrgFile& o, const RuleContext& ctx, Reporter& rep) {
         distinct_windows(o.policy.quota_messages, "quota.messages", ctx, rep);
         distinct_windows(o.policy.quota_recipients, "quota.recipients", ctx, rep);
       }},
  };
  return rules;
}

policy::OrgPolicy build_org_policy(const OrgFile& o) {
  const OrgPolicyFile& f = o.policy;
  policy::OrgPolicy out;
  policy::Stream& def = out.streams.fallback;
  def.name = "default";
  def.kind = StreamKind::personal;
  def.opens = o.tracking.opens;
  def.clicks = o.tracking.clicks;
  def.consent = f.consent;
  for (const StreamFile& sf : f.streams) {
    policy::Stream s;
    s.name = sf.name;
    s.senders = sf.senders;
    s.kind = sf.kind;
    s.opens = sf.opens.value_or(o.tracking.opens);
    s.clicks = sf.clicks.value_or(o.tracking.clicks);
    s.consent = sf.consent.value_or(f.consent);
    s.suppress_unsubscribed = sf.suppress_unsubscribed.value_or(sf.kind == StreamKind::campaign);
    s.list_unsubscribe = sf.list_unsubscribe;
    out.streams.streams.push_back(std::move(s));
  }
  auto windows = [](const std::vector<QuotaWindowFile>& in) {
    std::vector<policy::QuotaWindow> v;
    for (const auto& w : in) v.push_back({w.per_s, static_cast<std::uint64_t>(w.max)});
    return v;
  };
  out.quota.messages = windows(f.quota_messages);
  out.quota.recipients = windows(f.quota_recipients);
  out.quota.max_recipients_per_message = static_cast<std::uint32_t>(f.max_recipients_per_message);
  out.quota.action = f.quota_action;
  out.suppress_hard_bounces = f.suppress_hard_bounces;
  out.retention = f.retention;
  return out;
}

}  // namespace cllavio::conf
