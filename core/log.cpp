#include "core/log.hpp"

#include <syslog.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

namespace cllavio::core {

namespace {

int priority(conf::LogLevel l) {
  switch (l) {
    case conf::LogLevel::debug: return LOG_DEBUG;
    case conf::LogLevel::info: return LOG_INFO;
    case conf::LogLevel::notice: return LOG_NOTICE;
    case conf::LogLevel::warning: return LOG_WARNING;
    case conf::LogLevel::error: return LOG_ERR;
  }
  return LOG_INFO;
}

}  // namespace

void Logger::configure(conf::LogTarget target, conf::LogLevel level) {
  if (target == conf::LogTarget::syslog && !syslog_open_.exchange(true))
    openlog("cllavio-milter", LOG_PID | LOG_NDELAY, LOG_MAIL);
  target_.store(target);
  level_.store(level);
}

void Logger::log(conf::LogLevel level, std::string_view queue_id, std::string_view text) const {
  if (!enabled(level)) return;
  std::string line;
  line.reserve(text.size() + 64);
  if (sink_) {
    if (!queue_id.empty()) line.append(queue_id).append(": ");
    sink_(level, line.append(text));
    return;
  }
  if (target_.load(std::memory_order_relaxed) == conf::LogTarget::syslog) {
    if (!queue_id.empty()) line.append(queue_id).append(": ");
    line.append(text);
    syslog(priority(level), "%s", line.c_str());
    return;
  }
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  line.append(stamp).append(conf::to_string(level)).append(": ");
  if (!queue_id.empty()) line.append(queue_id).append(": ");
  line.append(text).push_back('\n');
  std::size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
}

std::string log_safe(std::string_view s, std::size_t max) {
  std::string out;
  bool cut = s.size() > max;
  if (cut) s = s.substr(0, max);
  out.reserve(s.size() + 3);
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (cut) out += "...";
  return out;
}

}  // namespace cllavio::core

namespace cllavio::core {

std::string log_value(std::string_view s, std::size_t max) {
  std::string out = log_safe(s, max);
  for (char& c : out)
    if (c == ' ') c = '?';
  return out;
}

}  // namespace cllavio::core
