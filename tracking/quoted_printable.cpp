// Quoted-printable (RFC 2045 section 6.7) for the rewrite engine: decoding, and encoding
// that copies stretches already in output form whole (64-byte windows classified once).
// The contract is in tracking/encoding.hpp.
#include "tracking/encoding.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "tracking/bytes.hpp"
#include "tracking/qp_simd.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace cllavio::tracking {

namespace {

constexpr char kHex[] = "0123456789ABCDEF";

// Hex digit values (either case), -1 for every other byte.
constexpr std::array<std::int8_t, 256> make_hex_values() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<std::int8_t>(c - '0');
  for (int c = 'A'; c <= 'F'; ++c) t[c] = static_cast<std::int8_t>(c - 'A' + 10);
  for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<std::int8_t>(c - 'a' + 10);
  return t;
}
constexpr auto kHexValue = make_hex_values();
int hex_value(char c) { return kHexValue[static_cast<unsigned char>(c)]; }

// Bytes a QP line may carry as they are: printable ASCII except '=' (and blanks,
// which need care at the end of a line).
constexpr std::array<bool, 256> make_qp_literal() {
  std::array<bool, 256> t{};
  for (int c = 33; c <= 126; ++c) t[c] = c != '=';
  return t;
}

// Bytes that may go out as they are inside a line: the literals and the blanks.
constexpr std::array<bool, 256> make_qp_run() {
  auto t = make_qp_literal();
  t[' '] = t['\t'] = true;
  return t;
}
constexpr auto kQpRun = make_qp_run();

}  // namespace

namespace {

#if defined(__SSE2__) && defined(__x86_64__)
// Hex digit values (either case) for the bytes below 0x80, 0x80 for every other byte: the
// table of a two-register byte permute (VBMI), which looks up bytes by their low 7 bits.
constexpr std::array<std::int8_t, 128> make_hex_table() {
  std::array<std::int8_t, 128> t{};
  for (int c = 0; c < 128; ++c) t[c] = kHexValue[c] >= 0 ? kHexValue[c] : static_cast<std::int8_t>(-128);
  return t;
}
alignas(64) constexpr auto kHexTable = make_hex_table();

// Decodes whole 64-byte windows at s[i..) with AVX-512 (VBMI2 for the compress) while
// s[i + 66) is readable, writing at `o`; returns where it stopped: near the end, or at an
// '=' it leaves to the byte-by-byte rules (one that is neither "=XX" nor "=" CR LF / LF).
// Every '=' starts its own escape (the bytes an escape consumes are hex digits, CR or LF,
// never '='), so a window's escapes are all found at once: "=XX" becomes one byte at the
// '=', and the bytes to drop go out of the window through a compress. The output is never
// ahead of the input, so a 64-byte store at `o` stays inside the n bytes it has.
__attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vbmi2"))) std::size_t qp_decode_wide(
    const char* s, std::size_t i, std::size_t n, char*& out) {
  char* o = out;
  std::uint64_t carry = 0;
  const __m512i eq_b = _mm512_set1_epi8('='), cr_b = _mm512_set1_epi8('\r'), lf_b = _mm512_set1_epi8('\n'),
                low4 = _mm512_set1_epi8(0x0f), table_lo = _mm512_load_si512(kHexTable.data()),
                table_hi = _mm512_load_si512(kHexTable.data() + 64);
  while (i + 66 <= n) {
    const __m512i v0 = _mm512_loadu_si512(s + i), v1 = _mm512_loadu_si512(s + i + 1),
                  v2 = _mm512_loadu_si512(s + i + 2);
    const std::uint64_t eq = _mm512_cmpeq_epi8_mask(v0, eq_b);
    // Each byte's hex value, with the top bit set for the bytes that are not hex digits
    // (looked up, or >= 0x80 themselves).
    const __m512i hi = _mm512_permutex2var_epi8(table_lo, v1, table_hi),
                  lo = _mm512_permutex2var_epi8(table_lo, v2, table_hi);
    const std::uint64_t not_hex =
        _mm512_movepi8_mask(_mm512_or_si512(hi, v1)) | _mm512_movepi8_mask(_mm512_or_si512(lo, v2));
    const std::uint64_t esc = eq & ~not_hex;  // "=XX"
    const std::uint64_t rest = eq & ~esc;
    const std::uint64_t cr1 = _mm512_cmpeq_epi8_mask(v1, cr_b), lf1 = _mm512_cmpeq_epi8_mask(v1, lf_b),
                        lf2 = _mm512_cmpeq_epi8_mask(v2, lf_b);
    const std::uint64_t crlf = rest & cr1 & lf2;  // "=" CR LF: a soft break
    const std::uint64_t bare = rest & lf1;        // "=" LF
    const std::uint64_t odd = rest & ~(crlf | bare);
    const std::uint64_t three = esc | crlf;  // escapes 3 bytes long
    std::uint64_t drop = (three << 1) | (three << 2) | crlf | bare | (bare << 1) | carry;
    // The bytes of the next window that this one's last escapes consume (at most its first
    // two: hex digits, CR or LF, never '='). Carried instead of moving the next window, so
    // that where the next window starts does not wait for this one's bits.
    carry = (three >> 63) | ((three >> 63) << 1) | ((three >> 62) & 1) | (bare >> 63);
    std::size_t len = 64;
    if (odd != 0) [[unlikely]] {
      len = static_cast<std::size_t>(__builtin_ctzll(odd));  // escapes before it end before it
      drop |= ~((std::uint64_t{1} << len) - 1);
      carry = 0;
    }
    const std::uint64_t keep = ~drop;
    const __m512i value = _mm512_or_si512(_mm512_slli_epi16(_mm512_and_si512(hi, low4), 4), lo);
    const __m512i w = _mm512_mask_blend_epi8(esc, v0, value);
    _mm512_storeu_si512(o, _mm512_maskz_compress_epi8(keep, w));
    o += __builtin_popcountll(keep);
    i += len;
    if (len < 64) break;
  }
  i += static_cast<std::size_t>(__builtin_popcountll(carry));  // 0 after an odd '='
  out = o;
  return i;
}

bool qp_decode_avx512() {
  static const bool yes =
      simd::qp_avx512() && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vbmi2");
  return yes;
}
#endif

}  // namespace

void qp_decode(std::string_view in, std::string& out) {
  const std::size_t start = out.size(), n = in.size();
  out.resize(start + n);  // decoding never grows
  char* o = out.data() + start;
  const char* s = in.data();
#if defined(__SSE2__) && defined(__x86_64__)
  const bool wide = qp_decode_avx512();
#endif
  std::size_t i = 0;
  while (i < n) {
#if defined(__SSE2__) && defined(__x86_64__)
    if (wide) {
      i = qp_decode_wide(s, i, n, o);
      if (i >= n) break;
    }
#endif
    // A run of ordinary bytes up to the next '=', copied 16 at a time as it is searched:
    // QP HTML has an '=' every few bytes (=3D, soft breaks), too often for a memchr call
    // each. The output is never ahead of the input, so the 16-byte stores stay inside it.
    std::size_t eq = i;
#if defined(__SSE2__)
    const __m128i eq_b = _mm_set1_epi8('=');
    for (;;) {
      if (eq + 16 > n) {
        const void* eq_ptr = std::memchr(s + eq, '=', n - eq);
        std::size_t e = eq_ptr ? static_cast<std::size_t>(static_cast<const char*>(eq_ptr) - s) : n;
        std::memcpy(o, s + i, e - i);
        eq = e;
        break;
      }
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + eq));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + (eq - i)), v);
      unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, eq_b)));
      if (mask != 0) {
        eq += static_cast<std::size_t>(__builtin_ctz(mask));
        break;
      }
      eq += 16;
    }
#else
    const void* eq_ptr = std::memchr(s + i, '=', n - i);
    eq = eq_ptr ? static_cast<std::size_t>(static_cast<const char*>(eq_ptr) - s) : n;
    std::memcpy(o, s + i, eq - i);
#endif
    o += eq - i;
    if (eq == n) break;
    i = eq + 1;
    if (i + 1 < n) {  // room for "=XX"
      int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
      if ((hi | lo) >= 0) {
        *o++ = static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    // "=" + optional blanks + line break: a soft line break.
    if (i + 1 < n && s[i] == '\r' && s[i + 1] == '\n') {  // the usual form, first
      i += 2;
      continue;
    }
    std::size_t j = i;
    while (j < n && (s[j] == ' ' || s[j] == '\t')) ++j;
    if (j < n && s[j] == '\n') {
      i = j + 1;
      continue;
    }
    if (j + 1 < n && s[j] == '\r' && s[j + 1] == '\n') {
      i = j + 2;
      continue;
    }
    if (j == n) {  // "=" at the very end: a soft break without line ending
      i = n;
      continue;
    }
    *o++ = '=';  // stray '=': keep it
  }
  out.resize(static_cast<std::size_t>(o - out.data()));
}

namespace {

// Copies the run of kQpRun bytes at s[i..limit) to `o` and returns where it ends. Reads
// no further than s[n); may write up to 15 bytes past the run (the caller's room).
std::size_t qp_copy_run(const char* s, std::size_t i, std::size_t limit, std::size_t n, char* o) {
  const std::size_t begin = i;
#if defined(__SSE2__)
  // Literal: 0x21..0x7e except '=', or a blank. As signed bytes, >= 0x80 is negative.
  const __m128i space = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f), eq = _mm_set1_epi8('='),
                tab = _mm_set1_epi8('\t');
  while (i < limit && i + 16 <= n) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + (i - begin)), v);
    __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(v, space), _mm_cmplt_epi8(v, del));
    ok = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, eq), ok), _mm_cmpeq_epi8(v, tab));
    unsigned bad = ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xffffu;
    if (bad != 0) {
      std::size_t j = i + static_cast<std::size_t>(__builtin_ctz(bad));
      return j < limit ? j : limit;
    }
    i += 16;
  }
  if (i >= limit) return limit;
#endif
  while (i < limit && kQpRun[static_cast<unsigned char>(s[i])]) {
    o[i - begin] = s[i];
    ++i;
  }
  return i;
}

#if defined(__SSE2__)
// Fixed-size copies for the QP encoder's steps: fewer branches than copying exactly. The
// callers guarantee that the bytes are readable (i + 80 <= n) and writable (room()).
void copy16(char* o, const char* s) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm_loadu_si128(reinterpret_cast<const __m128i*>(s)));
}
void copy64(char* o, const char* s) {
  for (int k = 0; k < 64; k += 16) copy16(o + k, s + k);
}

#endif

}  // namespace

namespace simd {

#if defined(__SSE2__)
namespace {
// What qp_encode needs from a window, from the bytes by class.
__attribute__((always_inline)) inline QpWindow window_from(std::uint64_t special, std::uint64_t cr, std::uint64_t lf, std::uint64_t blank, bool crlf) {
  // Where a copy must stop: anything but literals and line breaks written as `eol`, a
  // blank before a break, and the window's last byte if what follows matters.
  std::uint64_t stop = special & ~(cr | lf);
  stop |= crlf ? (cr & ~(lf >> 1)) | (lf & ~(cr << 1)) : cr;
  stop |= blank & ((cr | lf) >> 1);
  stop |= (blank | cr) & (std::uint64_t{1} << 63);
  return QpWindow{special, lf, stop, crlf ? cr : lf};
}
}  // namespace

QpWindow qp_window_sse2(const char* s, bool crlf) {
  const __m128i space = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f), eq = _mm_set1_epi8('='),
                tab = _mm_set1_epi8('\t'), sp = _mm_set1_epi8(' '), cr = _mm_set1_epi8('\r'),
                lf = _mm_set1_epi8('\n');
  std::uint64_t ok = 0, crs = 0, lfs = 0, blanks = 0;
  for (int k = 0; k < 4; ++k) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16 * k));
    __m128i is_tab = _mm_cmpeq_epi8(v, tab);
    __m128i lit = _mm_and_si128(_mm_cmpgt_epi8(v, space), _mm_cmplt_epi8(v, del));
    lit = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, eq), lit), is_tab);
    auto bits = [](__m128i x) { return static_cast<std::uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(x))); };
    ok |= bits(lit) << (16 * k);
    crs |= bits(_mm_cmpeq_epi8(v, cr)) << (16 * k);
    lfs |= bits(_mm_cmpeq_epi8(v, lf)) << (16 * k);
    blanks |= bits(_mm_or_si128(_mm_cmpeq_epi8(v, sp), is_tab)) << (16 * k);
  }
  return window_from(~ok, crs, lfs, blanks, crlf);
}

#if defined(__x86_64__)
namespace {
__attribute__((target("avx512f,avx512bw"), always_inline)) inline QpWindow window_avx512(const char* s, bool crlf) {
  const __m512i v = _mm512_loadu_si512(s);
  // Literal: 0x21..0x7e except '=' (as signed bytes, >= 0x80 is negative), or a blank.
  const std::uint64_t tab = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\t'));
  const std::uint64_t blank = tab | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(' '));
  const std::uint64_t lit = _mm512_cmpgt_epi8_mask(v, _mm512_set1_epi8(0x1f)) &
                            _mm512_cmplt_epi8_mask(v, _mm512_set1_epi8(0x7f)) &
                            _mm512_cmpneq_epi8_mask(v, _mm512_set1_epi8('='));
  const std::uint64_t cr = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\r'));
  const std::uint64_t lf = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n'));
  return window_from(~(lit | tab), cr, lf, blank, crlf);
}
}  // namespace

__attribute__((target("avx512f,avx512bw"))) QpWindow qp_window_avx512(const char* s, bool crlf) {
  return window_avx512(s, crlf);
}

bool qp_avx512() {
  static const bool yes =
      avx_allowed() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512f");
  return yes;
}
#else
QpWindow qp_window_avx512(const char* s, bool crlf) { return qp_window_sse2(s, crlf); }
bool qp_avx512() { return false; }
#endif
#else
bool qp_avx512() { return false; }
#endif

}  // namespace simd

namespace {

// The encoder, twice: with the SSE2 window classifier, and compiled for AVX-512BW (the
// classifier inlined, its constants kept in registers) for CPUs that have it.
namespace sse2 {
constexpr bool kWide = false;
#include "tracking/qp_encode.inc"
}  // namespace sse2

#if defined(__SSE2__) && defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw")
#endif
namespace avx512 {
constexpr bool kWide = true;
#include "tracking/qp_encode.inc"
}  // namespace avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

}  // namespace

void qp_encode(std::string_view in, Eol eol, std::string& out) {
#if defined(__SSE2__) && defined(__x86_64__)
  if (simd::qp_avx512()) return avx512::encode(in, eol, out);
#endif
  sse2::encode(in, eol, out);
}

}  // namespace cllavio::tracking
