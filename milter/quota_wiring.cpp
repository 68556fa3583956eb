#include "milter/quota_wiring.hpp"

#include "quota/from_config.hpp"

namespace cllavio::milter {

std::string start_quota_backend(Runtime& rt, const conf::Config& cfg) {
  if (cfg.quota.backend != conf::QuotaBackendKind::redis) return {};
  std::unique_ptr<quota::RedisLedger> ledger;
  try {
    ledger = std::make_unique<quota::RedisLedger>(quota::redis_settings(cfg));
  } catch (const std::exception& e) {
    return std::string("[redis] url = \"") + cfg.redis.url + "\": " + e.what();
  }
  quota::SharedQuotaObserver obs;
  if (metrics::Metrics* m = rt.metrics.get()) {
    obs.call = [m](std::string_view op, double seconds, bool ok) { m->quota_backend_call(op, seconds, ok); };
    obs.fallback = [m](std::string_view mode) { m->quota_backend_fallback(mode); };
    obs.state = [m](bool up) { m->quota_backend_up(up); };
    obs.replayed = [m](std::uint64_t n) { m->quota_backend_replayed(n); };
    m->quota_backend_up(true);
  }
  auto shared = std::make_unique<quota::SharedQuota>(std::move(ledger), rt.db.get(), quota::shared_quota_settings(cfg),
                                                     &rt.log, std::move(obs));
  try {
    shared->ledger().ping();
    rt.log.notice("quota: shared ledger at " + cfg.redis.url + " (on_backend_error=" +
                  std::string(quota::to_string(quota::shared_quota_settings(cfg).on_error)) + ", hosts=" +
                  std::to_string(cfg.quota.hosts) + ")");
  } catch (const std::exception& e) {
    // Not fatal: the breaker's failures open it on the first calls and mail flows per
    // on_backend_error until Redis answers.
    rt.log.warning("quota: shared ledger at " + cfg.redis.url + " does not answer at start (" + e.what() +
                   "); on_backend_error=" + std::string(quota::to_string(quota::shared_quota_settings(cfg).on_error)) +
                   " applies until it does");
  }
  shared->start();
  rt.quota = std::move(shared);
  return {};
}

void reload_quota_backend(Runtime& rt, const conf::Config& cfg) {
  if (auto* shared = dynamic_cast<quota::SharedQuota*>(rt.quota.get()))
    shared->set_settings(quota::shared_quota_settings(cfg));
}

}  // namespace cllavio::milter
