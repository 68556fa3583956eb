#include "delivery/follower.hpp"

#include <nlohmann/json.hpp>

#include "core/event.hpp"
#include "store/keys.hpp"

namespace cllavio::delivery {

namespace {

constexpr std::size_t kBatchLines = 1000;  // bounds the time a batch holds the shared commit
// After a batch, lines accumulate this long before the next one: under load one store
// commit (and sync) per pace instead of one per few lines; a delivery event waits at most this.
constexpr auto kPace = std::chrono::milliseconds(250);
constexpr std::size_t kMaxGaps = 50;
constexpr std::int64_t kRetryPendingUs = 1'000'000;
constexpr std::int64_t kIdleStatusUs = 10'000'000;

using nlohmann::json;

}  // namespace

Follower::Follower(store::Db& db, std::unique_ptr<LineSource> source, const core::Logger& log, FollowerHooks hooks)
    : db_(db),
      source_(std::move(source)),
      log_(log),
      hooks_(std::move(hooks)),
      tracker_(hooks_.settings ? hooks_.settings() : TrackerSettings{}) {}

void Follower::start() {
  worker_.start([this] { loop(); });
}

void Follower::stop() { worker_.stop(); }

bool Follower::commit(const std::vector<std::string>& lines, const std::string& checkpoint,
                      const std::vector<std::string>& gaps) {
  if (hooks_.settings) tracker_.set_settings(hooks_.settings());
  BatchResult r;
  const std::int64_t now = db_.now_us();
  try {
    db_.write([&](store::Tables& t) {
      r = BatchResult{};
      tracker_.retry_pending(t, now, r);
      for (const auto& line : lines) tracker_.apply(t, line, now, r);
      t.meta.put(store::keys::kDeliveryPosition, checkpoint);
      if (!gaps.empty()) {
        json all = json::array();
        if (auto old = t.meta.get(store::keys::kDeliveryGaps)) {
          json parsed = json::parse(*old, nullptr, false);
          if (parsed.is_array()) all = std::move(parsed);
        }
        for (const auto& g : gaps) all.push_back({{"at", core::rfc3339_us(now)}, {"gap", g}});
        while (all.size() > kMaxGaps) all.erase(all.begin());
        t.meta.put(store::keys::kDeliveryGaps, all.dump(-1, ' ', false, json::error_handler_t::replace));
      }
      json status{{"source", source_->status()},
                  {"lag", source_->lag()},
                  {"updated_at", core::rfc3339_us(now)},
                  {"lines", counters_.lines.load() + r.lines},
                  {"applied", counters_.applied.load() + r.applied},
                  {"pending", t.delivery.pending_count()},
                  {"dropped", counters_.dropped.load() + r.dropped}};
      last_status_ = status.dump(-1, ' ', false, json::error_handler_t::replace);
      t.meta.put(store::keys::kDeliveryStatus, last_status_);
    });
  } catch (const std::exception& e) {
    ++counters_.write_errors;
    log_.error(std::string("delivery: cannot store what ") + std::to_string(lines.size()) +
               " log line(s) said (kept, retried): " + e.what());
    return false;
  }
  last_retry_us_ = last_status_us_ = now;
  counters_.lines += r.lines;
  counters_.applied += r.applied;
  counters_.pended += r.pended;
  counters_.dropped += r.dropped;
  counters_.events += r.events;
  ++counters_.batches;
  for (const auto& g : gaps) log_.warning("delivery: GAP in the log: " + g);
  for (const auto& n : r.notices) log_.notice("delivery: " + n);
  if (r.outbox_full > 0)
    log_.error("OUTBOX FULL: " + std::to_string(r.outbox_full) +
               " delivery event(s) dropped (raise [api] max_outbox_mb, check the API: cllavioctl outbox stats)");
  if (hooks_.uncharge)
    for (const auto& u : r.uncharges) hooks_.uncharge(u);
  if (hooks_.outcome)
    for (const auto& [org, state] : r.outcomes) hooks_.outcome(org, state);
  if (r.events > 0 && hooks_.on_events) hooks_.on_events();
  return true;
}

std::size_t Follower::step() {
  if (!restored_) {
    std::string cp;
    {
      auto v = db_.read();
      cp = v->meta.get(store::keys::kDeliveryPosition).value_or("");
    }
    source_->restore(cp);
    restored_ = true;
    log_.notice("delivery: following " + source_->status() + (cp.empty() ? " from its start" : " from the checkpoint"));
  }
  std::vector<std::string> lines;
  source_->read(lines, kBatchLines);
  std::vector<std::string> gaps = source_->take_gaps();
  const std::int64_t now = db_.now_us();
  bool retry_due = now - last_retry_us_ >= kRetryPendingUs;
  bool status_due = now - last_status_us_ >= kIdleStatusUs || source_->status() != last_source_status_;
  if (lines.empty() && gaps.empty() && !retry_due && !status_due) return 0;
  if (lines.empty() && gaps.empty() && retry_due && !status_due) {
    // Nothing new: a write only when lines wait for their record.
    bool waiting = db_.read()->delivery.pending_count() > 0;
    last_retry_us_ = now;
    if (!waiting) return 0;
  }
  last_source_status_ = source_->status();
  const std::string cp = source_->checkpoint();
  // The lines are applied with their checkpoint or not at all: retry the same batch.
  while (!commit(lines, cp, gaps)) {
    worker_.sleep_until(core::Worker::Clock::now() + std::chrono::seconds(5));
    if (worker_.stopping()) return 0;
  }
  return lines.size();
}

void Follower::loop() {
  while (!worker_.stopping()) {
    std::size_t n = step();
    if (n == 0)
      source_->wait(200);
    else if (n < kBatchLines)
      worker_.sleep_until(core::Worker::Clock::now() + kPace);
  }
}

}  // namespace cllavio::delivery
