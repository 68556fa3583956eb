// Prometheus metrics: counters, gauges and histograms with bounded label sets, rendered
// in the text exposition format 0.0.4 (docs/metrics.md).
//
// Contract:
// - Families are registered before the registry is shared (daemon start); after that the
//   set of families never changes, so a scrape walks it without a lock.
// - A label's values go through a LabelSet: an immutable snapshot (value -> slot) that is
//   replaced, never changed, by refresh() (the daemon does it on SIGHUP for org ids).
//   Snapshots are kept until the registry dies (a handful per reload), so a reader never
//   sees one freed. A value not in the snapshot counts as "other"; a refresh beyond the
//   set's capacity puts the extra values in "overflow". Slots, and so counts, survive a
//   refresh: cardinality is bounded by the capacity, never by what senders send.
// - The hot path (inc/observe/set from milter callbacks) is lock-free: one acquire load
//   of the snapshot, one hash lookup, one relaxed atomic add on a pre-allocated cell.
//   A scrape reads cells with relaxed loads; the only lock a scrape takes is the one
//   around callback gauges' registration (never taken by a milter callback), and the
//   callbacks themselves must not wait on a lock a milter callback holds (see
//   milter/metrics_wiring.hpp for what they read).
// - Histograms are in seconds (the Prometheus base unit); sums are kept in nanoseconds
//   (exact under concurrent adds) and rendered as seconds.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cllavio::metrics {

// The values one label may take. Slot 0 is "other" (a value not in the set), slot 1
// "overflow" (values refresh() could not add: the set is at capacity).
class LabelSet {
 public:
  static constexpr int kOther = 0, kOverflow = 1;
  LabelSet(std::string name, std::vector<std::string> values, std::size_t capacity);
  ~LabelSet();
  LabelSet(const LabelSet&) = delete;
  LabelSet& operator=(const LabelSet&) = delete;

  const std::string& name() const { return name_; }
  std::size_t capacity() const { return capacity_; }  // slots, other and overflow included
  int slot(std::string_view value) const;              // lock-free
  // Adds the values not known yet (known ones keep their slot; none is removed). Values
  // past the capacity map to "overflow". Callers serialize refreshes (one mutex here).
  void refresh(const std::vector<std::string>& values);

  struct Snapshot {
    std::unordered_map<std::string, int> slots;
    std::vector<std::string> names;   // by slot: names[0] = "other", names[1] = "overflow"
    std::vector<bool> declared;       // by slot: a configured value (rendered even at 0)
  };
  const Snapshot& snapshot() const { return *current_.load(std::memory_order_acquire); }

 private:
  std::string name_;
  std::size_t capacity_;
  std::atomic<const Snapshot*> current_;
  std::mutex refresh_mu_;
  std::vector<std::unique_ptr<Snapshot>> all_;  // every snapshot ever published (guarded by refresh_mu_)
};

// A metric family over up to two labels.
class Family {
 public:
  enum class Type { counter, gauge, histogram };
  Family(std::string name, std::string help, Type type, std::vector<const LabelSet*> labels,
         std::vector<double> buckets = {});
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  const std::string& name() const { return name_; }

  // The cell of a label combination (values in the order of the labels).
  std::size_t cell(std::string_view a = {}, std::string_view b = {}) const;
  void inc(std::size_t cell, std::uint64_t n = 1) { cells_[cell].v.fetch_add(n, std::memory_order_relaxed); }
  void set(std::size_t cell, double value);
  void observe(std::size_t cell, double seconds);

  std::uint64_t count(std::size_t cell) const;  // counter value, or a histogram's count
  double gauge(std::size_t cell) const;

  void render(std::string& out) const;

 private:
  struct alignas(64) Cell {  // one cache line: no false sharing between hot counters
    std::atomic<std::uint64_t> v{0};       // counter / gauge bits
    std::atomic<std::uint64_t> sum_ns{0};  // histogram sum
    std::atomic<bool> touched{false};      // a gauge that was set
  };
  void render_cell(std::string& out, const std::string& labels, std::size_t cell) const;

  std::string name_, help_;
  Type type_;
  std::vector<const LabelSet*> labels_;
  std::vector<double> buckets_;
  std::unique_ptr<Cell[]> cells_;
  // cells x (buckets + 1), not cumulative; the last one is +Inf. A histogram's count is
  // their sum as read, so _count always equals the +Inf bucket.
  std::unique_ptr<std::atomic<std::uint64_t>[]> bucket_counts_;
  std::size_t n_cells_ = 0;
};

class Registry {
 public:
  // A label whose values are fixed, or refreshed from the configuration.
  LabelSet& label(std::string name, std::vector<std::string> values, std::size_t capacity);
  Family& counter(std::string name, std::string help, std::vector<const LabelSet*> labels = {});
  Family& gauge(std::string name, std::string help, std::vector<const LabelSet*> labels = {});
  Family& histogram(std::string name, std::string help, std::vector<double> buckets,
                    std::vector<const LabelSet*> labels = {});

  // A gauge read at scrape time: fn appends samples as (label block, value), the label
  // block "" or already rendered ({version="0.1.0"}); none appended (or an exception):
  // the gauge is left out of this scrape.
  using Samples = std::vector<std::pair<std::string, double>>;
  using GaugeFn = std::function<void(Samples& samples)>;
  void gauge_callback(std::string name, std::string help, GaugeFn fn);

  // Text format 0.0.4: every family and callback gauge, in registration order.
  std::string render() const;

 private:
  std::vector<std::unique_ptr<LabelSet>> labels_;
  std::vector<std::unique_ptr<Family>> families_;
  struct Callback {
    std::string name, help;
    GaugeFn fn;
  };
  mutable std::mutex callbacks_mu_;  // registration vs scrape only
  std::vector<Callback> callbacks_;
};

// Prometheus text-format helpers.
std::string escape_label_value(std::string_view v);  // \ " and newline escaped
std::string escape_help(std::string_view v);          // \ and newline escaped
std::string format_value(double v);                   // shortest round-trip, +Inf/-Inf/NaN

}  // namespace cllavio::metrics
