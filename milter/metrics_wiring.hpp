// [metrics] in the daemon: the metric set's configured label values, the gauges read at
// scrape time (outbox, dead letters, store map, build info) and the /metrics listener.
//
// What a scrape reads, and why it never waits on a lock a milter callback holds:
// counters and histograms are atomics (metrics/registry.hpp); the outbox and dead-letter
// gauges are one LMDB read transaction each (mdb_stat entry counts and the first event
// of each org: no scan), and LMDB readers never wait for the writer (the recorder's
// group commit); the map ratio is mdb_env_info plus the free list, as the pruner reads
// it; quota gauges are values the milter stored at its last charge or refusal (the
// ledger's mutex is never taken by a scrape).
#pragma once

#include <string>

#include "conf/config.hpp"
#include "milter/runtime.hpp"

namespace cllavio::milter {

// The org ids and quota windows of cfg as label values (at start and after each reload).
void refresh_metric_labels(metrics::Metrics& m, const conf::Config& cfg);

// Registers the scrape-time gauges over rt's store (rt.db open, rt.metrics set).
void add_store_gauges(Runtime& rt);

// Starts the /metrics listener on cfg's [metrics] listen; "" on success, else why not.
std::string start_metrics_listener(Runtime& rt, const conf::Config& cfg);

}  // namespace cllavio::milter
