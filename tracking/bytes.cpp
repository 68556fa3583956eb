#include "tracking/bytes.hpp"

#include <cstdlib>

#include <string.h>

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace cllavio::tracking {

namespace {

constexpr std::size_t npos = std::string_view::npos;

// Candidate filters: positions i.. where the needle's first, middle and last bytes all
// match, one bit per position. The scan loops make no calls, so their constants stay in
// registers; candidates are confirmed outside them.
#if defined(__x86_64__)
// True with `*resume` = the match; false with `*resume` = where the caller goes on.
__attribute__((target("avx2"))) bool find_avx2(const char* h, std::size_t last, const char* nd, std::size_t m,
                                               std::size_t* resume) {
  std::size_t i = 0;
  const std::size_t mid = m / 2;
  for (;;) {
    const __m256i f = _mm256_set1_epi8(nd[0]), md = _mm256_set1_epi8(nd[mid]), l = _mm256_set1_epi8(nd[m - 1]);
    unsigned mask = 0;
    for (; i + 31 <= last; i += 32) {  // positions i..i+31 are all <= last: loads stay inside
      __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i));
      __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i + mid));
      __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i + m - 1));
      __m256i eq = _mm256_and_si256(_mm256_and_si256(_mm256_cmpeq_epi8(a, f), _mm256_cmpeq_epi8(b, md)),
                                    _mm256_cmpeq_epi8(c, l));
      mask = static_cast<unsigned>(_mm256_movemask_epi8(eq));
      if (mask != 0) break;
    }
    if (mask == 0) {  // the rest (< 32 positions) is the caller's
      *resume = i;
      return false;
    }
    for (; mask != 0; mask &= mask - 1) {
      std::size_t at = i + static_cast<std::size_t>(__builtin_ctz(mask));
      if (std::memcmp(h + at, nd, m) == 0) {
        *resume = at;
        return true;
      }
    }
    i += 32;
  }
}

// The same with AVX-512BW: 64 positions per step.
__attribute__((target("avx512f,avx512bw"))) bool find_avx512(const char* h, std::size_t last, const char* nd,
                                                             std::size_t m, std::size_t* resume) {
  std::size_t i = 0;
  const std::size_t mid = m / 2;
  for (;;) {
    const __m512i f = _mm512_set1_epi8(nd[0]), md = _mm512_set1_epi8(nd[mid]), l = _mm512_set1_epi8(nd[m - 1]);
    std::uint64_t mask = 0;
    for (; i + 63 <= last; i += 64) {  // positions i..i+63 are all <= last: loads stay inside
      __m512i a = _mm512_loadu_si512(h + i);
      __m512i b = _mm512_loadu_si512(h + i + mid);
      __m512i c = _mm512_loadu_si512(h + i + m - 1);
      mask = _mm512_cmpeq_epi8_mask(a, f) & _mm512_cmpeq_epi8_mask(b, md) & _mm512_cmpeq_epi8_mask(c, l);
      if (mask != 0) break;
    }
    if (mask == 0) {
      *resume = i;
      return false;
    }
    for (; mask != 0; mask &= mask - 1) {
      std::size_t at = i + static_cast<std::size_t>(__builtin_ctzll(mask));
      if (std::memcmp(h + at, nd, m) == 0) {
        *resume = at;
        return true;
      }
    }
    i += 64;
  }
}

bool have_avx512() {
  static const bool yes =
      avx_allowed() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512f");
  return yes;
}

bool have_avx2() {
  static const bool yes = avx_allowed() && __builtin_cpu_supports("avx2");
  return yes;
}
#endif

}  // namespace

bool avx_allowed() {
  static const bool yes = std::getenv("CLLAVIO_NO_AVX") == nullptr;
  return yes;
}

std::size_t find_bytes(std::string_view hay, std::string_view needle, std::size_t from) {
  if (from > hay.size()) return npos;
  const std::size_t m = needle.size();
  const char* h = hay.data() + from;
  const std::size_t n = hay.size() - from;
  if (m == 0) return from;
  if (m > n) return npos;
  if (m == 1) {
    const void* hit = std::memchr(h, needle[0], n);
    return hit ? from + static_cast<std::size_t>(static_cast<const char*>(hit) - h) : npos;
  }
  const std::size_t last = n - m;  // the last position a match can start at
  const std::size_t mid = m / 2;
  std::size_t i = 0;
#if defined(__x86_64__)
  if (have_avx2()) {
    if (have_avx512()) {
      if (find_avx512(h, last, needle.data(), m, &i)) return from + i;
      std::size_t j = 0;  // the rest: under 64 positions
      if (i <= last && find_avx2(h + i, last - i, needle.data(), m, &j)) return from + i + j;
      i += j;
    } else if (find_avx2(h, last, needle.data(), m, &i)) {
      return from + i;
    }
  }
#endif
#if defined(__SSE2__)
  const __m128i first_b = _mm_set1_epi8(needle[0]);
  const __m128i mid_b = _mm_set1_epi8(needle[mid]);
  const __m128i last_b = _mm_set1_epi8(needle[m - 1]);
  // Positions i..i+15 are all candidates (<= last), so every load stays inside hay.
  for (; i + 15 <= last; i += 16) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i + mid));
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i + m - 1));
    __m128i eq = _mm_and_si128(_mm_and_si128(_mm_cmpeq_epi8(a, first_b), _mm_cmpeq_epi8(b, mid_b)),
                               _mm_cmpeq_epi8(c, last_b));
    unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(eq));
    while (mask != 0) {
      std::size_t at = i + static_cast<std::size_t>(__builtin_ctz(mask));
      if (std::memcmp(h + at, needle.data(), m) == 0) return from + at;
      mask &= mask - 1;
    }
  }
#endif
  for (; i <= last; ++i)
    if (h[i] == needle[0] && h[i + m - 1] == needle[m - 1] && std::memcmp(h + i, needle.data(), m) == 0)
      return from + i;
  return npos;
}

bool has_8bit_or_nul(std::string_view s) {
  const char* d = s.data();
  const std::size_t n = s.size();
  std::size_t i = 0;
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  // A byte's high bit, or 0xff where it is NUL: one sign bit per offending byte.
  auto bad = [&](std::size_t at) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + at));
    return _mm_or_si128(v, _mm_cmpeq_epi8(v, zero));
  };
  for (; i + 64 <= n; i += 64)
    if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(bad(i), bad(i + 16)), _mm_or_si128(bad(i + 32), bad(i + 48)))) != 0)
      return true;
  for (; i + 16 <= n; i += 16)
    if (_mm_movemask_epi8(bad(i)) != 0) return true;
#endif
  for (; i < n; ++i)
    if (d[i] == '\0' || static_cast<unsigned char>(d[i]) >= 0x80) return true;
  return false;
}

bool has_line_over(std::string_view s, std::size_t max) {
  const char* d = s.data();
  const std::size_t n = s.size();
  std::size_t pos = 0;
  // Every line that starts at or after `pos` and ends (at its LF) inside the window
  // [pos, pos + max + 2) is at most max + 1 octets long, and only one that starts at
  // `pos` and ends at the window's last byte can be: so one memrchr per window.
  for (;;) {
    const std::size_t rem = n - pos;
    if (rem <= max) return false;
    const std::size_t win = rem < max + 2 ? rem : max + 2;
    const void* hit = ::memrchr(d + pos, '\n', win);
    if (hit == nullptr) {
      if (win < max + 2)  // the final line, without LF: [pos, n)
        return rem - (d[n - 1] == '\r' ? 1 : 0) > max;
      return true;  // at least max + 2 octets before any LF: over max even without a CR
    }
    const std::size_t nl = static_cast<std::size_t>(static_cast<const char*>(hit) - d);
    if (nl - pos == max + 1 && std::memchr(d + pos, '\n', win) == hit && d[nl - 1] != '\r') return true;
    pos = nl + 1;
  }
}

}  // namespace cllavio::tracking
