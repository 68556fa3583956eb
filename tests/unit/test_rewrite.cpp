#define BOOST_TEST_MODULE rewrite
#include <boost/test/unit_test.hpp>

#include "tracking/encoding.hpp"
#include "tracking/html.hpp"
#include "tracking/rewrite.hpp"
#include "tracking/url.hpp"

using namespace cllavio::tracking;

namespace {

const TokenCodec& codec() {
  static const TokenCodec c({TrackingKey{"k1", std::string(32, 's')}});
  return c;
}

TrackingPolicy policy(bool opens = true, bool clicks = true) {
  TrackingPolicy p;
  p.opens = opens;
  p.clicks = clicks;
  p.domain = "t.acme.example";
  return p;
}

RewriteResult run(const std::string& header, const std::string& body, TrackingPolicy pol = policy(),
                  RewriteLimits lim = {}) {
  RewriteInput in{header, body, "acme", 0x1234, std::string("bob@example.net")};
  return rewrite(in, pol, lim, codec());
}

// Every tracking URL in `text` verifies, and maps back to these destinations in order.
std::vector<std::string> destinations(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = text.find("https://t.acme.example/c/", pos)) != std::string_view::npos) {
    std::size_t end = text.find_first_of("\"' <>\r\n", pos);
    auto r = codec().verify_url_or_token(text.substr(pos, end - pos));
    BOOST_REQUIRE(std::holds_alternative<TokenData>(r));
    out.push_back(std::get<TokenData>(r).url);
    pos = end;
  }
  return out;
}

int count(std::string_view s, std::string_view needle) {
  int n = 0;
  for (std::size_t p = s.find(needle); p != std::string_view::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

const std::string kHtmlHeader = "Content-Type: text/html; charset=utf-8\r\n";

// Where the open pixel's box begins in `body` (npos if there is none), checked to be a
// zero-height box with the 1x1 image alone inside it.
std::size_t pixel_box(const std::string& body) {
  std::size_t img = body.find("<img src=\"https://t.acme.example/o/");
  if (img == std::string::npos) return img;
  std::size_t box = body.rfind("<div style=\"", img);
  BOOST_REQUIRE(box != std::string::npos);
  std::string open = body.substr(box, body.find('>', box) + 1 - box);
  BOOST_TEST(open.size() == img - box);  // the image right inside the box
  BOOST_TEST(open.find("height:0;max-height:0;overflow:hidden;line-height:0;font-size:0") != std::string::npos);
  BOOST_TEST(open.find("display:none") == std::string::npos);  // some clients would not load it
  std::size_t img_end = body.find('>', img) + 1;
  std::string tag = body.substr(img, img_end - img);
  BOOST_TEST(tag.find("width=\"1\" height=\"1\" alt=\"\"") != std::string::npos);
  BOOST_TEST(tag.find("display:block") != std::string::npos);
  BOOST_TEST(body.compare(img_end, 6, "</div>") == 0);
  return box;
}

std::size_t pixel_box_end(const std::string& body) { return body.find("</div>", pixel_box(body)) + 6; }

}  // namespace

BOOST_AUTO_TEST_CASE(links_and_pixel_in_a_simple_html_message) {
  std::string body =
      "<html><body><p>Hi</p>\r\n"
      "<a href=\"https://example.com/reset?u=1&amp;t=abc#x\">reset</a>\r\n"
      "<a href='https://example.com/b'>b</a> <a href=https://example.com/c>c</a>\r\n"
      "<a href=\"mailto:help@acme.example\">mail</a> <a href=\"#top\">top</a>\r\n"
      "</body></html>\r\n";
  auto r = run(kHtmlHeader, body);
  BOOST_REQUIRE_MESSAGE(r.changed, r.skipped);
  BOOST_TEST(r.links.size() == 3u);
  BOOST_TEST(r.links[0].url == "https://example.com/reset?u=1&t=abc#x");  // entity-decoded, fragment kept
  BOOST_TEST(r.links[0].index == 1u);
  BOOST_TEST(destinations(r.body) ==
             (std::vector<std::string>{"https://example.com/reset?u=1&t=abc#x", "https://example.com/b",
                                       "https://example.com/c"}));
  BOOST_TEST(count(r.body, "href='https://t.acme.example/c/") == 1);  // quoting kept
  BOOST_TEST(count(r.body, "href=https://t.acme.example/c/") == 1);
  BOOST_TEST(count(r.body, "mailto:help@acme.example") == 1);
  BOOST_TEST(r.kept.size() == 2u);
  BOOST_TEST(r.kept[0].why == "scheme");
  BOOST_TEST(r.kept[1].why == "fragment");
  BOOST_TEST(r.pixels == 1);
  BOOST_TEST(r.pixel_skipped.empty());
  BOOST_TEST(pixel_box_end(r.body) == r.body.find("</body>"));  // right before </body>
  BOOST_TEST(r.skipped.empty());
}

BOOST_AUTO_TEST_CASE(pixel_at_top_and_without_body_tag) {
  auto top = policy();
  top.pixel = PixelPosition::top;
  auto r = run(kHtmlHeader, "<body class=\"x\">hello</body>", top);
  BOOST_TEST(pixel_box(r.body) == std::string("<body class=\"x\">").size());
  BOOST_TEST(r.body.substr(pixel_box_end(r.body)) == "hello</body>");
  auto end = run(kHtmlHeader, "<p>fragment only</p>");
  BOOST_TEST(pixel_box(end.body) == std::string("<p>fragment only</p>").size());
  BOOST_TEST(pixel_box_end(end.body) == end.body.size());
  auto start = run(kHtmlHeader, "<p>fragment only</p>", top);
  BOOST_TEST(pixel_box(start.body) == 0u);
}

BOOST_AUTO_TEST_CASE(pixel_goes_where_the_content_ends) {
  // Only whitespace, comments and </html> after </body>: before </body>.
  std::string body = "<html><body><p style=\"text-align:center\">Bye</p></body>\r\n<!-- x -->\r\n</html>\r\n";
  auto r = run(kHtmlHeader, body);
  BOOST_TEST(pixel_box_end(r.body) == r.body.find("</body>"));
  // Text after </html> is shown inside the body, after what precedes </body>: the pixel
  // goes after it, not between the two.
  body = "<html><body><p>Hi</p></body></html>\r\n\r\n____\r\nSent from a free mail service\r\n";
  r = run(kHtmlHeader, body);
  BOOST_TEST(r.body.substr(0, body.size() - 2) == body.substr(0, body.size() - 2));
  BOOST_TEST(pixel_box(r.body) == body.size() - 2);  // the last line break stays last
  BOOST_TEST(r.body.substr(pixel_box_end(r.body)) == "\r\n");
  // A </body> that browsers read inside an Outlook conditional comment is not the end.
  body = "<body><p>Hi</p><!--[if mso]></body><![endif]--><p>Bye</p>";
  r = run(kHtmlHeader, body);
  BOOST_TEST(pixel_box(r.body) == body.size());
}

BOOST_AUTO_TEST_CASE(truncated_html_gets_no_pixel_inside_its_last_tag) {
  // Truncated mail ending inside a tag: a pixel there would be read as its attributes.
  std::string body = "<html><body><p><a href=\"https://example.com/a\">a</a> and <a href=\"https://examp";
  auto r = run(kHtmlHeader, body);
  BOOST_REQUIRE(r.changed);
  BOOST_TEST(r.pixels == 0);
  BOOST_TEST(r.pixel_skipped == "unclosed_markup");
  BOOST_TEST(r.links.size() == 1u);  // links before it are tracked as always
  BOOST_TEST(r.body.find("/o/") == std::string::npos);
  BOOST_TEST(r.body.ends_with(" and <a href=\"https://examp"));
  for (const char* tail : {"<!-- comment never closed", "<style>p{color:red}", "<!--[if mso]><p>x</p>", "</bod"}) {
    BOOST_TEST_CONTEXT(tail) {
      auto t = run(kHtmlHeader, std::string("<body><p>Hi</p></body>") + tail, policy(true, false));
      BOOST_TEST(!t.changed);  // nothing else to change: the message passes as it was
      BOOST_TEST(t.skipped.empty());
      BOOST_TEST(t.pixels == 0);
      BOOST_TEST(t.pixel_skipped == "unclosed_markup");
    }
  }
  // With the pixel at the top, it goes after <body>, which is text.
  auto top = policy();
  top.pixel = PixelPosition::top;
  r = run(kHtmlHeader, body, top);
  BOOST_TEST(r.pixels == 1);
  BOOST_TEST(r.pixel_skipped.empty());
  BOOST_TEST(pixel_box(r.body) == std::string("<html><body>").size());
  // One truncated part of two: the other still gets its pixel.
  std::string two = "--b\r\nContent-Type: text/html\r\n\r\n<body>complete</body>\r\n--b\r\n"
                    "Content-Type: text/html\r\n\r\n<body>trunc<a href=\"x\r\n--b--\r\n";
  r = run("Content-Type: multipart/mixed; boundary=b\r\n", two);
  BOOST_TEST(r.pixels == 1);
  BOOST_TEST(r.pixel_skipped == "unclosed_markup");
  BOOST_TEST(count(r.body, "/o/") == 1);
  BOOST_TEST(r.body.find("complete<div style=") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(only_what_is_enabled) {
  std::string body = "<body><a href=\"https://example.com/\">x</a></body>";
  auto opens_only = run(kHtmlHeader, body, policy(true, false));
  BOOST_TEST(opens_only.pixels == 1);
  BOOST_TEST(opens_only.links.empty());
  BOOST_TEST(opens_only.kept.at(0).why == "clicks_off");
  auto clicks_only = run(kHtmlHeader, body, policy(false, true));
  BOOST_TEST(clicks_only.pixels == 0);
  BOOST_TEST(clicks_only.links.size() == 1u);
  auto off = run(kHtmlHeader, body, policy(false, false));
  BOOST_TEST(!off.changed);
  BOOST_TEST(off.skipped == "tracking_off");
}

BOOST_AUTO_TEST_CASE(multipart_alternative_quoted_printable) {
  std::string text = "Plain text with https://example.com/plain stays.\r\n";
  std::string html_qp = "<html><body><a href=3D\"https://example.com/a?x=3D1&amp;y=3D2\">A</a> caf=C3=\r\n"
                        "=A9</body></html>\r\n";
  std::string body = "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text +
                     "--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
                     html_qp + "--alt--\r\n";
  auto r = run("Content-Type: multipart/alternative; boundary=alt\r\n", body);
  BOOST_REQUIRE_MESSAGE(r.changed, r.skipped);
  BOOST_TEST(r.parts_changed == 1);
  BOOST_TEST(r.body.find(text) != std::string::npos);  // the text part is byte-identical
  std::size_t hb = r.body.find("quoted-printable\r\n\r\n") + 20;
  std::size_t he = r.body.find("\r\n--alt--");
  std::string decoded;
  qp_decode(r.body.substr(hb, he - hb), decoded);
  BOOST_TEST(decoded.find("caf\xc3\xa9") != std::string::npos);
  BOOST_TEST(destinations(decoded) == (std::vector<std::string>{"https://example.com/a?x=1&y=2"}));
  for (std::size_t pos = hb, nl; pos < he; pos = nl + 2) {
    nl = r.body.find("\r\n", pos);
    BOOST_TEST(nl - pos <= 76u);
  }
}

BOOST_AUTO_TEST_CASE(base64_html_stays_base64) {
  std::string html = "<body><a href=\"https://example.com/b64\">x</a></body>";
  std::string enc;
  base64_encode(html, Eol::crlf, enc);
  std::string body = "--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n" + enc + "--b--\r\n";
  auto r = run("Content-Type: multipart/mixed; boundary=b\r\n", body);
  BOOST_REQUIRE_MESSAGE(r.changed, r.skipped);
  std::size_t b = r.body.find("base64\r\n\r\n") + 10, e = r.body.find("--b--");
  std::string dec;
  BOOST_REQUIRE(base64_decode(r.body.substr(b, e - b), dec));
  BOOST_TEST(destinations(dec) == (std::vector<std::string>{"https://example.com/b64"}));
}

BOOST_AUTO_TEST_CASE(base64_with_text_after_the_data_passes_unchanged) {
  // Mailing lists append footers after the base64 data of single-part messages; a
  // re-encoded part would lose them, so the message is left alone.
  std::string html = "<body><a href=\"https://example.com/list\">x</a></body>";  // 51 bytes: padded
  std::string enc;
  base64_encode(html, Eol::crlf, enc);
  const std::string header = kHtmlHeader + "Content-Transfer-Encoding: base64\r\n";
  for (std::string footer : {"\r\n-- \r\nList footer\r\n", "\r\n_______________\r\nList footer text\r\n",
                             "List footer text\r\n", "\r\nListFooterText\r\n", "Footer\r\n"}) {
    auto r = run(header, enc + footer);
    BOOST_TEST(!r.changed, footer);
    BOOST_TEST(r.body.empty());
    BOOST_TEST(r.skipped == "malformed: text after the base64 data in part 0", footer);
  }
  std::string unpadded;
  base64_encode(html + "!", Eol::crlf, unpadded);
  for (std::string footer : {"\r\nList footer text\r\n", "\r\nListFooterText\r\n", "\r\n-- \r\n"})
    BOOST_TEST(run(header, unpadded + footer).skipped == "malformed: text after the base64 data in part 0", footer);
  BOOST_TEST(run(header, "PGJvZHk+*\r\n").skipped == "malformed: bad base64 in part 0");
  BOOST_TEST(run(header, "PGJvZHk\r\n").skipped == "malformed: bad base64 in part 0");  // truncated
  // In a multipart message the part is named; a part that would not change is not decoded.
  std::string mp = "--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n\r\nfooter\r\n"
                   "--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n" + enc;
  auto tracked = run("Content-Type: multipart/mixed; boundary=b\r\n", mp + "--b--\r\n");
  BOOST_REQUIRE_MESSAGE(tracked.changed, tracked.skipped);
  BOOST_TEST(tracked.body.find("base64\r\n\r\niVBORw==\r\n\r\nfooter\r\n--b\r\n") != std::string::npos);
  auto skipped = run("Content-Type: multipart/mixed; boundary=b\r\n", mp + "\r\nfooter\r\n--b--\r\n");
  BOOST_TEST(skipped.skipped == "malformed: text after the base64 data in part 2");
}

BOOST_AUTO_TEST_CASE(long_7bit_lines_become_quoted_printable) {
  std::string body = "<body><a href=\"https://example.com/" + std::string(900, 'p') + "\">x</a></body>\r\n";
  auto single = run(kHtmlHeader + "Content-Transfer-Encoding: 7bit\r\n", body);
  BOOST_REQUIRE_MESSAGE(single.changed, single.skipped);
  BOOST_REQUIRE_EQUAL(single.header_edits.size(), 1u);
  BOOST_TEST((single.header_edits[0].op == HeaderEdit::Op::change));
  BOOST_TEST(single.header_edits[0].value == "quoted-printable");
  std::string dec;
  qp_decode(single.body, dec);
  BOOST_TEST(destinations(dec).at(0) == "https://example.com/" + std::string(900, 'p'));
  auto no_cte = run(kHtmlHeader, body);
  BOOST_TEST((no_cte.header_edits.at(0).op == HeaderEdit::Op::add));
  std::string mp = "--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + body + "--b--\r\n";
  auto multi = run("Content-Type: multipart/mixed; boundary=b\r\n", mp);
  BOOST_REQUIRE_MESSAGE(multi.changed, multi.skipped);
  BOOST_TEST(multi.header_edits.empty());
  BOOST_TEST(multi.body.find("Content-Transfer-Encoding: quoted-printable\r\n") != std::string::npos);
  BOOST_TEST(multi.body.find("7bit") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(bare_lf_input_keeps_lf) {
  std::string body = "--b\nContent-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n"
                     "<body><a href=3D\"https://example.com/lf\">x</a></body>\n--b--\n";
  auto r = run("Content-Type: multipart/mixed; boundary=b\n", body);
  BOOST_REQUIRE_MESSAGE(r.changed, r.skipped);
  BOOST_TEST(r.body.find('\r') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(never_touched) {
  std::string html = "<body><a href=\"https://example.com/\">x</a></body>";
  auto expect_skip = [&](const std::string& header, const std::string& body, const std::string& why) {
    auto r = run(header, body);
    BOOST_TEST(!r.changed, why);
    BOOST_TEST(r.skipped.rfind(why, 0) == 0u, r.skipped + " vs " + why);
  };
  expect_skip(kHtmlHeader + "DKIM-Signature: v=1; a=rsa-sha256; d=acme.example\r\n", html, "dkim_signed");
  expect_skip(kHtmlHeader + "ARC-Seal: i=1; a=rsa-sha256\r\n", html, "dkim_signed");
  expect_skip("Content-Type: multipart/signed; boundary=s; protocol=\"application/pkcs7-signature\"\r\n",
              "--s\r\nContent-Type: text/html\r\n\r\n" + html + "\r\n--s--\r\n", "signed");
  expect_skip("Content-Type: multipart/encrypted; boundary=s\r\n", "--s\r\n\r\nx\r\n--s--\r\n", "encrypted");
  expect_skip("Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n", "MIAGCSqGSIb3", "smime");
  expect_skip(kHtmlHeader, "-----BEGIN PGP SIGNED MESSAGE-----\r\n" + html, "pgp");
  expect_skip("Content-Type: text/html; charset=UTF-16LE\r\n", html, "charset: utf-16le");
  expect_skip("Content-Type: multipart/mixed; boundary=b\r\n", "--b\r\n\r\n" + html, "malformed");
  expect_skip(kHtmlHeader + "X-Cllavio-Track: off\r\n", html, "opted_out");
  RewriteLimits small;
  small.max_rewrite_bytes = 10;
  auto big = run(kHtmlHeader, html, policy(), small);
  BOOST_TEST(big.skipped == "too_large");
  RewriteLimits shallow;
  shallow.mime.max_depth = 0;
  auto deep = run("Content-Type: multipart/mixed; boundary=b\r\n", "--b\r\n\r\nx\r\n--b--\r\n", policy(), shallow);
  BOOST_TEST(deep.skipped.rfind("mime_limits", 0) == 0u);
  auto signed_ok = policy();
  signed_ok.skip_signed = false;
  BOOST_TEST(run(kHtmlHeader + "DKIM-Signature: v=1\r\n", html, signed_ok).changed);
}

BOOST_AUTO_TEST_CASE(control_header_is_removed_even_when_skipping) {
  auto off = run(kHtmlHeader + "X-Cllavio-Track: off\r\nX-Cllavio-Track: off\r\n", "<body></body>");
  BOOST_REQUIRE_EQUAL(off.header_edits.size(), 2u);
  BOOST_TEST(off.header_edits[0].occurrence == 2);  // removed last first, so indexes stay valid
  BOOST_TEST((off.header_edits[1].op == HeaderEdit::Op::remove));
  auto on = run(kHtmlHeader + "X-Cllavio-Track: on\r\n", "<body></body>");
  BOOST_TEST(on.changed);
  BOOST_TEST(on.header_edits.size() == 1u);
}

BOOST_AUTO_TEST_CASE(html_attachments_are_left_alone) {
  std::string body = "--b\r\nContent-Type: text/html\r\nContent-Disposition: attachment; filename=x.html\r\n\r\n"
                     "<body><a href=\"https://example.com/\">x</a></body>\r\n--b--\r\n";
  auto r = run("Content-Type: multipart/mixed; boundary=b\r\n", body);
  BOOST_TEST(!r.changed);
  BOOST_TEST(r.skipped.empty());
}

BOOST_AUTO_TEST_CASE(opt_outs_placeholders_unsubscribe_and_max_links) {
  std::string body = "<body><a data-cllavio-track=\"off\" href=\"https://example.com/private\">p</a>"
                     "<a href=\"{{action_url}}\">t</a><a href=\"https://example.com/unsub\">u</a>"
                     "<a href=\"https://example.com/1\">1</a><a href=\"https://example.com/2\">2</a></body>";
  RewriteLimits lim;
  lim.max_links = 1;
  auto r = run(kHtmlHeader + "List-Unsubscribe: <https://example.com/unsub>\r\n", body, policy(), lim);
  BOOST_REQUIRE(r.changed);
  std::vector<std::string> why;
  for (const auto& k : r.kept) why.push_back(k.why);
  BOOST_TEST(why == (std::vector<std::string>{"opt_out", "placeholder", "unsubscribe", "max_links"}));
  BOOST_TEST(r.links.size() == 1u);
  BOOST_TEST(r.links[0].url == "https://example.com/1");
}

BOOST_AUTO_TEST_CASE(eight_bit_links_outside_utf8_are_kept) {
  // "\xcf\xf0\xe8\xec\xe5\xf0" is "Пример" in windows-1251; a browser would not send these bytes.
  const std::string cp1251_link = "https://example.com/\xcf\xf0\xe8\xec\xe5\xf0?q=\xe4\xe0";
  std::string body = "<body><a href=\"" + cp1251_link + "\">a</a> <a href=\"https://example.com/ascii\">b</a>"
                     " <a href=\"https://example.com/caf&eacute;\">c</a></body>";
  auto r = run("Content-Type: text/html; charset=windows-1251\r\nContent-Transfer-Encoding: 8bit\r\n", body);
  BOOST_REQUIRE_MESSAGE(r.changed, r.skipped);
  BOOST_REQUIRE_EQUAL(r.links.size(), 1u);
  BOOST_TEST(r.links[0].url == "https://example.com/ascii");
  BOOST_REQUIRE_EQUAL(r.kept.size(), 2u);
  BOOST_TEST(r.kept[0].url == cp1251_link);
  BOOST_TEST(r.kept[0].why == "non_utf8_url");
  BOOST_TEST(r.kept[1].url == "https://example.com/caf\xc3\xa9");  // an entity counts: cp1251 would send 0xE9
  BOOST_TEST(r.kept[1].why == "non_utf8_url");
  BOOST_TEST(r.body.find("href=\"" + cp1251_link + "\"") != std::string::npos);  // the sender's bytes
  BOOST_TEST(r.body.find("href=\"https://example.com/caf&eacute;\"") != std::string::npos);

  // Declared UTF-8: valid UTF-8 is tracked (raw or from an entity), anything else kept.
  auto utf8 = run(kHtmlHeader, "<body><a href=\"https://example.com/caf\xc3\xa9\">a</a>"
                               "<a href=\"https://example.com/caf&eacute;\">b</a>"
                               "<a href=\"https://example.com/\xcf\xf0\">c</a></body>");
  BOOST_REQUIRE_MESSAGE(utf8.changed, utf8.skipped);
  BOOST_TEST(utf8.links.size() == 2u);
  std::string dec;
  qp_decode(utf8.body, dec);  // 7bit with 8-bit bytes (the kept link) became quoted-printable
  BOOST_TEST(destinations(dec) ==
             (std::vector<std::string>{"https://example.com/caf\xc3\xa9", "https://example.com/caf\xc3\xa9"}));
  BOOST_TEST(utf8.kept.at(0).why == "non_utf8_url");
  // No charset at all is US-ASCII.
  auto none = run("Content-Type: text/html\r\n", "<a href=\"https://example.com/caf\xc3\xa9\">a</a>");
  BOOST_TEST(none.kept.at(0).why == "non_utf8_url");
}

BOOST_AUTO_TEST_CASE(eight_bit_text_links_follow_their_own_part_charset) {
  auto pol = policy();
  pol.text_links = true;
  std::string body = "--a\r\nContent-Type: text/plain; charset=\"ISO-8859-1\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                     "Lire https://example.com/caf\xc3\xa9 et https://example.com/plain\r\n"
                     "--a\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                     "Lire https://example.com/caf\xc3\xa9\r\n--a--\r\n";
  auto r = run("Content-Type: multipart/mixed; boundary=a\r\n", body, pol);
  BOOST_REQUIRE_MESSAGE(r.changed, r.skipped);
  std::vector<std::string> tracked, kept;
  for (const auto& l : r.links) tracked.push_back(l.url);
  for (const auto& k : r.kept) kept.push_back(k.why + " " + k.url);
  BOOST_TEST(tracked == (std::vector<std::string>{"https://example.com/plain", "https://example.com/caf\xc3\xa9"}));
  BOOST_TEST(kept == (std::vector<std::string>{"non_utf8_url https://example.com/caf\xc3\xa9"}));
  BOOST_TEST(r.body.find("Lire https://example.com/caf\xc3\xa9 et https://t.acme.example/c/") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(quoted_tracked_mail_is_restored_not_double_counted) {
  std::string first = "<body><a href=\"https://example.com/x?a=1&amp;b=2\">x</a></body>";
  auto sent = run(kHtmlHeader, first);
  BOOST_REQUIRE(sent.changed);
  // A reply quotes the tracked HTML; the new message is tracked for message 0x5678.
  std::string reply = "<body><p>Thanks!</p><blockquote>" + sent.body + "</blockquote></body>";
  RewriteInput in{kHtmlHeader, reply, "acme", 0x5678, std::nullopt};
  auto r = rewrite(in, policy(), {}, codec());
  BOOST_REQUIRE(r.changed);
  BOOST_TEST(r.old_pixels_removed == 1);
  BOOST_TEST(r.old_links_restored == 1);
  BOOST_TEST(r.pixels == 1);
  for (const auto& d : destinations(r.body)) BOOST_TEST(d == "https://example.com/x?a=1&b=2");
  std::size_t p = r.body.find("https://t.acme.example/c/");
  auto tok = std::get<TokenData>(codec().verify_url_or_token(r.body.substr(p, r.body.find('"', p) - p)));
  BOOST_TEST(tok.message == 0x5678u);  // the link now belongs to the new message
  BOOST_TEST(!tok.recipient);
  BOOST_TEST(count(r.body, "/o/") == 1);  // only the new pixel
  BOOST_TEST(count(r.body, "<div style=") == 1);  // the old pixel's box went with it
  BOOST_TEST(count(r.body, "</div>") == 1);
}

BOOST_AUTO_TEST_CASE(old_pixels_are_removed_with_their_box_only_when_it_is_exactly_ours) {
  auto sent = run(kHtmlHeader, "<body><p>x</p></body>", policy(true, false));
  std::size_t box = pixel_box(sent.body), box_end = pixel_box_end(sent.body);
  std::string ours = sent.body.substr(box, box_end - box);
  std::size_t img = ours.find("<img");
  std::string img_tag = ours.substr(img, ours.size() - 6 - img);
  std::string url = img_tag.substr(10, img_tag.find('"', 10) - 10);
  RewriteInput in{kHtmlHeader, "", "acme", 0x5678, std::nullopt};
  auto reply = [&](const std::string& quoted) {
    std::string body = "<body><p>Reply</p><blockquote>" + quoted + "</blockquote></body>";
    in.body = body;
    auto r = rewrite(in, policy(true, false), {}, codec());
    BOOST_TEST(r.old_pixels_removed == 1);
    BOOST_TEST(count(r.body, url) == 0);
    BOOST_TEST(r.pixels == 1);
    std::size_t q = r.body.find("<blockquote>") + 12;
    return r.body.substr(q, r.body.find("</blockquote>") - q);
  };
  BOOST_TEST(reply(ours) == "");  // the box goes with the image
  // Our earlier inline pixel (no box), and a box a mail client rewrote: only the image goes.
  std::string legacy = "<img src=\"" + url + "\" width=\"1\" height=\"1\" alt=\"\" border=\"0\" "
                       "style=\"border:0;width:1px;height:1px\">";
  BOOST_TEST(reply("<p>old</p>" + legacy) == "<p>old</p>");
  BOOST_TEST(reply("<div style=\"height:0\">" + img_tag + "</div>") == "<div style=\"height:0\"></div>");
  BOOST_TEST(reply(ours.substr(0, ours.size() - 6) + "</DIV>") == ours.substr(0, img) + "</DIV>");
}

BOOST_AUTO_TEST_CASE(restored_eight_bit_links_keep_their_meaning_in_any_charset) {
  // Our token carries the destination: quoted in a windows-1251 reply, it is tracked
  // again for the new message, not judged by the reply's bytes.
  auto sent = run(kHtmlHeader + "Content-Transfer-Encoding: 8bit\r\n",
                  "<body><a href=\"https://example.com/caf\xc3\xa9\">x</a></body>");
  BOOST_REQUIRE(sent.changed);
  // RewriteInput holds views: the reply's body must outlive it.
  const std::string reply = "<body><p>\xd1\xef\xe0\xf1\xe8\xe1\xee</p><blockquote>" + sent.body + "</blockquote></body>";
  RewriteInput in{"Content-Type: text/html; charset=windows-1251\r\nContent-Transfer-Encoding: 8bit\r\n", reply, "acme",
                  0x5678, std::nullopt};
  auto r = rewrite(in, policy(), {}, codec());
  BOOST_REQUIRE_MESSAGE(r.changed, r.skipped);
  BOOST_TEST(r.old_links_restored == 1);
  BOOST_TEST(r.kept.empty());
  BOOST_TEST(destinations(r.body) == (std::vector<std::string>{"https://example.com/caf\xc3\xa9"}));
}

BOOST_AUTO_TEST_CASE(text_links_respect_html_opt_out) {
  auto pol = policy();
  pol.text_links = true;
  std::string body = "--a\r\nContent-Type: text/plain\r\n\r\nGo to https://example.com/t and https://example.com/private.\r\n"
                     "--a\r\nContent-Type: text/html\r\n\r\n<body><a clicktracking=off href=\"https://example.com/private\">"
                     "p</a></body>\r\n--a--\r\n";
  auto r = run("Content-Type: multipart/alternative; boundary=a\r\n", body, pol);
  BOOST_REQUIRE_MESSAGE(r.changed, r.skipped);
  BOOST_TEST(r.links.size() == 1u);
  BOOST_TEST(r.links[0].url == "https://example.com/t");
  BOOST_TEST(r.body.find("https://example.com/private.") != std::string::npos);
  BOOST_TEST(r.parts_changed == 2);  // the pixel went into the HTML part
}

BOOST_AUTO_TEST_CASE(nothing_to_do_is_not_a_skip) {
  auto r = run("Content-Type: text/plain\r\n", "just text https://example.com/\r\n");
  BOOST_TEST(!r.changed);
  BOOST_TEST(r.skipped.empty());
}

BOOST_AUTO_TEST_CASE(header_edits_apply_to_raw_headers) {
  std::string h = "Subject: x\r\nContent-Transfer-Encoding: 7bit\r\nX-Cllavio-Track: off\r\nx-cllavio-track: on\r\n\r\n";
  std::string out = apply_header_edits(
      h, {{HeaderEdit::Op::remove, "X-Cllavio-Track", 2, {}},
          {HeaderEdit::Op::remove, "X-CLLAVIO-TRACK", 1, {}},
          {HeaderEdit::Op::change, "Content-Transfer-Encoding", 1, "quoted-printable"},
          {HeaderEdit::Op::add, "X-Added", 0, "yes"}});
  BOOST_TEST(out == "Subject: x\r\nContent-Transfer-Encoding: quoted-printable\r\nX-Added: yes\r\n\r\n");
  BOOST_TEST(apply_header_edits("A: 1\nB: 2\n\n", {{HeaderEdit::Op::add, "C", 0, "3"}}) == "A: 1\nB: 2\nC: 3\n\n");
}

// Version 2 (compact) tokens carry no destination: a quoted one is put back from the
// link table of the message it names (RewriteInput::old_links), looked up once per message.
BOOST_AUTO_TEST_CASE(quoted_compact_tokens_are_restored_through_the_link_table) {
  TrackingPolicy v2 = policy();
  v2.token_version = 2;
  std::string first = "<body><a href=\"https://example.com/a\">a</a> <a href=\"https://example.com/b?x=1&amp;y=2\">b</a></body>";
  auto sent = run(kHtmlHeader, first, v2);
  BOOST_REQUIRE(sent.changed);
  BOOST_REQUIRE(sent.links.size() == 2u);
  BOOST_TEST(sent.body.find("example.com/a") == std::string::npos);  // the destination is not in the mail
  std::size_t p = sent.body.find("https://t.acme.example/c/");
  auto first_tok = std::get<TokenData>(codec().verify_url_or_token(sent.body.substr(p, sent.body.find('"', p) - p)));
  BOOST_TEST(first_tok.version == 2);
  BOOST_TEST(!first_tok.recipient);  // not even for a single-recipient message

  std::string reply = "<body><p>Thanks!</p><blockquote>" + sent.body + "</blockquote></body>";
  int lookups = 0;
  RewriteInput in{kHtmlHeader, reply, "acme", 0x5678, std::nullopt};
  in.old_links = [&](const std::string& org, std::uint64_t message) -> std::optional<std::vector<TrackedLink>> {
    ++lookups;
    if (org != "acme" || message != 0x1234) return std::nullopt;
    return sent.links;
  };
  // Version 1 for the reply: the restored destinations become visible in its tokens.
  auto r = rewrite(in, policy(), {}, codec());
  BOOST_REQUIRE(r.changed);
  BOOST_TEST(lookups == 1);
  BOOST_TEST(r.old_links_restored == 2);
  BOOST_TEST(r.old_pixels_removed == 1);
  BOOST_TEST(destinations(r.body) == (std::vector<std::string>{"https://example.com/a", "https://example.com/b?x=1&y=2"}));

  // Without the table (no store, or the message is gone): the old links stay as they are.
  in.old_links = [&](const std::string&, std::uint64_t) -> std::optional<std::vector<TrackedLink>> {
    return std::nullopt;
  };
  auto gone = rewrite(in, policy(), {}, codec());
  BOOST_TEST(gone.old_links_restored == 0);
  BOOST_TEST(gone.old_pixels_removed == 1);  // pixels need no table
  BOOST_REQUIRE(gone.kept.size() == 2u);
  BOOST_TEST(gone.kept[0].why == "old_token_unresolved");
  BOOST_TEST(gone.links.empty());
  BOOST_TEST(count(gone.body, sent.body.substr(p, sent.body.find('"', p) - p)) == 1);  // byte for byte
  in.old_links = nullptr;
  auto none = rewrite(in, policy(), {}, codec());
  BOOST_TEST(none.old_links_restored == 0);
  BOOST_TEST(none.kept.size() == 2u);
  // A link index the table does not have is unresolved too.
  in.old_links = [&](const std::string&, std::uint64_t) -> std::optional<std::vector<TrackedLink>> {
    return std::vector<TrackedLink>{{1, "https://example.com/a"}};
  };
  auto partial = rewrite(in, policy(), {}, codec());
  BOOST_TEST(partial.old_links_restored == 1);
  BOOST_REQUIRE(partial.kept.size() == 1u);
  BOOST_TEST(partial.kept[0].why == "old_token_unresolved");
}

// The cache of old link tables is per (org, message): two orgs' tokens with the same
// message id (two hosts, one key) never share a table. At most 8 tables per rewrite.
BOOST_AUTO_TEST_CASE(old_link_tables_are_looked_up_per_org_and_message_and_capped) {
  auto compact_link = [](const std::string& org, std::uint64_t message, std::uint32_t link) {
    TokenData t;
    t.kind = TokenKind::click;
    t.org = org;
    t.message = message;
    t.link = link;
    t.version = 2;
    return codec().url(t, "t.acme.example");
  };
  std::string body = "<body><a href=\"" + compact_link("a", 7, 1) + "\">a</a><a href=\"" + compact_link("b", 7, 1) +
                     "\">b</a></body>";
  RewriteInput in{kHtmlHeader, body, "acme", 0x5678, std::nullopt};
  std::vector<std::string> asked;
  in.old_links = [&](const std::string& org, std::uint64_t message) -> std::optional<std::vector<TrackedLink>> {
    asked.push_back(org + " " + std::to_string(message));
    return std::vector<TrackedLink>{{1, "https://" + org + ".example/"}};
  };
  auto r = rewrite(in, policy(), {}, codec());
  BOOST_TEST(asked == (std::vector<std::string>{"a 7", "b 7"}));
  BOOST_TEST(destinations(r.body) == (std::vector<std::string>{"https://a.example/", "https://b.example/"}));

  // Ten different messages: the first 8 are looked up, the rest stay as they are.
  body = "<body>";
  for (std::uint64_t m = 1; m <= 10; ++m) body += "<a href=\"" + compact_link("a", m, 1) + "\">x</a>";
  body += "</body>";
  in.body = body;
  asked.clear();
  auto capped = rewrite(in, policy(), {}, codec());
  BOOST_TEST(asked.size() == 8u);
  BOOST_TEST(capped.old_links_restored == 8);
  BOOST_REQUIRE(capped.kept.size() == 2u);
  BOOST_TEST(capped.kept[1].why == "old_token_unresolved");
}

// Big tables stop further lookups: what a rewrite holds of old link tables is bounded.
BOOST_AUTO_TEST_CASE(old_link_tables_are_bounded_in_bytes) {
  auto compact_link = [](std::uint64_t message) {
    TokenData t;
    t.kind = TokenKind::click;
    t.org = "a";
    t.message = message;
    t.link = 1;
    t.version = 2;
    return codec().url(t, "t.acme.example");
  };
  std::string body = "<body>";
  for (std::uint64_t m = 1; m <= 3; ++m) body += "<a href=\"" + compact_link(m) + "\">x</a>";
  body += "</body>";
  RewriteInput in{kHtmlHeader, body, "acme", 0x5678, std::nullopt};
  int asked = 0;
  in.old_links = [&](const std::string&, std::uint64_t) -> std::optional<std::vector<TrackedLink>> {
    ++asked;
    // 1,100 links of 4 KB: one table is over the 4 MiB cap.
    std::vector<TrackedLink> t(1100);
    for (std::uint32_t i = 0; i < t.size(); ++i) t[i] = {i + 1, "https://example.com/" + std::string(4000, 'p')};
    return t;
  };
  auto r = rewrite(in, policy(), {}, codec());
  BOOST_TEST(asked == 1);
  BOOST_TEST(r.old_links_restored == 1);
  BOOST_TEST(r.kept.size() == 2u);
}
