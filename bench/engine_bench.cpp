// Rewrite engine throughput: whole-message rewriting over the HTML template corpus,
// each template wrapped as multipart/alternative (with a Gmail-style boundary) in
// 7bit, 8bit, quoted-printable and base64 ("all" is the last three together), printed
// beside a plain copy of the same bytes measured in the same run. A 7bit part whose
// rewrite carries 8-bit bytes (templates in UTF-8 labelled 7bit, as some senders do)
// or a line over 998 octets goes out as quoted-printable.
//
//   engine_bench [CORPUS_DIR] [ROUNDS]   (default ../shared/corpus next to the repo, 15)
//
// Prints the median over rounds of MB/s (input bytes per second, one core) per encoding
// and overall, and the ratio to the copy. Without the corpus it uses a generated
// newsletter so the figures still exist (and says so). Each encoding's line ends with an
// output fingerprint: FNV-1a 64 over every message's outcome (changed flag, skip reason,
// body, header edits, link table) in order, so "same output" across engine changes is
// one comparison (the inputs and keys are fixed, so the tokens are too).
//
// ENGINE_BENCH_ONLY=<encoding> runs one encoding; ENGINE_BENCH_ONLY=qp-codec times
// qp_decode and qp_encode alone over the templates instead (see qp_codec_bench).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tracking/encoding.hpp"
#include "tracking/rewrite.hpp"

using namespace cllavio::tracking;
namespace fs = std::filesystem;

namespace {

struct Message {
  std::string header, body;
};

std::string crlf(std::string s) {
  std::string out;
  out.reserve(s.size() + s.size() / 40);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) out.push_back('\r');
    out.push_back(s[i]);
  }
  return out;
}

Message wrap(const std::string& html, const std::string& enc) {
  std::string content;
  if (enc == "base64") base64_encode(html, Eol::crlf, content);
  else if (enc == "quoted-printable") qp_encode(html, Eol::crlf, content);
  else content = html;
  // A boundary as long as real clients make them (Gmail 28, Outlook ~50, Thunderbird 36
  // characters): the walker's search skips by the boundary's length.
  const std::string b = "000000000000a4c2e705f1e3b2d7";
  return {"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"" + b + "\"\r\n",
          "--" + b + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain version.\r\n--" + b +
              "\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: " + enc + "\r\n\r\n" +
              content + "\r\n--" + b + "--\r\n"};
}

std::vector<std::string> templates(const std::string& corpus) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::path dir = fs::path(corpus) / "html-templates";
  if (fs::is_directory(dir, ec))
    for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
      auto ext = e.path().extension().string();
      if (!e.is_regular_file() || (ext != ".html" && ext != ".htm")) continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      out.push_back(crlf(ss.str()));
    }
  std::sort(out.begin(), out.end());
  return out;
}

std::string generated_newsletter() {
  std::string h = "<html><body><table>\r\n";
  for (int i = 0; i < 60; ++i)
    h += "<tr><td><p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p><a href=\"https://shop.example/p/" +
         std::to_string(i) + "?utm_source=mail&amp;utm_medium=email\">Product " + std::to_string(i) +
         "</a></td></tr>\r\n";
  return h + "</table></body></html>\r\n";
}

// FNV-1a 64, fed length-prefixed fields so that field boundaries count.
struct Fnv {
  std::uint64_t h = 0xcbf29ce484222325ull;
  void bytes(std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  }
  void field(std::string_view s) {
    num(s.size());
    bytes(s);
  }
  void num(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ull;
  }
};

void fingerprint(Fnv& f, const RewriteResult& r) {
  f.num(r.changed);
  f.field(r.skipped);
  f.field(r.body);
  f.num(r.header_edits.size());
  for (const auto& e : r.header_edits) {
    f.num(static_cast<std::uint64_t>(e.op));
    f.field(e.name);
    f.num(static_cast<std::uint64_t>(e.occurrence));
    f.field(e.value);
  }
  f.num(static_cast<std::uint64_t>(r.parts_changed));
  f.num(static_cast<std::uint64_t>(r.pixels));
  f.field(r.pixel_skipped);
  f.num(static_cast<std::uint64_t>(r.old_pixels_removed));
  f.num(static_cast<std::uint64_t>(r.old_links_restored));
  f.num(r.links.size());
  for (const auto& l : r.links) {
    f.num(l.index);
    f.field(l.url);
  }
  f.num(r.kept.size());
  for (const auto& k : r.kept) {
    f.field(k.url);
    f.field(k.why);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ENGINE_BENCH_ONLY=qp-codec: qp_decode and qp_encode alone over the templates (decode
// of their QP form, encode of the HTML), median MB/s of input per round, with a
// fingerprint of the outputs (decode must give back the HTML).
int qp_codec_bench(const std::vector<std::string>& html, int rounds) {
  std::vector<std::string> qp(html.size());
  std::size_t html_bytes = 0, qp_bytes = 0;
  for (std::size_t k = 0; k < html.size(); ++k) {
    qp_encode(html[k], Eol::crlf, qp[k]);
    html_bytes += html[k].size();
    qp_bytes += qp[k].size();
  }
  std::vector<double> dec, enc;
  std::string out;
  Fnv fp;
  bool same = true;
  for (int r = -1; r < rounds; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (std::size_t k = 0; k < html.size(); ++k) {
      out.clear();
      qp_decode(qp[k], out);
      if (r < 0) same = same && out == html[k];
    }
    auto t1 = std::chrono::steady_clock::now();
    for (std::size_t k = 0; k < html.size(); ++k) {
      out.clear();
      qp_encode(html[k], Eol::crlf, out);
      if (r < 0) fp.field(out);
    }
    auto t2 = std::chrono::steady_clock::now();
    if (r < 0) continue;
    dec.push_back(qp_bytes / 1e6 / std::chrono::duration<double>(t1 - t0).count());
    enc.push_back(html_bytes / 1e6 / std::chrono::duration<double>(t2 - t1).count());
  }
  std::printf("qp_decode %10zu bytes %10.0f MB/s  round trip %s\n", qp_bytes, median(dec), same ? "ok" : "DIFFERS");
  std::printf("qp_encode %10zu bytes %10.0f MB/s  fingerprint %016llx\n", html_bytes, median(enc),
              static_cast<unsigned long long>(fp.h));
  return same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string corpus = argc > 1 ? argv[1] : std::string(CLLAVIO_SOURCE_DIR) + "/../shared/corpus";
  int rounds = argc > 2 ? std::atoi(argv[2]) : 15;
  auto html = templates(corpus);
  bool generated = html.empty();
  if (generated) html.push_back(generated_newsletter());

  TokenCodec codec({TrackingKey{"bench", std::string(32, 'b')}});
  TrackingPolicy policy;
  policy.opens = policy.clicks = true;
  policy.domain = "t.bench.example";
  RewriteLimits limits;

  const char* only = std::getenv("ENGINE_BENCH_ONLY");  // profiling one encoding
  if (only != nullptr && std::string_view(only) == "qp-codec") return qp_codec_bench(html, rounds);
  std::printf("rewrite engine: %zu %s, %d rounds, one core; median MB/s of input\n", html.size(),
              generated ? "generated newsletter(s) (corpus absent)" : "corpus templates", rounds);
  std::printf("%-18s %10s %10s %10s %8s %8s  %s\n", "encoding", "bytes", "rewrite", "copy", "x copy", "links",
              "output fingerprint");
  for (std::string enc : {"7bit", "8bit", "quoted-printable", "base64", "all"}) {
    if (only != nullptr && enc != only) continue;
    std::vector<Message> msgs;
    for (const auto& h : html) {
      if (enc == "all")
        for (std::string e : {"8bit", "quoted-printable", "base64"}) msgs.push_back(wrap(h, e));
      else
        msgs.push_back(wrap(h, enc));
    }
    std::size_t bytes = 0;
    for (const auto& m : msgs) bytes += m.header.size() + m.body.size();
    std::vector<double> rw, cp;
    std::size_t links = 0, sink = 0;
    std::string copy;
    Fnv fp;  // of the warm-up round's outputs (every round gives the same)
    for (int r = -1; r < rounds; ++r) {  // round -1 warms caches and the allocator
      if (r == 0) links = 0;
      auto t0 = std::chrono::steady_clock::now();
      for (const auto& m : msgs) {
        RewriteInput in{m.header, m.body, "bench", 42, std::string("r@example.net")};
        RewriteResult out = rewrite(in, policy, limits, codec);
        links += out.links.size();
        sink += out.body.size();
        if (r < 0) fingerprint(fp, out);
      }
      auto t1 = std::chrono::steady_clock::now();
      for (const auto& m : msgs) {  // the baseline: the bytes copied once, as a rewrite must at least do
        copy.assign(m.header);
        copy.append(m.body);
        sink += copy.size();
      }
      auto t2 = std::chrono::steady_clock::now();
      if (r < 0) continue;
      rw.push_back(bytes / 1e6 / std::chrono::duration<double>(t1 - t0).count());
      cp.push_back(bytes / 1e6 / std::chrono::duration<double>(t2 - t1).count());
    }
    double mrw = median(rw), mcp = median(cp);
    std::printf("%-18s %10zu %10.0f %10.0f %8.3f %8zu  %016llx\n", enc.c_str(), bytes, mrw, mcp, mrw / mcp,
                links / static_cast<std::size_t>(rounds), static_cast<unsigned long long>(fp.h));
    if (sink == 0) std::printf("(nothing written)\n");
  }
  return 0;
}
