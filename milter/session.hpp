// Per-connection milter state: the pure core behind the libmilter callbacks.
//
// A Connection lives from the MTA's connect to close and pins one Config snapshot
// for its whole life (a SIGHUP reload affects new connections only). It owns at
// most one Message (MAIL FROM .. end of message or abort). The libmilter shell
// (shell.cpp) only translates callbacks into these calls and maps the returned
// Verdict back; nothing here knows libmilter, so sessions are unit-tested
// directly.
//
// Contract: methods may throw (the shell catches everything and calls
// internal_error); internal_error never throws. A message's record is written in
// one store transaction at end of message; a store failure (map full, I/O)
// never blocks the message: it gets [milter] on_error and a loud log line.
// For an org with [tracking] on, the header and body are buffered (bounded by
// [tracking] limits) and rewritten at end of message (milter/tracking_step.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "conf/config.hpp"
#include "milter/actions.hpp"
#include "milter/log.hpp"
#include "policy/consent.hpp"
#include "policy/decision.hpp"
#include "policy/quota.hpp"
#include "store/message_record.hpp"

namespace cllavio::milter {

enum class Step { cont, accept, reject, tempfail };

struct Verdict {
  Step step = Step::cont;
  policy::Reply reply;  // for reject/tempfail; empty rcode: the MTA's default reply
};

// What sessions need from the daemon (fakes in unit tests).
struct Services {
  std::function<std::uint64_t(store::MessageRecord&)> record;  // throws on failure
  const Logger* log = nullptr;
  std::function<std::int64_t()> now_us;
  std::atomic<int>* in_flight = nullptr;          // messages between MAIL FROM and end/abort
  const std::atomic<bool>* draining = nullptr;    // shutting down: new transactions get on_error
  std::function<bool(int per_minute)> may_record_reject;  // rate limit; empty: always record
  std::function<std::uint64_t()> allocate_id;              // message ids for tokens; empty: the store assigns
  // Policy: a recipient's consent per org (empty: nothing recorded for anyone), the
  // quota ledger (null: quotas not enforced) and what keeps it in step with the store
  // (reloads an org after `cllavioctl quota reset`; keep_us: its longest window).
  std::function<policy::ConsentState(const std::string& org, const std::string& address)> consent;
  policy::QuotaLedger* quota = nullptr;
  std::function<void(const std::string& org, std::int64_t keep_us)> refresh_quota;
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
  Verdict mail(std::string_view sender, std::string_view sasl_login);
  // Recipient limits, suppression of unsubscribed recipients and the recipient quota.
  Verdict rcpt(std::string_view recipient);
  void header(std::string_view name, std::string_view value);  // value as sent, leading space included
  void body(std::string_view chunk);
  // Records the message and, for an org that tracks, rewrites it through `actions`.
  Verdict end_of_message(std::string_view queue_id, MilterActions& actions);
  void abort();

  // The shell caught an exception in a callback. For steps that get no reply
  // (no_reply = true) the failure is remembered and answered at end of message.
  Verdict internal_error(std::string_view where, std::string_view what, bool no_reply) noexcept;

 private:
  struct Message;
  Verdict on_error_verdict() const;
  bool record(store::MessageRecord& rec, std::string_view queue_id);  // false: store failed (logged)
  bool track(Message& msg, MilterActions& actions);                    // false: the MTA refused an edit
  // session_policy.cpp: streams, late suppression, quota charge, header edits.
  Verdict end_policy(Message& msg, MilterActions& actions, bool& edits_ok);
  void list_unsubscribe(Message& msg, MilterActions& actions, bool& edits_ok);
  bool consent_allows_tracking(Message& msg);  // every recipient may be tracked under the stream's model
  policy::ConsentState consent_of(const std::string& org, const std::string& address) const;
  void log_line(const store::MessageRecord& rec, std::string_view queue_id, std::string_view note = {}) const;

  std::shared_ptr<const conf::Config> config_;
  Services svc_;
  std::string client_name_;
  std::string client_addr_;
  std::unique_ptr<Message> msg_;
};

}  // namespace cllavio::milter
