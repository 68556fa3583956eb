#include "core/plan.hpp"

#include <chrono>

#include "core/tracking_step.hpp"
#include "tracking/mime.hpp"
#include "tracking/token.hpp"

namespace cllavio::core {

namespace {

using tracking::HeaderEdit;

policy::ConsentState consent_of(const EomLookups& l, const std::string& org, const std::string& address) {
  return l.consent ? l.consent(org, address) : policy::ConsentState::none;
}

std::uint64_t message_id(store::MessageRecord& rec, const EomLookups& l) {
  if (rec.id == 0 && l.message_id) rec.id = l.message_id();
  return rec.id;
}

// Every recipient may be tracked under the stream's consent model.
bool consent_allows_tracking(const store::MessageRecord& rec, const policy::Stream& st, const EomLookups& l) {
  if (rec.recipient_count != rec.recipients.size()) return false;  // more than the record keeps: unknown
  std::vector<policy::ConsentState> states;
  states.reserve(rec.recipients.size());
  for (const auto& r : rec.recipients) states.push_back(consent_of(l, rec.org, r));
  return policy::consent_for_message(st.consent, states).allowed;
}

// List-Unsubscribe + List-Unsubscribe-Post (RFC 8058) for a one-recipient campaign.
void list_unsubscribe(const conf::Config& cfg, const MessageState& m, const policy::Stream& st, const EomLookups& l,
                      EomPlan& plan) {
  store::MessageRecord& rec = plan.record;
  const tracking::TrackingPolicy& t = cfg.tracking_for(rec.org);
  if (rec.recipient_count != 1) {
    rec.list_unsubscribe = "several_recipients";  // one-click needs to know who unsubscribes
  } else if (m.has_list_unsubscribe) {
    rec.list_unsubscribe = "present";  // the sending tool brought its own
  } else if (m.signed_header) {
    rec.list_unsubscribe = "signed";  // a signature over these headers would break
  } else if (t.domain.empty() || !cfg.tokens || !cfg.tokens->can_sign()) {
    rec.list_unsubscribe = "no_key";
  } else {
    tracking::MessageSigner signer(*cfg.tokens, rec.org, message_id(rec, l), rec.recipients.front());
    std::string value = "<";
    signer.append_url(t.domain, tracking::TokenKind::unsubscribe, 0, st.name, value);
    value += ">";
    plan.header_edits.push_back({HeaderEdit::Op::add, "List-Unsubscribe", 0, std::move(value)});
    plan.header_edits.push_back({HeaderEdit::Op::add, "List-Unsubscribe-Post", 0, "List-Unsubscribe=One-Click"});
    rec.list_unsubscribe = "added";
  }
}

// The org's stream, late suppression, the quota charge and the header edits that follow.
// False when the message is refused (plan.verdict says how).
bool plan_policy(const conf::Config& cfg, MessageState& m, const EomLookups& l, EomPlan& plan,
                 const policy::Stream*& stream) {
  store::MessageRecord& rec = plan.record;
  const policy::Stream& st = m.policy->streams.classify(rec.sender, m.stream_header);
  stream = &st;
  rec.stream = st.name;

  // A header chose a campaign stream after RCPT TO: suppressed recipients (unsubscribed,
  // bounced) go now.
  std::vector<std::size_t> drop;
  if (st.kind == policy::StreamKind::campaign && &st != m.rcpt_stream) {
    for (std::size_t i = 0; i < rec.recipients.size(); ++i)
      if (policy::suppressed(st, consent_of(l, rec.org, rec.recipients[i]))) drop.push_back(i);
    if (!drop.empty() && drop.size() == rec.recipient_count) {
      for (std::size_t i : drop) rec.suppressed.push_back(rec.recipients[i]);
      rec.reason = "suppression";
      plan.verdict = Verdict{Step::reject, policy::all_unsubscribed_reply(rec.org)};
      return false;
    }
  }

  const policy::QuotaPolicy& q = m.policy->quota;
  if (q.limits_volume() && l.quota != nullptr) {
    auto charged = l.quota->charge(q, rec.recipient_count - drop.size(), l.now_us);
    if (auto* refused = std::get_if<policy::QuotaRefusal>(&charged)) {
      rec.reason = "quota";
      policy::Reply reply = policy::quota_reply(rec.org, *refused, q.action, l.now_us);
      plan.verdict = Verdict{reply.rcode[0] == '5' ? Step::reject : Step::tempfail, reply};
      return false;
    }
    plan.charge = std::move(std::get<QuotaCharge>(charged));
    rec.quota_charged_at_us = plan.charge.active() ? plan.charge.at_us() : 0;
    rec.quota_txn = plan.charge.active() ? plan.charge.txn().hex() : std::string();
  }

  for (auto it = drop.rbegin(); it != drop.rend(); ++it) {
    plan.delete_recipients.push_back(m.raw_rcpts[*it]);
    rec.suppressed.push_back(rec.recipients[*it]);
    rec.recipients.erase(rec.recipients.begin() + static_cast<std::ptrdiff_t>(*it));
    --rec.recipient_count;
  }
  // Only orgs that declare streams use the header (and only then are header edits negotiated).
  if (!m.policy->streams.streams.empty())
    for (int i = m.stream_headers; i >= 1; --i)
      plan.header_edits.push_back({HeaderEdit::Op::remove, "X-Cllavio-Stream", i, {}});
  if (st.list_unsubscribe) list_unsubscribe(cfg, m, st, l, plan);

  if (m.track) {
    if (!st.tracks()) {
      m.track = false;  // the org tracks, this stream does not
    } else if (!consent_allows_tracking(rec, st, l)) {
      m.track = false;
      rec.tracking.status = "skipped";
      rec.tracking.skipped = "no_consent";
    }
  }
  return true;
}

void plan_tracking(const conf::Config& cfg, MessageState& m, const policy::Stream* stream, const EomLookups& l,
                   EomPlan& plan) {
  store::MessageRecord& rec = plan.record;
  // The org's tracking settings, switched per stream.
  tracking::TrackingPolicy policy = cfg.tracking_for(rec.org);
  if (stream != nullptr) {
    policy.opens = stream->opens;
    policy.clicks = stream->clicks;
  }
  tracking::RewriteResult r;
  try {
    // Timed only for metrics (the daemon); the plan itself reads no clock.
    auto start = l.rewrite_seconds ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    r = track_message(cfg, TrackRequest{m.header_block, m.body_bytes, m.truncated, rec.org, message_id(rec, l),
                                        &rec.recipients, &policy, l.old_links ? &l.old_links : nullptr});
    if (l.rewrite_seconds)
      l.rewrite_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  } catch (const std::exception& e) {
    plan.error = std::string("tracking failed, message passes unchanged: ") + e.what();
    rec.tracking.status = "skipped";
    rec.tracking.skipped = "internal_error";
    return;
  }
  std::string().swap(m.body_bytes);
  rec.tracking = take_outcome(r, rec.recipient_count == 1);
  plan.header_edits.insert(plan.header_edits.end(), r.header_edits.begin(), r.header_edits.end());
  if (r.changed) plan.body = std::move(r.body);
  r.body.clear();
  plan.rewrite = std::move(r);
}

}  // namespace

EomPlan plan_end_of_message(const conf::Config& cfg, MessageState&& m, const EomLookups& lookups) {
  EomPlan plan;
  plan.record = std::move(m.rec);
  const policy::Stream* stream = nullptr;
  if (m.policy != nullptr && !plan_policy(cfg, m, lookups, plan, stream)) return plan;
  if (m.track) plan_tracking(cfg, m, stream, lookups, plan);
  return plan;
}

bool apply(const EomPlan& plan, MilterActions& actions) {
  for (const auto& r : plan.delete_recipients)
    if (!actions.delete_recipient(r)) return false;
  for (const auto& e : plan.header_edits) {
    bool ok = e.op == HeaderEdit::Op::remove ? actions.remove_header(e.name, e.occurrence)
              : e.op == HeaderEdit::Op::add  ? actions.add_header(e.name, e.value)
                                             : actions.change_header(e.name, e.occurrence, e.value);
    if (!ok) return false;
  }
  return !plan.body || actions.replace_body(*plan.body);
}

std::string apply_to_message(const EomPlan& plan, std::string_view header, std::string_view body) {
  // As on the wire, every header line ends, and an empty line separates a body: a file
  // that ends inside its header block gets what SMTP and Postfix would add.
  const std::string_view eol = tracking::eol_str(tracking::detect_eol(header, tracking::Eol::crlf));
  std::string out(header);
  if (!out.empty() && out.back() != '\n') out.append(eol);
  out = tracking::apply_header_edits(out, plan.header_edits);
  std::string_view b = plan.body ? std::string_view(*plan.body) : body;
  bool separated = out.ends_with("\n\n") || out.ends_with("\n\r\n") || out == eol;
  if (!b.empty() && !separated) out.append(eol);
  out.append(b);
  return out;
}

}  // namespace cllavio::core
