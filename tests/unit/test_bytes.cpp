// tracking/bytes.hpp: find_bytes agrees with a plain search (short haystacks, long ones
// that reach the SIMD loops, needles of every length, matches at every position), and
// has_line_over agrees with "longest line > max" around the window edges it jumps by.
#define BOOST_TEST_MODULE bytes
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "tracking/bytes.hpp"

using namespace cllavio::tracking;

namespace {

std::size_t plain_find(std::string_view h, std::string_view nd, std::size_t from) {
  if (from > h.size()) return std::string_view::npos;
  for (std::size_t i = from; i + nd.size() <= h.size(); ++i)
    if (h.substr(i, nd.size()) == nd) return i;
  return std::string_view::npos;
}

std::size_t longest_line(std::string_view s) {
  std::size_t best = 0, pos = 0;
  while (pos <= s.size()) {
    std::size_t nl = s.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? s.size() : nl;
    best = std::max(best, end - pos - (end > pos && s[end - 1] == '\r' ? 1 : 0));
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return best;
}

}  // namespace

BOOST_AUTO_TEST_CASE(find_bytes_basics) {
  BOOST_TEST(find_bytes("abc", "") == 0u);
  BOOST_TEST(find_bytes("abc", "", 3) == 3u);
  BOOST_TEST(find_bytes("abc", "", 4) == std::string_view::npos);
  BOOST_TEST(find_bytes("abc", "c") == 2u);
  BOOST_TEST(find_bytes("abc", "abcd") == std::string_view::npos);
  std::string css(5000, '-');
  css += "--boundary";
  BOOST_TEST(find_bytes(css, "--boundary") == 5000u);
  BOOST_TEST(find_bytes(css, "--boundary", 5001) == std::string_view::npos);
}

BOOST_AUTO_TEST_CASE(find_bytes_matches_a_plain_search) {
  std::mt19937 rng(7);
  const std::string alphabet = "-7x\n";  // few letters: many candidates for the filters
  for (int t = 0; t < 20000; ++t) {
    std::size_t n = rng() % (t % 4 == 0 ? 3000 : 200), m = 1 + rng() % 40;
    std::string h, nd;
    for (std::size_t i = 0; i < n; ++i) h += alphabet[rng() % alphabet.size()];
    for (std::size_t i = 0; i < m; ++i) nd += alphabet[rng() % alphabet.size()];
    if (rng() % 2 && n >= m) nd = h.substr(rng() % (n - m + 1), m);
    std::size_t from = rng() % (n + 2);
    BOOST_TEST_REQUIRE(find_bytes(h, nd, from) == plain_find(h, nd, from), "n=" << n << " m=" << m << " from=" << from);
  }
}

BOOST_AUTO_TEST_CASE(has_line_over_matches_the_longest_line) {
  std::mt19937 rng(8);
  for (int t = 0; t < 20000; ++t) {
    std::size_t n = rng() % 120, max = rng() % 20;
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
      int k = static_cast<int>(rng() % 12);
      s += k == 0 ? '\n' : k == 1 ? '\r' : 'a';
    }
    BOOST_TEST_REQUIRE(has_line_over(s, max) == (longest_line(s) > max), "s=" << s.size() << " max=" << max);
  }
  // Around the 998-octet limit, with and without CR.
  for (std::size_t len : {997u, 998u, 999u, 1000u, 1001u})
    for (const char* eol : {"\r\n", "\n", ""}) {
      std::string s = "x\n" + std::string(len, 'a') + eol + (*eol != 0 ? "y" : "");  // "": the last line
      BOOST_TEST(has_line_over(s, 998) == (len > 998), "len=" << len << " eol=" << std::strlen(eol));
    }
  BOOST_TEST(!has_line_over(std::string(998, 'a') + "\r", 998));
  BOOST_TEST(has_line_over(std::string(999, 'a') + "\r", 998));
}

BOOST_AUTO_TEST_CASE(has_8bit_or_nul_finds_every_offending_byte_anywhere) {
  // Every byte value at every offset of buffers around the 16- and 64-byte steps.
  std::size_t checked = 0;
  for (std::size_t n : {1u, 15u, 16u, 17u, 63u, 64u, 65u, 130u})
    for (std::size_t at = 0; at < n; ++at)
      for (int c = 0; c < 256; ++c) {
        std::string s(n, 'a');
        s[at] = static_cast<char>(c);
        bool expect = c == 0 || c >= 0x80;
        BOOST_TEST_REQUIRE(has_8bit_or_nul(s) == expect, "n=" << n << " at=" << at << " c=" << c);
        ++checked;
      }
  BOOST_TEST(checked > 90000u);
  BOOST_TEST(!has_8bit_or_nul(""));
  BOOST_TEST(!has_8bit_or_nul(std::string(1000, '\x7f')));
  // Only a window's prefix is the string: bytes after it never count.
  std::string tail = std::string(40, 'a') + '\x80';
  BOOST_TEST(!has_8bit_or_nul(std::string_view(tail).substr(0, 40)));
}

BOOST_AUTO_TEST_CASE(find_any_matches_find_first_of) {
  // Every byte value at every offset, from several starts, around the 16-byte steps.
  std::size_t checked = 0;
  for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 40u})
    for (std::size_t at = 0; at < std::max<std::size_t>(n, 1); ++at)
      for (int c = 0; c < 256; ++c) {
        std::string s(n, 'x');
        if (n > 0) s[at] = static_cast<char>(c);
        std::string_view v(s);
        for (std::size_t from : {std::size_t{0}, std::size_t{1}, at, n}) {
          if (from > n) continue;
          BOOST_TEST_REQUIRE((find_any<'/', '?', '#', '\\'>(v, from) == v.find_first_of("/?#\\", from)),
                             "n=" << n << " at=" << at << " c=" << c << " from=" << from);
          BOOST_TEST_REQUIRE((find_any<'\r', '\n'>(v, from)) == v.find_first_of("\r\n", from));
          ++checked;
        }
      }
  BOOST_TEST(checked > 50000u);
  BOOST_TEST((find_any<'\0'>(std::string_view("ab\0c", 4))) == 2u);
}
