// What makes a request to the Cllavio API trustworthy and repeatable (docs/api.md):
// the Cllavio-Signature HMAC over time and body, an Idempotency-Key that stays the same
// for the same batch, and the batch body itself. Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/tables.hpp"

namespace cllavio::events {

// "t=<t>,v1=<hex HMAC-SHA256(secret, t + "." + body)>"
std::string signature(const std::string& secret, std::int64_t t, const std::string& body);

// Stable across retries of the same batch: a digest of its event ids (32 hex digits).
std::string idempotency_key(const std::vector<store::OutboxItem>& items);

// {"events":[...]} with the events as queued.
std::string batch_body(const std::vector<store::OutboxItem>& items);

}  // namespace cllavio::events
