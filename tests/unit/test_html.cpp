#define BOOST_TEST_MODULE html
#include <boost/test/unit_test.hpp>

#include "tracking/html.hpp"

using namespace cllavio::tracking;

namespace {

std::string value(std::string_view html, const AttrValue& v) { return std::string(html.substr(v.begin, v.end - v.begin)); }

}  // namespace

BOOST_AUTO_TEST_CASE(finds_hrefs_with_every_quoting_style) {
  std::string h = "<a href=\"https://a.example/?x=1&amp;y=2\">1</a> <A HREF='https://b.example'>2</A>"
                  "<a class=x href=https://c.example/path>3</a><area shape=rect href = \"https://d.example\">";
  HtmlScan s = scan_html(h);
  BOOST_REQUIRE_EQUAL(s.links.size(), 4u);
  BOOST_TEST(value(h, s.links[0].href) == "https://a.example/?x=1&amp;y=2");
  BOOST_TEST(s.links[0].href.quote == '"');
  BOOST_TEST(s.links[1].href.quote == '\'');
  BOOST_TEST(value(h, s.links[2].href) == "https://c.example/path");
  BOOST_TEST(s.links[2].href.quote == 0);
  BOOST_TEST((s.links[3].tag == LinkTag::area));
  BOOST_TEST(value(h, s.links[3].href) == "https://d.example");
}

BOOST_AUTO_TEST_CASE(comments_scripts_and_conditional_comments) {
  std::string h =
      "<!-- <a href=\"https://hidden.example\"> -->"
      "<script>var s = '<a href=\"https://in-script.example\">';</script>"
      "<!--[if mso]><v:roundrect xmlns:v=\"urn:schemas-microsoft-com:vml\" href=\"https://vml.example\">"
      "<w:anchorlock/></v:roundrect><![endif]-->"
      "<!--[if !mso]><!--><a href=\"https://not-mso.example\">x</a><!--<![endif]-->"
      "<style>a[href=\"https://in-style.example\"]{}</style>";
  HtmlScan s = scan_html(h);
  BOOST_REQUIRE_EQUAL(s.links.size(), 2u);
  BOOST_TEST((s.links[0].tag == LinkTag::vml));
  BOOST_TEST(value(h, s.links[0].href) == "https://vml.example");
  BOOST_TEST(value(h, s.links[1].href) == "https://not-mso.example");
}

BOOST_AUTO_TEST_CASE(gt_inside_quotes_and_attributes_without_values) {
  std::string h = "<a title=\"a > b\" data-x href=\"https://q.example\" disabled>x</a>";
  HtmlScan s = scan_html(h);
  BOOST_REQUIRE_EQUAL(s.links.size(), 1u);
  BOOST_TEST(value(h, s.links[0].href) == "https://q.example");
  BOOST_TEST(s.links[0].tag_end == h.find(">x<") + 1);
}

BOOST_AUTO_TEST_CASE(opt_out_markers) {
  std::string h = "<a data-cllavio-track=\"off\" href=\"https://1.example\">"
                  "<a clicktracking=off href=\"https://2.example\">"
                  "<a ses:no-track href=\"https://3.example\">"
                  "<a data-msys-clicktrack=\"0\" href=\"https://4.example\">"
                  "<a data-mautic-disable-tracking href=\"https://5.example\">"
                  "<a data-cllavio-track=\"on\" href=\"https://6.example\">";
  HtmlScan s = scan_html(h);
  BOOST_REQUIRE_EQUAL(s.links.size(), 6u);
  for (int i = 0; i < 5; ++i) BOOST_TEST(!s.links[i].opt_out.empty());
  BOOST_TEST(s.links[5].opt_out.empty());
}

BOOST_AUTO_TEST_CASE(body_tags_and_images) {
  std::string h = "<html><BODY class=\"x\"><img src=\"a.png\"><img alt=x></body><p></body></html>";
  HtmlScan s = scan_html(h);
  BOOST_TEST(*s.body_open_end == h.find("<img"));
  BOOST_TEST(*s.body_close_begin == h.rfind("</body>"));
  BOOST_REQUIRE_EQUAL(s.images.size(), 1u);
  BOOST_TEST(value(h, s.images[0].src) == "a.png");
}

BOOST_AUTO_TEST_CASE(unterminated_markup_never_fails) {
  for (const char* h : {"<a href=\"https://x", "<a href=", "<!-- open", "<script>no end", "<", "<a", "&", "<![if",
                        "<a href='x' "}) {
    BOOST_TEST_CONTEXT(h) { BOOST_TEST(scan_html(h).links.empty()); }
  }
}

BOOST_AUTO_TEST_CASE(unterminated_markup_is_located) {
  // Truncated mail: where the construct a browser is still reading at the end begins.
  const std::pair<std::string, std::size_t> unclosed[] = {
      {"<p>Hi</p><a href=\"https://x", 9},          // attribute value
      {"<p>Hi</p><a href=x class", 9},               // start tag
      {"<p>Hi</p><a", 9},
      {"<p>Hi</p></bo", 9},                          // end tag
      {"<p>Hi</p></", 9},
      {"<p>Hi</p><!-- note", 9},                     // comment
      {"<p>Hi</p><!DOCTYPE html", 9},
      {"<p>Hi</p><script>var a = 1;", 9},            // raw text
      {"<p>Hi</p><style>p{}</p>", 9},
      {"<p>Hi</p><!--[if mso]>", 9},                 // conditional comment never closed
      {"<p>Hi</p><!--[if mso]><b>x</b><![endif]>", 9},
      {"<p>Hi</p><!--[if mso", 9},
      {"<p>Hi</p><plaintext><b>", 9},                // all text from here on
      {"<p>Hi</p><!-- a --><a href='x'>y</a><b", 36},
  };
  for (const auto& [h, at] : unclosed) {
    BOOST_TEST_CONTEXT(h) {
      HtmlScan s = scan_html(h);
      BOOST_TEST(s.unclosed_at.value_or(999) == at);
      BOOST_TEST(!body_end(h, s));
    }
  }
  for (const char* h : {"<p>Hi</p>", "a < b", "ends with <", "x &", "<!-- c -->", "<!-->", "<script>x</script>",
                        "<!--[if mso]><b>x</b><![endif]-->", "<!--[if !mso]><!--><b>x</b><!--<![endif]-->", ""}) {
    BOOST_TEST_CONTEXT(h) {
      HtmlScan s = scan_html(h);
      BOOST_TEST(!s.unclosed_at);
      BOOST_TEST(body_end(h, s).value_or(999) == std::string_view(h).size());
    }
  }
  // Links before the unterminated construct are still found.
  HtmlScan s = scan_html("<a href=\"https://a.example\">a</a><a href=\"https://b.exa");
  BOOST_TEST(s.links.size() == 1u);
  BOOST_TEST(s.unclosed_at.value_or(999) == 33u);
}

BOOST_AUTO_TEST_CASE(body_end_is_where_the_content_ends) {
  auto end = [](const std::string& h) { return body_end(h, scan_html(h)); };
  std::string h = "<html><body><p>x</p></body>\r\n</html>\r\n";
  BOOST_TEST(end(h).value() == h.find("</body>"));
  h = "<body><p>x</p></BODY >\n<!-- sent by x -->\n</html >\n<!-- y -->\n\n";
  BOOST_TEST(end(h).value() == h.find("</BODY"));
  h = "<body><p>x</p></body></html>\n\n--\nFooter text after the document\r\n";  // shown inside the body
  BOOST_TEST(end(h).value() == h.size() - 2);  // before the trailing line break
  h = "<body><p>x</p></body></htmlx>";
  BOOST_TEST(end(h).value() == h.size());
  h = "<body><p>x</p></body><p>y</p></body>\n";  // the last </body>
  BOOST_TEST(end(h).value() == h.rfind("</body>"));
  h = "<p>no body tag</p>\n \t\n";
  BOOST_TEST(end(h).value() == h.find("\n"));
  h = "\r\n";
  BOOST_TEST(end(h).value() == 0u);
  h = "<body><p>x</p></body></html><!-- never closed";
  BOOST_TEST(!end(h));
  h = "<body><p>x</p></body>\n<a href=\"https://trunc";
  BOOST_TEST(!end(h));
}

BOOST_AUTO_TEST_CASE(body_tags_that_browsers_read_as_a_comment_are_not_the_body) {
  std::string h = "<!--[if mso]><body class=\"mso\"><![endif]--><body><p>x</p>"
                  "<!--[if mso]></body><![endif]--><p>y</p>";
  HtmlScan s = scan_html(h);
  BOOST_TEST(*s.body_open_end == h.find("<p>x"));
  BOOST_TEST(!s.body_close_begin);
  BOOST_TEST(!s.unclosed_at);
  h = "<body><!--[if !mso]><!--><p>x</p><!--<![endif]--></body>";  // downlevel-revealed: visible
  s = scan_html(h);
  BOOST_TEST(*s.body_close_begin == h.find("</body>"));
}

BOOST_AUTO_TEST_CASE(entity_decoding_follows_the_attribute_rules) {
  BOOST_TEST(decode_entities("https://x.example/?a=1&amp;b=2") == "https://x.example/?a=1&b=2");
  BOOST_TEST(decode_entities("a&#38;b&#x26;c&#X26;") == "a&b&c&");
  BOOST_TEST(decode_entities("&quot;&apos;&lt;&gt;") == "\"'<>");
  BOOST_TEST(decode_entities("?a=1&amp") == "?a=1&");        // legacy name at the end
  BOOST_TEST(decode_entities("?x=1&copy=2") == "?x=1&copy=2"); // legacy name before '=': literal
  BOOST_TEST(decode_entities("?x=1&ampy") == "?x=1&ampy");    // ... or before an alphanumeric
  BOOST_TEST(decode_entities("&unknown;") == "&unknown;");
  BOOST_TEST(decode_entities("&#0;&#xD800;") == "\xef\xbf\xbd\xef\xbf\xbd");
  BOOST_TEST(decode_entities("&#150;") == "\xe2\x80\x93");     // windows-1252 meaning
  BOOST_TEST(decode_entities("&#") == "&#");
  // The appending form (the rewrite reuses one buffer per link) keeps what is there.
  for (std::string_view v : {"?a=1&amp;b=2", "?a=1&amp", "&#150;", "plain", ""}) {
    std::string out = "kept&amp;";
    decode_entities(v, out);
    BOOST_TEST(out == "kept&amp;" + decode_entities(v));
  }
}

BOOST_AUTO_TEST_CASE(escaping_per_quote_style) {
  std::string out;
  escape_attr("a&b\"c'd", '"', out);
  BOOST_TEST(out == "a&amp;b&quot;c'd");
  out.clear();
  escape_attr("a&b\"c'd", '\'', out);
  BOOST_TEST(out == "a&amp;b\"c&#39;d");
  out.clear();
  escape_attr("a b=c>", 0, out);
  BOOST_TEST(out == "a&#32;b&#61;c&gt;");
  BOOST_TEST(decode_entities("a&#32;b&#61;c&gt;") == "a b=c>");
}

namespace {

// escape_attr as first written: one table lookup per byte.
std::string escape_reference(std::string_view v, char quote) {
  auto special = [&](char c) {
    if (c == '&') return true;
    if (quote == '"') return c == '"';
    if (quote == '\'') return c == '\'';
    return std::string_view("\"'<>=` \t\n\r\f").find(c) != std::string_view::npos;
  };
  std::string out;
  for (char c : v) {
    if (!special(c)) {
      out += c;
      continue;
    }
    switch (c) {
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '=': out += "&#61;"; break;
      case '`': out += "&#96;"; break;
      default: out += "&#" + std::to_string(static_cast<int>(c)) + ";";
    }
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(escaping_matches_the_byte_by_byte_reference_at_any_length) {
  // Long values (tracking URLs are ~150-200 bytes) with specials at every offset around the
  // 16-byte steps, in every quoting style (an unknown quote is treated as unquoted).
  const std::string specials = "&\"'<>=` \t\n\r\f";
  std::size_t checked = 0;
  for (char quote : {'"', '\'', '\0', 'x'})
    for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 31u, 32u, 33u, 150u})
      for (std::size_t at = 0; at < std::max<std::size_t>(n, 1); ++at)
        for (char sp : specials) {
          std::string v(n, 'a');
          for (std::size_t i = 0; i < n; ++i) v[i] = "AZaz09-_/:.?#%"[(i * 7) % 14];
          if (n > 0) v[at] = sp;
          if (n > 40) v[n - 1] = '&';
          std::string out = "prefix:";  // appends, never replaces
          escape_attr(v, quote, out);
          BOOST_TEST_REQUIRE(out == "prefix:" + escape_reference(v, quote),
                             "quote=" << int(quote) << " n=" << n << " at=" << at << " sp=" << int(sp));
          ++checked;
        }
  BOOST_TEST(checked > 5000u);
}
