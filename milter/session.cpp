#include "milter/session.hpp"

#include "milter/session_message.hpp"
#include "tracking/ascii.hpp"

#include "milter/tracking_step.hpp"
#include "policy/address.hpp"
#include "policy/network.hpp"
#include "store/lmdb.hpp"

namespace cllavio::milter {

using tracking::iequals;

namespace {

constexpr std::size_t kMaxMessageIdBytes = 998;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

std::string org_label(const store::MessageRecord& r) { return r.org.empty() ? "unknown" : r.org; }

}  // namespace

Connection::Connection(std::shared_ptr<const conf::Config> config, Services services)
    : config_(std::move(config)), svc_(std::move(services)) {}

Connection::~Connection() = default;

void Connection::connect(std::string_view client_name, std::string_view client_addr) {
  // Postfix passes "[addr]" when the client has no verified name; it logs "unknown".
  if (client_name.empty() || client_name.front() == '[') client_name = "unknown";
  client_name_ = log_value(client_name, 255);
  client_addr_ = log_value(client_addr, 64);
}

Verdict Connection::mail(std::string_view sender, std::string_view sasl_login) {
  msg_.reset();
  if (svc_.draining != nullptr && svc_.draining->load()) {
    svc_.log->notice("shutting down: transaction from <" + log_value(policy::normalize_address(sender)) +
                     "> not processed; on_error=" + std::string(conf::to_string(config_->milter.on_error)));
    return on_error_verdict();
  }
  auto msg = std::make_unique<Message>(svc_.in_flight, svc_.quota);
  store::MessageRecord& rec = msg->rec;
  rec.sender = policy::normalize_address(sender);
  rec.sasl_login = std::string(sasl_login);
  rec.client_addr = client_addr_;
  rec.client_name = client_name_;
  rec.received_at_us = svc_.now_us();

  policy::Envelope env{rec.sasl_login, policy::parse_ip(client_addr_), rec.sender};
  policy::Identification id = config_->orgs.identify(env);
  rec.org = id.org ? id.org->id : "";
  rec.identified_by = std::string(policy::to_string(id.by));

  policy::Decision d = policy::decide_sender(id, config_->orgs_settings.unknown, rec.sender);
  if (d.action != policy::Action::accept) {
    rec.action = std::string(policy::to_string(d.action));
    rec.reason = d.reason;
    if (!svc_.may_record_reject || svc_.may_record_reject(config_->store.reject_records_per_minute)) {
      record(rec, "NOQUEUE");
      log_line(rec, "NOQUEUE");
    } else {
      log_line(rec, "NOQUEUE", "recorded=no");  // over [store] reject_records_per_minute
    }
    return Verdict{d.action == policy::Action::reject ? Step::reject : Step::tempfail, d.reply};
  }
  if (id.org != nullptr) {
    msg->policy = &config_->policy_for(rec.org);
    msg->rcpt_stream = &msg->policy->streams.by_sender(rec.sender);
    // Buffered when any stream of the org may track: a header may still pick the stream.
    msg->track = config_->tracking.count(rec.org) > 0 && msg->policy->any_tracking();
  }
  msg_ = std::move(msg);
  return {};
}

Verdict Connection::rcpt(std::string_view recipient) {
  if (!msg_) return {};
  Message& m = *msg_;
  std::string addr = policy::normalize_address(recipient);
  if (m.policy != nullptr) {
    const policy::QuotaPolicy& q = m.policy->quota;
    if (q.max_recipients_per_message != 0 && m.rec.recipient_count >= q.max_recipients_per_message)
      return Verdict{Step::tempfail, policy::too_many_recipients_reply(q.max_recipients_per_message)};
    if (m.rcpt_stream->suppresses() && consent_of(m.rec.org, addr) == policy::ConsentState::unsubscribed) {
      if (m.rec.suppressed.size() < store::MessageRecord::kMaxRecipients) m.rec.suppressed.push_back(addr);
      svc_.log->info("NOQUEUE: org=" + m.rec.org + " stream=" + m.rcpt_stream->name + " from=<" +
                     log_value(m.rec.sender) + "> rcpt=<" + log_value(addr) + "> refused: unsubscribed");
      return Verdict{Step::reject, policy::unsubscribed_reply(addr, m.rec.org)};
    }
    if (!q.recipients.empty() && svc_.quota != nullptr) {
      if (svc_.refresh_quota) svc_.refresh_quota(m.rec.org, q.longest_s() * 1000000);
      std::int64_t now = svc_.now_us();
      if (auto refused = svc_.quota->reserve_recipient(m.rec.org, q, now)) {
        policy::Reply reply = policy::quota_reply(m.rec.org, *refused, q.action, now);
        svc_.log->notice("NOQUEUE: org=" + m.rec.org + " from=<" + log_value(m.rec.sender) + "> rcpt=<" +
                         log_value(addr) + "> refused: " + reply.rcode + " " + reply.text);
        return Verdict{q.action == policy::QuotaAction::reject ? Step::reject : Step::tempfail, reply};
      }
      ++m.reserved;
    }
  }
  if (++m.rec.recipient_count <= store::MessageRecord::kMaxRecipients) {
    m.rec.recipients.push_back(addr);
    m.raw_rcpts.emplace_back(recipient);
  }
  return {};
}

void Connection::header(std::string_view name, std::string_view value) {
  if (!msg_) return;
  // Octets as in the message: "Name:" value CRLF (value keeps its leading space). The MTA
  // sends folded values with bare LF line breaks; on the wire each is CRLF.
  std::size_t bare_lf = 0;
  for (std::size_t i = 0; i < value.size(); ++i)
    if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r')) ++bare_lf;
  msg_->rec.size += name.size() + 1 + value.size() + bare_lf + 2;
  if (msg_->rec.message_id.empty() && iequals(name, "Message-ID"))
    msg_->rec.message_id = std::string(trim(value).substr(0, kMaxMessageIdBytes));
  if (msg_->policy != nullptr) {
    if (iequals(name, "X-Cllavio-Stream")) {
      if (msg_->stream_headers++ == 0) msg_->stream_header = std::string(trim(value).substr(0, 64));
    } else if (iequals(name, "DKIM-Signature") || iequals(name, "ARC-Seal")) {
      msg_->signed_header = true;
    } else if (iequals(name, "List-Unsubscribe")) {
      msg_->has_list_unsubscribe = true;
    }
  }
  if (msg_->track && !msg_->truncated) {
    std::string& h = msg_->header;
    h.append(name).push_back(':');
    for (std::size_t i = 0; i < value.size(); ++i) {  // folds arrive as bare LF
      if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r')) h.push_back('\r');
      h.push_back(value[i]);
    }
    h.append("\r\n");
    if (h.size() > config_->tracking_limits.mime.max_header_bytes) msg_->truncated = true;
  }
}

void Connection::body(std::string_view chunk) {
  if (!msg_) return;
  msg_->rec.size += chunk.size();
  if (!msg_->track || msg_->truncated) return;
  if (msg_->body.size() + chunk.size() > config_->tracking_limits.max_rewrite_bytes) {
    msg_->truncated = true;  // too large to rewrite: stop holding it in memory
    std::string().swap(msg_->body);
    return;
  }
  msg_->body.append(chunk);
}

Verdict Connection::end_of_message(std::string_view queue_id, MilterActions& actions) {
  if (!msg_) return {};
  std::unique_ptr<Message> msg = std::move(msg_);
  store::MessageRecord& rec = msg->rec;
  rec.queue_id = std::string(queue_id.substr(0, 64));
  rec.size += 2;  // the empty line between header and body
  Verdict v;
  if (!msg->failure.empty()) {
    v = on_error_verdict();
    rec.reason = "internal_error";
    svc_.log->log(conf::LogLevel::error, queue_id,
                  "internal error earlier in this message (" + msg->failure +
                      "); on_error=" + std::string(conf::to_string(config_->milter.on_error)));
  } else {
    bool edits_ok = true;
    if (msg->policy != nullptr) v = end_policy(*msg, actions, edits_ok);
    if (v.step == Step::cont && edits_ok && msg->track && !track(*msg, actions)) edits_ok = false;
    if (!edits_ok) {
      // An edit did not reach the MTA: the message may be half changed. It must not be delivered.
      v = Verdict{Step::tempfail, {"451", "4.3.0", "Temporary failure in the mail filter, please try again later"}};
      rec.reason = "milter_action_failed";
      svc_.log->log(conf::LogLevel::error, queue_id, "Postfix did not take a message change; tempfailing it");
    }
  }
  rec.action = v.step == Step::tempfail ? "tempfail" : v.step == Step::reject ? "reject" : "accept";
  std::string qid = rec.queue_id.empty() ? "NOQUEUE" : rec.queue_id;
  if (rec.action != "accept" && rec.quota_charged_at_us != 0) {
    svc_.quota->uncharge(rec.org, rec.quota_charged_at_us, rec.recipient_count);  // only accepted mail counts
    rec.quota_charged_at_us = 0;
  }
  if (!record(rec, qid)) {
    v = on_error_verdict();
    rec.action = v.step == Step::tempfail ? "tempfail" : "accept";
    rec.reason = "store_error";
    if (v.step != Step::accept && v.step != Step::cont && rec.quota_charged_at_us != 0)
      svc_.quota->uncharge(rec.org, rec.quota_charged_at_us, rec.recipient_count);
  }
  msg->charge_settled = true;
  log_line(rec, qid);
  return v;
}

bool Connection::track(Message& msg, MilterActions& actions) {
  store::MessageRecord& rec = msg.rec;
  if (svc_.allocate_id && rec.id == 0) rec.id = svc_.allocate_id();  // tokens carry the id the record will have
  // The org's tracking settings, switched per stream.
  tracking::TrackingPolicy policy = config_->tracking_for(rec.org);
  if (msg.stream != nullptr) {  // settled by end_policy()
    policy.opens = msg.stream->opens;
    policy.clicks = msg.stream->clicks;
  }
  tracking::RewriteResult r;
  try {
    r = track_message(*config_, TrackRequest{msg.header, msg.body, msg.truncated, rec.org, rec.id, &rec.recipients,
                                             &policy});
  } catch (const std::exception& e) {
    svc_.log->log(conf::LogLevel::error, rec.queue_id, std::string("tracking failed, message passes unchanged: ") +
                                                           log_safe(e.what()));
    rec.tracking.status = "skipped";
    rec.tracking.skipped = "internal_error";
    return true;
  }
  rec.tracking = outcome_of(r, rec.recipient_count == 1);
  std::string().swap(msg.body);
  for (const auto& e : r.header_edits) {
    bool ok = e.op == tracking::HeaderEdit::Op::remove  ? actions.remove_header(e.name, e.occurrence)
              : e.op == tracking::HeaderEdit::Op::add   ? actions.add_header(e.name, e.value)
                                                        : actions.change_header(e.name, e.occurrence, e.value);
    if (!ok) return false;
  }
  return !r.changed || actions.replace_body(r.body);
}

void Connection::abort() { msg_.reset(); }

Verdict Connection::internal_error(std::string_view where, std::string_view what, bool no_reply) noexcept {
  try {
    std::string text = std::string(where) + ": " + log_safe(what);
    if (no_reply && msg_) {
      if (msg_->failure.empty()) msg_->failure = text;
      return {};
    }
    svc_.log->error("internal error in " + text + "; on_error=" +
                    std::string(conf::to_string(config_->milter.on_error)));
    msg_.reset();
    return on_error_verdict();
  } catch (...) {
    msg_.reset();
    return on_error_verdict();
  }
}

Verdict Connection::on_error_verdict() const {
  if (config_->milter.on_error == conf::OnError::tempfail)
    return Verdict{Step::tempfail, {"451", "4.3.0", "Temporary failure in the mail filter, please try again later"}};
  return Verdict{Step::accept, {}};
}

bool Connection::record(store::MessageRecord& rec, std::string_view queue_id) {
  try {
    svc_.record(rec);
    return true;
  } catch (const store::lmdb::Error& e) {
    std::string policy = "; on_error=" + std::string(conf::to_string(config_->milter.on_error));
    if (e.map_full())
      svc_.log->log(conf::LogLevel::error, queue_id,
                    std::string("STORE FULL: message not recorded, raise [store] map_size_mb: ") + e.what() + policy);
    else
      svc_.log->log(conf::LogLevel::error, queue_id,
                    std::string("store write failed, message not recorded: ") + e.what() + policy);
    return false;
  } catch (const std::exception& e) {
    svc_.log->log(conf::LogLevel::error, queue_id, std::string("message not recorded: ") + log_safe(e.what()));
    return false;
  }
}

void Connection::log_line(const store::MessageRecord& rec, std::string_view queue_id, std::string_view note) const {
  if (!svc_.log->enabled(conf::LogLevel::info)) return;
  std::string line = "org=" + org_label(rec) + " by=" + rec.identified_by + " from=<" + log_value(rec.sender) +
                     "> nrcpt=" + std::to_string(rec.recipient_count) + " client=" + client_name_ + "[" +
                     client_addr_ + "]";
  if (!rec.sasl_login.empty()) line += " sasl=" + log_value(rec.sasl_login);
  if (rec.action != "reject") line += " size=" + std::to_string(rec.size);
  if (!rec.message_id.empty()) line += " msgid=" + log_value(rec.message_id, 128);
  line += " action=" + rec.action;
  if (!rec.reason.empty()) line += " reason=" + rec.reason;
  if (rec.id != 0) line += " id=" + store::format_id(rec.id);
  if (!rec.stream.empty() && rec.stream != "default") line += " stream=" + rec.stream;
  if (!rec.suppressed.empty()) {  // named (the first few), as Postfix names refused recipients
    line += " suppressed=";
    for (std::size_t i = 0; i < rec.suppressed.size() && i < 5; ++i)
      line += (i ? "," : "") + std::string("<") + log_value(rec.suppressed[i], 128) + ">";
    if (rec.suppressed.size() > 5) line += ",+" + std::to_string(rec.suppressed.size() - 5);
  }
  if (!rec.list_unsubscribe.empty()) line += " list_unsubscribe=" + rec.list_unsubscribe;
  if (std::string t = describe(rec.tracking); !t.empty()) line.append(" ").append(t);
  if (!note.empty()) line.append(" ").append(note);
  svc_.log->log(conf::LogLevel::info, queue_id, line);
}

}  // namespace cllavio::milter
