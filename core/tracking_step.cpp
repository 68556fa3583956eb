#include "core/tracking_step.hpp"

namespace cllavio::core {

tracking::RewriteResult track_message(const conf::Config& cfg, const TrackRequest& req) {
  tracking::RewriteInput in;
  in.header = req.header;
  in.body = req.body;
  in.body_truncated = req.body_truncated;
  in.org = req.org;
  in.message_id = req.message_id;
  if (req.recipients != nullptr && req.recipients->size() == 1) in.recipient = req.recipients->front();
  if (req.old_links != nullptr) in.old_links = *req.old_links;
  static const tracking::TokenCodec no_keys({});
  return tracking::rewrite(in, req.policy != nullptr ? *req.policy : cfg.tracking_for(req.org), cfg.tracking_limits,
                           cfg.tokens ? *cfg.tokens : no_keys);
}

tracking::LinkTableLookup store_link_tables(const store::Db& db) {
  return [&db](const std::string& org, std::uint64_t message) -> std::optional<std::vector<tracking::TrackedLink>> {
    std::optional<store::MessageRecord> rec;
    try {
      rec = db.read()->records.get(message);
    } catch (const std::exception&) {
      return std::nullopt;  // a store that cannot be read: the quoted link stays as it is, the message goes on
    }
    if (!rec || rec->org != org || rec->tracking.links.empty()) return std::nullopt;
    std::vector<tracking::TrackedLink> links;
    links.reserve(rec->tracking.links.size());
    for (auto& l : rec->tracking.links) links.push_back({l.index, std::move(l.url)});
    return links;
  };
}

store::TrackingOutcome take_outcome(tracking::RewriteResult& r, bool per_recipient) {
  store::TrackingOutcome o;
  o.status = !r.skipped.empty() ? "skipped" : r.changed ? "tracked" : "unchanged";
  o.skipped = r.skipped;
  o.pixels = static_cast<std::uint32_t>(r.pixels);
  o.per_recipient = per_recipient && (r.pixels > 0 || !r.links.empty());
  o.links.reserve(r.links.size());
  for (auto& l : r.links) o.links.push_back({l.index, std::move(l.url)});
  r.links.clear();
  o.links_kept = static_cast<std::uint32_t>(r.kept.size());
  o.pixel_skipped = r.pixel_skipped;
  return o;
}

std::string describe(const store::TrackingOutcome& o) {
  if (o.status.empty()) return {};
  if (o.status == "skipped") {
    std::string why = o.skipped.substr(0, o.skipped.find(':'));
    return "track=skipped:" + why;
  }
  std::string d = "track=" + o.status + " links=" + std::to_string(o.links.size()) + " pixels=" + std::to_string(o.pixels);
  if (!o.pixel_skipped.empty()) d += " pixel_skipped=" + o.pixel_skipped;
  return d;
}

}  // namespace cllavio::core
