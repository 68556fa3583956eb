// The rewrite engine over the third-party corpus (../shared/corpus, or $CLLAVIO_CORPUS).
// Skipped cleanly when the corpus is absent.
//  - eml/: every message goes through without a crash; when it changes, it walks to the
//    same structure, untouched parts are byte-identical, changed lines are <= 998 octets
//    and every tracking URL verifies.
//  - html-templates/: each template wrapped as multipart/alternative in 7bit (or 8bit),
//    quoted-printable and base64 gets every http(s) link rewritten except the documented
//    skips, and every token verifies back to the entity-decoded original URL.
#define BOOST_TEST_MODULE tracking_corpus
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "tracking/encoding.hpp"
#include "tracking/html.hpp"
#include "tracking/rewrite.hpp"
#include "tracking/url.hpp"

using namespace cllavio::tracking;
namespace fs = std::filesystem;

namespace {

std::string corpus_dir() {
  if (const char* env = std::getenv("CLLAVIO_CORPUS")) return env;
  return std::string(CLLAVIO_SOURCE_DIR) + "/../shared/corpus";
}

std::vector<fs::path> files_under(const std::string& sub) {
  std::vector<fs::path> out;
  fs::path dir = fs::path(corpus_dir()) / sub;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().filename().string().front() != '_') out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const TokenCodec& codec() {
  static const TokenCodec c({TrackingKey{"k1", std::string(32, 'c')}});
  return c;
}

TrackingPolicy tracking_on() {
  TrackingPolicy p;
  p.opens = p.clicks = true;
  p.domain = "t.acme.example";
  return p;
}

std::size_t longest_line(std::string_view s) {
  std::size_t best = 0, pos = 0;
  while (pos < s.size()) {
    std::size_t nl = s.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? s.size() : nl;
    best = std::max(best, end - pos - (end > pos && s[end - 1] == '\r' ? 1 : 0));
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return best;
}

std::string decode_part(const Part& p, std::string_view raw) {
  std::string out;
  if (p.encoding == "quoted-printable") qp_decode(raw, out);
  else if (p.encoding == "base64") base64_decode(raw, out);
  else out.assign(raw);
  return out;
}

// Every tracking URL in `text` must verify.
int verify_all(std::string_view text) {
  int n = 0;
  for (std::string_view prefix : {"https://t.acme.example/c/", "https://t.acme.example/o/"}) {
    for (std::size_t pos = text.find(prefix); pos != std::string_view::npos; pos = text.find(prefix, pos + 1)) {
      std::size_t end = text.find_first_of("\"' <>\r\n", pos);
      auto r = codec().verify_url_or_token(text.substr(pos, end - pos));
      BOOST_TEST(std::holds_alternative<TokenData>(r));
      ++n;
    }
  }
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_corpus_message) {
  auto files = files_under("eml");
  if (files.empty()) {
    BOOST_TEST_MESSAGE("corpus not present: skipped");
    return;
  }
  std::map<std::string, int> outcomes;
  for (const auto& path : files) {
    BOOST_TEST_CONTEXT(path.string()) {
      std::string msg = read(path);
      if (msg.rfind("From ", 0) == 0) msg.erase(0, msg.find('\n') + 1);
      std::size_t hlen = msg.size();
      for (std::size_t pos = 0; pos < msg.size();) {
        std::size_t nl = msg.find('\n', pos);
        if (nl == std::string::npos) break;
        if (nl == pos || (nl == pos + 1 && msg[pos] == '\r')) {
          hlen = nl + 1;
          break;
        }
        pos = nl + 1;
      }
      std::string_view header = std::string_view(msg).substr(0, hlen), body = std::string_view(msg).substr(hlen);
      RewriteInput in{header, body, "acme", 42, std::nullopt};
      RewriteResult r = rewrite(in, tracking_on(), RewriteLimits{}, codec());
      std::string outcome = r.changed ? "changed" : r.skipped.empty() ? "unchanged" : r.skipped.substr(0, r.skipped.find(':'));
      ++outcomes[outcome];
      if (!r.changed) continue;
      std::vector<HeaderField> fields, out_fields;
      std::size_t end = 0;
      BOOST_REQUIRE(parse_header_block(header, 1 << 20, fields, end));
      std::string out_header = apply_header_edits(header, r.header_edits);  // e.g. 7bit became quoted-printable
      BOOST_REQUIRE(parse_header_block(out_header, 1 << 20, out_fields, end));
      MimeTree before = walk(fields, body, {}), after = walk(out_fields, r.body, {});
      BOOST_REQUIRE(!after.malformed);
      BOOST_REQUIRE_EQUAL(before.parts.size(), after.parts.size());
      int tokens = 0;
      for (std::size_t i = 0; i < before.parts.size(); ++i) {
        const Part& b = before.parts[i];
        const Part& a = after.parts[i];
        BOOST_TEST(a.type.type == b.type.type);
        BOOST_TEST(a.type.subtype == b.type.subtype);
        if (!b.children.empty()) continue;
        std::string_view old_content = body.substr(b.body_begin, b.body_end - b.body_begin);
        std::string_view new_content = std::string_view(r.body).substr(a.body_begin, a.body_end - a.body_begin);
        if (old_content == new_content) continue;
        BOOST_TEST((b.type.type == "text" && !b.attachment), "only text bodies change");
        BOOST_TEST(longest_line(new_content) <= 998u);
        tokens += verify_all(decode_part(a, new_content));
      }
      BOOST_TEST(tokens > 0);
    }
  }
  std::string summary;
  for (const auto& [k, v] : outcomes) summary += " " + k + "=" + std::to_string(v);
  BOOST_TEST_MESSAGE(files.size() << " corpus messages:" << summary);
  BOOST_TEST(outcomes["changed"] > 0);
}

namespace {

std::string wrap(const std::string& html, const std::string& encoding) {
  std::string content;
  if (encoding == "base64") base64_encode(html, Eol::crlf, content);
  else if (encoding == "quoted-printable") qp_encode(html, Eol::crlf, content);
  else content = html;
  return "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain version.\r\n"
         "--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: " +
         encoding + "\r\n\r\n" + content + "\r\n--alt--\r\n";
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_template_in_every_encoding) {
  auto files = files_under("html-templates");
  if (files.empty()) {
    BOOST_TEST_MESSAGE("corpus not present: skipped");
    return;
  }
  int templates = 0, tracked = 0, kept = 0;
  RewriteLimits lim;
  lim.max_links = 100000;
  for (const auto& path : files) {
    std::string ext = path.extension().string();
    if (ext != ".html" && ext != ".htm") continue;
    ++templates;
    std::string html = read(path);
    for (std::size_t p; (p = html.find("\r\n")) != std::string::npos;) html.erase(p, 1);  // normalize, then CRLF
    for (std::size_t p = 0; (p = html.find('\n', p)) != std::string::npos; p += 2) html.insert(p, "\r");
    bool ascii = std::all_of(html.begin(), html.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    for (std::string enc : {std::string(ascii ? "7bit" : "8bit"), std::string("quoted-printable"), std::string("base64")}) {
      BOOST_TEST_CONTEXT(path.filename().string() << " " << enc) {
        std::string header = "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=alt\r\n";
        std::string body = wrap(html, enc);
        RewriteInput in{header, body, "acme", 7, std::string("r@example.net")};
        RewriteResult r = rewrite(in, tracking_on(), lim, codec());
        BOOST_REQUIRE_MESSAGE(r.changed, r.skipped);
        BOOST_TEST(r.pixels == 1);
        std::vector<HeaderField> fields;
        std::size_t end = 0;
        parse_header_block(header, 1 << 20, fields, end);
        MimeTree after = walk(fields, r.body, {});
        BOOST_REQUIRE_EQUAL(after.parts.size(), 3u);
        const Part& hp = after.parts[2];
        std::string out_html = decode_part(hp, std::string_view(r.body).substr(hp.body_begin, hp.body_end - hp.body_begin));
        BOOST_TEST(longest_line(std::string_view(r.body).substr(hp.body_begin, hp.body_end - hp.body_begin)) <= 998u);
        HtmlScan before = scan_html(html), now = scan_html(out_html);
        BOOST_REQUIRE_EQUAL(before.links.size(), now.links.size());
        UrlContext ctx{"t.acme.example", nullptr, "utf-8"};  // wrap() declares UTF-8
        for (std::size_t i = 0; i < before.links.size(); ++i) {
          const auto& b = before.links[i];
          const auto& a = now.links[i];
          std::string orig_raw = html.substr(b.href.begin, b.href.end - b.href.begin);
          std::string new_raw = out_html.substr(a.href.begin, a.href.end - a.href.begin);
          std::string orig = clean_url(decode_entities(orig_raw));
          if (new_raw.rfind("https://t.acme.example/c/", 0) == 0) {
            auto t = codec().verify_url_or_token(new_raw);
            BOOST_REQUIRE(std::holds_alternative<TokenData>(t));
            BOOST_TEST(std::get<TokenData>(t).url == orig);
            BOOST_TEST(a.href.quote == b.href.quote);
            if (enc == "base64") ++tracked;
          } else {
            BOOST_TEST(new_raw == orig_raw);
            bool documented = !b.opt_out.empty() || classify_url(orig, ctx) != Skip::none;
            BOOST_TEST(documented, "kept without a documented reason: " << orig);
            if (enc == "base64") ++kept;
          }
        }
      }
    }
  }
  BOOST_TEST_MESSAGE(templates << " templates x 3 encodings: " << tracked << " links tracked, " << kept
                                << " kept (documented skips) per encoding");
  BOOST_TEST(tracked > 0);
}
