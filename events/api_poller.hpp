// Polling the Cllavio API for what it has for us: feeds read per org with the org's key,
// page after page, each page applied with its cursor in one write transaction.
//
// Its own thread, beside the forwarder: every api.consent_poll_s it asks every feed
// (consent changes, erasure requests) for every org with a key. Per org and feed: GET
// {api.url}{feed.path(org, cursor)} with "Authorization: Bearer <org key>" and
// Cllavio-Signature (over the empty body of a GET), then
// - not 200, or a body the feed cannot read: logged, the cursor stays, the next feed/org;
// - a page without entries that leaves the cursor where it was: nothing is written;
// - otherwise the feed applies the page's entries and stores the page's cursor in one
//   Db::write, so a restart never applies a page twice nor skips one;
// - the next page is asked for at once when the page says "more": true, or (without
//   "more") when it had entries, good or skipped; never after a page that did not move
//   the cursor, and at most 100 pages per org and feed in one poll.
// Errors (HTTP, unreadable pages, a throwing apply) are logged and the next poll tries
// again; a failing events endpoint does not delay it.
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
#include "core/worker.hpp"
#include "events/transport.hpp"
#include "store/db.hpp"

namespace cllavio::events {

// What a feed read from one page (the entries themselves stay inside the feed until
// apply()).
struct PageHead {
  std::size_t entries = 0;    // readable entries, to apply
  std::size_t skipped = 0;    // malformed entries, left out
  std::string cursor;         // the page's next cursor
  std::optional<bool> more;   // "more", when the page says
};

// One GET endpoint of the API. Used by one thread: read() then apply() for each page.
class ApiFeed {
 public:
  virtual ~ApiFeed() = default;
  virtual std::string name() const = 0;  // "consent sync": the start of its log lines
  // The request after api.url ("/v1/erasures?org=acme&cursor=C"), escaped.
  virtual std::string path(const std::string& org, const std::string& cursor) const = 0;
  virtual std::string cursor(const store::Db& db, const std::string& org) const = 0;  // "" before the first page
  // nullopt: not this feed's page (logged "unreadable answer"). now_s: the poll's clock.
  virtual std::optional<PageHead> read(std::string_view body, std::int64_t now_s) = 0;
  // Inside the page's write transaction: applies the entries read() kept and writes
  // `cursor` as the org's position. Returns how many made a change.
  virtual std::size_t apply(store::Tables& t, const std::string& org, const std::string& cursor) = 0;
  // Log texts: "N <skipped_text>" and "N <applied_text>".
  virtual std::string skipped_text() const = 0;
  virtual std::string applied_text() const = 0;
};

class ApiPoller {
 public:
  ApiPoller(store::Db& db, std::unique_ptr<Transport> transport, const core::Logger& log);
  virtual ~ApiPoller();
  ApiPoller(const ApiPoller&) = delete;
  ApiPoller& operator=(const ApiPoller&) = delete;

  // Before start(): feeds are polled in the order added.
  void add(std::unique_ptr<ApiFeed> feed) { feeds_.push_back(std::move(feed)); }

  // One poll of every feed for every org with a key. Returns the number of entries
  // applied (that made a change); throws nothing (errors are logged).
  std::size_t poll(const conf::ApiSettings& api);
  void set_clock(std::function<std::int64_t()> unix_s) { clock_ = std::move(unix_s); }
  // Called after a page that changed something is committed (the daemon wakes the
  // forwarder: an erasure queues events). Before start().
  void on_applied(std::function<void()> fn) { on_applied_ = std::move(fn); }

  void start(std::function<std::shared_ptr<const conf::Config>()> config);
  void stop() { worker_.stop(); }

 private:
  std::size_t poll_org(ApiFeed& feed, const conf::ApiSettings& api, const std::string& org, const std::string& key);
  void run();

  store::Db& db_;
  std::unique_ptr<Transport> transport_;
  const core::Logger& log_;
  std::vector<std::unique_ptr<ApiFeed>> feeds_;
  std::function<std::int64_t()> clock_;  // unix seconds
  std::function<void()> on_applied_;
  std::function<std::shared_ptr<const conf::Config>()> config_;
  core::Worker worker_;  // last: its thread stops before the rest goes
};

}  // namespace cllavio::events
