// Consent sync: unsubscribes and consent given at Cllavio, brought back into the store.
//
// Its own thread, beside the forwarder: every api.consent_poll_s it asks
// GET /v1/orgs/{org}/consent?cursor=C for every org with a key, page after page while
// the API has more (bounded per poll), and applies the changes (newer states win,
// audited as "api"); the cursor is persisted in the same transaction as the changes,
// so a restart continues where it left off and never applies a page twice. Errors are
// logged and the next poll tries again; a failing events endpoint does not delay it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"
#include "core/log.hpp"
#include "events/transport.hpp"
#include "core/worker.hpp"
#include "store/db.hpp"

namespace cllavio::events {

// A page of GET /v1/orgs/{org}/consent: changes with a readable address and state, how
// many were not, and the next cursor; nullopt when the body is not that JSON.
struct ConsentPage {
  std::vector<store::ConsentTable::ImportRow> changes;
  std::size_t skipped = 0;
  std::string cursor;
};
std::optional<ConsentPage> parse_consent_page(std::string_view body);

class ConsentSync {
 public:
  ConsentSync(store::Db& db, std::unique_ptr<Transport> transport, const core::Logger& log);
  ~ConsentSync();
  ConsentSync(const ConsentSync&) = delete;
  ConsentSync& operator=(const ConsentSync&) = delete;

  // One poll of every org with a key. Returns the number of changes applied; throws
  // nothing (errors are logged).
  std::size_t poll(const conf::ApiSettings& api);
  void set_clock(std::function<std::int64_t()> unix_s) { clock_ = std::move(unix_s); }

  void start(std::function<std::shared_ptr<const conf::Config>()> config);
  void stop() { worker_.stop(); }

 private:
  std::size_t poll_org(const conf::ApiSettings& api, const std::string& org, const std::string& key);
  void run();

  store::Db& db_;
  std::unique_ptr<Transport> transport_;
  const core::Logger& log_;
  std::function<std::int64_t()> clock_;  // unix seconds
  std::function<std::shared_ptr<const conf::Config>()> config_;
  core::Worker worker_;  // last: its thread stops before the rest goes
};

}  // namespace cllavio::events
