// Consent sync: unsubscribes and consent given at Cllavio, brought back into the store.
//
// A feed of the API poller (events/api_poller.hpp: its thread, paging, cursor and error
// handling): GET /v1/orgs/{org}/consent?cursor=C for every org with a key; the changes
// are applied (newer states win, audited as "api") and the cursor is persisted in the
// same transaction (ConsentTable::import), so a restart continues where it left off and
// never applies a page twice.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/api_poller.hpp"

namespace cllavio::events {

// A page of GET /v1/orgs/{org}/consent: changes with a readable address and state, how
// many were not, the next cursor and "more" when given; nullopt when the body is not
// that JSON ("more" present but not a boolean included).
struct ConsentPage {
  std::vector<store::ConsentTable::ImportRow> changes;
  std::size_t skipped = 0;
  std::string cursor;
  std::optional<bool> more;
};
std::optional<ConsentPage> parse_consent_page(std::string_view body);

class ConsentFeed : public ApiFeed {
 public:
  std::string name() const override { return "consent sync"; }
  std::string path(const std::string& org, const std::string& cursor) const override;
  std::string cursor(const store::Db& db, const std::string& org) const override;
  std::optional<PageHead> read(std::string_view body, std::int64_t now_s) override;
  std::size_t apply(store::Tables& t, const std::string& org, const std::string& cursor) override;
  std::string skipped_text() const override { return "change(s) with a bad address or state"; }
  std::string applied_text() const override { return "change(s) applied"; }

 private:
  std::vector<store::ConsentTable::ImportRow> rows_;  // of the page read last
};

// The poller with the consent feed alone (more feeds may be added before start()).
class ConsentSync : public ApiPoller {
 public:
  ConsentSync(store::Db& db, std::unique_ptr<Transport> transport, const core::Logger& log)
      : ApiPoller(db, std::move(transport), log) {
    add(std::make_unique<ConsentFeed>());
  }
};

}  // namespace cllavio::events
