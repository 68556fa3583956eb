// Fast byte searches for the rewrite engine's hot loops (internal to tracking/).
//
// find_bytes() finds a substring with an SSE2 filter (first, middle and last byte of the
// needle compared 16 positions at a time, candidates confirmed with memcmp): glibc's
// memmem and a first-byte memchr both crawl through CSS, which is full of '-'.
// has_8bit_or_nul() checks 64 bytes per step (7bit parts are checked after every rewrite).
// has_line_over() answers "is any line longer than max octets" with one memrchr per
// max+2 bytes instead of one memchr per line. Both take untrusted input and never read
// outside the given range. SSE2 is part of x86-64; other targets get plain loops.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace cllavio::tracking {

// False when the environment has CLLAVIO_NO_AVX set (read once): the AVX2 and AVX-512
// paths then stay unused and the SSE2 and table code runs, so the tests can check both
// on a machine that has AVX (ctest's unit.*.no_avx entries).
bool avx_allowed();

// The offset of the first occurrence of `needle` in `hay` at or after `from`, or npos.
// An empty needle matches at `from` (when from <= hay.size()).
std::size_t find_bytes(std::string_view hay, std::string_view needle, std::size_t from = 0);

// The first `c` in `s` at or after `from`, or npos. Inline, for the short distances
// between markup bytes where a memchr call costs more than the search.
inline std::size_t find_byte(std::string_view s, char c, std::size_t from) {
  const std::size_t n = s.size();
  const char* d = s.data();
  std::size_t i = from;
#if defined(__SSE2__)
  const __m128i cb = _mm_set1_epi8(c);
  for (; i + 16 <= n; i += 16) {
    unsigned mask = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i)), cb)));
    if (mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(mask));
    if (i - from >= 256) {  // a long way: the library's wider search
      const void* hit = std::memchr(d + i + 16, c, n - i - 16);
      return hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - d) : std::string_view::npos;
    }
  }
#endif
  for (; i < n; ++i)
    if (d[i] == c) return i;
  return std::string_view::npos;
}

// The first of the bytes Cs in `s` at or after `from`, or npos: string_view::find_first_of
// without its memchr call per byte of `s` (URLs and attribute values are searched for a
// few delimiters per link). SSE2: 16 bytes per step.
template <char... Cs>
inline std::size_t find_any(std::string_view s, std::size_t from = 0) {
  const std::size_t n = s.size();
  const char* d = s.data();
  std::size_t i = from;
#if defined(__SSE2__)
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i));
    __m128i m = _mm_setzero_si128();
    ((m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(Cs)))), ...);
    if (unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(m)); mask != 0)
      return i + static_cast<std::size_t>(__builtin_ctz(mask));
  }
#endif
  for (; i < n; ++i)
    if (((d[i] == Cs) || ...)) return i;
  return std::string_view::npos;
}

// True when `s` has a NUL or a byte >= 0x80 (what 7bit must not carry): 64 bytes per step.
bool has_8bit_or_nul(std::string_view s);

// True when a line of `s` (split at LF; a CR right before the LF or at the very end
// does not count) has more than `max` octets. The same as "longest line > max".
bool has_line_over(std::string_view s, std::size_t max);

}  // namespace cllavio::tracking
