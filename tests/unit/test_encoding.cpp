#define BOOST_TEST_MODULE encoding
#include <boost/test/unit_test.hpp>

#include <random>

#include "tracking/encoding.hpp"

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

BOOST_AUTO_TEST_CASE(base64_line_shapes_off_the_fast_path_decode_the_same) {
  // The per-line decoder takes whole 4-character groups per line; every other shape
  // goes through the streaming decoder and must still decode (or fail) the same way.
  std::string out = "keep:";
  BOOST_TEST(base64_decode("aGVsbG8gd29y\nbGQ=\n", out));  // appends
  BOOST_TEST(out == "keep:hello world");
  out.clear();
  BOOST_TEST(base64_decode("aGVsbG8gd2\r\n9ybGQ=\r\n", out));  // groups split across lines
  BOOST_TEST(out == "hello world");
  out.clear();
  BOOST_TEST(base64_decode("aGVs bG8g\td29y bGQ=", out));  // blanks inside a line
  BOOST_TEST(out == "hello world");
  out.clear();
  BOOST_TEST(base64_decode("aGVsbG8=  \r\n\r\n\r\n", out));  // trailing blanks and empty lines
  BOOST_TEST(out == "hello");
  out.clear();
  BOOST_TEST(base64_decode("aGk=\n", out));
  BOOST_TEST(out == "hi");
  BOOST_TEST(!base64_decode("aGk=\naGk=\n", out));      // data after the padding
  BOOST_TEST(!base64_decode("aGVsbG8=aGk=\n", out));     // padding inside a line
  BOOST_TEST(!base64_decode("====\n", out));
  BOOST_TEST(!base64_decode("aGVs\nbG8*\n", out));       // not in the alphabet, second line
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
