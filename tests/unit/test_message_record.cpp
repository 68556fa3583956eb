#define BOOST_TEST_MODULE message_record
#include <boost/test/unit_test.hpp>

#include "store/message_record.hpp"

using namespace cllavio::store;

namespace {

MessageRecord sample() {
  MessageRecord r;
  r.id = 0x0005f1a2b3c4d5e6;
  r.queue_id = "4F3A1C2B";
  r.org = "acme";
  r.identified_by = "sasl";
  r.client_addr = "192.0.2.7";
  r.client_name = "mx.acme.example";
  r.sasl_login = "alice@acme.example";
  r.sender = "alice@acme.example";
  r.recipients = {"bob@x.example", "carol@y.example"};
  r.message_id = "<abc@acme.example>";
  r.size = 12345;
  r.received_at_us = 1795919047123456;
  r.action = "accept";
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(cbor_round_trip) {
  MessageRecord r = sample();
  MessageRecord back = decode(encode(r));
  back.id = r.id;  // the id is the store key, not part of the value
  BOOST_TEST((back == r));
}

BOOST_AUTO_TEST_CASE(decode_tolerates_missing_and_extra_fields) {
  auto j = nlohmann::json{{"queue_id", "Q1"}, {"future_field", {1, 2, 3}}};
  auto bytes = nlohmann::json::to_cbor(j);
  MessageRecord r = decode(std::string(bytes.begin(), bytes.end()));
  BOOST_TEST(r.queue_id == "Q1");
  BOOST_TEST(r.recipients.empty());
  BOOST_TEST(r.size == 0u);
}

BOOST_AUTO_TEST_CASE(decode_rejects_corrupt_bytes) {
  BOOST_CHECK_THROW(decode("\xff\x00garbage"), nlohmann::json::exception);
  auto bytes = nlohmann::json::to_cbor(nlohmann::json{{"size", "not a number"}});
  BOOST_CHECK_THROW(decode(std::string(bytes.begin(), bytes.end())), nlohmann::json::exception);
}

BOOST_AUTO_TEST_CASE(display_json_formats_id_and_time) {
  auto j = display_json(sample());
  BOOST_TEST(j["id"] == "0005f1a2b3c4d5e6");
  BOOST_TEST(j["received_at"] == "2026-11-29T02:24:07.123456Z");
  BOOST_TEST(j["recipients"].size() == 2u);
  BOOST_TEST(j.begin().key() == "id");
}

BOOST_AUTO_TEST_CASE(invalid_utf8_never_breaks_output) {
  MessageRecord r = sample();
  r.message_id = "<\xff\xfe@x>";
  std::string out = display_json(r).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  BOOST_TEST(out.find("message_id") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(id_and_time_formatting) {
  BOOST_TEST(format_id(0) == "0000000000000000");
  BOOST_TEST(format_id(~0ull) == "ffffffffffffffff");
  BOOST_TEST(format_time_us(0) == "1970-01-01T00:00:00.000000Z");
  BOOST_TEST(format_time_us(-1) == "1969-12-31T23:59:59.999999Z");
}

BOOST_AUTO_TEST_CASE(tracking_outcome_round_trips_and_displays_the_link_table) {
  MessageRecord r = sample();
  r.tracking.status = "tracked";
  r.tracking.pixels = 1;
  r.tracking.links_kept = 2;
  r.tracking.per_recipient = true;
  for (std::uint32_t i = 1; i <= 500; ++i)
    r.tracking.links.push_back({i, "https://shop.example/p/" + std::to_string(i) + "?a=1&b=2"});
  MessageRecord back = decode(encode(r));
  back.id = r.id;
  BOOST_TEST((back == r));
  // Stored as parallel arrays, shown to people as objects.
  auto stored = to_json(r);
  BOOST_TEST(stored["tracking"]["link_index"].size() == 500u);
  BOOST_TEST(stored["tracking"]["link_url"][499] == "https://shop.example/p/500?a=1&b=2");
  BOOST_TEST(!stored["tracking"].contains("links"));
  auto shown = display_json(r);
  BOOST_TEST(shown["tracking"]["links"][0]["index"] == 1);
  BOOST_TEST(shown["tracking"]["links"][0]["url"] == "https://shop.example/p/1?a=1&b=2");
}

BOOST_AUTO_TEST_CASE(link_table_arrays_of_different_lengths_are_corrupt) {
  auto j = nlohmann::json{{"tracking", {{"status", "tracked"}, {"link_index", {1, 2}}, {"link_url", {"https://a.example/"}}}}};
  auto bytes = nlohmann::json::to_cbor(j);
  BOOST_CHECK_THROW(decode(std::string(bytes.begin(), bytes.end())), nlohmann::json::exception);
}

namespace {

std::string json_cbor(const MessageRecord& r) {  // how records were encoded before the one-pass writer
  auto bytes = nlohmann::json::to_cbor(to_json(r));
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

BOOST_AUTO_TEST_CASE(one_pass_encoding_is_byte_identical_to_the_json_cbor_of_older_versions) {
  // Every optional field absent and present, every integer width, strings of every
  // length class and bytes that are not UTF-8: records written by earlier versions
  // (json::to_cbor(to_json(r))) and by this one are the same bytes, so both decode alike.
  std::vector<MessageRecord> cases;
  cases.push_back(MessageRecord{});
  cases.push_back(sample());
  MessageRecord full = sample();
  full.reason = "quota";
  full.stream = "campaigns";
  full.suppressed = {"gone@example.net", std::string(300, 's')};
  full.quota_charged_at_us = 1795919047123999;
  full.quota_txn = std::string(32, 'f');
  full.list_unsubscribe = "added";
  full.message_id = std::string(70000, 'm');  // a 4-byte length
  full.sasl_login = std::string(24, 'l');     // just past the short form
  full.client_name = "bad\xff\xfe utf-8";
  full.size = 0x1'0000'0000ull;  // 8-byte integer
  full.recipient_count = 70000;
  full.tracking.status = "tracked";
  full.tracking.pixels = 1;
  full.tracking.links_kept = 300;
  full.tracking.per_recipient = true;
  full.tracking.pixel_skipped = "unclosed_markup";
  for (std::uint32_t i = 1; i <= 600; ++i)
    full.tracking.links.push_back({i * 97, "https://shop.example/p/" + std::to_string(i) + std::string(i % 40, 'x')});
  cases.push_back(full);
  MessageRecord skipped = sample();
  skipped.tracking.status = "skipped";
  skipped.tracking.skipped = "dkim_signed";
  skipped.received_at_us = -1234567;  // negative integers (before 1970)
  skipped.quota_charged_at_us = -1;
  cases.push_back(skipped);
  MessageRecord empty_links = sample();
  empty_links.tracking.status = "unchanged";
  empty_links.action = "tempfail";
  cases.push_back(empty_links);
  for (const auto& r : cases) {
    std::string bytes = encode(r);
    BOOST_TEST((bytes == json_cbor(r)));
    MessageRecord back = decode(bytes);
    back.id = r.id;
    BOOST_TEST((back == r));
    MessageRecord old = decode(json_cbor(r));  // an older record still reads
    old.id = r.id;
    BOOST_TEST((old == r));
  }
}
