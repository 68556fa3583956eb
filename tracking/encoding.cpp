#include "tracking/encoding.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace cllavio::tracking {

namespace {

constexpr char kHex[] = "0123456789ABCDEF";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Bytes a QP line may carry as they are: printable ASCII except '=' (and blanks,
// which need care at the end of a line).
constexpr std::array<bool, 256> make_qp_literal() {
  std::array<bool, 256> t{};
  for (int c = 33; c <= 126; ++c) t[c] = c != '=';
  return t;
}
constexpr auto kQpLiteral = make_qp_literal();

}  // namespace

void qp_decode(std::string_view in, std::string& out) {
  const std::size_t start = out.size(), n = in.size();
  out.resize(start + n);  // decoding never grows
  char* o = out.data() + start;
  const char* s = in.data();
  std::size_t i = 0;
  while (i < n) {
    const void* eq_ptr = std::memchr(s + i, '=', n - i);
    std::size_t eq = eq_ptr ? static_cast<std::size_t>(static_cast<const char*>(eq_ptr) - s) : n;
    std::memcpy(o, s + i, eq - i);  // a run of ordinary bytes at once
    o += eq - i;
    if (eq == n) break;
    i = eq + 1;
    if (i + 1 < n) {  // room for "=XX"
      int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
      if (hi >= 0 && lo >= 0) {
        *o++ = static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    // "=" + optional blanks + line break: a soft line break.
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

void qp_encode(std::string_view in, Eol eol, std::string& out) {
  const std::string_view nl = eol_str(eol);
  const std::size_t n = in.size();
  out.reserve(out.size() + n + n / 8 + 64);
  // Encoded bytes go to a small local buffer first: pointer writes without zero-filling
  // (or growing) the output for the worst case.
  char buf[4096];
  char* o = buf;
  char* const flush_at = buf + sizeof buf - 16;
  const char* s = in.data();
  std::size_t col = 0;  // characters on the current output line; lines stay <= 76 with the '='
  auto room = [&] {
    if (o >= flush_at) {
      out.append(buf, static_cast<std::size_t>(o - buf));
      o = buf;
    }
  };
  auto soft_break = [&] {
    *o++ = '=';
    for (char c : nl) *o++ = c;
    col = 0;
  };
  auto encoded = [&](unsigned char c) {
    if (col + 3 > 75) soft_break();
    *o++ = '=';
    *o++ = kHex[c >> 4];
    *o++ = kHex[c & 15];
    col += 3;
  };
  for (std::size_t i = 0; i < n; ++i) {
    room();
    auto c = static_cast<unsigned char>(s[i]);
    // Blanks are literal too unless a line break (or the end) follows them.
    auto literal_at = [&](std::size_t k) {
      auto ch = static_cast<unsigned char>(s[k]);
      if (kQpLiteral[ch]) return true;
      if (ch != ' ' && ch != '\t') return false;
      return k + 1 < n && s[k + 1] != '\n' && !(s[k + 1] == '\r' && k + 2 < n && s[k + 2] == '\n') &&
             !(s[k + 1] == '\r' && k + 2 == n);
    };
    if (literal_at(i)) {
      // A run of literal bytes, copied in pieces that end at the line limit.
      std::size_t j = i + 1;
      while (j < n && literal_at(j)) ++j;
      while (i < j) {
        room();  // afterwards o < flush_at
        if (col >= 75) {
          soft_break();
          continue;  // check the room again
        }
        std::size_t take = std::min({j - i, 75 - col, static_cast<std::size_t>(flush_at - o)});
        std::memcpy(o, s + i, take);
        o += take;
        i += take;
        col += take;
      }
      --i;  // the for loop steps past the run's last byte
      continue;
    }
    if (c == '\n' || (c == '\r' && i + 1 < n && s[i + 1] == '\n')) {
      if (c == '\r') ++i;
      for (char e : nl) *o++ = e;  // hard line break
      col = 0;
      continue;
    }
    if (c == ' ' || c == '\t') {
      // A blank before a line break or at the end must be encoded (transports strip it).
      bool at_end = i + 1 == n || s[i + 1] == '\n' || (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n');
      if (at_end) {
        encoded(c);
      } else {
        if (col >= 75) soft_break();
        *o++ = static_cast<char>(c);
        ++col;
      }
      continue;
    }
    encoded(c);
  }
  out.append(buf, static_cast<std::size_t>(o - buf));
}

bool base64_decode(std::string_view in, std::string& out) {
  // OpenSSL's streaming decoder skips line breaks and blanks itself.
  const std::size_t start = out.size();
  out.resize(start + in.size() / 4 * 3 + 3);
  EVP_ENCODE_CTX* ctx = EVP_ENCODE_CTX_new();
  if (ctx == nullptr) return false;
  EVP_DecodeInit(ctx);
  auto* dst = reinterpret_cast<unsigned char*>(out.data() + start);
  int len = 0, tail = 0;
  bool ok = true;
  // EVP_DecodeUpdate takes an int length: feed large input in slices.
  constexpr std::size_t kSlice = 1 << 30;
  for (std::size_t off = 0; ok && off < in.size(); off += kSlice) {
    int got = 0;
    std::size_t take = std::min(kSlice, in.size() - off);
    int rc = EVP_DecodeUpdate(ctx, dst + len, &got, reinterpret_cast<const unsigned char*>(in.data() + off),
                              static_cast<int>(take));
    len += got;
    // rc 0: the end ("=" padding) was reached; anything but blanks after it is an error.
    if (rc < 0) ok = false;
    if (rc == 0 && in.substr(off + take).find_first_not_of(" \t\r\n") != std::string_view::npos) ok = false;
  }
  if (ok && EVP_DecodeFinal(ctx, dst + len, &tail) < 0) ok = false;
  EVP_ENCODE_CTX_free(ctx);
  if (!ok) return false;
  out.resize(start + static_cast<std::size_t>(len + tail));
  return true;
}

void base64_encode(std::string_view in, Eol eol, std::string& out) {
  const std::string_view nl = eol_str(eol);
  constexpr std::size_t kLineBytes = 57;  // 57 input bytes -> 76 characters
  std::size_t lines = (in.size() + kLineBytes - 1) / kLineBytes;
  out.reserve(out.size() + lines * (76 + nl.size()));
  unsigned char buf[80];
  for (std::size_t off = 0; off < in.size(); off += kLineBytes) {
    std::size_t take = std::min(kLineBytes, in.size() - off);
    int len = EVP_EncodeBlock(buf, reinterpret_cast<const unsigned char*>(in.data() + off), static_cast<int>(take));
    out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(len));
    out.append(nl);
  }
}

}  // namespace cllavio::tracking
