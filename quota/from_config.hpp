// The quota backends' settings as the configuration gives them ([quota], [redis] and the
// secrets file's [redis] password), for the daemon and for cllavioctl.
#pragma once

#include "conf/config.hpp"
#include "quota/redis_ledger.hpp"
#include "quota/shared_quota.hpp"

namespace cllavio::quota {

inline RedisSettings redis_settings(const conf::Config& c) {
  RedisSettings r;
  r.url = c.redis.url;
  r.timeout_ms = c.redis.timeout_ms;
  r.connect_timeout_ms = c.redis.connect_timeout_ms;
  r.pool_size = c.redis.pool_size;
  r.password = c.redis.password;
  r.key_prefix = c.redis.key_prefix;
  r.lease_s = c.redis.lease_s;
  return r;
}

inline SharedQuotaSettings shared_quota_settings(const conf::Config& c) {
  SharedQuotaSettings s;
  switch (c.quota.on_backend_error) {
    case conf::OnBackendError::local: s.on_error = OnBackendError::local; break;
    case conf::OnBackendError::tempfail: s.on_error = OnBackendError::tempfail; break;
    case conf::OnBackendError::accept: s.on_error = OnBackendError::accept; break;
  }
  s.hosts = static_cast<unsigned>(c.quota.hosts);
  s.breaker_failures = c.quota.breaker_failures;
  s.breaker_retry_ms = c.quota.breaker_retry_ms;
  return s;
}

}  // namespace cllavio::quota
