// Per-connection milter state: the pure core behind the libmilter callbacks.
//
// A Connection lives from the MTA's connect to close and pins one Config snapshot
// for its whole life (a SIGHUP reload affects new connections only). It owns at
// most one Message (MAIL FROM .. end of message or abort). The libmilter shell
// (shell.cpp) only translates callbacks into these calls and maps the returned
// Verdict back; nothing here knows libmilter, so sessions are unit-tested
// directly.
//
// MAIL FROM identifies the org and decides the sender; RCPT TO applies the recipient
// limit, suppression and the recipient quota (core/message.hpp); headers and body go
// to the transaction's core::MessageState. At end of message the session asks the
// planner for the plan (core/plan.hpp), applies it through MilterActions, records the
// message (record, quota charge and event in one store write) and, once the message
// is accepted, commits the quota charge: the only place where a charge becomes final.
//
// Contract: methods may throw (the shell catches everything and calls
// internal_error); internal_error never throws. A store failure (map full, I/O)
// never blocks the message: it gets [milter] on_error and a loud log line.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"
#include "core/actions.hpp"
#include "core/log.hpp"
#include "core/message.hpp"
#include "core/quota.hpp"
#include "core/verdict.hpp"
#include "metrics/cllavio_metrics.hpp"
#include "store/message_record.hpp"

namespace cllavio::milter {

using core::MilterActions;
using core::Step;
using core::Verdict;

// What sessions need from the daemon (fakes in unit tests).
struct Services {
  // Writes the record (with its quota charge and event); throws on failure.
  // event_required: a message whose compact tokens resolve only through its event; a full
  // outbox then fails the write instead of dropping the event.
  std::function<std::uint64_t(store::MessageRecord&, const core::QuotaCharge&, bool event_required)> record;
  const core::Logger* log = nullptr;
  std::function<std::int64_t()> now_us;
  std::atomic<int>* in_flight = nullptr;          // messages between MAIL FROM and end/abort
  const std::atomic<bool>* draining = nullptr;    // shutting down: new transactions get on_error
  std::function<bool(int per_minute)> may_record_reject;  // rate limit; empty: always record
  std::function<std::uint64_t()> allocate_id;              // message ids for tokens; empty: the store assigns
  core::ConsentLookup consent;                             // empty: nothing recorded for anyone
  core::QuotaBackend* quota = nullptr;                     // null: quotas not enforced
  metrics::Metrics* metrics = nullptr;                     // null: nothing counted
  // The org's use of its quota windows (the ledger's view); empty: not shown in metrics.
  std::function<std::vector<policy::WindowUsage>(const std::string& org, const policy::QuotaPolicy&, std::int64_t now_us)>
      quota_usage = nullptr;
  tracking::LinkTableLookup old_links = nullptr;  // earlier messages' link tables (quoted compact tokens)
};

class Connection {
 public:
  Connection(std::shared_ptr<const conf::Config> config, Services services);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const conf::Config& config() const { return *config_; }
  bool in_transaction() const { return msg_ != nullptr; }

  void connect(std::string_view client_name, std::string_view client_addr);
  // MAIL FROM gets no reply (SMFIP_NR_MAIL, negotiated when no organization refuses senders
  // there): a refusal decided at MAIL (shutting down, an internal error) is then answered at
  // the next step that gets a reply, RCPT when it is answered, else the end of message.
  void set_mail_no_reply(bool no_reply) { mail_no_reply_ = no_reply; }
  Verdict mail(std::string_view sender, std::string_view sasl_login);
  Verdict rcpt(std::string_view recipient);
  void header(std::string_view name, std::string_view value);  // value as sent, leading space included
  void body(std::string_view chunk);
  // Plans, applies, records.
  Verdict end_of_message(std::string_view queue_id, MilterActions& actions);
  void abort();

  // The shell caught an exception in a callback. For steps that get no reply
  // (no_reply = true) the failure is remembered and answered at end of message.
  Verdict internal_error(std::string_view where, std::string_view what, bool no_reply) noexcept;

 private:
  struct Message;
  Verdict start_transaction(std::string_view sender, std::string_view sasl_login);
  Verdict on_error_verdict() const;
  bool record(store::MessageRecord& rec, const core::QuotaCharge& charge, std::string_view queue_id,
              bool event_required);  // false: store failed (logged)
  void log_line(const store::MessageRecord& rec, std::string_view queue_id, std::string_view note = {}) const;
  // Metrics (no-ops without svc_.metrics): a message's final answer, its tracking
  // outcome, a policy refusal, the org's quota use after a charge or refusal.
  void count_message(const store::MessageRecord& rec) const;
  void count_refusal(const std::string& org, std::string_view reason) const;
  void count_quota(const std::string& org, const policy::QuotaPolicy& q, std::int64_t now_us) const;

  std::shared_ptr<const conf::Config> config_;
  Services svc_;
  std::string client_name_;
  std::string client_addr_;
  std::unique_ptr<Message> msg_;
  bool mail_no_reply_ = false;
  std::optional<Verdict> deferred_;  // decided at an unanswered MAIL, answered later
};

}  // namespace cllavio::milter
