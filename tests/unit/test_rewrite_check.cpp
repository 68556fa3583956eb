// The rewrite's self-check rule for MIME part headers (tracking::same_part_header): what a
// rewrite may change in a part's header block, and what makes it pass the original instead.
#define BOOST_TEST_MODULE rewrite_check
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "tracking/mime.hpp"
#include "tracking/rewrite.hpp"

using namespace cllavio::tracking;

namespace {

const char* kTop = "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n";

MimeTree walk_body(const std::string& body, std::vector<HeaderField>& top) {
  std::size_t end = 0;
  BOOST_REQUIRE(parse_header_block(kTop, 1 << 16, top, end));
  MimeTree t = walk(top, body, MimeLimits{});
  BOOST_REQUIRE(!t.malformed);
  BOOST_REQUIRE_EQUAL(t.parts.size(), 2u);
  return t;
}

// Part 1 of `before` and of `after`, as the self-check sees them.
bool same(const std::string& before, const std::string& after, bool now_qp) {
  std::vector<HeaderField> h1, h2;
  MimeTree a = walk_body(before, h1), b = walk_body(after, h2);
  return same_part_header(before, a.parts[1], after, b.parts[1], now_qp);
}

std::string part(const std::string& header, const std::string& content) {
  return "--b\r\n" + header + "\r\n" + content + "\r\n--b--\r\n";
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_part_header_must_stay_as_it_was) {
  const std::string h = "Content-Type: text/html; charset=utf-8\r\nContent-Disposition: inline\r\n";
  BOOST_TEST(same(part(h, "<p>a</p>"), part(h, "<p>b</p><img src=x>"), false));  // the body may change
  // The header-only part's bug: the pixel appended to its last line.
  BOOST_TEST(!same("--b\r\nContent-Type: text/html\r\nContent-Disposition: inline\r\n--b--\r\n",
                   "--b\r\nContent-Type: text/html\r\nContent-Disposition: inline<div><img src=x></div>\r\n--b--\r\n",
                   false));
  BOOST_TEST(!same(part(h, "x"), part("Content-Type: text/html; charset=utf-8\r\n", "x"), false));  // a field gone
  BOOST_TEST(!same(part(h, "x"), part("Content-Type: text/html; charset=utf-8\nContent-Disposition: inline\r\n", "x"),
                   false));  // a line ending changed
  // Without a new transfer encoding, even that field may not change.
  BOOST_TEST(!same(part(h + "Content-Transfer-Encoding: 8bit\r\n", "x"),
                   part(h + "Content-Transfer-Encoding: quoted-printable\r\n", "x"), false));
}

BOOST_AUTO_TEST_CASE(a_part_that_became_quoted_printable_changes_only_that_field) {
  const std::string h = "Content-Type: text/html; charset=utf-8\r\n";
  const std::string qp = "Content-Transfer-Encoding: quoted-printable\r\n";
  BOOST_TEST(same(part(h + "Content-Transfer-Encoding: 8bit\r\n", "x"), part(h + qp, "x"), true));  // replaced
  BOOST_TEST(same(part(h, "x"), part(h + qp, "x"), true));                                         // added
  BOOST_TEST(!same(part(h, "x"), part(h + "Content-Transfer-Encoding: base64\r\n", "x"), true));   // not QP
  BOOST_TEST(!same(part(h, "x"), part("Content-Type: text/plain\r\n" + qp, "x"), true));            // another field
  BOOST_TEST(!same(part(h + "X-A: 1\r\n", "x"), part(qp + h, "x"), true));                          // one gone
}
