#define BOOST_TEST_MODULE reference_man
#include <boost/test/unit_test.hpp>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "conf/reference_man.hpp"
#include "conf/schemas.hpp"

using namespace cllavio::conf;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string def_text(const std::string& def, bool required) {
  if (required) return "(required)";
  if (def.empty()) return "(unset)";
  return def.find('`') == std::string::npos ? "`" + def + "`" : def;
}

// Every key (and every element key of an array of tables) is one .TP entry: the tag line
// names it with its type, the next line carries its default and allowed values, the doc
// follows after .br. Searched in the file's own section (`.SH "TITLE"` up to the next .SH):
// the main and the organization file share key names (retention.*, delivery.*).
template <class T>
void expect_every_key(const std::vector<std::string>& page, const Schema<T>& schema, const std::string& file) {
  std::size_t begin = 0;
  while (begin < page.size() && page[begin] != ".SH \"" + file + "\"") ++begin;
  BOOST_TEST_REQUIRE(begin < page.size(), "no section " << file);
  std::size_t end = begin + 1;
  while (end < page.size() && page[end].rfind(".SH ", 0) != 0) ++end;
  auto expect = [&](const std::string& path, const std::string& type, const std::string& def,
                    const std::string& allowed, const std::string& doc) {
    std::string tag = man_text("`" + path + "` (" + type + ")");
    std::size_t at = begin;
    while (at < end && !(page[at] == tag && page[at - 1] == ".TP")) ++at;
    BOOST_TEST_INFO(file << ": " << path);
    BOOST_REQUIRE(at + 3 < end);
    std::string facts = "Default: " + def + ".";
    if (!allowed.empty()) facts += " Allowed: " + allowed + ".";
    BOOST_TEST(page[at + 1] == man_text(facts));
    BOOST_TEST(page[at + 2] == ".br");
    BOOST_TEST(page[at + 3] == man_text(doc));
  };
  BOOST_TEST_REQUIRE(!schema.keys().empty());
  for (const auto& k : schema.keys()) {
    expect(k.path, k.type, def_text(k.default_text, k.required), k.allowed, k.doc);
    for (const auto& r : k.rows) expect(r[0], r[1], r[2] == "(required)" ? r[2] : def_text(r[2], false), r[3], r[4]);
  }
  for (const auto& r : schema.rules()) {
    bool found = false;
    for (std::size_t i = begin; i < end; ++i) found = found || page[i] == man_text(r.doc);
    BOOST_TEST(found, file << ": rule " << r.doc);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(escapes_what_groff_would_read_as_markup) {
  BOOST_TEST(man_text("C:\\dir") == "C:\\edir");
  BOOST_TEST(man_text("--json -n 1-2") == "\\-\\-json \\-n 1\\-2");
  BOOST_TEST(man_text(".start") == "\\&.start");
  BOOST_TEST(man_text("'quoted' start") == "\\&'quoted' start");
  BOOST_TEST(man_text("mid. dot 'and' quote") == "mid. dot 'and' quote");  // only at a line start
  BOOST_TEST(man_text("one\n.two\n'three") == "one\n\\&.two\n\\&'three");
  BOOST_TEST(man_text("tab\there\x01") == "tab here");  // control characters do not reach groff
  BOOST_TEST(man_text("caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x93\xa7") == "caf\\[u00E9] \\[u2014] \\[u1F4E7]");
  BOOST_TEST(man_text("bad \xff byte") == "bad \\[uFFFD] byte");
  BOOST_TEST(man_text("cut \xc3") == "cut \\[uFFFD]");
}

BOOST_AUTO_TEST_CASE(code_spans_are_bold_and_a_lone_backtick_stays) {
  BOOST_TEST(man_text("set `milter.user` and `group`") == "set \\fBmilter.user\\fR and \\fBgroup\\fR");
  BOOST_TEST(man_text("`-n`") == "\\fB\\-n\\fR");
  BOOST_TEST(man_text("a `b` c ` d") == "a \\fBb\\fR c \\(ga d");
  BOOST_TEST(man_text("`.dot` first") == "\\fB.dot\\fR first");  // the line starts with \f, not '.'
}

BOOST_AUTO_TEST_CASE(every_key_of_every_file_is_documented) {
  auto page = lines_of(render_reference_man());
  expect_every_key(page, main_schema(), "MAIN FILE");
  expect_every_key(page, org_schema(), "ORGANIZATION FILES");
  expect_every_key(page, secrets_schema(), "SECRETS FILE");
}

BOOST_AUTO_TEST_CASE(page_structure) {
  std::string text = render_reference_man();
  auto page = lines_of(text);
  BOOST_TEST_REQUIRE(page.size() > 100u);
  std::vector<std::string> sections;
  for (const auto& l : page)
    if (l.rfind(".SH ", 0) == 0) sections.push_back(l.substr(4));
  std::vector<std::string> want{"NAME",          "SYNOPSIS",      "DESCRIPTION",           "FILES",
                                "\"MAIN FILE\"", "\"ORGANIZATION FILES\"", "\"SECRETS FILE\"", "EXAMPLES",
                                "\"SEE ALSO\""};
  BOOST_TEST(sections == want, boost::test_tools::per_element());
  BOOST_TEST(text.find(".TH CLLAVIO.TOML 5 ") != std::string::npos);
  BOOST_TEST(text.find("cllavio.toml \\- configuration") != std::string::npos);
  for (const char* f : {"/etc/cllavio/cllavio.toml", "/etc/cllavio/orgs.d/*.toml", "/etc/cllavio/secrets.toml"})
    BOOST_TEST(text.find(std::string(".I ") + f + "\n") != std::string::npos, f);
  for (const char* see : {".BR cllavio\\-milter (8),", ".BR cllavioctl (8),", ".BR postconf (5),"})
    BOOST_TEST(text.find(see) != std::string::npos, see);

  // No text line is read as a request: every line starting with '.' or '\'' is one of ours.
  const std::set<std::string> requests{".\\\"", ".TH", ".SH", ".SS", ".TP", ".PP", ".br", ".IP", ".RS",
                                       ".RE", ".nf", ".fi", ".I", ".B", ".BR", ".nh", ".ad"};
  for (const auto& l : page) {
    BOOST_TEST_INFO(l);
    BOOST_TEST(l.rfind('\'', 0) != 0);
    if (l.empty() || l[0] != '.') continue;
    BOOST_TEST(requests.count(l.substr(0, l.find(' '))) == 1u);
  }
  // Every unescaped hyphen outside comments would be a typographic hyphen, not an ASCII minus.
  for (const auto& l : page) {
    if (l.rfind(".\\\"", 0) == 0) continue;
    for (std::size_t i = 0; i < l.size(); ++i)
      if (l[i] == '-') BOOST_TEST((i > 0 && l[i - 1] == '\\'), "unescaped '-' in: " << l);
  }
}
