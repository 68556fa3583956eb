// Erasure requests: data subjects' erasures received by the org at Cllavio, applied here.
//
// A feed of the API poller (events/api_poller.hpp: its thread, paging, cursor and error
// handling), polled at api.consent_poll_s beside the consent feed:
// GET /v1/erasures?org=ORG&cursor=C with the org's key. Each request is an erase of its
// address in that org (actor "api", source "api"), done by the injected EraseFn; the
// page's erasures and its cursor (meta keys::erasure_cursor(org)) commit in one write
// transaction, so a restart never applies a page twice nor skips one. An EraseFn that
// throws rolls the whole page back (cursor included): it comes again at the next poll.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/api_poller.hpp"
#include "store/erase.hpp"

namespace cllavio::events {

// One erasure request as read from a page; address normalized (policy::consent_address).
struct ErasureRequest {
  std::string id;            // the API's id ("" when not given): for log lines
  std::string address;
  std::string requested_at;  // as given (RFC 3339), "" when not given
};

// A page of GET /v1/erasures: requests with a readable address, how many entries were
// not (not an object, no address, an address that is not a plain one), the next cursor
// and "more" when given; nullopt when the body is not that JSON ("erasures" not a list,
// "cursor" not a string, "more" present but not a boolean).
struct ErasurePage {
  std::vector<ErasureRequest> requests;
  std::size_t skipped = 0;
  std::string cursor;
  std::optional<bool> more;
};
std::optional<ErasurePage> parse_erasure_page(std::string_view body);

// Erases one address inside the caller's write transaction, queueing what goes with it
// (the subject.erased event); throws to refuse (the page is rolled back). The daemon's is
// set in milter/daemon.cpp (make_api_erase).
using EraseFn = std::function<store::EraseReport(store::Tables&, const store::EraseRequest&)>;

class ErasureFeed : public ApiFeed {
 public:
  explicit ErasureFeed(EraseFn erase) : erase_(std::move(erase)) {}
  std::string name() const override { return "erasure sync"; }
  std::string path(const std::string& org, const std::string& cursor) const override;
  std::string cursor(const store::Db& db, const std::string& org) const override;
  std::optional<PageHead> read(std::string_view body, std::int64_t now_s) override;
  std::size_t apply(store::Tables& t, const std::string& org, const std::string& cursor) override;
  std::string skipped_text() const override { return "malformed erasure request(s)"; }
  std::string applied_text() const override { return "erasure request(s) applied"; }

 private:
  EraseFn erase_;
  std::vector<ErasureRequest> requests_;  // of the page read last
};

}  // namespace cllavio::events
