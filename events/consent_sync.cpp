#include "events/consent_sync.hpp"

#include <nlohmann/json.hpp>

#include "policy/consent.hpp"
#include "store/message_record.hpp"

namespace cllavio::events {

std::optional<ConsentPage> parse_consent_page(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("changes") || !j["changes"].is_array() || !j.contains("cursor") ||
      !j["cursor"].is_string())
    return std::nullopt;
  ConsentPage page;
  if (j.contains("more")) {
    if (!j["more"].is_boolean()) return std::nullopt;
    page.more = j["more"].get<bool>();
  }
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

std::string ConsentFeed::path(const std::string& org, const std::string& cursor) const {
  return "/v1/orgs/" + url_escape(org) + "/consent?cursor=" + url_escape(cursor);
}

std::string ConsentFeed::cursor(const store::Db& db, const std::string& org) const {
  return db.read()->consent.cursor(org);
}

std::optional<PageHead> ConsentFeed::read(std::string_view body, std::int64_t now_s) {
  rows_.clear();
  auto page = parse_consent_page(body);
  if (!page) return std::nullopt;
  rows_ = std::move(page->changes);
  for (auto& row : rows_)
    if (row.consent.at_us == 0) row.consent.at_us = now_s * 1000000;  // no time given: now
  return PageHead{rows_.size(), page->skipped, std::move(page->cursor), page->more};
}

std::size_t ConsentFeed::apply(store::Tables& t, const std::string& org, const std::string& cursor) {
  return t.consent.import(org, rows_, "api", "consent.api", &cursor).changed;
}

}  // namespace cllavio::events
