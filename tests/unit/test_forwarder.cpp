#define BOOST_TEST_MODULE forwarder
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "events/event.hpp"
#include "events/forwarder.hpp"
#include "tmpdir.hpp"

using namespace cllavio;
using cllavio::test::TmpDir;

namespace {

// Answers from a script; records every request.
struct FakeTransport : events::Transport {
  struct Call {
    std::string url, body;
    std::vector<std::string> headers;
  };
  std::vector<Call>* calls;
  std::function<events::HttpResult(const std::string& body)> answer;
  events::HttpResult post(const std::string& url, const std::vector<std::string>& headers, const std::string& body,
                          const conf::ApiSettings&) override {
    calls->push_back({url, body, headers});
    return answer(body);
  }
  events::HttpResult get(const std::string& url, const std::vector<std::string>& headers,
                         const conf::ApiSettings&) override {
    calls->push_back({url, "", headers});
    return answer("GET " + url);
  }
};

struct Fixture {
  TmpDir dir;
  std::unique_ptr<store::Store> st;
  std::unique_ptr<store::Outbox> outbox;
  std::vector<FakeTransport::Call> calls;
  FakeTransport* fake = nullptr;
  std::unique_ptr<events::Forwarder> fwd;
  std::vector<std::string> logs;
  conf::ApiSettings api;

  Fixture() {
    store::StoreOptions o;
    o.dir = dir / "store";
    o.map_size_mb = 8;
    st = std::make_unique<store::Store>(o);
    outbox = std::make_unique<store::Outbox>(*st);
    auto t = std::make_unique<FakeTransport>();
    fake = t.get();
    fake->calls = &calls;
    fake->answer = [](const std::string&) { return events::HttpResult{200, "{}", "", -1}; };
    fwd = std::make_unique<events::Forwarder>(*outbox, std::move(t),
                                              [this](int, const std::string& l) { logs.push_back(l); });
    api.url = "https://api.test";
    api.batch_max = 3;
    api.signing_secret = "0123456789abcdef-secret";
    api.org_keys = {{"acme", "acme-key"}, {"globex", "globex-key"}};
  }

  void queue(const std::string& org, int n, int first = 0) {
    for (int i = first; i < first + n; ++i) {
      store::MessageRecord r;
      r.org = org;
      r.action = "accept";
      st->append(r, [&](store::lmdb::Txn& txn) {
        outbox->put(txn, org, nlohmann::json{{"id", org + "-" + std::to_string(i)}, {"org", org}}.dump(), 1 << 20);
      });
    }
  }
  events::SendReport send(std::int64_t now_s) {
    fwd->set_clock([now_s] { return now_s; });
    return fwd->send_pending(api);
  }
  static std::string header(const FakeTransport::Call& c, const std::string& name) {
    for (const auto& h : c.headers)
      if (h.rfind(name + ": ", 0) == 0) return h.substr(name.size() + 2);
    return {};
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
  BOOST_TEST(outbox->stats().queued == 0u);
}

BOOST_FIXTURE_TEST_CASE(server_errors_keep_the_batch_for_a_retry_with_the_same_key, Fixture) {
  queue("acme", 2);
  fake->answer = [](const std::string&) { return events::HttpResult{429, "slow down", "", 7}; };
  auto rep = send(1);
  BOOST_TEST(rep.retry);
  BOOST_TEST(rep.retry_after_s == 7);
  BOOST_TEST(outbox->stats().queued == 2u);
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
  BOOST_TEST(outbox->stats().queued == 3u);
  BOOST_TEST(outbox->stats().dead == 0u);
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
  auto dead = outbox->list(true, 10);
  BOOST_REQUIRE(dead.size() == 1u);
  BOOST_TEST(dead[0].json.find("acme-3") != std::string::npos);
  BOOST_TEST(dead[0].json.find("HTTP 422: bad event acme-3") != std::string::npos);
  BOOST_TEST(outbox->stats().queued == 0u);
  BOOST_TEST(outbox->stats().dead == 1u);
  // Retried on request, in its old place.
  BOOST_TEST(outbox->retry_dead() == 1u);
  fake->answer = [](const std::string&) { return events::HttpResult{200, "", "", -1}; };
  BOOST_TEST(send(2).delivered == 1u);
  BOOST_TEST(outbox->stats().dead == 0u);
}

BOOST_FIXTURE_TEST_CASE(orgs_without_a_key_wait_and_a_full_outbox_drops_new_events, Fixture) {
  queue("initech", 2);
  BOOST_TEST(send(1).delivered == 0u);
  BOOST_TEST(calls.empty());
  BOOST_TEST(logs.size() == 1u);
  BOOST_TEST(outbox->stats().queued == 2u);
  api.url.clear();  // no API configured: nothing is sent
  queue("acme", 1);
  BOOST_TEST(send(1).delivered == 0u);
  // Bounded: an event that does not fit is counted as dropped; nothing stored goes.
  store::MessageRecord r;
  r.org = "acme";
  bool stored = true;
  st->append(r, [&](store::lmdb::Txn& txn) { stored = outbox->put(txn, "acme", std::string(200, 'x'), 100); });
  BOOST_TEST(!stored);
  BOOST_TEST(outbox->stats().dropped == 1u);
  BOOST_TEST(outbox->stats().queued == 3u);
}

BOOST_AUTO_TEST_CASE(events_from_records) {
  store::MessageRecord r;
  r.id = 0x0006616200000001;
  r.org = "acme";
  r.action = "accept";
  r.queue_id = "Q1";
  r.sender = "news@acme.example";
  r.recipients = {"a@x.example"};
  r.recipient_count = 1;
  r.stream = "campaigns";
  r.tracking.status = "tracked";
  r.tracking.pixels = 1;
  r.tracking.links = {{1, "https://x.example/a"}};
  auto e = events::from_record(r);
  BOOST_REQUIRE(e.has_value());
  auto j = events::to_json(*e);
  BOOST_TEST(j["id"] == "evt_0006616200000001_accepted");
  BOOST_TEST(j["type"] == "message.accepted");
  BOOST_TEST(j["message"]["stream"] == "campaigns");
  BOOST_TEST(j["tracking"]["pixel"] == true);
  BOOST_TEST(j["tracking"]["tokens"][0]["url"] == "https://x.example/a");
  BOOST_TEST(j.dump().find("Subject") == std::string::npos);
  r.action = "tempfail";
  r.reason = "quota";
  BOOST_TEST(events::to_json(*events::from_record(r))["reason"] == "quota");
  r.reason = "store_error";
  BOOST_TEST(!events::from_record(r).has_value());  // the client retries; the retry is the event
  r.org.clear();
  r.action = "accept";
  BOOST_TEST(!events::from_record(r).has_value());
}

BOOST_FIXTURE_TEST_CASE(consent_changes_from_the_api_are_applied_with_their_cursor, Fixture) {
  store::PolicyStore ps(*st);
  fake->answer = [](const std::string& req) {
    if (req.ends_with("cursor="))  // the first poll: no cursor yet
      return events::HttpResult{200,
                                R"({"changes":[{"address":"Bob@Example.NET","state":"unsubscribed",)"
                                R"("at":"2026-11-29T10:00:00Z","source":"unsubscribe"},)"
                                R"({"address":"bad","state":"granted"}],"cursor":"2"})",
                                "", -1};
    return events::HttpResult{200, R"({"changes":[],"cursor":"2"})", "", -1};
  };
  api.org_keys = {{"acme", "acme-key"}};
  BOOST_TEST(fwd->poll_consent(api, ps) == 1u);
  auto c = ps.consent("acme", "Bob@example.net");
  BOOST_TEST((c.state == policy::ConsentState::unsubscribed));
  BOOST_TEST(c.source == "unsubscribe");
  BOOST_TEST(ps.consent_cursor("acme") == "2");
  BOOST_REQUIRE(calls.size() == 2u);  // a page with changes: the next page is asked for at once
  BOOST_TEST(calls[0].url == "https://api.test/v1/orgs/acme/consent?cursor=");
  BOOST_TEST(header(calls[0], "Authorization") == "Bearer acme-key");
  BOOST_TEST(calls[1].url == "https://api.test/v1/orgs/acme/consent?cursor=2");
  BOOST_TEST(fwd->poll_consent(api, ps) == 0u);  // continues from the cursor
  BOOST_TEST(calls[2].url == "https://api.test/v1/orgs/acme/consent?cursor=2");
  fake->answer = [](const std::string&) { return events::HttpResult{200, "<html>oops", "", -1}; };
  BOOST_TEST(fwd->poll_consent(api, ps) == 0u);  // unreadable: logged, nothing changes
  BOOST_TEST(ps.consent_cursor("acme") == "2");
}

BOOST_AUTO_TEST_CASE(retry_after_and_consent_pages) {
  BOOST_TEST(events::parse_retry_after(" 120\r\n", 0) == 120);
  BOOST_TEST(events::parse_retry_after("99999999", 0) == 86400);
  BOOST_TEST(events::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111717) == 60);
  BOOST_TEST(events::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 884111717) == 0);  // in the past
  BOOST_TEST(events::parse_retry_after("soon", 0) == -1);
  auto page = events::parse_consent_page(
      R"({"changes":[{"address":"A@B.EXAMPLE","state":"granted"},{"address":"x","state":"granted"},)"
      R"({"address":"c@d.example","state":"maybe"},42],"cursor":"7"})");
  BOOST_REQUIRE(page.has_value());
  BOOST_TEST(page->changes.size() == 1u);
  BOOST_TEST(page->changes[0].address == "A@b.example");
  BOOST_TEST(page->skipped == 3u);
  BOOST_TEST(page->cursor == "7");
  BOOST_TEST(!events::parse_consent_page("<html>oops").has_value());
  BOOST_TEST(!events::parse_consent_page(R"({"changes":[]})").has_value());
}
