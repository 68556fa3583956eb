// What one SMTP transaction has shown the milter so far: the input of the end-of-message plan.
//
// The milter session feeds it from the libmilter callbacks (MAIL FROM, RCPT TO, each
// header, each body chunk); `cllavioctl rewrite` feeds it from a file through the very
// same calls, so a preview goes through exactly the steps the milter takes. Header and
// body are kept only when the org may track (bounded by [tracking] limits).
//
// Pure: no I/O, no clock. The Config the state points into must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"
#include "core/verdict.hpp"
#include "policy/consent.hpp"
#include "store/message_record.hpp"

namespace cllavio::core {

// A recipient's consent with an org (none: nothing recorded).
using ConsentLookup = std::function<policy::ConsentState(const std::string& org, const std::string& address)>;

struct MessageState {
  // After identification: the org's policy, the stream by sender, whether to buffer.
  void begin(const conf::Config& cfg);
  // The MTA's header field as it sent it (value with its leading space; folds as bare LF).
  void header(const conf::Config& cfg, std::string_view name, std::string_view value);
  void body(const conf::Config& cfg, std::string_view chunk);
  // An accepted recipient, as the MTA gave it and normalized.
  void add_recipient(std::string_view raw, std::string address);

  store::MessageRecord rec;
  const policy::OrgPolicy* policy = nullptr;    // null: no org (nothing to decide)
  const policy::Stream* rcpt_stream = nullptr;  // the stream by sender: what RCPT TO checked
  std::optional<std::string> stream_header;     // the first X-Cllavio-Stream value
  int stream_headers = 0;                       // how many there are (all are removed)
  bool signed_header = false;                   // DKIM-Signature or ARC-Seal present
  bool has_list_unsubscribe = false;
  std::vector<std::string> raw_rcpts;           // accepted recipients as the MTA gave them (smfi_delrcpt)

  // Tracking: the message as the rewrite needs it, bounded by [tracking] limits.
  bool track = false;
  bool truncated = false;
  std::string header_block;
  std::string body_bytes;
};

// RCPT TO, before any quota: past the org's recipient limit (452 4.5.3), or an
// unsubscribed recipient of a suppressing campaign stream (550 5.7.1). nullopt: go on.
struct RecipientRefusal {
  Verdict verdict;
  bool unsubscribed = false;
};
std::optional<RecipientRefusal> recipient_refusal(const MessageState& m, const std::string& address,
                                         const ConsentLookup& consent);

}  // namespace cllavio::core
