// Logging to syslog (facility mail) or stderr, one line per event, Postfix style.
//
// Lines about a message are prefixed with its queue id ("4F3A1C2B: org=acme ..."),
// or "NOQUEUE" before Postfix assigned one, so `grep QUEUEID maillog` shows the
// milter's lines next to Postfix's. Thread-safe; configure() takes effect for
// the next line (used on SIGHUP). Each line is written with a single write(2).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "conf/config.hpp"

namespace cllavio::core {

class Logger {
 public:
  Logger() = default;
  void configure(conf::LogTarget target, conf::LogLevel level);
  // Tests: receive formatted lines ("QUEUEID: text") instead of syslog/stderr. Set before use.
  void capture(std::function<void(conf::LogLevel, const std::string&)> sink) { sink_ = std::move(sink); }

  bool enabled(conf::LogLevel level) const { return level >= level_.load(std::memory_order_relaxed); }
  void log(conf::LogLevel level, std::string_view queue_id, std::string_view text) const;
  void log(conf::LogLevel level, std::string_view text) const { log(level, {}, text); }

  void error(std::string_view text) const { log(conf::LogLevel::error, text); }
  void warning(std::string_view text) const { log(conf::LogLevel::warning, text); }
  void notice(std::string_view text) const { log(conf::LogLevel::notice, text); }
  void info(std::string_view text) const { log(conf::LogLevel::info, text); }

 private:
  std::atomic<conf::LogLevel> level_{conf::LogLevel::info};
  std::atomic<conf::LogTarget> target_{conf::LogTarget::stderr_stream};
  std::atomic<bool> syslog_open_{false};
  std::function<void(conf::LogLevel, const std::string&)> sink_;
};

// Printable rendering of untrusted text for log lines: control bytes become '?',
// long values are cut with "...".
std::string log_safe(std::string_view s, std::size_t max = 256);

// The same for a key=value field: spaces become '?' too, so a crafted value cannot
// fake further fields ("from=<x action=reject>").
std::string log_value(std::string_view s, std::size_t max = 256);

}  // namespace cllavio::core
