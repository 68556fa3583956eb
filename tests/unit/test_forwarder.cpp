#define BOOST_TEST_MODULE forwarder
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "events/forwarder.hpp"
#include "events/signing.hpp"
#include "fake_transport.hpp"
#include "tmpdir.hpp"

using namespace cllavio;
using cllavio::test::TmpDir;
using cllavio::test::FakeTransport;

namespace {

struct Fixture : test::ApiFixture {
  std::unique_ptr<events::Forwarder> fwd;
  conf::ApiSettings api;

  Fixture() {
    fwd = std::make_unique<events::Forwarder>(*st, transport(), log);
    api.url = "https://api.test";
    api.batch_max = 3;
    api.signing_secret = "0123456789abcdef-secret";
    api.org_keys = {{"acme", "acme-key"}, {"globex", "globex-key"}};
  }

  void queue(const std::string& org, int n, int first = 0) {
    for (int i = first; i < first + n; ++i)
      st->write([&](store::Tables& t) {
        t.outbox.put(org, nlohmann::json{{"id", org + "-" + std::to_string(i)}, {"org", org}}.dump(), 1 << 20);
      });
  }
  store::OutboxStats stats() const { return st->read()->outbox.stats(); }
  events::SendReport send(std::int64_t now_s) {
    fwd->set_clock([now_s] { return now_s; });
    return fwd->send_pending(api);
  }
  static std::vector<std::string> ids(const std::string& body) {
    std::vector<std::string> out;
    const auto j = nlohmann::json::parse(body);  // (a range-for over parse(...)["events"] would dangle)
    for (const auto& e : j["events"]) out.push_back(e["id"].get<std::string>());
    return out;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(batches_per_org_in_order_signed_and_acked, Fixture) {
  queue("acme", 4);
  queue("globex", 1);
  auto rep = send(1'790'000'000);
  BOOST_TEST(rep.delivered == 5u);
  BOOST_TEST(!rep.retry);
  BOOST_REQUIRE(calls.size() == 3u);  // acme 3 + 1, globex 1
  BOOST_TEST(calls[0].url == "https://api.test/v1/events");
  BOOST_TEST(ids(calls[0].body) == (std::vector<std::string>{"acme-0", "acme-1", "acme-2"}));
  BOOST_TEST(ids(calls[1].body) == std::vector<std::string>{"acme-3"});
  BOOST_TEST(header(calls[0], "Authorization") == "Bearer acme-key");
  BOOST_TEST(header(calls[2], "Authorization") == "Bearer globex-key");
  BOOST_TEST(header(calls[0], "Cllavio-Signature") == events::signature(api.signing_secret, 1'790'000'000, calls[0].body));
  BOOST_TEST(header(calls[0], "Cllavio-Signature").rfind("t=1790000000,v1=", 0) == 0);
  BOOST_TEST(stats().queued == 0u);
}

BOOST_FIXTURE_TEST_CASE(server_errors_keep_the_batch_for_a_retry_with_the_same_key, Fixture) {
  queue("acme", 2);
  fake->answer = [](const std::string&) { return events::HttpResult{429, "slow down", "", 7}; };
  auto rep = send(1);
  BOOST_TEST(rep.retry);
  BOOST_TEST(rep.retry_after_s == 7);
  BOOST_TEST(stats().queued == 2u);
  fake->answer = [](const std::string&) { return events::HttpResult{0, "", "Connection refused", -1}; };
  BOOST_TEST(send(2).retry);
  fake->answer = [](const std::string&) { return events::HttpResult{200, "", "", -1}; };
  BOOST_TEST(send(3).delivered == 2u);
  BOOST_REQUIRE(calls.size() == 3u);
  BOOST_TEST(header(calls[0], "Idempotency-Key") == header(calls[2], "Idempotency-Key"));  // the same batch
  BOOST_TEST(header(calls[0], "Idempotency-Key").size() == 32u);
}

BOOST_FIXTURE_TEST_CASE(authentication_failures_are_retried_not_buried, Fixture) {
  queue("acme", 3);
  fake->answer = [](const std::string&) { return events::HttpResult{401, "bad signature", "", -1}; };
  auto rep = send(1);
  BOOST_TEST(rep.retry);
  BOOST_TEST(rep.buried == 0u);
  BOOST_TEST(calls.size() == 1u);  // no splitting: it is not about one event
  BOOST_TEST(stats().queued == 3u);
  BOOST_TEST(stats().dead == 0u);
}

BOOST_FIXTURE_TEST_CASE(each_request_is_signed_when_it_is_sent, Fixture) {
  queue("acme", 6);
  std::int64_t t = 1000;
  fwd->set_clock([&t] { return t++; });  // a slow drain: the clock moves between requests
  BOOST_TEST(fwd->send_pending(api).delivered == 6u);
  BOOST_REQUIRE(calls.size() == 2u);
  BOOST_TEST(header(calls[0], "Cllavio-Signature").rfind("t=1000,", 0) == 0);
  BOOST_TEST(header(calls[1], "Cllavio-Signature").rfind("t=1001,", 0) == 0);
}

BOOST_FIXTURE_TEST_CASE(a_refused_event_is_isolated_and_buried, Fixture) {
  api.batch_max = 8;
  queue("acme", 5);
  fake->answer = [](const std::string& body) {
    return body.find("\"acme-3\"") != std::string::npos ? events::HttpResult{422, "bad event acme-3", "", -1}
                                                          : events::HttpResult{200, "", "", -1};
  };
  auto rep = send(1);
  BOOST_TEST(rep.delivered == 4u);
  BOOST_TEST(rep.buried == 1u);
  auto dead = st->read()->outbox.list(true, 10);
  BOOST_REQUIRE(dead.size() == 1u);
  BOOST_TEST(dead[0].json.find("acme-3") != std::string::npos);
  BOOST_TEST(dead[0].json.find("HTTP 422: bad event acme-3") != std::string::npos);
  BOOST_TEST(stats().queued == 0u);
  BOOST_TEST(stats().dead == 1u);
  // Retried on request, in its old place.
  std::size_t again = 0;
  st->write([&](store::Tables& t) { again = t.outbox.retry_dead(); });
  BOOST_TEST(again == 1u);
  fake->answer = [](const std::string&) { return events::HttpResult{200, "", "", -1}; };
  BOOST_TEST(send(2).delivered == 1u);
  BOOST_TEST(stats().dead == 0u);
}

BOOST_FIXTURE_TEST_CASE(orgs_without_a_key_wait_and_a_full_outbox_drops_new_events, Fixture) {
  queue("initech", 2);
  BOOST_TEST(send(1).delivered == 0u);
  BOOST_TEST(calls.empty());
  BOOST_TEST(logs.size() == 1u);
  BOOST_TEST(stats().queued == 2u);
  api.url.clear();  // no API configured: nothing is sent
  queue("acme", 1);
  BOOST_TEST(send(1).delivered == 0u);
  // Bounded: an event that does not fit is counted as dropped; nothing stored goes.
  bool stored = true;
  st->write([&](store::Tables& t) { stored = t.outbox.put("acme", std::string(200, 'x'), 100); });
  BOOST_TEST(!stored);
  BOOST_TEST(stats().dropped == 1u);
  BOOST_TEST(stats().queued == 3u);
}

BOOST_AUTO_TEST_CASE(retry_after) {
  BOOST_TEST(events::parse_retry_after(" 120\r\n", 0) == 120);
  BOOST_TEST(events::parse_retry_after("99999999", 0) == 86400);
  BOOST_TEST(events::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111717) == 60);
  BOOST_TEST(events::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 884111717) == 0);  // in the past
  BOOST_TEST(events::parse_retry_after("soon", 0) == -1);
}

// observe_transport: every answer, failures included, is shown after the request and passed on unchanged.
BOOST_AUTO_TEST_CASE(observed_transport_shows_every_answer) {
  std::vector<FakeTransport::Call> calls;
  auto fake = std::make_unique<FakeTransport>();
  fake->calls = &calls;
  int n = 0;
  fake->answer = [&n](const std::string&) {
    events::HttpResult r;
    if (++n == 2) {
      r.error = "connection refused";  // no HTTP answer
    } else {
      r.status = n == 1 ? 202 : 503;
    }
    return r;
  };
  std::vector<long> seen;
  auto t = events::observe_transport(std::move(fake), [&](const events::HttpResult& r) { seen.push_back(r.status); });
  conf::ApiSettings api;
  BOOST_TEST(t->post("https://api.example/v1/events", {}, "[]", api).status == 202);
  events::HttpResult failed = t->get("https://api.example/v1/consent", {}, api);
  BOOST_TEST(failed.status == 0);
  BOOST_TEST(failed.error == "connection refused");
  BOOST_TEST(t->post("https://api.example/v1/events", {}, "[]", api).status == 503);
  BOOST_TEST(calls.size() == 3u);
  std::vector<long> want{202, 0, 503};
  BOOST_TEST(seen == want, boost::test_tools::per_element());
}
