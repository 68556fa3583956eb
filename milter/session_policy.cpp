// End-of-message policy of a Connection: the message's stream, suppression of
// unsubscribed recipients when a header picked the stream after RCPT TO, the quota
// charge, and the header edits that follow (X-Cllavio-Stream removed,
// List-Unsubscribe added), then whether consent lets the message be tracked.
#include "milter/session.hpp"
#include "milter/session_message.hpp"
#include "tracking/token.hpp"

namespace cllavio::milter {

policy::ConsentState Connection::consent_of(const std::string& org, const std::string& address) const {
  return svc_.consent ? svc_.consent(org, address) : policy::ConsentState::none;
}

Verdict Connection::end_policy(Message& m, MilterActions& actions, bool& edits_ok) {
  store::MessageRecord& rec = m.rec;
  m.stream = &m.policy->streams.classify(rec.sender, m.stream_header);
  const policy::Stream& st = *m.stream;
  rec.stream = st.name;

  // A header chose a suppressing stream after RCPT TO: unsubscribed recipients go now.
  std::vector<std::size_t> drop;
  if (st.suppresses() && &st != m.rcpt_stream) {
    for (std::size_t i = 0; i < rec.recipients.size(); ++i)
      if (consent_of(rec.org, rec.recipients[i]) == policy::ConsentState::unsubscribed) drop.push_back(i);
    if (!drop.empty() && drop.size() == rec.recipient_count) {
      for (std::size_t i : drop) rec.suppressed.push_back(rec.recipients[i]);
      rec.reason = "suppression";
      return Verdict{Step::reject, policy::all_unsubscribed_reply(rec.org)};
    }
  }

  const policy::QuotaPolicy& q = m.policy->quota;
  std::uint64_t rcpts = rec.recipient_count - drop.size();
  if (q.limits_volume() && svc_.quota != nullptr) {
    if (svc_.refresh_quota) svc_.refresh_quota(rec.org, q.longest_s() * 1000000);
    std::int64_t now = svc_.now_us(), at = 0;
    if (auto refused = svc_.quota->charge_message(rec.org, q, rcpts, now, &at, m.reserved)) {
      rec.reason = "quota";
      return Verdict{q.action == policy::QuotaAction::reject ? Step::reject : Step::tempfail,
                     policy::quota_reply(rec.org, *refused, q.action, now)};
    }
    m.reserved = 0;  // charged, or given back by the charge
    rec.quota_charged_at_us = at;
    rec.quota_window_us = q.longest_s() * 1000000;
  }

  for (auto it = drop.rbegin(); it != drop.rend(); ++it) {
    edits_ok = edits_ok && actions.delete_recipient(m.raw_rcpts[*it]);
    rec.suppressed.push_back(rec.recipients[*it]);
    rec.recipients.erase(rec.recipients.begin() + static_cast<std::ptrdiff_t>(*it));
    m.raw_rcpts.erase(m.raw_rcpts.begin() + static_cast<std::ptrdiff_t>(*it));
    --rec.recipient_count;
  }
  // Only orgs that declare streams use the header (and only then are header edits negotiated).
  if (!m.policy->streams.streams.empty())
    for (int i = m.stream_headers; i >= 1 && edits_ok; --i) edits_ok = actions.remove_header("X-Cllavio-Stream", i);
  if (st.list_unsubscribe && edits_ok) list_unsubscribe(m, actions, edits_ok);

  if (m.track) {
    if (!st.tracks()) {
      m.track = false;  // the org tracks, this stream does not
    } else if (!consent_allows_tracking(m)) {
      m.track = false;
      rec.tracking.status = "skipped";
      rec.tracking.skipped = "no_consent";
    }
  }
  return {};
}

bool Connection::consent_allows_tracking(Message& m) {
  const store::MessageRecord& rec = m.rec;
  if (rec.recipient_count != rec.recipients.size()) return false;  // more than the record keeps: unknown
  std::vector<policy::ConsentState> states;
  states.reserve(rec.recipients.size());
  for (const auto& r : rec.recipients) states.push_back(consent_of(rec.org, r));
  return policy::consent_for_message(m.stream->consent, states).allowed;
}

void Connection::list_unsubscribe(Message& m, MilterActions& actions, bool& edits_ok) {
  store::MessageRecord& rec = m.rec;
  const tracking::TrackingPolicy& t = config_->tracking_for(rec.org);
  if (rec.recipient_count != 1) {
    rec.list_unsubscribe = "several_recipients";  // one-click needs to know who unsubscribes
  } else if (m.has_list_unsubscribe) {
    rec.list_unsubscribe = "present";  // the sending tool brought its own
  } else if (m.signed_header) {
    rec.list_unsubscribe = "signed";  // a signature over these headers would break
  } else if (t.domain.empty() || !config_->tokens || !config_->tokens->can_sign()) {
    rec.list_unsubscribe = "no_key";
  } else {
    if (svc_.allocate_id && rec.id == 0) rec.id = svc_.allocate_id();
    tracking::MessageSigner signer(*config_->tokens, rec.org, rec.id, rec.recipients.front());
    std::string value = "<";
    signer.append_url(t.domain, tracking::TokenKind::unsubscribe, 0, m.stream->name, value);
    value += ">";
    edits_ok = actions.add_header("List-Unsubscribe", value) &&
               actions.add_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
    rec.list_unsubscribe = "added";
  }
}

}  // namespace cllavio::milter
