#define BOOST_TEST_MODULE url
#include <boost/test/unit_test.hpp>

#include "tracking/url.hpp"

using namespace cllavio::tracking;

namespace {

std::string why(std::string_view url, std::vector<std::string> unsub = {}) {
  UrlContext ctx{"t.acme.example", &unsub, "utf-8"};
  return std::string(to_string(classify_url(url, ctx)));
}

std::string in_charset(std::string_view charset, std::string_view url) {
  UrlContext ctx{"t.acme.example", nullptr, charset};
  return std::string(to_string(classify_url(url, ctx)));
}

}  // namespace

BOOST_AUTO_TEST_CASE(what_is_tracked_and_why_not) {
  BOOST_TEST(why("https://www.example.com/a?b=1#c") == "none");
  BOOST_TEST(why("HTTP://Example.com") == "none");
  BOOST_TEST(why("mailto:a@b.example") == "scheme");
  BOOST_TEST(why("tel:+123") == "scheme");
  BOOST_TEST(why("sms:+123") == "scheme");
  BOOST_TEST(why("cid:logo@acme") == "scheme");
  BOOST_TEST(why("data:image/png;base64,AAAA") == "scheme");
  BOOST_TEST(why("javascript:alert(1)") == "scheme");
  BOOST_TEST(why("ftp://x.example/") == "scheme");
  BOOST_TEST(why("#top") == "fragment");
  BOOST_TEST(why("/relative/path") == "relative");
  BOOST_TEST(why("page.html?x=1:2") == "relative");
  BOOST_TEST(why("//cdn.example/x") == "relative");
  BOOST_TEST(why("") == "relative");
  BOOST_TEST(why("https://") == "unparsable");
  BOOST_TEST(why("https://bad host/") == "unparsable");
  BOOST_TEST(why("https://x.example:80a/") == "unparsable");
  BOOST_TEST(why("{{action_url}}") == "placeholder");
  BOOST_TEST(why("https://x.example/?u=*|UNSUB|*") == "placeholder");
  BOOST_TEST(why("https://x.example/{%url%}") == "placeholder");
  // Every template pair, anywhere in the URL; the single characters are ordinary.
  for (std::string p : {"{{", "}}", "{%", "%}", "*|", "|*", "[[", "]]", "<%", "%%", "${"}) {
    BOOST_TEST(why("https://x.example/a" + p + "b") == "placeholder", p);
    BOOST_TEST(why("https://x.example/" + p) == "placeholder", p);
  }
  BOOST_TEST(why("https://x.example/{a}[b]*c|d%20$e<f") == "none");
  BOOST_TEST(why("https://x.example/a{") == "none");
  BOOST_TEST(why("https://T.Acme.Example/c/abc") == "tracking_domain");
  BOOST_TEST(why("https://x.example/unsub", {"https://x.example/unsub"}) == "unsubscribe");
  BOOST_TEST(why("https://x.example/" + std::string(4096, 'a')) == "too_long");
  BOOST_TEST(why("https://x.example/" + std::string(4000, 'a')) == "none");
}

BOOST_AUTO_TEST_CASE(eight_bit_destinations_only_as_utf8_in_utf8_parts) {
  const std::string utf8_path = "https://x.example/caf\xc3\xa9?q=\xe4\xb8\xad";  // café, 中
  BOOST_TEST(in_charset("utf-8", utf8_path) == "none");
  BOOST_TEST(in_charset("utf8", utf8_path) == "none");
  BOOST_TEST(in_charset("utf-8", "https://\xc3\xa9x.example/") == "none");  // a raw IDN host
  // Another charset (or none: US-ASCII) reads the same bytes as other characters.
  BOOST_TEST(in_charset("windows-1251", "https://x.example/\xcf\xf0\xe8?q=\xe2") == "non_utf8_url");
  BOOST_TEST(in_charset("big5", "https://x.example/?q=\xa4\xa4") == "non_utf8_url");
  BOOST_TEST(in_charset("iso-8859-1", utf8_path) == "non_utf8_url");  // valid UTF-8, but not what a browser sees
  BOOST_TEST(in_charset("", utf8_path) == "non_utf8_url");
  BOOST_TEST(in_charset("us-ascii", utf8_path) == "non_utf8_url");
  // Declared UTF-8 but not: a browser would show U+FFFD.
  BOOST_TEST(in_charset("utf-8", "https://x.example/\xcf\xf0") == "non_utf8_url");
  BOOST_TEST(in_charset("utf-8", "https://x.example/\xc0\xaf") == "non_utf8_url");        // overlong '/'
  BOOST_TEST(in_charset("utf-8", "https://x.example/\xed\xa0\x80") == "non_utf8_url");    // surrogate
  BOOST_TEST(in_charset("utf-8", "https://x.example/\xe4\xb8") == "non_utf8_url");        // truncated
  // ASCII destinations do not depend on the charset, percent-encoded bytes included.
  BOOST_TEST(in_charset("windows-1251", "https://x.example/%CF%F0?q=%E2") == "none");
  BOOST_TEST(in_charset("", "https://x.example/a") == "none");
  // The other reasons come first.
  BOOST_TEST(in_charset("big5", "mailto:\xa4\xa4@x.example") == "scheme");
  BOOST_TEST(in_charset("big5", "#\xa4\xa4") == "fragment");
}

BOOST_AUTO_TEST_CASE(utf8_validation) {
  BOOST_TEST(valid_utf8(""));
  BOOST_TEST(valid_utf8("ascii"));
  BOOST_TEST(valid_utf8("\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf"));
  BOOST_TEST(valid_utf8("\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf"));
  for (std::string bad : {"\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xc2", "\xc2\x41", "\xe0\x9f\xbf",
                          "\xed\xa0\x80", "\xed\xbf\xbf", "\xef\xbf", "\xf0\x8f\xbf\xbf",
                          "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xe4\xb8\x41"})
    BOOST_TEST(!valid_utf8(bad), bad);
}

BOOST_AUTO_TEST_CASE(hosts) {
  BOOST_TEST(url_host("https://User:pw@Host.Example:8443/x") == "host.example");
  BOOST_TEST(url_host("https://[2001:db8::1]:443/") == "[2001:db8::1]");
  BOOST_TEST(url_host("https://x.example?q") == "x.example");
  BOOST_TEST(url_host("no scheme") == "");
}

BOOST_AUTO_TEST_CASE(clean_urls_like_a_browser) {
  BOOST_TEST(clean_url("  https://x.example/a\tb\nc \r\n") == "https://x.example/abc");
}

BOOST_AUTO_TEST_CASE(list_unsubscribe_targets) {
  auto v = list_unsubscribe_urls("<mailto:u@x.example?subject=unsub>, <https://x.example/u/1> ,<http://y.example/u>");
  BOOST_TEST(v == (std::vector<std::string>{"https://x.example/u/1", "http://y.example/u"}));
}

BOOST_AUTO_TEST_CASE(bare_urls_in_text) {
  std::string t = "See https://x.example/a.b?c=d. Or (http://y.example/p_(1)) and https://z.example/end,\n"
                  "nothttp://no.example xhttps://no2.example <https://angle.example/x>";
  auto spans = find_text_urls(t);
  std::vector<std::string> got;
  for (auto [b, e] : spans) got.push_back(t.substr(b, e - b));
  BOOST_TEST(got == (std::vector<std::string>{"https://x.example/a.b?c=d", "http://y.example/p_(1)",
                                              "https://z.example/end", "https://angle.example/x"}));
}

BOOST_AUTO_TEST_CASE(placeholders_are_found_at_every_offset) {
  // Every pair at every offset of a path longer than the 16-byte search steps, next to single
  // marker bytes that are not pairs ('%' escapes are common in real URLs).
  const std::string base = "https://x.example/";
  for (std::string p : {"{{", "}}", "{%", "%}", "*|", "|*", "[[", "]]", "<%", "%%", "${"})
    for (std::size_t at = 0; at <= 40; ++at) {
      std::string path = std::string(40, 'a');
      for (std::size_t i = 3; i < path.size(); i += 7) path[i] = "%{}*|[]<$"[i % 9];
      std::string plain = base + path;  // single markers, never two in a row
      BOOST_TEST_REQUIRE(why(plain) == "none", plain);
      std::string url = base + path.substr(0, at) + p + path.substr(at);
      BOOST_TEST_REQUIRE(why(url) == "placeholder", url);
    }
  BOOST_TEST(why("https://x.example/" + std::string(30, 'a') + "{") == "none");  // a marker at the very end
}
