#include "milter/metrics_wiring.hpp"

#include <set>

#include "store/maintenance.hpp"

namespace cllavio::milter {

void refresh_metric_labels(metrics::Metrics& m, const conf::Config& cfg) {
  std::vector<std::string> orgs;
  for (const auto& o : cfg.orgs.orgs()) orgs.push_back(o.id);
  std::set<std::string> windows;
  for (const auto& [org, p] : cfg.policies) {
    for (const auto& w : p.quota.messages) windows.insert(metrics::Metrics::window_label(false, w.per_s));
    for (const auto& w : p.quota.recipients) windows.insert(metrics::Metrics::window_label(true, w.per_s));
  }
  m.refresh_labels(orgs, std::vector<std::string>(windows.begin(), windows.end()));
}

void add_store_gauges(Runtime& rt) {
  metrics::Registry& reg = rt.metrics->registry();
  store::Db* db = rt.db.get();
  reg.gauge_callback("cllavio_outbox_events", "Events waiting in the outbox for the Cllavio API.",
                     [db](metrics::Registry::Samples& s) {
                       s.push_back({"", static_cast<double>(db->read()->outbox.quick_stats().queued)});
                     });
  reg.gauge_callback("cllavio_outbox_oldest_seconds",
                     "Age of the oldest event waiting in the outbox; 0 when it is empty.",
                     [db](metrics::Registry::Samples& s) {
                       std::int64_t oldest = db->read()->outbox.quick_stats().oldest_at_us;
                       std::int64_t age = oldest == 0 ? 0 : std::max<std::int64_t>(0, store::realtime_us() - oldest);
                       s.push_back({"", static_cast<double>(age) / 1e6});
                     });
  reg.gauge_callback("cllavio_dead_letters", "Events the API refused for good (cllavioctl outbox dead).",
                     [db](metrics::Registry::Samples& s) {
                       s.push_back({"", static_cast<double>(db->read()->outbox.quick_stats().dead)});
                     });
  reg.gauge_callback("cllavio_store_map_used_ratio",
                     "Share of the store's map ([store] map_size_mb) holding data; writes fail at 1.",
                     [db](metrics::Registry::Samples& s) { s.push_back({"", store::map_use(*db).ratio()}); });
  reg.gauge_callback("cllavio_build_info", "The running version; always 1.", [](metrics::Registry::Samples& s) {
    s.push_back({"{version=\"" + metrics::escape_label_value(CLLAVIO_VERSION) + "\"}", 1});
  });
}

std::string start_metrics_listener(Runtime& rt, const conf::Config& cfg) {
  metrics::Metrics* m = rt.metrics.get();
  rt.metrics_listener = std::make_unique<metrics::Listener>([m] { return m->render(); });
  return rt.metrics_listener->start(cfg.metrics.host, cfg.metrics.port);
}

}  // namespace cllavio::milter
