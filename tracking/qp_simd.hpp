// The quoted-printable encoder's 64-byte window classifier (internal to
// tracking/quoted_printable.cpp; declared here for the unit tests). One bit per byte of
// s[0..64): the plain SSE2 version and an AVX-512BW one, which qp_encode uses when the
// CPU has AVX-512BW and CLLAVIO_NO_AVX is unset (qp_avx512()). Both give the same bits.
#pragma once

#include <cstdint>

namespace cllavio::tracking::simd {

struct QpWindow {
  std::uint64_t special;  // not a literal or blank that may go out as it is (= kQpRun)
  std::uint64_t lf;       // '\n'
  std::uint64_t stop;     // where a whole-stretch copy must stop (see qp_encode)
  std::uint64_t breaks;   // the first byte of every line break written as the output's EOL
};

// True when the AVX-512BW classifier may be used (checked once).
bool qp_avx512();

// s[0..64) must be readable. `crlf`: the output's line ending is CR LF (else LF).
QpWindow qp_window_sse2(const char* s, bool crlf);
QpWindow qp_window_avx512(const char* s, bool crlf);  // only when qp_avx512()

}  // namespace cllavio::tracking::simd
