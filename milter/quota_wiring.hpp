// [quota] backend = "redis" in the daemon: the shared ledger (quota/redis_ledger.hpp)
// behind SharedQuota's circuit breaker (quota/shared_quota.hpp), in the place of the
// local ledger, with its calls, state, fallbacks and replays counted in the metrics.
//
// Called once at start, after the store is open and before the first connection (so
// no session ever sees the swap); settings that a reload may change (on_backend_error,
// hosts, the breaker's) go through reload_quota_backend().
#pragma once

#include <string>

#include "conf/config.hpp"
#include "milter/runtime.hpp"

namespace cllavio::milter {

// Nothing for backend = "local". For "redis": builds the ledger, asks Redis once (a
// Redis that is down at start is logged, and the breaker starts open: mail flows per
// on_backend_error), starts the probe thread. "" on success, else why not.
std::string start_quota_backend(Runtime& rt, const conf::Config& cfg);

// SIGHUP: the new on_backend_error, hosts and breaker settings (url, timeouts, pool and
// prefix take effect at a restart: warn_restart_only says so).
void reload_quota_backend(Runtime& rt, const conf::Config& cfg);

}  // namespace cllavio::milter
