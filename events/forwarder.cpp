#include "events/forwarder.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <syslog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

#include "policy/consent.hpp"

namespace cllavio::events {

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* d = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(d[p[i] >> 4]);
    out.push_back(d[p[i] & 15]);
  }
  return out;
}

// Stable across retries of the same batch: a digest of its event ids.
std::string idempotency_key(const std::vector<store::OutboxItem>& items) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const auto& it : items) {
    auto j = nlohmann::json::parse(it.json, nullptr, false);
    std::string id = j.is_object() ? j.value("id", std::to_string(it.seq)) : std::to_string(it.seq);
    EVP_DigestUpdate(ctx, id.data(), id.size());
    EVP_DigestUpdate(ctx, "\n", 1);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return hex(md, 16);
}

std::string batch_body(const std::vector<store::OutboxItem>& items) {
  std::string body = "{\"events\":[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) body.push_back(',');
    body += items[i].json;
  }
  return body + "]}";
}

// Worth the same batch again later. Authentication answers (401, 403: a rotated key, a
// clock that drifted, a wrong secret) say nothing about one event: they must not send
// the queue to the dead-letter table, so they are retried too (and logged).
bool retryable(long status) {
  return status == 0 || status == 401 || status == 403 || status == 408 || status == 429 || status >= 500;
}

std::string describe(const HttpResult& r) {
  if (r.status == 0) return "no answer: " + r.error;
  std::string b = r.body.substr(0, 200);
  for (char& c : b)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return "HTTP " + std::to_string(r.status) + (b.empty() ? "" : ": " + b);
}

std::string url_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

}  // namespace

std::optional<ConsentPage> parse_consent_page(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("changes") || !j["changes"].is_array() || !j.contains("cursor") ||
      !j["cursor"].is_string())
    return std::nullopt;
  ConsentPage page;
  page.cursor = j["cursor"].get<std::string>();
  for (const auto& c : j["changes"]) {
    const auto* address = c.is_object() && c.contains("address") ? c["address"].get_ptr<const std::string*>() : nullptr;
    const auto* state = c.is_object() && c.contains("state") ? c["state"].get_ptr<const std::string*>() : nullptr;
    std::string addr = address ? policy::consent_address(*address) : std::string();
    auto st = state ? policy::parse_consent_state(*state) : std::nullopt;
    if (addr.empty() || !st) {
      ++page.skipped;
      continue;
    }
    const auto* at = c.contains("at") ? c["at"].get_ptr<const std::string*>() : nullptr;
    const auto* source = c.contains("source") ? c["source"].get_ptr<const std::string*>() : nullptr;
    // Without a readable time the change counts as happening now (rather than as older
    // than anything stored, which would lose it while the cursor moves on).
    std::int64_t when = at ? store::parse_time_us(*at).value_or(0) : 0;
    page.changes.push_back({addr, policy::Consent{*st, when, source ? source->substr(0, 32) : std::string("api")}});
  }
  return page;
}

int parse_retry_after(std::string_view value, std::int64_t now_s) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\r' || value.back() == '\n')) value.remove_suffix(1);
  if (value.empty()) return -1;
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    if (value.size() > 6) return 86400;
    return std::min(86400, std::stoi(std::string(value)));
  }
  std::tm tm{};
  std::string v(value);
  const char* end = strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);  // IMF-fixdate
  if (end == nullptr || *end != '\0') return -1;
  std::int64_t when = static_cast<std::int64_t>(timegm(&tm));
  return static_cast<int>(std::clamp<std::int64_t>(when - now_s, 0, 86400));
}

std::size_t Forwarder::poll_consent(const conf::ApiSettings& api, store::PolicyStore& consent) {
  std::size_t applied = 0;
  if (api.url.empty()) return 0;
  for (const auto& [org, key] : api.org_keys) {
    // Page after page while the API has more (bounded per poll).
    for (int pages = 0; pages < 100; ++pages) {
      try {
        std::string cursor = consent.consent_cursor(org);
        HttpResult r = transport_->get(api.url + "/v1/orgs/" + url_escape(org) + "/consent?cursor=" + url_escape(cursor),
                                       {"Authorization: Bearer " + key, "Accept: application/json"}, api);
        if (r.status != 200) {
          log_(LOG_WARNING, "consent sync for " + org + ": " + describe(r));
          break;
        }
        auto page = parse_consent_page(r.body);
        if (!page) {
          log_(LOG_WARNING, "consent sync for " + org + ": unreadable answer");
          break;
        }
        if (page->skipped > 0)
          log_(LOG_WARNING, "consent sync for " + org + ": skipped " + std::to_string(page->skipped) +
                                " change(s) with a bad address or state");
        auto& rows = page->changes;
        for (auto& row : rows)
          if (row.consent.at_us == 0) row.consent.at_us = clock_() * 1000000;  // no time given: now
        const std::string& next = page->cursor;
        if (rows.empty() && next == cursor) break;
        auto res = consent.import_consent(org, rows, "api", "consent.api", &next);
        applied += res.changed;
        if (res.changed > 0)
          log_(LOG_NOTICE, "consent sync for " + org + ": " + std::to_string(res.changed) + " change(s) applied");
        if (rows.empty() && page->skipped == 0) break;  // the cursor moved, nothing more to fetch
      } catch (const std::exception& e) {
        log_(LOG_WARNING, "consent sync for " + org + ": " + std::string(e.what()).substr(0, 200));
        break;
      }
    }
  }
  return applied;
}

std::string signature(const std::string& secret, std::int64_t t, const std::string& body) {
  std::string msg = std::to_string(t) + "." + body;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), md, &len);
  return "t=" + std::to_string(t) + ",v1=" + hex(md, len);
}

Forwarder::Forwarder(store::Outbox& outbox, std::unique_ptr<Transport> transport, Log log)
    : outbox_(outbox), transport_(std::move(transport)), log_(std::move(log)), clock_([] {
        return static_cast<std::int64_t>(
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count());
      }) {}

Forwarder::~Forwarder() { stop(); }

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
    outbox_.ack(items);
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
    outbox_.bury(items[0], rep.error);
    rep.buried = 1;
    log_(LOG_ERR, "outbox: event refused by the API, moved to the dead-letter table (" + rep.error + ")");
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
  for (const std::string& org : outbox_.orgs()) {
    auto key = api.org_keys.find(org);
    if (key == api.org_keys.end()) {
      if (!warned_no_key_[org])
        log_(LOG_WARNING, "outbox: no API key for org " + org + " ([api.org_keys] in the secrets file); its events wait");
      warned_no_key_[org] = true;
      continue;
    }
    for (;;) {
      auto items = outbox_.peek(org, static_cast<std::size_t>(api.batch_max),
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
  thread_ = std::thread([this] { run(); });
}

void Forwarder::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Forwarder::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void Forwarder::run() {
  std::mt19937 rng(std::random_device{}());
  auto next_try = std::chrono::steady_clock::now();
  auto next_poll = std::chrono::steady_clock::now();
  std::string last_error;
  for (;;) {
    auto cfg = config_();
    if (consent_ != nullptr && cfg->api.consent_poll_s > 0 && !cfg->api.url.empty() &&
        std::chrono::steady_clock::now() >= next_poll) {
      next_poll = std::chrono::steady_clock::now() + std::chrono::seconds(cfg->api.consent_poll_s);
      poll_consent(cfg->api, *consent_);
    }
    {
      std::unique_lock lock(mu_);
      // Woken by new events, or every second to look again (backoff ends, queued events
      // from before a start, a configuration that now has an API).
      // (At most until the next consent poll: a failing events endpoint must not stop the
      // unsubscribes coming back.)
      auto until = std::max(next_try, std::chrono::steady_clock::now() + std::chrono::seconds(1));
      if (consent_ != nullptr && cfg->api.consent_poll_s > 0 && !cfg->api.url.empty())
        until = std::min(until, std::max(next_poll, std::chrono::steady_clock::now() + std::chrono::milliseconds(100)));
      cv_.wait_until(lock, until,
                     [&] { return stopping_ || (woken_ && std::chrono::steady_clock::now() >= next_try); });
      if (stopping_) return;
      bool was_woken = woken_;
      woken_ = false;
      if (was_woken && cfg->api.linger_ms > 0) {  // let a batch fill up
        cv_.wait_for(lock, std::chrono::milliseconds(cfg->api.linger_ms), [&] { return stopping_; });
        if (stopping_) return;
      }
    }
    cfg = config_();  // a reload during the wait applies to this send
    if (std::chrono::steady_clock::now() < next_try || cfg->api.url.empty()) continue;
    SendReport r;
    try {
      r = send_pending(cfg->api);
    } catch (const std::exception& e) {
      r.retry = true;
      r.error = std::string("outbox: ") + e.what();
    }
    if (r.retry) {
      ++failures_;
      // Exponential backoff with jitter: 1 s, 2 s, 4 s ... 5 min, each between half and all of it.
      double cap = std::min(300.0, static_cast<double>(1u << std::min(failures_ - 1, 9)));
      double wait = std::uniform_real_distribution<double>(cap / 2, cap)(rng);
      if (r.retry_after_s >= 0) wait = std::min(3600.0, std::max(wait, static_cast<double>(r.retry_after_s)));
      next_try = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long>(wait * 1000));
      if (r.error != last_error)
        log_(LOG_WARNING, "outbox: API unavailable (" + r.error + "); retrying in " + std::to_string(wait) + " s");
      last_error = r.error;
      try {
        outbox_.set_error(r.error);
      } catch (...) {
      }
    } else {
      if (failures_ > 0) log_(LOG_NOTICE, "outbox: API reachable again; delivered " + std::to_string(r.delivered));
      if (failures_ > 0 || !last_error.empty()) {
        try {
          outbox_.set_error("");
        } catch (...) {
        }
      }
      failures_ = 0;
      last_error.clear();
      next_try = std::chrono::steady_clock::now();
      if (r.delivered > 0) {  // more may have arrived meanwhile
        std::lock_guard lock(mu_);
        woken_ = true;
      }
    }
  }
}

}  // namespace cllavio::events
