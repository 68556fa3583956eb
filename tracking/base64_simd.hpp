// AVX2 kernels for base64 (internal to tracking/encoding.cpp): 32 characters <-> 24 bytes
// per step, after Muła and Lemire ("Faster Base64 Encoding and Decoding Using AVX2
// Instructions", 2018). The callers keep the line structure and every rule of
// encoding.hpp; these only translate whole blocks, and the callers fall back to their
// table-driven code on CPUs without AVX2 (base64_avx2() is false) and for the rest.
#pragma once

#include <cstddef>

namespace cllavio::tracking::simd {

// True when the CPU has AVX2 (checked once).
bool base64_avx2();

// Decodes `blocks` blocks of 32 alphabet characters from src into 24 bytes each at dst.
// Writes 8 bytes past each block's output (dst must have room for blocks * 24 + 8).
// False when a character is outside the alphabet (the bytes written are then meaningless).
bool decode_blocks_avx2(const char* src, std::size_t blocks, unsigned char* dst);

// Encodes `blocks` blocks of 24 bytes from src into 32 characters each at dst. Reads the 4
// bytes before src and the 4 after each block (they must be readable).
void encode_blocks_avx2(const unsigned char* src, std::size_t blocks, char* dst);

}  // namespace cllavio::tracking::simd
