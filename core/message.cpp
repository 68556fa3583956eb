#include "core/message.hpp"

#include "tracking/ascii.hpp"

namespace cllavio::core {

using tracking::iequals;

namespace {

constexpr std::size_t kMaxMessageIdBytes = 998;

std::string_view trim(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

void MessageState::begin(const conf::Config& cfg) {
  if (rec.org.empty()) return;
  policy = &cfg.policy_for(rec.org);
  rcpt_stream = &policy->streams.by_sender(rec.sender);
  // Buffered when any stream of the org may track: a header may still pick the stream.
  track = cfg.tracking.count(rec.org) > 0 && policy->any_tracking();
}

void MessageState::header(const conf::Config& cfg, std::string_view name, std::string_view value) {
  // Octets as in the message: "Name:" value CRLF (value keeps its leading space). The MTA
  // sends folded values with bare LF line breaks; on the wire each is CRLF.
  std::size_t bare_lf = 0;
  for (std::size_t i = 0; i < value.size(); ++i)
    if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r')) ++bare_lf;
  rec.size += name.size() + 1 + value.size() + bare_lf + 2;
  if (rec.message_id.empty() && iequals(name, "Message-ID"))
    rec.message_id = std::string(trim(value).substr(0, kMaxMessageIdBytes));
  if (policy != nullptr) {
    if (iequals(name, "X-Cllavio-Stream")) {
      if (stream_headers++ == 0) stream_header = std::string(trim(value).substr(0, 64));
    } else if (iequals(name, "DKIM-Signature") || iequals(name, "ARC-Seal")) {
      signed_header = true;
    } else if (iequals(name, "List-Unsubscribe")) {
      has_list_unsubscribe = true;
    }
  }
  if (track && !truncated) {
    std::string& h = header_block;
    h.append(name).push_back(':');
    for (std::size_t i = 0; i < value.size(); ++i) {  // folds arrive as bare LF
      if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r')) h.push_back('\r');
      h.push_back(value[i]);
    }
    h.append("\r\n");
    if (h.size() > cfg.tracking_limits.mime.max_header_bytes) truncated = true;
  }
}

void MessageState::body(const conf::Config& cfg, std::string_view chunk) {
  rec.size += chunk.size();
  if (!track || truncated) return;
  if (body_bytes.size() + chunk.size() > cfg.tracking_limits.max_rewrite_bytes) {
    truncated = true;  // too large to rewrite: stop holding it in memory
    std::string().swap(body_bytes);
    return;
  }
  body_bytes.append(chunk);
}

void MessageState::add_recipient(std::string_view raw, std::string address) {
  if (++rec.recipient_count <= store::MessageRecord::kMaxRecipients) {
    rec.recipients.push_back(std::move(address));
    raw_rcpts.emplace_back(raw);
  }
}

std::optional<RecipientRefusal> recipient_refusal(const MessageState& m, const std::string& address,
                                         const ConsentLookup& consent) {
  if (m.policy == nullptr) return std::nullopt;
  const policy::QuotaPolicy& q = m.policy->quota;
  if (q.max_recipients_per_message != 0 && m.rec.recipient_count >= q.max_recipients_per_message)
    return RecipientRefusal{{Step::tempfail, policy::too_many_recipients_reply(q.max_recipients_per_message)}};
  if (m.rcpt_stream->kind == policy::StreamKind::campaign && consent) {
    policy::ConsentState state = consent(m.rec.org, address);
    if (policy::suppressed(*m.rcpt_stream, state))
      return RecipientRefusal{{Step::reject, policy::suppression_reply(address, m.rec.org, state)}, true};
  }
  return std::nullopt;
}

}  // namespace cllavio::core
