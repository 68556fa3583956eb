#define BOOST_TEST_MODULE encoding
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "tracking/encoding.hpp"
#include "tracking/qp_simd.hpp"

using namespace cllavio::tracking;

namespace {

std::string qpd(std::string_view s) {
  std::string out;
  qp_decode(s, out);
  return out;
}
std::string qpe(std::string_view s, Eol e = Eol::crlf) {
  std::string out;
  qp_encode(s, e, out);
  return out;
}
std::size_t longest(std::string_view s) {
  std::size_t best = 0, cur = 0;
  for (char c : s) {
    if (c == '\n') {
      best = std::max(best, cur);
      cur = 0;
    } else if (c != '\r') {
      ++cur;
    }
  }
  return std::max(best, cur);
}

}  // namespace

BOOST_AUTO_TEST_CASE(qp_decode_rules) {
  BOOST_TEST(qpd("caf=C3=A9") == "caf\xc3\xa9");
  BOOST_TEST(qpd("caf=c3=a9") == "caf\xc3\xa9");           // lowercase hex accepted
  BOOST_TEST(qpd("soft=\r\nbreak") == "softbreak");
  BOOST_TEST(qpd("soft=  \r\nbreak") == "softbreak");      // blanks after '=' of a soft break
  BOOST_TEST(qpd("soft=\nbreak") == "softbreak");          // bare LF
  BOOST_TEST(qpd("hard\r\nbreak") == "hard\r\nbreak");
  BOOST_TEST(qpd("a=3Db") == "a=b");
  BOOST_TEST(qpd("stray = sign=ZZ") == "stray = sign=ZZ"); // invalid: kept
  BOOST_TEST(qpd("end=") == "end");
  BOOST_TEST(qpd("=4") == "=4");
}

BOOST_AUTO_TEST_CASE(qp_encode_keeps_lines_within_76_and_round_trips) {
  std::string html = "<a href=\"https://x.example/?a=1&b=2\">caf\xc3\xa9</a>" + std::string(300, 'x') + "\r\nend  \r\n\tz\r\n";
  std::string enc = qpe(html);
  BOOST_TEST(longest(enc) <= 76u);
  BOOST_TEST(enc.find("=3D") != std::string::npos);
  BOOST_TEST(enc.find("end =20\r\n") != std::string::npos);  // only the blank ending the line is encoded
  BOOST_TEST(qpd(enc) == html);
  std::string lf = qpe("a\nb", Eol::lf);
  BOOST_TEST(lf == "a\nb");
  BOOST_TEST(qpe("a\rb") == "a=0Db");  // a bare CR is data
}

BOOST_AUTO_TEST_CASE(qp_round_trips_random_bytes_at_line_boundaries) {
  std::mt19937 rng(42);
  for (int round = 0; round < 300; ++round) {
    std::string s;
    std::size_t len = rng() % 400;
    for (std::size_t i = 0; i < len; ++i) {
      int pick = rng() % 10;
      s.push_back(pick == 0 ? '\n' : pick == 1 ? ' ' : pick == 2 ? '=' : static_cast<char>(rng() % 256));
    }
    // Lone CR before LF would turn into CRLF; keep the property about what QP carries.
    std::string expect;
    for (std::size_t i = 0; i < s.size(); ++i) expect += s[i] == '\n' ? std::string("\r\n") : std::string(1, s[i]);
    std::string enc = qpe(s);
    BOOST_TEST(longest(enc) <= 76u);
    std::string dec = qpd(enc);
    // Every LF (and CRLF) of the input is a hard break written as CRLF.
    std::string norm;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
      norm += s[i] == '\n' ? std::string("\r\n") : std::string(1, s[i]);
    }
    BOOST_TEST(dec == norm);
  }
}

BOOST_AUTO_TEST_CASE(base64_rules) {
  std::string out;
  BOOST_TEST(base64_decode("aGVs\r\nbG8=\r\n", out));
  BOOST_TEST(out == "hello");
  out.clear();
  BOOST_TEST(base64_decode("", out));
  BOOST_TEST(out.empty());
  BOOST_TEST(!base64_decode("aGVsbG8", out));      // truncated group
  BOOST_TEST(!base64_decode("aGV*bG8=", out));     // not in the alphabet
  BOOST_TEST(!base64_decode("aG=sbG8=", out));     // padding inside
  std::string enc;
  base64_encode(std::string(100, 'a'), Eol::lf, enc);
  BOOST_TEST(enc.substr(0, 77).back() == '\n');
  BOOST_TEST(enc.find('\n') == 76u);
  out.clear();
  BOOST_TEST(base64_decode(enc, out));
  BOOST_TEST(out == std::string(100, 'a'));
}

BOOST_AUTO_TEST_CASE(base64_line_shapes_encoders_write) {
  std::string out = "keep:";
  BOOST_TEST(base64_decode("aGVsbG8gd29y\nbGQ=\n", out));  // appends
  BOOST_TEST(out == "keep:hello world");
  out.clear();
  BOOST_TEST(base64_decode("aGVsbG8gd2\r\n9ybGQ=\r\n", out));  // groups split across lines
  BOOST_TEST(out == "hello world");
  out.clear();
  BOOST_TEST(base64_decode("aGVsbG8=  \r\n\r\n \t\r\n", out));  // trailing blanks and blank lines
  BOOST_TEST(out == "hello");
  out.clear();
  BOOST_TEST(base64_decode("\r\n\r\naGVsbG8g\r\nd29ybGQ=", out));  // blank lines before, no final break
  BOOST_TEST(out == "hello world");
  out.clear();
  BOOST_TEST(base64_decode("aGk=\n", out));
  BOOST_TEST(out == "hi");
  out.clear();
  BOOST_TEST(base64_decode("aGVsbG8gd29y\r\n", out));  // unpadded whole groups
  BOOST_TEST(out == "hello wor");
  out.clear();
  BOOST_TEST(base64_decode("aGk\n=\n", out));  // the padding alone on the last line
  BOOST_TEST(out == "hi");
  out.clear();
  BOOST_TEST(base64_decode("aG=\n=\n", out));  // or split across lines (widths not a multiple of 4)
  BOOST_TEST(out == "h");
  out.clear();
  BOOST_TEST(base64_decode("aGl=", out));  // unused bits need not be zero (as OpenSSL)
  BOOST_TEST(out == "hi");
}

BOOST_AUTO_TEST_CASE(base64_bytes_outside_the_alphabet_fail) {
  std::string out;
  BOOST_TEST(!base64_decode("aGV*bG8=", out));
  BOOST_TEST(!base64_decode("aGVs\nbG8*\n", out));           // second line
  BOOST_TEST(!base64_decode("aGVs\fbG8=", out));             // form feed
  BOOST_TEST(!base64_decode(std::string("aGVs\0bG8=", 9), out));
  BOOST_TEST(!base64_decode("aGVs\xc3\xa9G8=", out));        // 8-bit
  BOOST_TEST(!base64_decode("aGVs-G8_", out));               // the URL-safe alphabet is not MIME's
}

BOOST_AUTO_TEST_CASE(base64_whitespace_only_ends_a_line) {
  std::string out;
  BOOST_TEST(!base64_decode("aGVs bG8g\td29y bGQ=", out));  // blanks inside a line
  BOOST_TEST(!base64_decode(" aGVsbG8=\r\n", out));           // before the data of a line
  BOOST_TEST(!base64_decode("aGVsbG8g\r\n    d29y\r\n", out));
  BOOST_TEST(!base64_decode("aGVs\rbG8=\r\n", out));          // a bare CR is not a line break
}

BOOST_AUTO_TEST_CASE(base64_padding_only_at_the_end) {
  std::string out;
  BOOST_TEST(!base64_decode("aG=sbG8=", out));
  BOOST_TEST(!base64_decode("aGk=\naGk=\n", out));      // data after the padding
  BOOST_TEST(!base64_decode("aGVsbG8=aGk=\n", out));    // padding inside a line
  BOOST_TEST(!base64_decode("====\n", out));
  BOOST_TEST(!base64_decode("aGk==\n", out));           // more padding than the group needs
  BOOST_TEST(!base64_decode("aG===\n", out));
  BOOST_TEST(!base64_decode("a===\n", out));
  BOOST_TEST(!base64_decode("aG=\n==\n", out));         // padding split across lines, one too many
  BOOST_TEST(!base64_decode("aG=\nx\n", out));
}

BOOST_AUTO_TEST_CASE(base64_nothing_but_blank_lines_after_a_blank_line) {
  std::string out;
  BOOST_TEST(!base64_decode("aGVs\r\n\r\nbG8=\r\n", out));
  BOOST_TEST(!base64_decode("aGVs\n \nbG8=\n", out));  // a line of blanks is blank
  BOOST_TEST(base64_decode("aGVs\r\n\r\n\r\n", out));
}

BOOST_AUTO_TEST_CASE(base64_lines_as_long_as_the_first_but_the_last) {
  std::string out;
  BOOST_TEST(!base64_decode("aGVsbG8g\nd29y\nbGQ=\n", out));      // a short line in the middle
  BOOST_TEST(!base64_decode("aGVs\nbG8gd29y\n", out));            // the last line longer
  BOOST_TEST(!base64_decode("aGVsbG8g\nd29ybGQ=IQ==\n", out));
  BOOST_TEST(base64_decode("aGVsbG8g\nd29ybGQ=\n", out));         // equal
  out.clear();
  BOOST_TEST(base64_decode("aGVsbG8g\r\nd29ybGQh  \r\naQ==\r\n", out));  // trailing blanks do not count
  BOOST_TEST(out == "hello world!i");
}

BOOST_AUTO_TEST_CASE(base64_whole_groups) {
  std::string out;
  BOOST_TEST(!base64_decode("aGVsbG8", out));
  BOOST_TEST(!base64_decode("aGVsbG8\r\n", out));
  BOOST_TEST(!base64_decode("aGVsbG8gd2\n9ybGQ\n", out));  // 15 characters over two lines
  BOOST_TEST(!base64_decode("a", out));
}

BOOST_AUTO_TEST_CASE(base64_text_after_the_data_is_found) {
  auto data_end = [](std::string_view in) {
    std::string out;
    std::size_t end = 0;
    BOOST_TEST(!base64_decode(in, out, &end));
    if (end != std::string_view::npos) {  // what comes before is whole data on its own
      std::string prefix;
      BOOST_TEST(base64_decode(in.substr(0, end), prefix));
    }
    return end;
  };
  constexpr auto npos = std::string_view::npos;
  // A list footer after a blank line, in and out of the alphabet.
  BOOST_TEST(data_end("aGVsbG8=\r\n\r\n_______________\r\nList footer text\r\n") == 12u);
  BOOST_TEST(data_end("aGVsbG8gd29y\r\n\r\nListFooter\r\n") == 16u);
  // Right after the data: alphabet characters and spaces, or a longer line.
  BOOST_TEST(data_end("aGVsbG8gd29y\r\nList footer text\r\n") == 14u);
  BOOST_TEST(data_end("aGVsbG8gd29y\r\nbGQ=\r\nFooterText\r\n") == 20u);  // after the padding
  BOOST_TEST(data_end("aGVsbG8gd29y\r\naGVs\r\nFoot\r\n") == 20u);        // after a shorter last line
  BOOST_TEST(data_end("aGVsbG8gd29y\r\nListFooterText\r\n") == 14u);      // longer than the data lines
  // Not whole data before the line that breaks the rules.
  BOOST_TEST(data_end("aGV*\r\n") == npos);
  BOOST_TEST(data_end("aGVsbG8\r\n\r\nfooter\r\n") == npos);
  BOOST_TEST(data_end("aGVsbG8gd2\r\n9y*G\r\n") == npos);  // inside a group split across lines
  std::string out;
  std::size_t end = 0;
  BOOST_TEST(!base64_decode("aGVsbG8", out, &end));  // truncated: nothing after the data
  BOOST_TEST(end == npos);
  // The documented limit: alphabet-only text of the right length right after unpadded
  // data is data.
  BOOST_TEST(base64_decode("aGVsbG8h\r\nFoot\r\n", out));
}

BOOST_AUTO_TEST_CASE(base64_every_line_width_and_ending_decodes) {
  // Encoders differ in line width (76, 64, 72, one long line) and endings; all of it
  // decodes to the same bytes as before the decoder became strict.
  std::mt19937 rng(11);
  for (int round = 0; round < 400; ++round) {
    std::string s(rng() % 300, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    std::string flat;
    base64_encode(s, Eol::lf, flat);
    for (std::size_t p; (p = flat.find('\n')) != std::string::npos;) flat.erase(p, 1);
    std::size_t width = 1 + rng() % 100;
    std::string eol = rng() % 2 ? "\r\n" : "\n";
    std::string in = rng() % 3 == 0 ? eol : "";
    for (std::size_t off = 0; off < flat.size(); off += width)
      in += flat.substr(off, width) + (rng() % 4 == 0 ? " " : "") + eol;
    if (rng() % 2) in += eol + eol;
    std::string out;
    BOOST_TEST(base64_decode(in, out), in);
    BOOST_TEST(out == s);
  }
}

BOOST_AUTO_TEST_CASE(base64_round_trips_every_length) {
  std::mt19937 rng(7);
  for (std::size_t len = 0; len < 200; ++len) {
    std::string s(len, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    std::string enc, dec;
    base64_encode(s, Eol::crlf, enc);
    BOOST_TEST(longest(enc) <= 76u);
    BOOST_TEST(base64_decode(enc, dec));
    BOOST_TEST(dec == s);
  }
}

BOOST_AUTO_TEST_CASE(qp_encode_of_long_literal_runs_crosses_its_buffer_safely) {
  // Long runs of literal bytes cross the encoder's internal buffer many times.
  for (std::size_t len : {4000u, 4095u, 4096u, 4097u, 20000u, 100000u}) {
    std::string s(len, 'a');
    s[len / 2] = '=';
    std::string enc = qpe(s);
    BOOST_TEST(longest(enc) <= 76u);
    BOOST_TEST(qpd(enc) == s);
  }
}

namespace {

std::string b64e(std::string_view s, Eol e) {
  std::string out;
  base64_encode(s, e, out);
  return out;
}

// The QP rules of encoding.hpp written plainly, byte by byte (the encoder copies whole
// stretches and classifies 64 bytes at a time; it must write exactly this).
std::string plain_qp(std::string_view in, Eol eol) {
  constexpr char kHex[] = "0123456789ABCDEF";
  const std::string_view nl = eol_str(eol);
  std::string out;
  std::size_t col = 0, i = 0;
  auto soft_break = [&] {
    out += '=';
    out += nl;
    col = 0;
  };
  while (i < in.size()) {
    std::size_t lf = in.find('\n', i);
    bool hard = lf != std::string_view::npos;
    std::size_t stop = hard ? lf : in.size(), next = hard ? lf + 1 : in.size();
    if (hard && stop > i && in[stop - 1] == '\r') --stop;
    for (std::size_t k = i; k < stop; ++k) {
      auto c = static_cast<unsigned char>(in[k]);
      bool blank = c == ' ' || c == '\t';
      bool literal = ((c >= 33 && c <= 126 && c != '=') || blank) && !(blank && k + 1 == stop);
      if (literal) {
        if (col >= 75) soft_break();
        out += static_cast<char>(c);
        ++col;
      } else {
        if (col + 3 > 75) soft_break();
        out += '=';
        out += kHex[c >> 4];
        out += kHex[c & 15];
        col += 3;
      }
    }
    if (hard) {
      out += nl;
      col = 0;
    }
    i = next;
  }
  return out;
}

std::string plain_base64(std::string_view in, Eol eol) {
  constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t off = 0; off < in.size(); off += 57) {
    std::string_view line = in.substr(off, 57);
    for (std::size_t g = 0; g < line.size(); g += 3) {
      std::uint32_t x = 0;
      std::size_t take = std::min<std::size_t>(3, line.size() - g);
      for (std::size_t k = 0; k < 3; ++k)
        x = x << 8 | (k < take ? static_cast<unsigned char>(line[g + k]) : 0u);
      for (std::size_t k = 0; k < 4; ++k) out += k <= take ? kAlphabet[(x >> (18 - 6 * k)) & 63] : '=';
    }
    out += eol_str(eol);
  }
  return out;
}

// Markup-like text: long and short lines, indentation, '=' in attributes, trailing blanks,
// tabs, 8-bit bytes, bare CR and LF.
std::string html_like(std::mt19937& rng, std::size_t n) {
  static const std::string_view kBits[] = {"<td style=\"padding:0 10px;\" class=\"x\">", "\r\n", "\r\n", "    ",
                                           "text and more text ", " \r\n", "\t", "\xc3\xa9", "\n", "\r", "=",
                                           "<a href=\"https://example.com/?a=1&amp;b=2\">", "  "};
  std::string s;
  while (s.size() < n) s += kBits[rng() % std::size(kBits)];
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(qp_encode_writes_what_the_plain_rules_write) {
  std::mt19937 rng(11);
  for (int t = 0; t < 3000; ++t) {
    std::string s = html_like(rng, rng() % (t % 10 == 0 ? 5000 : 400));
    if (t % 3 == 0 && !s.empty()) s.resize(rng() % s.size());  // any ending, a blank one too
    for (Eol e : {Eol::crlf, Eol::lf}) BOOST_TEST_REQUIRE(qpe(s, e) == plain_qp(s, e), "t=" << t);
  }
  for (std::size_t len : {74u, 75u, 76u, 77u, 150u, 1000u}) {  // long lines: soft breaks in copied stretches
    std::string s = std::string(len, 'a') + "\r\n" + std::string(len, 'b') + " \r\n" + std::string(200, 'c');
    for (Eol e : {Eol::crlf, Eol::lf}) BOOST_TEST(qpe(s, e) == plain_qp(s, e));
  }
}

BOOST_AUTO_TEST_CASE(base64_encode_writes_what_the_plain_rules_write) {
  std::mt19937 rng(12);
  for (std::size_t len = 0; len < 700; ++len) {
    std::string s(len, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    for (Eol e : {Eol::crlf, Eol::lf}) BOOST_TEST_REQUIRE(b64e(s, e) == plain_base64(s, e), "len=" << len);
  }
}

BOOST_AUTO_TEST_CASE(base64_a_bad_byte_anywhere_in_a_data_line_fails) {
  // Every position of 76-character lines: inside the 32-character blocks decoded
  // together, and in the groups after them.
  std::string data(57 * 6, 'x');
  std::string enc = b64e(data, Eol::crlf);
  for (std::size_t pos = 0; pos < 76 * 5; ++pos) {
    if (enc[pos] == '\r' || enc[pos] == '\n') continue;
    for (char bad : {'*', ' ', '=', '\x80', '-'}) {
      std::string broken = enc;
      broken[pos] = bad;
      std::string out;
      BOOST_TEST_REQUIRE(!base64_decode(broken, out), "pos=" << pos << " byte=" << int(bad));
    }
  }
  std::string out;
  BOOST_TEST(base64_decode(enc, out));
  BOOST_TEST(out == data);
}

#if defined(__SSE2__)
namespace {

// The window classifier's bits from their definitions, byte by byte (qp_simd.hpp).
cllavio::tracking::simd::QpWindow plain_window(const char* s, bool crlf) {
  std::uint64_t special = 0, cr = 0, lf = 0, blank = 0;
  for (int k = 0; k < 64; ++k) {
    auto c = static_cast<unsigned char>(s[k]);
    std::uint64_t bit = std::uint64_t{1} << k;
    bool is_blank = c == ' ' || c == '\t';
    if (!((c >= 33 && c <= 126 && c != '=') || is_blank)) special |= bit;
    if (c == '\r') cr |= bit;
    if (c == '\n') lf |= bit;
    if (is_blank) blank |= bit;
  }
  std::uint64_t stop = 0;
  for (int k = 0; k < 64; ++k) {
    std::uint64_t bit = std::uint64_t{1} << k;
    bool is_cr = cr & bit, is_lf = lf & bit, is_blank = blank & bit;
    bool next_break = k < 63 && ((cr | lf) >> (k + 1) & 1);
    bool eol_ok = crlf ? (is_cr && k < 63 && (lf >> (k + 1) & 1)) || (is_lf && k > 0 && (cr >> (k - 1) & 1))
                       : is_lf;
    if ((special & bit) && !is_cr && !is_lf) stop |= bit;
    if ((is_cr || is_lf) && !eol_ok) stop |= bit;
    if (is_blank && next_break) stop |= bit;
    if (k == 63 && (is_blank || is_cr)) stop |= bit;
  }
  return {special, lf, stop, crlf ? cr : lf};
}

bool same(const cllavio::tracking::simd::QpWindow& a, const cllavio::tracking::simd::QpWindow& b) {
  return a.special == b.special && a.lf == b.lf && a.stop == b.stop && a.breaks == b.breaks;
}

}  // namespace

BOOST_AUTO_TEST_CASE(qp_window_classifiers_agree_with_the_plain_rules_for_every_byte_at_every_offset) {
  namespace simd = cllavio::tracking::simd;
  // Backgrounds around the byte under test: literals, and the bytes whose neighbours
  // matter (CR LF pairs, blanks before breaks, '=').
  const std::string backgrounds[] = {std::string(128, 'a'), std::string(128, ' '), std::string(128, '\r'),
                                     std::string(128, '\n'), std::string(128, '='), std::string(128, '\x80'),
                                     [] {
                                       std::string s;
                                       while (s.size() < 128) s += "a \r\n\t=\r\xff.";
                                       return s;
                                     }()};
  std::size_t checked = 0;
  for (const std::string& bg : backgrounds)
    for (int c = 0; c < 256; ++c)
      for (std::size_t at = 0; at < 64; ++at)
        for (std::size_t shift : {0u, 1u, 17u}) {  // unaligned starts too
          std::string buf = bg;
          buf[shift + at] = static_cast<char>(c);
          if (at + 1 < 64) buf[shift + at + 1] = at % 2 ? '\n' : bg[shift + at + 1];  // a break after it
          const char* s = buf.data() + shift;
          for (bool crlf : {true, false}) {
            auto want = plain_window(s, crlf);
            BOOST_TEST_REQUIRE(same(simd::qp_window_sse2(s, crlf), want), "sse2 c=" << c << " at=" << at);
            if (simd::qp_avx512())
              BOOST_TEST_REQUIRE(same(simd::qp_window_avx512(s, crlf), want), "avx512 c=" << c << " at=" << at);
            ++checked;
          }
        }
  BOOST_TEST(checked > 0u);
}
#endif

BOOST_AUTO_TEST_CASE(qp_encode_of_every_byte_at_every_offset_writes_what_the_plain_rules_write) {
  // Each byte value at each offset of the encoder's windows and around the 76-column limit,
  // after a prefix that puts the line's column anywhere, inside literals, blanks and breaks.
  const std::string contexts[] = {std::string(200, 'x'), std::string(200, ' '), [] {
                                    std::string s;
                                    while (s.size() < 200) s += "<a href=\"x\">\r\n  \t";
                                    return s;
                                  }()};
  for (const std::string& ctx : contexts)
    for (std::size_t col : {0u, 1u, 40u, 72u, 73u, 74u, 75u})
      for (std::size_t at = 0; at < 100; ++at)
        for (int c = 0; c < 256; ++c) {
          std::string s = std::string(col, 'p') + ctx;
          s[col + at] = static_cast<char>(c);
          for (Eol e : {Eol::crlf, Eol::lf})
            BOOST_TEST_REQUIRE(qpe(s, e) == plain_qp(s, e), "col=" << col << " at=" << at << " c=" << c);
        }
}

namespace {

// The QP decoding rules of encoding.hpp written plainly, byte by byte (the decoder goes a
// vector at a time, 64 bytes with AVX-512; it must write exactly this).
std::string plain_qp_decode(std::string_view in) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  const std::size_t n = in.size();
  std::size_t i = 0;
  while (i < n) {
    if (in[i] != '=') {
      out += in[i++];
      continue;
    }
    if (i + 2 < n && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
      i += 3;
      continue;
    }
    std::size_t j = i + 1;
    while (j < n && (in[j] == ' ' || in[j] == '\t')) ++j;
    if (j == n) {  // '=' (and blanks) at the very end: a soft break
      i = n;
    } else if (in[j] == '\n') {
      i = j + 1;
    } else if (in[j] == '\r' && j + 1 < n && in[j + 1] == '\n') {
      i = j + 2;
    } else {  // a stray '=' is kept
      out += '=';
      ++i;
    }
  }
  return out;
}

// Backgrounds for the decoder: plain bytes, dense escapes and soft breaks (the encoder's
// output has one every few bytes), and mixes with malformed ones.
std::vector<std::string> qp_backgrounds() {
  auto rep = [](std::string_view unit) {
    std::string s;
    while (s.size() < 200) s += unit;
    return s;
  };
  std::string html;
  for (int k = 0; k < 8; ++k) html += "<td style=\"color:#333\">caf\xc3\xa9 </td>\n<a href=\"https://x.example/?a=1&b=2\">l</a>";
  return {std::string(200, 'a'), rep("=3D"),    rep("=\r\n"),  rep("a=3Db=\r\nc"), rep("=20\r\n"),
          rep("=\n=4"),          rep("= \r\n"), rep("=G1=="), rep("=\r=3d\r\n\t"), qpe(html).substr(0, 200)};
}

}  // namespace

BOOST_AUTO_TEST_CASE(qp_decode_of_every_byte_at_every_offset_writes_what_the_plain_rules_write) {
  // Each byte value at each offset of two 64-byte windows and the tail after them, alone
  // and inside escapes (whole, cut short, malformed), over each background.
  std::size_t checked = 0;
  for (const std::string& bg : qp_backgrounds())
    for (std::size_t at = 0; at < 150; ++at)
      for (int c = 0; c < 256; ++c) {
        const char b = static_cast<char>(c);
        const std::string patterns[] = {{b}, {'=', b}, {'=', b, '1'}, {'=', '4', b}, {'=', ' ', b}, {'=', b, '\n'},
                                        {'=', '\r', b}};
        for (const std::string& p : patterns) {
          std::string s = bg;
          s.replace(at, p.size(), p);
          std::string want = plain_qp_decode(s), got = qpd(s);
          if (got != want) BOOST_TEST_REQUIRE(got == want, "at=" << at << " c=" << c << " in=" << s);
          ++checked;
        }
      }
  BOOST_TEST(checked > 0u);
}

BOOST_AUTO_TEST_CASE(qp_decode_of_every_length_writes_what_the_plain_rules_write) {
  // Every prefix: escapes and soft breaks cut by the end of the input, at every distance
  // from the vector loop's limit; and after other output (decoding appends).
  for (const std::string& bg : qp_backgrounds())
    for (std::size_t len = 0; len <= bg.size(); ++len) {
      std::string_view s = std::string_view(bg).substr(0, len);
      BOOST_TEST_REQUIRE(qpd(s) == plain_qp_decode(s), "len=" << len << " in=" << s);
      std::string out = "prefix";
      qp_decode(s, out);
      BOOST_TEST_REQUIRE(out == "prefix" + plain_qp_decode(s));
    }
}
