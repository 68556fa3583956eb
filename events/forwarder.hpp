// The forwarder: a thread that sends the outbox to the Cllavio API (docs/api.md),
// never a milter callback.
//
// Per org, in order, batches of up to api.batch_max events (api.batch_max_kb bytes),
// waiting at most api.linger_ms for more; at least once (an event leaves the outbox
// only after a 2xx). Each request carries the org's Bearer key, the HMAC signature of
// its body and an Idempotency-Key derived from its event ids. 429, 5xx and network
// errors: the same batch is retried with exponential backoff and jitter (1 s .. 5 min),
// honouring Retry-After. Other 4xx: the batch is split in halves until the refused
// event is isolated, and that event goes to the dead-letter table. The HTTP side is
// an interface (Transport) so the logic is unit-tested without a network.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <string>
#include <thread>
#include <vector>

#include "conf/config.hpp"
#include "store/outbox.hpp"
#include "store/policy_store.hpp"

namespace cllavio::events {

struct HttpResult {
  long status = 0;          // 0: no HTTP answer (connect, TLS, timeout)
  std::string body;
  std::string error;        // transport error text when status is 0
  int retry_after_s = -1;   // from Retry-After, when given
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual HttpResult post(const std::string& url, const std::vector<std::string>& headers, const std::string& body,
                          const conf::ApiSettings& api) = 0;
  virtual HttpResult get(const std::string& url, const std::vector<std::string>& headers,
                         const conf::ApiSettings& api) = 0;
};

// libcurl: one handle kept for keep-alive; TLS peer and host verification always on.
std::unique_ptr<Transport> make_curl_transport();

// A page of the consent sync (GET /v1/orgs/{org}/consent): changes with a readable
// address and state, how many were not, and the next cursor; nullopt when the body is
// not that JSON.
struct ConsentPage {
  std::vector<store::PolicyStore::ImportRow> changes;
  std::size_t skipped = 0;
  std::string cursor;
};
std::optional<ConsentPage> parse_consent_page(std::string_view body);

// Retry-After: seconds, or an HTTP date (seconds from now_s); -1 when unreadable.
int parse_retry_after(std::string_view value, std::int64_t now_s);

// "t=<t>,v1=<hex HMAC-SHA256(secret, t + "." + body)>"
std::string signature(const std::string& secret, std::int64_t t, const std::string& body);

struct SendReport {
  std::size_t delivered = 0, buried = 0, batches = 0;
  bool retry = false;          // a batch must be retried later
  int retry_after_s = -1;      // the server's wish, when it said
  std::string error;           // the last failure, "" when none
};

class Forwarder {
 public:
  using Log = std::function<void(int level, const std::string& line)>;  // syslog priorities
  Forwarder(store::Outbox& outbox, std::unique_ptr<Transport> transport, Log log);
  ~Forwarder();

  // Sends everything queued now, org by org; stops an org at its first retryable failure.
  // Each request is signed with the clock's time when it is sent.
  SendReport send_pending(const conf::ApiSettings& api);
  void set_clock(std::function<std::int64_t()> unix_s) { clock_ = std::move(unix_s); }

  // Consent sync: GET /v1/orgs/{org}/consent?cursor=C for every org with a key, applied
  // to the consent store (newer states win, audited as "api"), cursor persisted with the
  // changes. Returns the number of changes applied; throws nothing (errors are logged).
  std::size_t poll_consent(const conf::ApiSettings& api, store::PolicyStore& consent);
  void set_consent_store(store::PolicyStore* consent) { consent_ = consent; }

  // The background thread: sends when woken (new events) or when a backoff ends.
  void start(std::function<std::shared_ptr<const conf::Config>()> config);
  void stop();
  void wake();

 private:
  SendReport deliver(const conf::ApiSettings& api, const std::string& key, std::vector<store::OutboxItem> items);
  void run();

  store::Outbox& outbox_;
  store::PolicyStore* consent_ = nullptr;
  std::unique_ptr<Transport> transport_;
  Log log_;
  std::function<std::int64_t()> clock_;  // unix seconds
  std::function<std::shared_ptr<const conf::Config>()> config_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stopping_ = false;
  int failures_ = 0;
  std::map<std::string, bool> warned_no_key_;
};

}  // namespace cllavio::events
