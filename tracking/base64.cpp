// Base64 (RFC 2045 section 6.8) for the rewrite engine: table-driven decoding and encoding,
// AVX2 block kernels where the CPU has them (tracking/base64_avx2.cpp). The contract is in
// tracking/encoding.hpp.
#include "tracking/encoding.hpp"
#include "tracking/base64_simd.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace cllavio::tracking {

namespace {

// Decoding tables, one per position in a 4-character group, each giving a character's
// 6 bits already shifted into place; every byte outside the alphabet (blanks, line
// breaks and '=' included) sets bit 24 instead.
constexpr std::uint32_t kBad = 1u << 24;
constexpr std::array<std::uint32_t, 256> make_b64_table(int shift) {
  std::array<std::uint32_t, 256> t{};
  for (auto& v : t) v = kBad;
  constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (std::uint32_t i = 0; i < kAlphabet.size(); ++i)
    t[static_cast<unsigned char>(kAlphabet[i])] = i << shift;
  return t;
}
constexpr auto kB64a = make_b64_table(18), kB64b = make_b64_table(12), kB64c = make_b64_table(6),
               kB64d = make_b64_table(0);

// Decodes `groups` groups of 4 characters; false when one of them is outside the
// alphabet (the bytes written are then meaningless). One check per call, not per group.
bool decode_groups(const char* src, std::size_t groups, unsigned char* dst) {
  const auto* s = reinterpret_cast<const unsigned char*>(src);
  std::uint32_t bad = 0;
  for (std::size_t g = 0; g < groups; ++g, s += 4, dst += 3) {
    std::uint32_t x = kB64a[s[0]] | kB64b[s[1]] | kB64c[s[2]] | kB64d[s[3]];
    bad |= x;
    dst[0] = static_cast<unsigned char>(x >> 16);
    dst[1] = static_cast<unsigned char>(x >> 8);
    dst[2] = static_cast<unsigned char>(x);
  }
  return (bad & kBad) == 0;
}

// decode_groups for a line of `width` characters (whole groups), in 32-character blocks
// where the CPU has AVX2 and the block's 8 bytes of overshoot stay before `end`.
bool decode_line(const char* src, std::size_t width, unsigned char* dst, const unsigned char* end) {
  std::size_t blocks = simd::base64_avx2() ? width / 32 : 0;
  while (blocks > 0 && dst + blocks * 24 + 8 > end) --blocks;
  if (blocks > 0 && !simd::decode_blocks_avx2(src, blocks, dst)) return false;
  return decode_groups(src + blocks * 32, (width - blocks * 32) / 4, dst + blocks * 24);
}

}  // namespace

bool base64_decode(std::string_view in, std::string& out, std::size_t* data_end) {
  constexpr std::size_t npos = std::string_view::npos;
  if (data_end != nullptr) *data_end = npos;
  const std::size_t start = out.size();
  out.resize(start + in.size() / 4 * 3 + 3);  // every group of 4 input bytes writes 3
  auto* const first = reinterpret_cast<unsigned char*>(out.data() + start);
  const unsigned char* const buffer_end = first + (in.size() / 4 * 3 + 3);
  unsigned char* dst = first;
  char carry[4];              // a group split across lines
  std::size_t carried = 0;
  std::size_t width = 0;      // length of the first data line; 0 before it
  std::size_t last = 0;       // length of the latest data line
  bool padded = false;        // '=' seen: the final group (complete once carried is 0)
  bool gap = false;           // a blank line followed the data
  // The final group, "xx==" or "xxx=" in `carry`: its '=' stand for zero bits.
  auto finish = [&] {
    std::size_t pad = carry[3] != '=' ? 0 : carry[2] != '=' ? 1 : 2;
    std::memset(carry + 4 - pad, 'A', pad);
    if (!decode_groups(carry, 1, dst)) return false;
    dst += 3 - pad;
    carried = 0;
    return true;
  };
  std::size_t pos = 0;
  while (pos < in.size()) {
    // The common case first: in the middle of the data, a line of exactly the first line's
    // width (whole groups) and its line break. If a byte of it is not in the alphabet
    // (blanks, '=', ...) nothing is kept and the general path below judges the line.
    if (width % 4 == 0 && width > 0 && last == width && carried == 0 && !padded && !gap &&
        pos + width < in.size()) {
      const char* s = in.data() + pos;
      std::size_t next = s[width] == '\n'                                               ? pos + width + 1
                         : s[width] == '\r' && pos + width + 1 < in.size() && s[width + 1] == '\n' ? pos + width + 2
                                                                                                      : 0;
      if (next != 0 && decode_line(s, width, dst, buffer_end)) {
        dst += width / 4 * 3;
        pos = next;
        continue;
      }
    }
    const std::size_t begin = pos;
    const void* nl = std::memchr(in.data() + pos, '\n', in.size() - pos);
    std::size_t end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - in.data()) : in.size();
    pos = nl ? end + 1 : end;
    while (end > begin && (in[end - 1] == '\r' || in[end - 1] == ' ' || in[end - 1] == '\t')) --end;
    const std::size_t len = end - begin;
    if (len == 0) {
      gap = width > 0;
      continue;
    }
    // What went before is whole base64 data: if this line does not belong to it, it is
    // text after the data (a list footer), not broken base64.
    const bool complete = width > 0 && carried == 0;
    auto reject = [&] {
      if (data_end != nullptr && complete) *data_end = begin;
      return false;
    };
    if (gap || (padded && carried == 0)) return reject();
    if (width == 0) width = len;
    else if (last != width || len > width) return reject();  // only the last line may be shorter
    last = len;
    const char* s = in.data() + begin;
    if (padded) {  // the rest of the padding, on a line of its own
      if (len != 4 - carried || std::string_view(s, len).find_first_not_of('=') != npos) return reject();
      std::memset(carry + carried, '=', len);
      if (!finish()) return reject();
      continue;
    }
    std::size_t n = len, pad = 0;
    while (pad < 2 && n > 0 && s[n - 1] == '=') ++pad, --n;  // a third '=' stays and fails as data
    if (carried > 0) {  // complete the group the previous line began
      std::size_t take = std::min(4 - carried, n);
      std::memcpy(carry + carried, s, take);
      carried += take;
      s += take;
      n -= take;
      if (carried == 4) {
        if (!decode_groups(carry, 1, dst)) return reject();
        dst += 3;
        carried = 0;
      }
    }
    if (!decode_groups(s, n / 4, dst)) return reject();
    dst += n / 4 * 3;
    std::memcpy(carry + carried, s + n / 4 * 4, n % 4);
    carried += n % 4;
    if (pad > 0) {
      if (carried < 2 || carried + pad > 4) return reject();
      std::memset(carry + carried, '=', pad);
      carried += pad;
      padded = true;
      if (carried == 4 && !finish()) return reject();
    }
  }
  if (carried != 0) return false;  // a truncated final group
  out.resize(start + static_cast<std::size_t>(dst - first));
  return true;
}

namespace {

constexpr std::string_view kB64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The two characters for every 12 bits: one lookup per half of a 3-byte group.
constexpr std::array<std::array<char, 2>, 4096> make_b64_pairs() {
  std::array<std::array<char, 2>, 4096> t{};
  for (std::size_t v = 0; v < 4096; ++v) t[v] = {kB64Alphabet[v >> 6], kB64Alphabet[v & 63]};
  return t;
}
constexpr auto kB64Pairs = make_b64_pairs();

}  // namespace

void base64_encode(std::string_view in, Eol eol, std::string& out) {
  const std::string_view nl = eol_str(eol);
  constexpr std::size_t kLineBytes = 57;  // 57 input bytes -> 76 characters
  const std::size_t n = in.size();
  std::size_t lines = (n + kLineBytes - 1) / kLineBytes;
  out.reserve(out.size() + lines * (76 + nl.size()));
  // Lines are written to a local buffer and appended in batches (no zero-filling of `out`).
  char buf[4096];
  char* o = buf;
  char* const flush_at = buf + sizeof buf - 80;
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  for (std::size_t off = 0; off < n; off += kLineBytes) {
    const std::size_t take = std::min(kLineBytes, n - off);
    const unsigned char* p = s + off;
    if (take == kLineBytes && off >= 4 && off + 52 <= n && simd::base64_avx2()) {
      // 48 of the 57 bytes in two AVX2 blocks (they read 4 bytes either side: inside `in`).
      simd::encode_blocks_avx2(p, 2, o);
      p += 48;
      o += 64;
    }
    const unsigned char* const whole_end = s + off + take / 3 * 3;
    for (; p < whole_end; p += 3, o += 4) {
      std::uint32_t x = std::uint32_t{p[0]} << 16 | std::uint32_t{p[1]} << 8 | p[2];
      std::memcpy(o, kB64Pairs[x >> 12].data(), 2);
      std::memcpy(o + 2, kB64Pairs[x & 4095].data(), 2);
    }
    if (take % 3 != 0) {  // the final group, padded with '='
      std::uint32_t x = std::uint32_t{p[0]} << 16 | (take % 3 == 2 ? std::uint32_t{p[1]} << 8 : 0);
      o[0] = kB64Alphabet[x >> 18];
      o[1] = kB64Alphabet[(x >> 12) & 63];
      o[2] = take % 3 == 2 ? kB64Alphabet[(x >> 6) & 63] : '=';
      o[3] = '=';
      o += 4;
    }
    for (char c : nl) *o++ = c;
    if (o >= flush_at) {
      out.append(buf, static_cast<std::size_t>(o - buf));
      o = buf;
    }
  }
  out.append(buf, static_cast<std::size_t>(o - buf));
}

}  // namespace cllavio::tracking
