#define BOOST_TEST_MODULE consent_sync
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "events/consent_sync.hpp"
#include "fake_transport.hpp"

// Consent changes made at Cllavio, brought back into the store (events/consent_sync.cpp).

using namespace cllavio;

namespace {

struct Fixture : test::ApiFixture {
  std::unique_ptr<events::ConsentSync> sync;
  conf::ApiSettings api;
  Fixture() {
    sync = std::make_unique<events::ConsentSync>(*st, transport(), log);
    api.url = "https://api.test";
    api.org_keys = {{"acme", "acme-key"}};
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(consent_changes_from_the_api_are_applied_with_their_cursor, Fixture) {
  fake->answer = [](const std::string& req) {
    if (req.ends_with("cursor="))  // the first poll: no cursor yet
      return events::HttpResult{200,
                                R"({"changes":[{"address":"Bob@Example.NET","state":"unsubscribed",)"
                                R"("at":"2026-11-29T10:00:00Z","source":"unsubscribe"},)"
                                R"({"address":"bad","state":"granted"}],"cursor":"2"})",
                                "", -1};
    return events::HttpResult{200, R"({"changes":[],"cursor":"2"})", "", -1};
  };
  BOOST_TEST(sync->poll(api) == 1u);
  auto c = st->read()->consent.get("acme", "Bob@example.net");
  BOOST_TEST((c.state == policy::ConsentState::unsubscribed));
  BOOST_TEST(c.source == "unsubscribe");
  BOOST_TEST(st->read()->consent.cursor("acme") == "2");
  BOOST_REQUIRE(calls.size() == 2u);  // a page with changes: the next page is asked for at once
  BOOST_TEST(calls[0].url == "https://api.test/v1/orgs/acme/consent?cursor=");
  BOOST_TEST(header(calls[0], "Authorization") == "Bearer acme-key");
  BOOST_TEST(calls[1].url == "https://api.test/v1/orgs/acme/consent?cursor=2");
  BOOST_TEST(sync->poll(api) == 0u);  // continues from the cursor
  BOOST_TEST(calls[2].url == "https://api.test/v1/orgs/acme/consent?cursor=2");
  fake->answer = [](const std::string&) { return events::HttpResult{200, "<html>oops", "", -1}; };
  BOOST_TEST(sync->poll(api) == 0u);  // unreadable: logged, nothing changes
  BOOST_TEST(st->read()->consent.cursor("acme") == "2");
  BOOST_TEST(logs.back().find("unreadable answer") != std::string::npos);
  // Changes from the API are audited as the API's and queue no events back to it.
  std::size_t api_entries = 0;
  st->read()->audit.scan(0, [&](const store::AuditEntry& e) { return api_entries += e.actor == "api", true; });
  BOOST_TEST(api_entries == 2u);  // the change and the page
  BOOST_TEST(st->read()->outbox.stats().queued == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_change_without_a_time_counts_as_now, Fixture) {
  sync->set_clock([] { return std::int64_t{1'800'000'000}; });
  fake->answer = [](const std::string& req) {
    if (req.ends_with("cursor="))
      return events::HttpResult{200, R"({"changes":[{"address":"a@x.example","state":"granted"}],"cursor":"1"})",
                                "", -1};
    return events::HttpResult{200, R"({"changes":[],"cursor":"1"})", "", -1};
  };
  BOOST_TEST(sync->poll(api) == 1u);
  BOOST_TEST(st->read()->consent.get("acme", "a@x.example").at_us == 1'800'000'000'000'000);
}

BOOST_FIXTURE_TEST_CASE(the_thread_polls_on_its_own_and_stops, Fixture) {
  auto cfg = std::make_shared<conf::Config>();
  cfg->api = api;
  cfg->api.consent_poll_s = 1;
  std::shared_ptr<const conf::Config> current = cfg;
  std::atomic<int> polls{0};
  fake->answer = [&](const std::string&) {
    ++polls;
    return events::HttpResult{200, R"({"changes":[],"cursor":""})", "", -1};
  };
  sync->start([&] { return current; });
  for (int i = 0; i < 500 && polls == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  sync->stop();  // returns although the next poll is a second away
  BOOST_TEST(polls > 0);
}

BOOST_AUTO_TEST_CASE(consent_pages) {
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
