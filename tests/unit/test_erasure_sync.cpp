#define BOOST_TEST_MODULE erasure_sync
#include <boost/test/unit_test.hpp>

#include <map>
#include <stdexcept>

#include "events/consent_sync.hpp"
#include "events/erasure_sync.hpp"
#include "events/signing.hpp"
#include "fake_transport.hpp"
#include "store/keys.hpp"

// Erasure requests from the API (events/erasure_sync.cpp) through the shared poller
// (events/api_poller.cpp). The erase is injected: a fake that records its calls and
// writes a marker in meta, so that the transaction it shares with the cursor shows.

using namespace cllavio;

namespace {

std::string marker(const std::string& org, const std::string& address) { return "test_erased:" + org + ":" + address; }

struct Fixture : test::ApiFixture {
  std::unique_ptr<events::ApiPoller> sync;
  conf::ApiSettings api;
  std::vector<store::EraseRequest> erased;  // the fake erase's calls, committed or not
  std::string refuse;                       // the fake erase throws for this address
  std::map<std::string, std::string> pages;  // GET url -> body (200); others: 404

  Fixture() {
    sync = std::make_unique<events::ApiPoller>(*st, transport(), log);
    sync->add(std::make_unique<events::ErasureFeed>([this](store::Tables& t, const store::EraseRequest& req) {
      erased.push_back(req);
      if (req.address == refuse) throw std::runtime_error("erase not available");
      t.meta.put(marker(req.orgs.at(0), req.address), req.source);
      store::EraseReport rep;
      rep.address = req.address;
      rep.orgs = req.orgs;
      return rep;
    }));
    sync->set_clock([] { return std::int64_t{1'800'000'000}; });
    api.url = "https://api.test";
    api.signing_secret = "0123456789abcdef-secret";
    api.org_keys = {{"acme", "acme-key"}};
    fake->answer = [this](const std::string& req) {
      auto it = pages.find(req.substr(4));  // "GET " + url
      return it == pages.end() ? events::HttpResult{404, R"({"error":"not found"})", "", -1}
                               : events::HttpResult{200, it->second, "", -1};
    };
  }
  std::string cursor(const std::string& org = "acme") {
    return st->read()->meta.get(store::keys::erasure_cursor(org)).value_or("<none>");
  }
  bool marked(const std::string& org, const std::string& address) {
    return st->read()->meta.get(marker(org, address)).has_value();
  }
  static std::string url(const std::string& org, const std::string& cursor) {
    return "https://api.test/v1/erasures?org=" + org + "&cursor=" + cursor;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(pages_are_applied_in_order_with_their_cursor, Fixture) {
  pages[url("acme", "")] =
      R"({"erasures":[{"id":"er_1","address":"Bob@Example.NET","requested_at":"2026-11-29T10:00:00Z"},)"
      R"({"id":"er_2","address":"carol@example.net","requested_at":"2026-11-29T10:01:00Z"}],"cursor":"2","more":true})";
  pages[url("acme", "2")] =
      R"({"erasures":[{"id":"er_3","address":"dave@example.net","requested_at":"2026-11-29T10:02:00Z"}],)"
      R"("cursor":"3","more":false})";
  BOOST_TEST(sync->poll(api) == 3u);
  BOOST_REQUIRE(erased.size() == 3u);
  BOOST_TEST(erased[0].address == "Bob@example.net");  // normalized as consent is
  BOOST_TEST(erased[1].address == "carol@example.net");
  BOOST_TEST(erased[2].address == "dave@example.net");
  for (const auto& e : erased) {
    BOOST_TEST((e.orgs == std::vector<std::string>{"acme"}));
    BOOST_TEST(!e.all_orgs);
    BOOST_TEST(e.actor == "api");
    BOOST_TEST(e.source == "api");
  }
  BOOST_TEST(marked("acme", "Bob@example.net"));
  BOOST_TEST(marked("acme", "dave@example.net"));
  BOOST_TEST(cursor() == "3");
  BOOST_REQUIRE(calls.size() == 2u);  // more=true: the next page at once; more=false: done
  BOOST_TEST(calls[0].url == url("acme", ""));
  BOOST_TEST(calls[1].url == url("acme", "2"));
  BOOST_TEST(logs.back().find("erasure sync for acme: 1 erasure request(s) applied") != std::string::npos);

  // The next poll continues from the cursor; a page that leaves it there writes nothing.
  pages[url("acme", "3")] = R"({"erasures":[],"cursor":"3","more":false})";
  BOOST_TEST(sync->poll(api) == 0u);
  BOOST_TEST(calls.back().url == url("acme", "3"));
  BOOST_TEST(erased.size() == 3u);
}

BOOST_FIXTURE_TEST_CASE(without_more_a_page_with_requests_is_followed_at_once, Fixture) {
  pages[url("acme", "")] = R"({"erasures":[{"id":"1","address":"a@x.example"}],"cursor":"1"})";
  pages[url("acme", "1")] = R"({"erasures":[],"cursor":"1"})";
  BOOST_TEST(sync->poll(api) == 1u);
  BOOST_TEST(calls.size() == 2u);
  BOOST_TEST(cursor() == "1");
}

BOOST_FIXTURE_TEST_CASE(an_empty_page_that_moves_the_cursor_stores_it, Fixture) {
  pages[url("acme", "")] = R"({"erasures":[],"cursor":"9","more":false})";
  BOOST_TEST(sync->poll(api) == 0u);
  BOOST_TEST(cursor() == "9");
  BOOST_TEST(erased.empty());
}

BOOST_FIXTURE_TEST_CASE(a_page_that_does_not_move_the_cursor_is_not_asked_for_again, Fixture) {
  // A server that keeps answering more=true with the same cursor: one page, applied once.
  pages[url("acme", "")] = R"({"erasures":[{"address":"a@x.example"}],"cursor":"","more":true})";
  BOOST_TEST(sync->poll(api) == 1u);
  BOOST_TEST(calls.size() == 1u);
  BOOST_TEST(erased.size() == 1u);
}

BOOST_FIXTURE_TEST_CASE(malformed_requests_are_skipped_and_counted, Fixture) {
  pages[url("acme", "")] =
      R"({"erasures":[42,{"id":"no-address"},{"id":"bad","address":"not an address"},{"address":7},)"
      R"({"address":"ok@x.example"}],"cursor":"1","more":false})";
  BOOST_TEST(sync->poll(api) == 1u);
  BOOST_REQUIRE(erased.size() == 1u);
  BOOST_TEST(erased[0].address == "ok@x.example");
  BOOST_TEST(cursor() == "1");
  bool counted = false;
  for (const auto& l : logs) counted |= l.find("erasure sync for acme: skipped 4 malformed erasure request(s)") != std::string::npos;
  BOOST_TEST(counted);
}

BOOST_FIXTURE_TEST_CASE(a_malformed_page_is_logged_and_leaves_the_cursor, Fixture) {
  st->write([](store::Tables& t) { t.meta.put(store::keys::erasure_cursor("acme"), "5"); });
  for (const char* body : {"<html>oops", R"({"erasures":[{"address":"a@x.example"}]})",
                           R"({"erasures":{"address":"a@x.example"},"cursor":"6"})",
                           R"({"erasures":[{"address":"a@x.example"}],"cursor":6})",
                           R"({"erasures":[{"address":"a@x.example"}],"cursor":"6","more":"yes"})"}) {
    pages[url("acme", "5")] = body;
    logs.clear();
    BOOST_TEST(sync->poll(api) == 0u);
    BOOST_TEST(cursor() == "5");
    BOOST_TEST(erased.empty());
    BOOST_REQUIRE(!logs.empty());
    BOOST_TEST(logs.back().find("erasure sync for acme: unreadable answer") != std::string::npos);
  }
}

BOOST_FIXTURE_TEST_CASE(http_errors_leave_the_cursor, Fixture) {
  fake->answer = [](const std::string&) { return events::HttpResult{503, "busy", "", -1}; };
  BOOST_TEST(sync->poll(api) == 0u);
  BOOST_TEST(cursor() == "<none>");
  BOOST_TEST(logs.back().find("erasure sync for acme: HTTP 503") != std::string::npos);
  fake->answer = [](const std::string&) { return events::HttpResult{0, "", "connection refused", -1}; };
  BOOST_TEST(sync->poll(api) == 0u);
  BOOST_TEST(cursor() == "<none>");
  BOOST_TEST(erased.empty());
}

BOOST_FIXTURE_TEST_CASE(a_refused_erase_rolls_the_whole_page_back, Fixture) {
  pages[url("acme", "")] =
      R"({"erasures":[{"address":"a@x.example"},{"address":"b@x.example"}],"cursor":"1","more":false})";
  refuse = "b@x.example";
  BOOST_TEST(sync->poll(api) == 0u);
  BOOST_TEST(erased.size() == 2u);
  BOOST_TEST(!marked("acme", "a@x.example"));  // written before the refusal, in the same transaction
  BOOST_TEST(cursor() == "<none>");
  BOOST_TEST(logs.back().find("erasure sync for acme: erase not available") != std::string::npos);
  refuse.clear();  // the next poll applies the page again, whole
  BOOST_TEST(sync->poll(api) == 2u);
  BOOST_TEST(marked("acme", "a@x.example"));
  BOOST_TEST(marked("acme", "b@x.example"));
  BOOST_TEST(cursor() == "1");
}

BOOST_FIXTURE_TEST_CASE(each_org_is_asked_with_its_own_key_and_signed, Fixture) {
  api.org_keys = {{"acme", "acme-key"}, {"globex co", "globex-key"}};
  pages[url("acme", "")] = R"({"erasures":[{"address":"a@x.example"}],"cursor":"1","more":false})";
  pages[url("globex%20co", "")] = R"({"erasures":[{"address":"g@x.example"}],"cursor":"7","more":false})";
  BOOST_TEST(sync->poll(api) == 2u);
  BOOST_REQUIRE(calls.size() == 2u);  // only orgs with a key are asked
  BOOST_TEST(calls[0].url == url("acme", ""));
  BOOST_TEST(header(calls[0], "Authorization") == "Bearer acme-key");
  BOOST_TEST(calls[1].url == url("globex%20co", ""));
  BOOST_TEST(header(calls[1], "Authorization") == "Bearer globex-key");
  for (const auto& c : calls) {
    BOOST_TEST(header(c, "Cllavio-Signature") == events::signature(api.signing_secret, 1'800'000'000, ""));
    BOOST_TEST(header(c, "Accept") == "application/json");
  }
  BOOST_TEST(marked("acme", "a@x.example"));
  BOOST_TEST(marked("globex co", "g@x.example"));
  BOOST_TEST(!marked("acme", "g@x.example"));
  BOOST_TEST(cursor("acme") == "1");
  BOOST_TEST(cursor("globex co") == "7");
  // No url, no poll.
  api.url.clear();
  BOOST_TEST(sync->poll(api) == 0u);
  BOOST_TEST(calls.size() == 2u);
}

BOOST_FIXTURE_TEST_CASE(consent_and_erasures_share_one_poll, Fixture) {
  sync->add(std::make_unique<events::ConsentFeed>());
  pages[url("acme", "")] = R"({"erasures":[],"cursor":"","more":false})";
  pages["https://api.test/v1/orgs/acme/consent?cursor="] =
      R"({"changes":[{"address":"c@x.example","state":"unsubscribed"}],"cursor":"4","more":false})";
  BOOST_TEST(sync->poll(api) == 1u);
  BOOST_REQUIRE(calls.size() == 2u);
  BOOST_TEST(calls[0].url == url("acme", ""));  // in the order the feeds were added
  BOOST_TEST(calls[1].url == "https://api.test/v1/orgs/acme/consent?cursor=");
  BOOST_TEST(header(calls[1], "Cllavio-Signature") == events::signature(api.signing_secret, 1'800'000'000, ""));
  BOOST_TEST(st->read()->consent.cursor("acme") == "4");
  BOOST_TEST(cursor() == "<none>");  // the feeds keep their own cursors
  // A failing feed does not stop the other.
  pages.erase(url("acme", ""));
  pages["https://api.test/v1/orgs/acme/consent?cursor=4"] =
      R"({"changes":[{"address":"d@x.example","state":"unsubscribed"}],"cursor":"5","more":false})";
  BOOST_TEST(sync->poll(api) == 1u);
  BOOST_TEST(st->read()->consent.cursor("acme") == "5");
}

BOOST_AUTO_TEST_CASE(erasure_pages) {
  auto page = events::parse_erasure_page(
      R"({"erasures":[{"id":"er_1","address":"A@B.EXAMPLE","requested_at":"2026-11-29T10:00:00Z"},)"
      R"({"address":"x"},{"id":"er_3"},"a@b.example",{"id":5,"address":"c@d.example","requested_at":1}],)"
      R"("cursor":"7","more":true})");
  BOOST_REQUIRE(page.has_value());
  BOOST_REQUIRE(page->requests.size() == 2u);
  BOOST_TEST(page->requests[0].id == "er_1");
  BOOST_TEST(page->requests[0].address == "A@b.example");
  BOOST_TEST(page->requests[0].requested_at == "2026-11-29T10:00:00Z");
  BOOST_TEST(page->requests[1].id == "");  // id and time are informative: still applied
  BOOST_TEST(page->requests[1].address == "c@d.example");
  BOOST_TEST(page->skipped == 3u);
  BOOST_TEST(page->cursor == "7");
  BOOST_TEST((page->more == std::optional<bool>(true)));
  BOOST_TEST(!events::parse_erasure_page(R"({"erasures":[],"cursor":"1"})")->more.has_value());
  BOOST_TEST(!events::parse_erasure_page("<html>oops").has_value());
  BOOST_TEST(!events::parse_erasure_page(R"({"erasures":[]})").has_value());
  BOOST_TEST(!events::parse_erasure_page(R"({"changes":[],"cursor":"1"})").has_value());
  BOOST_TEST(!events::parse_erasure_page(R"({"erasures":[],"cursor":"1","more":1})").has_value());
  BOOST_TEST(!events::parse_consent_page(R"({"changes":[],"cursor":"1","more":"no"})").has_value());
  BOOST_TEST((events::parse_consent_page(R"({"changes":[],"cursor":"1","more":false})")->more == std::optional<bool>(false)));
}
