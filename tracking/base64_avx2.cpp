#include "tracking/base64_simd.hpp"
#include "tracking/bytes.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cllavio::tracking::simd {

#if defined(__x86_64__)

bool base64_avx2() {
  static const bool yes = avx_allowed() && __builtin_cpu_supports("avx2");
  return yes;
}

__attribute__((target("avx2"))) bool decode_blocks_avx2(const char* src, std::size_t blocks, unsigned char* dst) {
  // Validity: a character is outside the alphabet when the bits its low and its high
  // nibble select overlap.
  const __m256i lut_lo = _mm256_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A,
                                          0x1B, 0x1B, 0x1B, 0x1A, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                          0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A);
  const __m256i lut_hi = _mm256_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10,
                                          0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
                                          0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
  // What to add to a valid character for its 6-bit value, by high nibble ('/' apart).
  const __m256i lut_roll = _mm256_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 19, 4,
                                            -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i mask_2f = _mm256_set1_epi8(0x2f);
  const __m256i pack_shuffle = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2, 1, 0, 6,
                                                5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
  const __m256i pack_lanes = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
  __m256i bad = _mm256_setzero_si256();
  for (std::size_t b = 0; b < blocks; ++b, src += 32, dst += 24) {
    __m256i str = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
    const __m256i hi_nibbles = _mm256_and_si256(_mm256_srli_epi32(str, 4), mask_2f);
    const __m256i lo_nibbles = _mm256_and_si256(str, mask_2f);
    const __m256i lo = _mm256_shuffle_epi8(lut_lo, lo_nibbles);
    const __m256i hi = _mm256_shuffle_epi8(lut_hi, hi_nibbles);
    bad = _mm256_or_si256(bad, _mm256_and_si256(lo, hi));
    const __m256i eq_2f = _mm256_cmpeq_epi8(str, mask_2f);
    const __m256i roll = _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(eq_2f, hi_nibbles));
    str = _mm256_add_epi8(str, roll);
    // 4 x 6 bits -> 3 bytes per 32-bit group, then the groups packed together.
    const __m256i ab_bc = _mm256_maddubs_epi16(str, _mm256_set1_epi32(0x01400140));
    str = _mm256_madd_epi16(ab_bc, _mm256_set1_epi32(0x00011000));
    str = _mm256_shuffle_epi8(str, pack_shuffle);
    str = _mm256_permutevar8x32_epi32(str, pack_lanes);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), str);
  }
  return _mm256_testz_si256(bad, bad) != 0;
}

__attribute__((target("avx2"))) void encode_blocks_avx2(const unsigned char* src, std::size_t blocks, char* dst) {
  const __m256i shuffle = _mm256_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1, 14, 15, 13, 14, 11, 12,
                                          10, 11, 8, 9, 7, 8, 5, 6, 4, 5);
  const __m256i lut = _mm256_setr_epi8(65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0, 65, 71, -4,
                                       -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0);
  for (std::size_t b = 0; b < blocks; ++b, src += 24, dst += 32) {
    // Lane 0 takes src[0..12) from a load at src - 4, lane 1 src[12..24).
    __m256i in = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src - 4));
    in = _mm256_shuffle_epi8(in, shuffle);
    const __m256i t0 = _mm256_and_si256(in, _mm256_set1_epi32(0x0fc0fc00));
    const __m256i t1 = _mm256_mulhi_epu16(t0, _mm256_set1_epi32(0x04000040));
    const __m256i t2 = _mm256_and_si256(in, _mm256_set1_epi32(0x003f03f0));
    const __m256i t3 = _mm256_mullo_epi16(t2, _mm256_set1_epi32(0x01000010));
    const __m256i idx = _mm256_or_si256(t1, t3);  // one 6-bit value per byte
    __m256i offsets = _mm256_subs_epu8(idx, _mm256_set1_epi8(51));
    offsets = _mm256_sub_epi8(offsets, _mm256_cmpgt_epi8(idx, _mm256_set1_epi8(25)));
    const __m256i chars = _mm256_add_epi8(idx, _mm256_shuffle_epi8(lut, offsets));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), chars);
  }
}

#else

bool base64_avx2() { return false; }
bool decode_blocks_avx2(const char*, std::size_t, unsigned char*) { return false; }
void encode_blocks_avx2(const unsigned char*, std::size_t, char*) {}

#endif

}  // namespace cllavio::tracking::simd
