// The tracking step at end of message, shared by the milter and `cllavioctl rewrite`
// so a preview is exactly what the milter would send.
//
// track_message() applies the org's [tracking] settings, the configured limits and
// the secrets file's keys to one message (tracking/rewrite.hpp does the work), and
// take_outcome() turns the result into what the store records (taking its link table).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"
#include "store/db.hpp"
#include "store/message_record.hpp"
#include "tracking/rewrite.hpp"

namespace cllavio::core {

struct TrackRequest {
  std::string_view header;   // the message header block ("Name: value" lines)
  std::string_view body;
  bool body_truncated = false;
  std::string org;
  std::uint64_t message_id = 0;
  const std::vector<std::string>* recipients = nullptr;
  const tracking::TrackingPolicy* policy = nullptr;  // the stream's switches; null: the org's [tracking]
  const tracking::LinkTableLookup* old_links = nullptr;  // quoted compact click tokens; null: left as they are
};

tracking::RewriteResult track_message(const conf::Config& cfg, const TrackRequest& req);

// The link tables of earlier messages, read from the store (one short read transaction
// per message looked up): a record of another org than the token's, one without links, or
// a store error is nullopt (never throws). `db` must outlive the returned function.
tracking::LinkTableLookup store_link_tables(const store::Db& db);

// What the record keeps of a rewrite. The link table is moved out of r (r.links is left
// empty): a newsletter's hundreds of destinations are not copied.
store::TrackingOutcome take_outcome(tracking::RewriteResult& r, bool per_recipient);

// "track=tracked links=3 pixels=1", "track=skipped:dkim_signed", ... for the log line.
std::string describe(const store::TrackingOutcome& o);

}  // namespace cllavio::core
