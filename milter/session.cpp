#include "milter/session.hpp"

#include "core/plan.hpp"
#include "core/tracking_step.hpp"
#include "milter/session_message.hpp"
#include "policy/address.hpp"
#include "policy/network.hpp"
#include "store/lmdb.hpp"

namespace cllavio::milter {

using core::log_safe;
using core::log_value;

namespace {

std::string_view action_of(const Verdict& v) {
  return v.step == Step::tempfail ? "tempfail" : v.step == Step::reject ? "reject" : "accept";
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
  deferred_.reset();
  Verdict v = start_transaction(sender, sasl_login);
  if (mail_no_reply_ && v.step != Step::cont) deferred_ = v;
  return v;
}

Verdict Connection::start_transaction(std::string_view sender, std::string_view sasl_login) {
  msg_.reset();
  // Counted in flight before looking at `draining` (both sequentially consistent): the
  // shutdown drain sets the flag and then reads the count, so it either sees this
  // transaction or this transaction sees the flag.
  auto msg = std::make_unique<Message>(svc_.in_flight);
  if (svc_.draining != nullptr && svc_.draining->load()) {
    svc_.log->notice("shutting down: transaction from <" + log_value(policy::normalize_address(sender)) +
                     "> not processed; on_error=" + std::string(conf::to_string(config_->milter.on_error)));
    return on_error_verdict();
  }
  store::MessageRecord& rec = msg->state.rec;
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
    count_refusal(rec.org, rec.reason);
    count_message(rec);
    if (!svc_.may_record_reject || svc_.may_record_reject(config_->store.reject_records_per_minute)) {
      record(rec, core::QuotaCharge(), "NOQUEUE", false);
      log_line(rec, "NOQUEUE");
    } else {
      log_line(rec, "NOQUEUE", "recorded=no");  // over [store] reject_records_per_minute
    }
    return Verdict{d.action == policy::Action::reject ? Step::reject : Step::tempfail, d.reply};
  }
  msg->state.begin(*config_);
  if (msg->state.policy != nullptr && !msg->state.policy->quota.empty() && svc_.quota != nullptr)
    msg->hold.emplace(svc_.quota, rec.org);
  msg_ = std::move(msg);
  return {};
}

Verdict Connection::rcpt(std::string_view recipient) {
  if (deferred_) return *deferred_;
  if (!msg_) return {};
  core::MessageState& m = msg_->state;
  std::string addr = policy::normalize_address(recipient);
  if (auto refused = core::recipient_refusal(m, addr, svc_.consent)) {
    count_refusal(m.rec.org, refused->unsubscribed ? "suppression" : "recipient_limit");
    if (refused->unsubscribed) {
      if (m.rec.suppressed.size() < store::MessageRecord::kMaxRecipients) m.rec.suppressed.push_back(addr);
      svc_.log->info("NOQUEUE: org=" + m.rec.org + " stream=" + m.rcpt_stream->name + " from=<" +
                     log_value(m.rec.sender) + "> rcpt=<" + log_value(addr) + "> refused: unsubscribed");
    }
    return refused->verdict;
  }
  if (msg_->hold && !m.policy->quota.recipients.empty()) {
    const policy::QuotaPolicy& q = m.policy->quota;
    std::int64_t now = svc_.now_us();
    if (auto refused = msg_->hold->reserve(q, now)) {
      policy::Reply reply = policy::quota_reply(m.rec.org, *refused, q.action, now);
      count_refusal(m.rec.org, "quota");
      count_quota(m.rec.org, q, now);
      svc_.log->notice("NOQUEUE: org=" + m.rec.org + " from=<" + log_value(m.rec.sender) + "> rcpt=<" +
                       log_value(addr) + "> refused: " + reply.rcode + " " + reply.text);
      return Verdict{reply.rcode[0] == '5' ? Step::reject : Step::tempfail, reply};
    }
  }
  m.add_recipient(recipient, std::move(addr));
  return {};
}

void Connection::header(std::string_view name, std::string_view value) {
  if (msg_) msg_->state.header(*config_, name, value);
}

void Connection::body(std::string_view chunk) {
  if (msg_) msg_->state.body(*config_, chunk);
}

Verdict Connection::end_of_message(std::string_view queue_id, MilterActions& actions) {
  if (deferred_) {
    Verdict v = *deferred_;
    deferred_.reset();
    return v;
  }
  if (!msg_) return {};
  std::unique_ptr<Message> msg = std::move(msg_);
  core::MessageState& st = msg->state;
  st.rec.queue_id = std::string(queue_id.substr(0, 64));
  st.rec.size += 2;  // the empty line between header and body
  core::EomPlan plan;
  if (!msg->failure.empty()) {
    plan.record = std::move(st.rec);
    plan.record.reason = "internal_error";
    plan.verdict = on_error_verdict();
    svc_.log->log(conf::LogLevel::error, queue_id,
                  "internal error earlier in this message (" + msg->failure +
                      "); on_error=" + std::string(conf::to_string(config_->milter.on_error)));
  } else {
    core::EomLookups lookups{svc_.consent, msg->hold ? &*msg->hold : nullptr, svc_.allocate_id, svc_.now_us()};
    lookups.old_links = svc_.old_links;
    if (svc_.metrics != nullptr) lookups.rewrite_seconds = [m = svc_.metrics](double s) { m->rewrite(s); };
    plan = core::plan_end_of_message(*config_, std::move(st), lookups);
    if (!plan.error.empty()) svc_.log->log(conf::LogLevel::error, queue_id, log_safe(plan.error));
    if (plan.verdict.step == Step::cont && !core::apply(plan, actions)) {
      // An edit did not reach the MTA: the message may be half changed. It must not be delivered.
      plan.verdict = core::temporary_failure();
      plan.record.reason = "milter_action_failed";
      svc_.log->log(conf::LogLevel::error, queue_id, "Postfix did not take a message change; tempfailing it");
    }
  }
  store::MessageRecord& rec = plan.record;
  Verdict v = plan.verdict;
  rec.action = std::string(action_of(v));
  if (rec.action != "accept") {  // only accepted mail counts
    plan.charge.rollback();
    rec.quota_charged_at_us = 0;
  }
  std::string qid = rec.queue_id.empty() ? "NOQUEUE" : rec.queue_id;
  // Compact (version 2) tokens resolve only through this message's event: without its
  // record and event the message would go out with links that lead nowhere.
  const bool compact = plan.body && (rec.tracking.pixels > 0 || !rec.tracking.links.empty()) &&
                       config_->tracking_for(rec.org).token_version == 2;
  if (!record(rec, plan.charge, qid, compact)) {
    if (v.step != Step::cont && v.step != Step::accept) {
      // A refusal stays a refusal, with its reason: on_error decides only for mail that would pass.
    } else if (compact) {
      v = core::temporary_failure();
      rec.reason = "store_error";
      svc_.log->log(conf::LogLevel::error, qid,
                    "a message with compact tokens could not be recorded; tempfailing it whatever on_error says (its "
                    "links would not resolve)");
    } else {
      v = on_error_verdict();
      rec.reason = "store_error";
    }
    rec.action = std::string(action_of(v));
  }
  if (v.step == Step::cont || v.step == Step::accept) {
    plan.charge.commit();  // the one place a charge becomes final
  } else {
    plan.charge.rollback();
    rec.quota_charged_at_us = 0;
  }
  if (rec.reason == "quota" || rec.reason == "suppression") count_refusal(rec.org, rec.reason);
  count_message(rec);
  if (rec.reason == "quota" || rec.quota_charged_at_us != 0)
    count_quota(rec.org, config_->policy_for(rec.org).quota, svc_.now_us());
  log_line(rec, qid);
  return v;
}

void Connection::abort() {
  msg_.reset();
  deferred_.reset();
}

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
    Verdict v = on_error_verdict();
    if (no_reply && mail_no_reply_) deferred_ = v;  // an unanswered MAIL: answered at the next reply
    return v;
  } catch (...) {
    msg_.reset();
    return on_error_verdict();
  }
}

Verdict Connection::on_error_verdict() const {
  if (config_->milter.on_error == conf::OnError::tempfail) return core::temporary_failure();
  return Verdict{Step::accept, {}};
}

bool Connection::record(store::MessageRecord& rec, const core::QuotaCharge& charge, std::string_view queue_id,
                        bool event_required) {
  try {
    svc_.record(rec, charge, event_required);
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

void Connection::count_message(const store::MessageRecord& rec) const {
  if (svc_.metrics == nullptr) return;
  svc_.metrics->message(rec.org, rec.action);
  if (!rec.tracking.status.empty()) svc_.metrics->tracking(rec.org, rec.tracking.status, rec.tracking.skipped);
}

void Connection::count_refusal(const std::string& org, std::string_view reason) const {
  if (svc_.metrics != nullptr) svc_.metrics->refusal(org, reason);
}

void Connection::count_quota(const std::string& org, const policy::QuotaPolicy& q, std::int64_t now_us) const {
  if (svc_.metrics == nullptr || !svc_.quota_usage || !q.limits_volume()) return;
  for (const auto& u : svc_.quota_usage(org, q, now_us))
    svc_.metrics->quota_used(org, metrics::Metrics::window_label(u.recipients, u.window.per_s),
                             static_cast<double>(u.used));
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
  if (std::string t = core::describe(rec.tracking); !t.empty()) line.append(" ").append(t);
  if (!note.empty()) line.append(" ").append(note);
  svc_.log->log(conf::LogLevel::info, queue_id, line);
}

}  // namespace cllavio::milter
