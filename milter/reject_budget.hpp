// How many rejected transactions per minute may be recorded in the store.
//
// A token bucket refilled continuously at `per_minute` tokens per minute, holding at
// most `per_minute`. Rejections over the budget are still logged, just not stored,
// so a flood of refused senders cannot fill the store. Thread-safe; the rate is
// passed on each call so a reloaded configuration applies at once.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>

namespace cllavio::milter {

class RejectBudget {
 public:
  bool take(int per_minute, std::int64_t now_us) {
    if (per_minute <= 0) return false;
    std::lock_guard lock(mu_);
    double cap = per_minute;
    if (last_us_ == 0 || now_us < last_us_) {
      tokens_ = cap;  // first use, or the clock went backwards: start full
    } else {
      tokens_ = std::min(cap, tokens_ + cap * static_cast<double>(now_us - last_us_) / 60e6);
    }
    last_us_ = now_us;
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  std::mutex mu_;
  double tokens_ = 0;
  std::int64_t last_us_ = 0;
};

}  // namespace cllavio::milter
