#define BOOST_TEST_MODULE log
#include <boost/test/unit_test.hpp>

#include "core/log.hpp"

using namespace cllavio;

BOOST_AUTO_TEST_CASE(log_safe_neutralizes_control_bytes_and_cuts) {
  BOOST_TEST(core::log_safe("a\r\nb\x7f") == "a??b?");
  BOOST_TEST(core::log_safe(std::string(300, 'x'), 10) == std::string(10, 'x') + "...");
  BOOST_TEST(core::log_safe("caf\xc3\xa9") == "caf\xc3\xa9");  // UTF-8 passes
}

BOOST_AUTO_TEST_CASE(levels_filter_and_queue_id_prefixes) {
  core::Logger log;
  std::vector<std::string> lines;
  log.capture([&](conf::LogLevel, const std::string& l) { lines.push_back(l); });
  log.configure(conf::LogTarget::stderr_stream, conf::LogLevel::notice);
  log.info("hidden");
  log.notice("shown");
  log.log(conf::LogLevel::error, "ABC", "with id");
  BOOST_TEST(lines == (std::vector<std::string>{"shown", "ABC: with id"}));
  log.configure(conf::LogTarget::stderr_stream, conf::LogLevel::debug);
  BOOST_TEST(log.enabled(conf::LogLevel::debug));
}
