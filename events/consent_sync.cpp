#include "events/consent_sync.hpp"

#include <chrono>

#include <nlohmann/json.hpp>

#include "events/forwarder.hpp"
#include "policy/consent.hpp"
#include "store/message_record.hpp"

namespace cllavio::events {

std::optional<ConsentPage> parse_consent_page(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("changes") || !j["changes"].is_array() || !j.contains("cursor") ||
      !j["cursor"].is_string())
    return std::nullopt;
  ConsentPage page;
  page.cursor = j["cursor"].get<std::string>();
  for (const auto& c : j["changes"]) {
    auto field = [&](const char* name) -> const std::string* {
      return c.is_object() && c.contains(name) ? c[name].get_ptr<const std::string*>() : nullptr;
    };
    const std::string *address = field("address"), *state = field("state");
    std::string addr = address ? policy::consent_address(*address) : std::string();
    auto st = state ? policy::parse_consent_state(*state) : std::nullopt;
    if (addr.empty() || !st) {
      ++page.skipped;
      continue;
    }
    const std::string *at = field("at"), *source = field("source");
    // Without a readable time the change counts as happening now (rather than as older
    // than anything stored, which would lose it while the cursor moves on): 0 here.
    std::int64_t when = at ? store::parse_time_us(*at).value_or(0) : 0;
    page.changes.push_back({addr, policy::Consent{*st, when, source ? source->substr(0, 32) : std::string("api")}});
  }
  return page;
}

ConsentSync::ConsentSync(store::Db& db, std::unique_ptr<Transport> transport, const core::Logger& log)
    : db_(db), transport_(std::move(transport)), log_(log), clock_(unix_seconds) {}

ConsentSync::~ConsentSync() { worker_.stop(); }

std::size_t ConsentSync::poll_org(const conf::ApiSettings& api, const std::string& org, const std::string& key) {
  std::size_t applied = 0;
  for (int pages = 0; pages < 100; ++pages) {  // page after page while the API has more
    std::string cursor = db_.read()->consent.cursor(org);
    HttpResult r = transport_->get(api.url + "/v1/orgs/" + url_escape(org) + "/consent?cursor=" + url_escape(cursor),
                                   {"Authorization: Bearer " + key, "Accept: application/json"}, api);
    if (r.status != 200) {
      log_.warning("consent sync for " + org + ": " + describe(r));
      break;
    }
    auto page = parse_consent_page(r.body);
    if (!page) {
      log_.warning("consent sync for " + org + ": unreadable answer");
      break;
    }
    if (page->skipped > 0)
      log_.warning("consent sync for " + org + ": skipped " + std::to_string(page->skipped) +
                   " change(s) with a bad address or state");
    auto& rows = page->changes;
    for (auto& row : rows)
      if (row.consent.at_us == 0) row.consent.at_us = clock_() * 1000000;  // no time given: now
    if (rows.empty() && page->cursor == cursor) break;
    store::ConsentTable::ImportResult res;
    db_.write([&](store::Tables& t) { res = t.consent.import(org, rows, "api", "consent.api", &page->cursor); });
    applied += res.changed;
    if (res.changed > 0) log_.notice("consent sync for " + org + ": " + std::to_string(res.changed) + " change(s) applied");
    if (rows.empty() && page->skipped == 0) break;  // the cursor moved, nothing more to fetch
  }
  return applied;
}

std::size_t ConsentSync::poll(const conf::ApiSettings& api) {
  std::size_t applied = 0;
  if (api.url.empty()) return 0;
  for (const auto& [org, key] : api.org_keys) {
    try {
      applied += poll_org(api, org, key);
    } catch (const std::exception& e) {
      log_.warning("consent sync for " + org + ": " + std::string(e.what()).substr(0, 200));
    }
  }
  return applied;
}

void ConsentSync::start(std::function<std::shared_ptr<const conf::Config>()> config) {
  config_ = std::move(config);
  worker_.start([this] { run(); });
}

void ConsentSync::run() {
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
