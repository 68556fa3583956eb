#include "metrics/registry.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace cllavio::metrics {

// ---- text format helpers ----

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest form that reads back the same
  return std::string(buf, r.ptr);
}

// ---- LabelSet ----

LabelSet::LabelSet(std::string name, std::vector<std::string> values, std::size_t capacity)
    : name_(std::move(name)), capacity_(std::max<std::size_t>(capacity, 2)), current_(nullptr) {
  auto s = std::make_unique<Snapshot>();
  s->names = {"other", "overflow"};
  s->declared = {false, false};
  current_.store(s.get(), std::memory_order_release);
  all_.push_back(std::move(s));
  refresh(values);
}

LabelSet::~LabelSet() = default;

int LabelSet::slot(std::string_view value) const {
  const Snapshot& s = snapshot();
  // Heterogeneous lookup would need a transparent hash; the key is short (org ids, enums).
  auto it = s.slots.find(std::string(value));
  return it == s.slots.end() ? kOther : it->second;
}

void LabelSet::refresh(const std::vector<std::string>& values) {
  std::lock_guard lock(refresh_mu_);
  const Snapshot& old = *current_.load(std::memory_order_acquire);
  auto s = std::make_unique<Snapshot>(old);
  bool changed = false;
  for (const auto& v : values) {
    if (s->slots.count(v) != 0) continue;
    if (v == "other" || v == "overflow") continue;  // the reserved slots already say it
    changed = true;
    if (s->names.size() >= capacity_) {
      s->slots.emplace(v, kOverflow);
      continue;
    }
    s->slots.emplace(v, static_cast<int>(s->names.size()));
    s->names.push_back(v);
    s->declared.push_back(true);
  }
  if (!changed) return;
  current_.store(s.get(), std::memory_order_release);
  all_.push_back(std::move(s));
}

// ---- Family ----

Family::Family(std::string name, std::string help, Type type, std::vector<const LabelSet*> labels,
               std::vector<double> buckets)
    : name_(std::move(name)), help_(std::move(help)), type_(type), labels_(std::move(labels)),
      buckets_(std::move(buckets)) {
  if (labels_.size() > 2) throw std::invalid_argument("metrics: at most two labels per family");
  if (!std::is_sorted(buckets_.begin(), buckets_.end()))
    throw std::invalid_argument("metrics: histogram buckets must be increasing");
  n_cells_ = 1;
  for (const auto* l : labels_) n_cells_ *= l->capacity();
  cells_ = std::make_unique<Cell[]>(n_cells_);
  if (type_ == Type::histogram) {
    std::size_t n = n_cells_ * (buckets_.size() + 1);
    bucket_counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(n);
    for (std::size_t i = 0; i < n; ++i) bucket_counts_[i].store(0, std::memory_order_relaxed);
  }
}

std::size_t Family::cell(std::string_view a, std::string_view b) const {
  std::size_t c = 0;
  if (!labels_.empty()) c = static_cast<std::size_t>(labels_[0]->slot(a));
  if (labels_.size() == 2) c = c * labels_[1]->capacity() + static_cast<std::size_t>(labels_[1]->slot(b));
  return c;
}

void Family::set(std::size_t cell, double value) {
  cells_[cell].v.store(std::bit_cast<std::uint64_t>(value), std::memory_order_relaxed);
  if (!cells_[cell].touched.load(std::memory_order_relaxed)) cells_[cell].touched.store(true, std::memory_order_relaxed);
}

void Family::observe(std::size_t cell, double seconds) {
  if (!(seconds >= 0)) seconds = 0;  // NaN or a clock step backwards
  std::size_t b = std::lower_bound(buckets_.begin(), buckets_.end(), seconds) - buckets_.begin();  // le: <=
  bucket_counts_[cell * (buckets_.size() + 1) + b].fetch_add(1, std::memory_order_relaxed);
  cells_[cell].sum_ns.fetch_add(static_cast<std::uint64_t>(std::llround(seconds * 1e9)), std::memory_order_relaxed);
}

std::uint64_t Family::count(std::size_t cell) const {
  if (type_ != Type::histogram) return cells_[cell].v.load(std::memory_order_relaxed);
  std::uint64_t n = 0;
  for (std::size_t i = 0; i <= buckets_.size(); ++i)
    n += bucket_counts_[cell * (buckets_.size() + 1) + i].load(std::memory_order_relaxed);
  return n;
}

double Family::gauge(std::size_t cell) const {
  return std::bit_cast<double>(cells_[cell].v.load(std::memory_order_relaxed));
}

void Family::render_cell(std::string& out, const std::string& labels, std::size_t cell) const {
  auto block = [&](const std::string& extra) {
    std::string l = labels;
    if (!extra.empty()) l += (l.empty() ? "" : ",") + extra;
    return l.empty() ? std::string() : "{" + l + "}";
  };
  switch (type_) {
    case Type::counter: out += name_ + block({}) + " " + std::to_string(count(cell)) + "\n"; break;
    case Type::gauge: out += name_ + block({}) + " " + format_value(gauge(cell)) + "\n"; break;
    case Type::histogram: {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i <= buckets_.size(); ++i) {
        cumulative += bucket_counts_[cell * (buckets_.size() + 1) + i].load(std::memory_order_relaxed);
        std::string le = i < buckets_.size() ? format_value(buckets_[i]) : "+Inf";
        out += name_ + "_bucket" + block("le=\"" + le + "\"") + " " + std::to_string(cumulative) + "\n";
      }
      double sum = static_cast<double>(cells_[cell].sum_ns.load(std::memory_order_relaxed)) / 1e9;
      out += name_ + "_sum" + block({}) + " " + format_value(sum) + "\n";
      out += name_ + "_count" + block({}) + " " + std::to_string(cumulative) + "\n";
      break;
    }
  }
}

void Family::render(std::string& out) const {
  static const char* kTypes[] = {"counter", "gauge", "histogram"};
  out += "# HELP " + name_ + " " + escape_help(help_) + "\n";
  out += "# TYPE " + name_ + " " + kTypes[static_cast<int>(type_)] + "\n";
  // A combination is shown when each of its values is a declared one (so a configured
  // org's series exist from the start, at 0), or when it holds something.
  auto shown = [&](std::size_t cell, bool declared) {
    if (declared) return type_ != Type::gauge || cells_[cell].touched.load(std::memory_order_relaxed);
    if (type_ == Type::gauge) return cells_[cell].touched.load(std::memory_order_relaxed);
    return count(cell) != 0;
  };
  auto pair = [](const LabelSet* l, const std::string& v) { return l->name() + "=\"" + escape_label_value(v) + "\""; };
  if (labels_.empty()) {
    if (shown(0, true)) render_cell(out, {}, 0);
    return;
  }
  const LabelSet::Snapshot& a = labels_[0]->snapshot();
  for (std::size_t i = 0; i < a.names.size(); ++i) {
    if (labels_.size() == 1) {
      if (shown(i, a.declared[i])) render_cell(out, pair(labels_[0], a.names[i]), i);
      continue;
    }
    const LabelSet::Snapshot& b = labels_[1]->snapshot();
    for (std::size_t j = 0; j < b.names.size(); ++j) {
      std::size_t c = i * labels_[1]->capacity() + j;
      if (shown(c, a.declared[i] && b.declared[j]))
        render_cell(out, pair(labels_[0], a.names[i]) + "," + pair(labels_[1], b.names[j]), c);
    }
  }
}

// ---- Registry ----

LabelSet& Registry::label(std::string name, std::vector<std::string> values, std::size_t capacity) {
  labels_.push_back(std::make_unique<LabelSet>(std::move(name), std::move(values), capacity));
  return *labels_.back();
}

Family& Registry::counter(std::string name, std::string help, std::vector<const LabelSet*> labels) {
  families_.push_back(std::make_unique<Family>(std::move(name), std::move(help), Family::Type::counter, std::move(labels)));
  return *families_.back();
}

Family& Registry::gauge(std::string name, std::string help, std::vector<const LabelSet*> labels) {
  families_.push_back(std::make_unique<Family>(std::move(name), std::move(help), Family::Type::gauge, std::move(labels)));
  return *families_.back();
}

Family& Registry::histogram(std::string name, std::string help, std::vector<double> buckets,
                            std::vector<const LabelSet*> labels) {
  families_.push_back(std::make_unique<Family>(std::move(name), std::move(help), Family::Type::histogram,
                                               std::move(labels), std::move(buckets)));
  return *families_.back();
}

void Registry::gauge_callback(std::string name, std::string help, GaugeFn fn) {
  std::lock_guard lock(callbacks_mu_);
  callbacks_.push_back({std::move(name), std::move(help), std::move(fn)});
}

std::string Registry::render() const {
  std::string out;
  out.reserve(16384);
  for (const auto& f : families_) f->render(out);
  std::lock_guard lock(callbacks_mu_);
  for (const auto& c : callbacks_) {
    Samples samples;
    try {
      c.fn(samples);
    } catch (...) {
      continue;  // e.g. the store could not be read: this gauge sits this scrape out
    }
    if (samples.empty()) continue;
    out += "# HELP " + c.name + " " + escape_help(c.help) + "\n";
    out += "# TYPE " + c.name + " gauge\n";
    for (const auto& [labels, v] : samples) out += c.name + labels + " " + format_value(v) + "\n";
  }
  return out;
}

}  // namespace cllavio::metrics
