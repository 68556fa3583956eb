#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "metrics/cllavio_metrics.hpp"
#include "metrics/listener.hpp"
#include "metrics/registry.hpp"

// The registry's text format, label bounding, concurrent counting while scraping,
// the daemon's metric set and the /metrics listener (metrics/).

using namespace cllavio::metrics;

namespace {

bool contains(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }

// One HTTP/1.0 request over a plain socket; the whole answer (headers and body).
std::string http(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE(fd >= 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  BOOST_REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(text_format_counter_gauge_help_type_and_escaping) {
  Registry r;
  LabelSet& kind = r.label("kind", {"a\"b", "back\\slash", "new\nline"}, 8);
  Family& c = r.counter("t_things_total", "Things.\nSecond line with \\.", {&kind});
  Family& g = r.gauge("t_level", "A level.");
  c.inc(c.cell("a\"b"), 3);
  c.inc(c.cell("new\nline"));
  g.set(0, 0.25);
  std::string text = r.render();
  std::string want =
      "# HELP t_things_total Things.\\nSecond line with \\\\.\n"
      "# TYPE t_things_total counter\n"
      "t_things_total{kind=\"a\\\"b\"} 3\n"
      "t_things_total{kind=\"back\\\\slash\"} 0\n"
      "t_things_total{kind=\"new\\nline\"} 1\n"
      "# HELP t_level A level.\n"
      "# TYPE t_level gauge\n"
      "t_level 0.25\n";
  BOOST_TEST(text == want);
}

BOOST_AUTO_TEST_CASE(unset_gauge_and_empty_callback_are_left_out) {
  Registry r;
  r.gauge("t_never_set", "Never set.");
  r.gauge_callback("t_cb_empty", "Nothing.", [](Registry::Samples&) {});
  r.gauge_callback("t_cb_throws", "Throws.", [](Registry::Samples&) { throw std::runtime_error("store gone"); });
  r.gauge_callback("t_build_info", "Build.", [](Registry::Samples& s) { s.push_back({"{version=\"1.2.3\"}", 1}); });
  std::string text = r.render();
  BOOST_TEST(!contains(text, "t_never_set 0"));
  BOOST_TEST(!contains(text, "t_cb_empty"));
  BOOST_TEST(!contains(text, "t_cb_throws"));
  BOOST_TEST(contains(text, "# TYPE t_build_info gauge\nt_build_info{version=\"1.2.3\"} 1\n"));
}

BOOST_AUTO_TEST_CASE(histogram_buckets_are_cumulative_and_inf_equals_count) {
  Registry r;
  Family& h = r.histogram("t_seconds", "Durations.", {0.01, 0.1, 1});
  for (double s : {0.005, 0.01, 0.05, 0.5, 0.5, 3.0}) h.observe(0, s);
  std::string want =
      "# HELP t_seconds Durations.\n"
      "# TYPE t_seconds histogram\n"
      "t_seconds_bucket{le=\"0.01\"} 2\n"  // le is inclusive: 0.01 counts in 0.01
      "t_seconds_bucket{le=\"0.1\"} 3\n"
      "t_seconds_bucket{le=\"1\"} 5\n"
      "t_seconds_bucket{le=\"+Inf\"} 6\n"
      "t_seconds_sum 4.065\n"
      "t_seconds_count 6\n";
  BOOST_TEST(r.render() == want);
}

BOOST_AUTO_TEST_CASE(labelled_histogram_puts_le_last) {
  Registry r;
  LabelSet& step = r.label("step", {"mail"}, 4);
  Family& h = r.histogram("t_step_seconds", "Steps.", {0.5}, {&step});
  h.observe(h.cell("mail"), 0.25);
  std::string text = r.render();
  BOOST_TEST(contains(text, "t_step_seconds_bucket{step=\"mail\",le=\"0.5\"} 1\n"));
  BOOST_TEST(contains(text, "t_step_seconds_bucket{step=\"mail\",le=\"+Inf\"} 1\n"));
  BOOST_TEST(contains(text, "t_step_seconds_sum{step=\"mail\"} 0.25\n"));
  BOOST_TEST(contains(text, "t_step_seconds_count{step=\"mail\"} 1\n"));
}

BOOST_AUTO_TEST_CASE(unknown_values_count_as_other_and_past_capacity_as_overflow) {
  Registry r;
  LabelSet& org = r.label("org", {"acme", "globex"}, 4);  // other, overflow, acme, globex: full
  Family& c = r.counter("t_total", "T.", {&org});
  c.inc(c.cell("acme"));
  c.inc(c.cell("someone@example.org"));  // never an address: it is "other"
  c.inc(c.cell("initech"));
  std::string text = r.render();
  BOOST_TEST(contains(text, "t_total{org=\"acme\"} 1\n"));
  BOOST_TEST(contains(text, "t_total{org=\"globex\"} 0\n"));
  BOOST_TEST(contains(text, "t_total{org=\"other\"} 2\n"));
  BOOST_TEST(!contains(text, "someone"));
  BOOST_TEST(!contains(text, "overflow"));  // nothing there yet: not shown

  org.refresh({"acme", "initech"});  // a reload adds an org, but the set is full
  c.inc(c.cell("initech"));
  c.inc(c.cell("acme"));
  text = r.render();
  BOOST_TEST(contains(text, "t_total{org=\"acme\"} 2\n"));  // counts survive a refresh
  BOOST_TEST(contains(text, "t_total{org=\"overflow\"} 1\n"));
  BOOST_TEST(contains(text, "t_total{org=\"other\"} 2\n"));
  BOOST_TEST(!contains(text, "initech"));
}

BOOST_AUTO_TEST_CASE(refresh_adds_new_values_and_keeps_counts_of_removed_ones) {
  Registry r;
  LabelSet& org = r.label("org", {"acme"}, 16);
  Family& c = r.counter("t_total", "T.", {&org});
  c.inc(c.cell("acme"), 5);
  org.refresh({"globex"});  // acme left the configuration, globex came
  c.inc(c.cell("globex"));
  std::string text = r.render();
  BOOST_TEST(contains(text, "t_total{org=\"acme\"} 5\n"));
  BOOST_TEST(contains(text, "t_total{org=\"globex\"} 1\n"));
}

BOOST_AUTO_TEST_CASE(concurrent_increments_while_scraping_are_exact) {
  Registry r;
  LabelSet& org = r.label("org", {"a", "b"}, 8);
  Family& c = r.counter("t_total", "T.", {&org});
  Family& h = r.histogram("t_seconds", "T.", {0.001, 0.01});
  constexpr int kThreads = 4, kEach = 50000;
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  std::thread scraper([&] {
    while (!done.load()) {
      std::string text = r.render();
      BOOST_REQUIRE(contains(text, "t_seconds_count"));
      scrapes.fetch_add(1);
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t)
    workers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        c.inc(c.cell(t % 2 ? "a" : "b"));
        h.observe(0, 0.002);
        if (t == 0 && i == kEach / 2) org.refresh({"c"});  // a reload in the middle
      }
    });
  for (auto& w : workers) w.join();
  done = true;
  scraper.join();
  BOOST_TEST(scrapes.load() > 0);
  std::string text = r.render();
  BOOST_TEST(contains(text, "t_total{org=\"a\"} " + std::to_string(kThreads / 2 * kEach) + "\n"));
  BOOST_TEST(contains(text, "t_total{org=\"b\"} " + std::to_string(kThreads / 2 * kEach) + "\n"));
  BOOST_TEST(contains(text, "t_seconds_bucket{le=\"0.001\"} 0\n"));
  BOOST_TEST(contains(text, "t_seconds_bucket{le=\"0.01\"} " + std::to_string(kThreads * kEach) + "\n"));
  BOOST_TEST(contains(text, "t_seconds_count " + std::to_string(kThreads * kEach) + "\n"));
  BOOST_TEST(contains(text, "t_seconds_sum 400\n"));  // 200000 x 2 ms, exact (kept in ns)
}

BOOST_AUTO_TEST_CASE(cllavio_metric_set_names_and_label_values) {
  Metrics m;
  m.refresh_labels({"acme"}, {Metrics::window_label(false, 3600), Metrics::window_label(true, 86400)});
  m.message("acme", "accept");
  m.message("", "reject");            // unidentified sender
  m.message("stranger", "accept");    // not configured
  m.tracking("acme", "tracked", "");
  m.tracking("acme", "skipped", "malformed: bad base64 in part 2");
  m.tracking("acme", "skipped", "something_new");
  m.refusal("", "unknown_org");
  m.refusal("acme", "quota");
  m.quota_used("acme", "messages:1h", 42);
  m.api_request(202);
  m.api_request(503);
  m.api_request(0);
  m.delivery("acme", "bounced");
  m.step("eom", 0.003);
  m.rewrite(0.002);
  std::string t = m.render();
  BOOST_TEST(contains(t, "cllavio_messages_total{org=\"acme\",action=\"accept\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_messages_total{org=\"acme\",action=\"tempfail\"} 0\n"));
  BOOST_TEST(contains(t, "cllavio_messages_total{org=\"unknown\",action=\"reject\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_messages_total{org=\"other\",action=\"accept\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_tracking_total{org=\"acme\",status=\"tracked\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_tracking_total{org=\"acme\",status=\"skipped:malformed\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_tracking_total{org=\"acme\",status=\"other\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_policy_refusals_total{org=\"unknown\",reason=\"unknown_org\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_policy_refusals_total{org=\"acme\",reason=\"quota\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_quota_used{org=\"acme\",window=\"messages:1h\"} 42\n"));
  BOOST_TEST(!contains(t, "window=\"recipients:1d\""));  // never set: no series
  BOOST_TEST(contains(t, "cllavio_api_requests_total{status=\"2xx\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_api_requests_total{status=\"5xx\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_api_requests_total{status=\"error\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_delivery_total{org=\"acme\",status=\"bounced\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_milter_step_duration_seconds_count{step=\"eom\"} 1\n"));
  BOOST_TEST(contains(t, "cllavio_milter_step_duration_seconds_count{step=\"connect\"} 0\n"));
  BOOST_TEST(contains(t, "cllavio_rewrite_duration_seconds_count 1\n"));
  BOOST_TEST(contains(t, "# TYPE cllavio_rewrite_duration_seconds histogram\n"));
  BOOST_TEST(Metrics::window_label(true, 90) == "recipients:90s");
  BOOST_TEST(Metrics::window_label(false, 600) == "messages:10m");
}

BOOST_AUTO_TEST_CASE(listener_serves_metrics_404_and_405) {
  Listener l([] { return std::string("t_up 1\n"); });
  std::string err = l.start("127.0.0.1", 0);
  BOOST_REQUIRE_MESSAGE(err.empty(), err);
  BOOST_REQUIRE(l.port() > 0);

  std::string ok = http(l.port(), "GET /metrics HTTP/1.0\r\n\r\n");
  BOOST_TEST(ok.substr(8, 5) == " 200 ", ok);
  BOOST_TEST(contains(ok, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), ok);
  BOOST_TEST(ok.size() >= 7);
  BOOST_TEST(ok.substr(ok.size() - 7) == "t_up 1\n");

  std::string missing = http(l.port(), "GET /x HTTP/1.0\r\n\r\n");
  BOOST_TEST(missing.substr(8, 5) == " 404 ", missing);

  std::string post = http(l.port(), "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
  BOOST_TEST(post.substr(8, 5) == " 405 ", post);
  BOOST_TEST(contains(post, "Allow: GET, HEAD\r\n"), post);

  // The port is taken: a second listener says so.
  Listener other([] { return std::string(); });
  std::string busy = other.start("127.0.0.1", l.port());
  BOOST_TEST(!busy.empty());
  BOOST_TEST(contains(busy, "in use"), busy);

  l.stop();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(l.port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_TEST(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0);  // stopped: nobody listens
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(listener_binds_ipv6_loopback) {
  Listener l([] { return std::string("x 1\n"); });
  std::string err = l.start("::1", 0);
  if (!err.empty() && contains(err, "Cannot assign")) {
    BOOST_TEST_MESSAGE("no IPv6 loopback here: " + err);  // a container without ::1
    return;
  }
  BOOST_REQUIRE_MESSAGE(err.empty(), err);
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<std::uint16_t>(l.port()));
  a.sin6_addr = in6addr_loopback;
  BOOST_TEST(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  ::close(fd);
}
