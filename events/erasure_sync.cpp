#include "events/erasure_sync.hpp"

#include <nlohmann/json.hpp>

#include "policy/consent.hpp"
#include "store/keys.hpp"

namespace cllavio::events {

std::optional<ErasurePage> parse_erasure_page(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("erasures") || !j["erasures"].is_array() || !j.contains("cursor") ||
      !j["cursor"].is_string())
    return std::nullopt;
  ErasurePage page;
  if (j.contains("more")) {
    if (!j["more"].is_boolean()) return std::nullopt;
    page.more = j["more"].get<bool>();
  }
  page.cursor = j["cursor"].get<std::string>();
  for (const auto& e : j["erasures"]) {
    auto field = [&](const char* name) -> const std::string* {
      return e.is_object() && e.contains(name) ? e[name].get_ptr<const std::string*>() : nullptr;
    };
    const std::string* address = field("address");
    std::string addr = address ? policy::consent_address(*address) : std::string();
    if (addr.empty()) {
      ++page.skipped;
      continue;
    }
    // id and requested_at are informative: a request without them is still applied
    // (skipping it would keep data the subject asked to erase).
    const std::string *id = field("id"), *at = field("requested_at");
    page.requests.push_back({id ? id->substr(0, 128) : std::string(), std::move(addr), at ? at->substr(0, 64) : std::string()});
  }
  return page;
}

std::string ErasureFeed::path(const std::string& org, const std::string& cursor) const {
  return "/v1/erasures?org=" + url_escape(org) + "&cursor=" + url_escape(cursor);
}

std::string ErasureFeed::cursor(const store::Db& db, const std::string& org) const {
  return db.read()->meta.get(store::keys::erasure_cursor(org)).value_or("");
}

std::optional<PageHead> ErasureFeed::read(std::string_view body, std::int64_t) {
  requests_.clear();
  auto page = parse_erasure_page(body);
  if (!page) return std::nullopt;
  requests_ = std::move(page->requests);
  return PageHead{requests_.size(), page->skipped, std::move(page->cursor), page->more};
}

std::size_t ErasureFeed::apply(store::Tables& t, const std::string& org, const std::string& cursor) {
  for (const auto& r : requests_) {
    store::EraseRequest req;
    req.address = r.address;
    req.orgs = {org};
    req.actor = "api";
    req.source = "api";
    erase_(t, req);
  }
  t.meta.put(store::keys::erasure_cursor(org), cursor);
  return requests_.size();
}

}  // namespace cllavio::events
