#define BOOST_TEST_MODULE mime
#include <boost/test/unit_test.hpp>

#include "tracking/mime.hpp"

using namespace cllavio::tracking;

namespace {

struct Msg {
  std::string header, body;
  std::vector<HeaderField> fields;
  MimeTree tree;
  Msg(std::string h, std::string b, MimeLimits lim = {}) : header(std::move(h)), body(std::move(b)) {
    std::size_t end = 0;
    BOOST_REQUIRE(parse_header_block(header, 65536, fields, end));
    tree = walk(fields, body, lim);
  }
  std::string content(int i) const {
    const Part& p = tree.parts.at(i);
    return body.substr(p.body_begin, p.body_end - p.body_begin);
  }
};

const std::string kNested =
    "preamble\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=\"in ner\"\r\n"
    "\r\n"
    "--in ner\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "plain text\r\n"
    "--in ner\r\n"
    "Content-Type: text/html; charset=UTF-8\r\n"
    "Content-Transfer-Encoding: Quoted-Printable\r\n"
    "\r\n"
    "<p>html</p>\r\n"
    "--in ner--\r\n"
    "--outer\r\n"
    "Content-Type: application/pdf\r\n"
    "Content-Disposition: attachment; filename=\"a.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERg==\r\n"
    "--outer--\r\n"
    "epilogue\r\n";

}  // namespace

BOOST_AUTO_TEST_CASE(content_type_parsing) {
  auto ct = parse_content_type("Multipart/Mixed; boundary=\"a b\\\"c\"; charset=UTF-8");
  BOOST_TEST(ct.type == "multipart");
  BOOST_TEST(ct.subtype == "mixed");
  BOOST_TEST(ct.boundary == "a b\"c");
  BOOST_TEST(ct.charset == "utf-8");
  BOOST_TEST(parse_content_type("garbage").type == "text");
  BOOST_TEST(parse_content_type("text/").subtype == "plain");
  BOOST_TEST(header_param("attachment; filename=report.pdf", "FILENAME").value() == "report.pdf");
  BOOST_TEST(!header_param("text/plain", "charset"));
}

BOOST_AUTO_TEST_CASE(header_blocks) {
  std::vector<HeaderField> f;
  std::size_t end = 0;
  std::string h = "Subject: a\r\n folded\r\nX: y\r\n\r\nbody";
  BOOST_TEST(parse_header_block(h, 1000, f, end));
  BOOST_REQUIRE_EQUAL(f.size(), 2u);
  BOOST_TEST(f[0].value() == "a folded");
  BOOST_TEST(end == h.find("body"));
  f.clear();
  BOOST_TEST(!parse_header_block("no colon here\r\n\r\n", 1000, f, end));
  f.clear();
  BOOST_TEST(!parse_header_block(" starts folded\r\n", 1000, f, end));
  f.clear();
  BOOST_TEST(!parse_header_block(std::string(2000, 'a') + ": b\r\n", 1000, f, end));
}

BOOST_AUTO_TEST_CASE(nested_multipart_spans) {
  Msg m("Content-Type: multipart/mixed; boundary=outer\r\n", kNested);
  BOOST_REQUIRE(!m.tree.malformed);
  BOOST_REQUIRE_EQUAL(m.tree.parts.size(), 5u);
  BOOST_TEST(m.tree.parts[0].children == (std::vector<int>{1, 4}));
  BOOST_TEST(m.tree.parts[1].children == (std::vector<int>{2, 3}));
  BOOST_TEST(m.content(2) == "plain text");
  BOOST_TEST(m.content(3) == "<p>html</p>");
  BOOST_TEST(m.tree.parts[3].encoding == "quoted-printable");
  BOOST_TEST(m.tree.parts[3].type.charset == "utf-8");
  BOOST_TEST(m.tree.parts[4].attachment);
  BOOST_TEST(m.content(4) == "JVBERg==");
  BOOST_TEST(m.tree.parts[3].depth == 2);
}

BOOST_AUTO_TEST_CASE(bare_lf_and_mixed_line_endings) {
  std::string lf = kNested;
  for (std::size_t p; (p = lf.find("\r\n")) != std::string::npos;) lf.erase(p, 1);
  Msg m("Content-Type: multipart/mixed; boundary=outer\n", lf);
  BOOST_REQUIRE(!m.tree.malformed);
  BOOST_TEST(m.content(3) == "<p>html</p>");
  BOOST_TEST((detect_eol(lf, Eol::crlf) == Eol::lf));
  BOOST_TEST((detect_eol(kNested, Eol::lf) == Eol::crlf));
}

BOOST_AUTO_TEST_CASE(malformed_and_limits) {
  BOOST_TEST(Msg("Content-Type: multipart/mixed\r\n", "x").tree.malformed);  // no boundary
  BOOST_TEST(Msg("Content-Type: multipart/mixed; boundary=b\r\n", "--b\r\nx\r\n").tree.malformed);  // not closed
  BOOST_TEST(Msg("Content-Type: multipart/mixed; boundary=b\r\n", "nothing\r\n").tree.malformed);
  BOOST_TEST(Msg("Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: base64\r\n",
                 "--b\r\n\r\nx\r\n--b--\r\n").tree.malformed);
  // "--b" followed by more text is not a delimiter.
  Msg ok("Content-Type: multipart/mixed; boundary=b\r\n", "--b\r\n\r\n--bx\r\n--b--\r\n");
  BOOST_TEST(!ok.tree.malformed);
  BOOST_TEST(ok.content(1) == "--bx");
  MimeLimits shallow;
  shallow.max_depth = 1;
  BOOST_TEST(Msg("Content-Type: multipart/mixed; boundary=outer\r\n", kNested, shallow).tree.over_limit);
  MimeLimits narrow;
  narrow.max_parts = 3;
  BOOST_TEST(Msg("Content-Type: multipart/mixed; boundary=outer\r\n", kNested, narrow).tree.over_limit);
}

BOOST_AUTO_TEST_CASE(message_rfc822_is_not_entered) {
  std::string body = "--b\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n"
                     "--c\r\n\r\nx\r\n--b--\r\n";
  Msg m("Content-Type: multipart/mixed; boundary=b\r\n", body);
  BOOST_REQUIRE(!m.tree.malformed);
  BOOST_TEST(m.tree.parts.size() == 2u);
}

BOOST_AUTO_TEST_CASE(empty_parts_and_headerless_parts) {
  Msg m("Content-Type: multipart/mixed; boundary=b\r\n", "--b\r\n--b\r\n\r\nno headers\r\n--b--");
  BOOST_REQUIRE(!m.tree.malformed);
  BOOST_REQUIRE_EQUAL(m.tree.parts.size(), 3u);
  BOOST_TEST(m.content(1) == "");
  BOOST_TEST(m.content(2) == "no headers");
  BOOST_TEST(m.tree.parts[2].type.subtype == "plain");
}
