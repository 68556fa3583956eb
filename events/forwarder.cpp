#include "events/forwarder.hpp"

#include <algorithm>
#include <chrono>
#include <random>

#include "events/signing.hpp"

namespace cllavio::events {

namespace {

// Worth the same batch again later. Authentication answers (401, 403: a rotated key, a
// clock that drifted, a wrong secret) say nothing about one event: they must not send
// the queue to the dead-letter table, so they are retried too (and logged).
bool retryable(long status) {
  return status == 0 || status == 401 || status == 403 || status == 408 || status == 429 || status >= 500;
}

// Exponential backoff with jitter: 1 s, 2 s, 4 s ... 5 min, each between half and all of
// it; never shorter than what the server asked for (at most an hour).
class Backoff {
 public:
  double next(int retry_after_s) {
    ++failures_;
    double cap = std::min(300.0, static_cast<double>(1u << std::min(failures_ - 1, 9)));
    double wait = std::uniform_real_distribution<double>(cap / 2, cap)(rng_);
    if (retry_after_s >= 0) wait = std::min(3600.0, std::max(wait, static_cast<double>(retry_after_s)));
    return wait;
  }
  bool failing() const { return failures_ > 0; }
  void reset() { failures_ = 0; }

 private:
  int failures_ = 0;
  std::mt19937 rng_{std::random_device{}()};
};

}  // namespace

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Forwarder::Forwarder(store::Db& db, std::unique_ptr<Transport> transport, const core::Logger& log)
    : db_(db), transport_(std::move(transport)), log_(log), clock_(unix_seconds) {}

Forwarder::~Forwarder() { worker_.stop(); }

SendReport Forwarder::deliver(const conf::ApiSettings& api, const std::string& key,
                              std::vector<store::OutboxItem> items) {
  const std::int64_t now_s = clock_();  // a long drain must not send stale signatures
  SendReport rep;
  std::string body = batch_body(items);
  std::vector<std::string> headers = {"Content-Type: application/json", "Authorization: Bearer " + key,
                                      "Cllavio-Signature: " + signature(api.signing_secret, now_s, body),
                                      "Idempotency-Key: " + idempotency_key(items)};
  HttpResult r = transport_->post(api.url + "/v1/events", headers, body, api);
  ++rep.batches;
  if (r.status >= 200 && r.status < 300) {
    db_.write([&](store::Tables& t) { t.outbox.ack(items); });
    rep.delivered = items.size();
    return rep;
  }
  rep.error = describe(r);
  if (retryable(r.status)) {
    rep.retry = true;
    rep.retry_after_s = r.retry_after_s;
    return rep;
  }
  // The server refuses something in this batch: isolate it.
  if (items.size() == 1) {
    db_.write([&](store::Tables& t) { t.outbox.bury(items[0], rep.error); });
    rep.buried = 1;
    log_.error("outbox: event refused by the API, moved to the dead-letter table (" + rep.error + ")");
    return rep;
  }
  std::vector<store::OutboxItem> second(items.begin() + static_cast<std::ptrdiff_t>(items.size() / 2), items.end());
  items.resize(items.size() / 2);
  for (auto* half : {&items, &second}) {
    SendReport h = deliver(api, key, std::move(*half));
    rep.delivered += h.delivered;
    rep.buried += h.buried;
    rep.batches += h.batches;
    if (!h.error.empty()) rep.error = h.error;
    if (h.retry) {
      rep.retry = true;
      rep.retry_after_s = h.retry_after_s;
      break;  // keep the org's order: nothing after a batch that must be retried
    }
  }
  return rep;
}

SendReport Forwarder::send_pending(const conf::ApiSettings& api) {
  SendReport total;
  if (api.url.empty()) return total;
  for (const std::string& org : db_.read()->outbox.orgs()) {
    auto key = api.org_keys.find(org);
    if (key == api.org_keys.end()) {
      if (!warned_no_key_[org])
        log_.warning("outbox: no API key for org " + org + " ([api.org_keys] in the secrets file); its events wait");
      warned_no_key_[org] = true;
      continue;
    }
    for (;;) {
      auto items = db_.read()->outbox.peek(org, static_cast<std::size_t>(api.batch_max),
                                           static_cast<std::size_t>(api.batch_max_kb) * 1024);
      if (items.empty()) break;
      SendReport r = deliver(api, key->second, std::move(items));
      total.delivered += r.delivered;
      total.buried += r.buried;
      total.batches += r.batches;
      if (!r.error.empty()) total.error = r.error;
      if (r.retry) {
        total.retry = true;
        total.retry_after_s = r.retry_after_s;
        break;
      }
    }
  }
  return total;
}

void Forwarder::start(std::function<std::shared_ptr<const conf::Config>()> config) {
  config_ = std::move(config);
  worker_.start([this] { run(); });
}

void Forwarder::note_error(const std::string& error) {
  try {
    db_.write([&](store::Tables& t) { t.outbox.set_error(error); });
  } catch (...) {
  }
}

void Forwarder::run() {
  using clock = std::chrono::steady_clock;
  Backoff backoff;
  auto next_try = clock::now();
  std::string last_error;
  for (;;) {
    // Woken by new events, or every second to look again (backoff ends, queued events
    // from before a start, a configuration that now has an API).
    worker_.sleep_until(std::max(next_try, clock::now() + std::chrono::seconds(1)),
                        [&](bool woken) { return woken && clock::now() >= next_try; });
    if (worker_.stopping()) return;
    int linger_ms = config_()->api.linger_ms;
    if (worker_.take_wake() && linger_ms > 0) {  // let a batch fill up
      worker_.sleep_until(clock::now() + std::chrono::milliseconds(linger_ms));
      if (worker_.stopping()) return;
    }
    auto cfg = config_();  // a reload during the wait applies to this send
    if (clock::now() < next_try || cfg->api.url.empty()) continue;
    SendReport r;
    try {
      r = send_pending(cfg->api);
    } catch (const std::exception& e) {
      r.retry = true;
      r.error = std::string("outbox: ") + e.what();
    }
    if (r.retry) {
      double wait = backoff.next(r.retry_after_s);
      next_try = clock::now() + std::chrono::milliseconds(static_cast<long>(wait * 1000));
      if (r.error != last_error)
        log_.warning("outbox: API unavailable (" + r.error + "); retrying in " + std::to_string(wait) + " s");
      last_error = r.error;
      note_error(r.error);
    } else {
      if (backoff.failing()) log_.notice("outbox: API reachable again; delivered " + std::to_string(r.delivered));
      if (backoff.failing() || !last_error.empty()) note_error("");
      backoff.reset();
      last_error.clear();
      next_try = clock::now();
      if (r.delivered > 0) worker_.wake();  // more may have arrived meanwhile
    }
  }
}

}  // namespace cllavio::events
