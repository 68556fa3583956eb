// The forwarder: a thread that sends the outbox to the Cllavio API (docs/api.md),
// never a milter callback.
//
// Per org, in order, batches of up to api.batch_max events (api.batch_max_kb bytes),
// waiting at most api.linger_ms for more; at least once (an event leaves the outbox
// only after a 2xx). Each request carries the org's Bearer key, the HMAC signature of
// its body (made when it is sent) and an Idempotency-Key derived from its event ids
// (events/signing.hpp). 429, 5xx, 401/403 and network errors: the same batch is
// retried with exponential backoff and jitter (1 s .. 5 min), honouring Retry-After.
// Other 4xx: the batch is split in halves until the refused event is isolated, and
// that event goes to the dead-letter table. The HTTP side is a Transport, so the logic
// is unit-tested without a network. Consent coming back from the API is another
// component (events/consent_sync.hpp) with its own thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "core/log.hpp"
#include "events/transport.hpp"
#include "core/worker.hpp"
#include "store/db.hpp"

namespace cllavio::events {

struct SendReport {
  std::size_t delivered = 0, buried = 0, batches = 0;
  bool retry = false;          // a batch must be retried later
  int retry_after_s = -1;      // the server's wish, when it said
  std::string error;           // the last failure, "" when none
};

class Forwarder {
 public:
  Forwarder(store::Db& db, std::unique_ptr<Transport> transport, const core::Logger& log);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Sends everything queued now, org by org; stops an org at its first retryable failure.
  SendReport send_pending(const conf::ApiSettings& api);
  void set_clock(std::function<std::int64_t()> unix_s) { clock_ = std::move(unix_s); }

  // The background thread: sends when woken (new events) or when a backoff ends.
  void start(std::function<std::shared_ptr<const conf::Config>()> config);
  void stop() { worker_.stop(); }
  void wake() { worker_.wake(); }

 private:
  SendReport deliver(const conf::ApiSettings& api, const std::string& key, std::vector<store::OutboxItem> items);
  void run();
  void note_error(const std::string& error);

  store::Db& db_;
  std::unique_ptr<Transport> transport_;
  const core::Logger& log_;
  std::function<std::int64_t()> clock_;  // unix seconds
  std::function<std::shared_ptr<const conf::Config>()> config_;
  std::map<std::string, bool> warned_no_key_;
  core::Worker worker_;  // last: its thread stops before the rest goes
};

// Seconds since the epoch, from the system clock.
std::int64_t unix_seconds();

}  // namespace cllavio::events
