#include "events/api_poller.hpp"

#include <chrono>

#include "events/forwarder.hpp"
#include "events/signing.hpp"

namespace cllavio::events {

ApiPoller::ApiPoller(store::Db& db, std::unique_ptr<Transport> transport, const core::Logger& log)
    : db_(db), transport_(std::move(transport)), log_(log), clock_(unix_seconds) {}

ApiPoller::~ApiPoller() { worker_.stop(); }

std::size_t ApiPoller::poll_org(ApiFeed& feed, const conf::ApiSettings& api, const std::string& org,
                                const std::string& key) {
  const std::string name = feed.name() + " for " + org + ": ";
  std::size_t applied = 0;
  for (int pages = 0; pages < 100; ++pages) {  // page after page while the API has more
    std::string cursor = feed.cursor(db_, org);
    const std::int64_t now_s = clock_();
    HttpResult r = transport_->get(api.url + feed.path(org, cursor),
                                   {"Authorization: Bearer " + key, "Accept: application/json",
                                    "Cllavio-Signature: " + signature(api.signing_secret, now_s, "")},
                                   api);
    if (r.status != 200) {
      log_.warning(name + describe(r));
      break;
    }
    auto page = feed.read(r.body, now_s);
    if (!page) {
      log_.warning(name + "unreadable answer");
      break;
    }
    if (page->skipped > 0) log_.warning(name + "skipped " + std::to_string(page->skipped) + " " + feed.skipped_text());
    const bool moved = page->cursor != cursor;
    if (page->entries == 0 && !moved) break;
    std::size_t changed = 0;
    db_.write([&](store::Tables& t) { changed = feed.apply(t, org, page->cursor); });
    applied += changed;
    if (changed > 0) {
      log_.notice(name + std::to_string(changed) + " " + feed.applied_text());
      if (on_applied_) on_applied_();
    }
    bool more = page->more.value_or(page->entries > 0 || page->skipped > 0);
    if (!more || !moved) break;  // a page that did not move the cursor would come again
  }
  return applied;
}

std::size_t ApiPoller::poll(const conf::ApiSettings& api) {
  std::size_t applied = 0;
  if (api.url.empty()) return 0;
  for (const auto& feed : feeds_)
    for (const auto& [org, key] : api.org_keys) {
      try {
        applied += poll_org(*feed, api, org, key);
      } catch (const std::exception& e) {
        log_.warning(feed->name() + " for " + org + ": " + std::string(e.what()).substr(0, 200));
      }
    }
  return applied;
}

void ApiPoller::start(std::function<std::shared_ptr<const conf::Config>()> config) {
  config_ = std::move(config);
  worker_.start([this] { run(); });
}

void ApiPoller::run() {
  using clock = std::chrono::steady_clock;
  auto next_poll = clock::now();
  for (;;) {
    auto cfg = config_();
    bool on = cfg->api.consent_poll_s > 0 && !cfg->api.url.empty();
    if (on && clock::now() >= next_poll) {
      next_poll = clock::now() + std::chrono::seconds(cfg->api.consent_poll_s);
      poll(cfg->api);
    }
    // Until the next poll, but look at the configuration again at least every second
    // (a reload may turn the sync on or change its interval).
    auto second = clock::now() + std::chrono::seconds(1);
    worker_.sleep_until(on ? std::min(next_poll, second) : second);
    if (worker_.stopping()) return;
  }
}

}  // namespace cllavio::events
