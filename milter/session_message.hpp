// One SMTP transaction of a Connection (internal to session.cpp and session_policy.cpp).
//
// Counts itself in Services::in_flight while it exists, so a SIGTERM drain knows when
// every message it accepted has been answered; gives back the recipients it reserved
// in the quota ledger unless they were charged, however the transaction ends (end of
// message, abort, a new MAIL FROM, an internal error, the connection closing).
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "policy/org_policy.hpp"
#include "policy/quota.hpp"
#include "store/message_record.hpp"

namespace cllavio::milter {

struct Connection::Message {
  Message(std::atomic<int>* counter, policy::QuotaLedger* ledger) : in_flight(counter), quota(ledger) {
    if (in_flight) in_flight->fetch_add(1);
  }
  ~Message() {
    if (quota && reserved > 0) quota->release_recipients(rec.org, reserved);
    // Charged, but the end of message never settled it (an exception on the way): only
    // accepted mail counts.
    if (quota && rec.quota_charged_at_us != 0 && !charge_settled)
      quota->uncharge(rec.org, rec.quota_charged_at_us, rec.recipient_count);
    if (in_flight) in_flight->fetch_sub(1);
  }
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  std::atomic<int>* in_flight;
  policy::QuotaLedger* quota;
  std::uint64_t reserved = 0;  // recipients reserved in the ledger, not yet charged
  bool charge_settled = false;  // end of message decided the charge's fate (kept or uncharged)
  store::MessageRecord rec;
  std::string failure;  // internal error seen in a step without reply

  // Policy of the identified org (from the connection's pinned config).
  const policy::OrgPolicy* policy = nullptr;
  const policy::Stream* rcpt_stream = nullptr;  // the stream by sender: what RCPT TO checked
  const policy::Stream* stream = nullptr;       // the message's stream, settled at end of message
  std::optional<std::string> stream_header;     // the first X-Cllavio-Stream value
  int stream_headers = 0;                       // how many there are (all are removed)
  bool signed_header = false;                   // DKIM-Signature or ARC-Seal present
  bool has_list_unsubscribe = false;
  std::vector<std::string> raw_rcpts;           // accepted recipients as the MTA gave them (smfi_delrcpt)

  // Tracking: the message as the rewrite needs it, bounded by [tracking] limits.
  bool track = false;
  bool truncated = false;
  std::string header;
  std::string body;
};

}  // namespace cllavio::milter
