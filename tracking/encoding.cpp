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

// Bytes that may go out as they are inside a line: the literals and the blanks.
constexpr std::array<bool, 256> make_qp_run() {
  auto t = make_qp_literal();
  t[' '] = t['\t'] = true;
  return t;
}
constexpr auto kQpRun = make_qp_run();

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
  auto room = [&] {  // afterwards at least 16 bytes are free: enough for one step
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
  std::size_t i = 0;
  while (i < n) {
    // One input line: [i, stop) is its content, `next` the start of the following one.
    const void* lf = std::memchr(s + i, '\n', n - i);
    std::size_t stop = lf ? static_cast<std::size_t>(static_cast<const char*>(lf) - s) : n;
    std::size_t next = lf ? stop + 1 : n;
    bool hard_break = lf != nullptr;
    if (hard_break && stop > i && s[stop - 1] == '\r') --stop;  // CRLF (a bare CR elsewhere is =0D)
    // The blank right before the line break (or at the very end) must be encoded:
    // transports strip trailing blanks.
    std::size_t exposed = stop > i && (s[stop - 1] == ' ' || s[stop - 1] == '\t') ? stop - 1 : n;
    while (i < stop) {
      room();
      auto c = static_cast<unsigned char>(s[i]);
      if (kQpRun[c] && i != exposed) {
        if (col >= 75) {
          soft_break();
          continue;  // check the room again
        }
        // A run of literal bytes up to the line limit, the buffer's room or the exposed blank.
        std::size_t limit = std::min({stop, i + (75 - col), i + static_cast<std::size_t>(flush_at - o)});
        if (exposed > i && exposed < limit) limit = exposed;
        std::size_t j = i + 1;
        while (j < limit && kQpRun[static_cast<unsigned char>(s[j])]) ++j;
        std::memcpy(o, s + i, j - i);
        o += j - i;
        col += j - i;
        i = j;
        continue;
      }
      if (col + 3 > 75) soft_break();
      *o++ = '=';
      *o++ = kHex[c >> 4];
      *o++ = kHex[c & 15];
      col += 3;
      ++i;
    }
    if (hard_break) {
      room();
      for (char e : nl) *o++ = e;
      col = 0;
    }
    i = next;
  }
  out.append(buf, static_cast<std::size_t>(o - buf));
}

namespace {

// The common shape, decoded at EVP_DecodeBlock speed (3x EVP_DecodeUpdate): lines of
// whole 4-character groups, '=' only as the padding of the last data line, nothing but
// blank lines after it. Anything else returns false and takes the streaming decoder.
bool base64_decode_lines(std::string_view in, std::string& out) {
  const std::size_t start = out.size();
  out.resize(start + in.size() / 4 * 3 + 3);
  auto* dst = reinterpret_cast<unsigned char*>(out.data() + start);
  std::size_t len = 0, pos = 0;
  bool padded = false;
  while (pos < in.size()) {
    const void* nl = std::memchr(in.data() + pos, '\n', in.size() - pos);
    std::size_t end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - in.data()) : in.size();
    std::size_t next = nl ? end + 1 : end;
    while (end > pos && (in[end - 1] == '\r' || in[end - 1] == ' ' || in[end - 1] == '\t')) --end;
    std::string_view line = in.substr(pos, end - pos);
    pos = next;
    if (line.empty()) continue;
    if (padded || line.size() % 4 != 0 || line.size() > (1u << 30)) return false;
    std::size_t pad = line.back() == '=' ? (line[line.size() - 2] == '=' ? 2 : 1) : 0;
    if (std::memchr(line.data(), '=', line.size() - pad) != nullptr) return false;
    int got = EVP_DecodeBlock(dst + len, reinterpret_cast<const unsigned char*>(line.data()),
                              static_cast<int>(line.size()));
    if (got < 0) return false;  // a byte outside the alphabet, or a blank inside the line
    len += static_cast<std::size_t>(got) - pad;  // EVP_DecodeBlock counts padding as zero bytes
    padded = pad > 0;
  }
  out.resize(start + len);
  return true;
}

}  // namespace

bool base64_decode(std::string_view in, std::string& out) {
  const std::size_t start = out.size();
  if (base64_decode_lines(in, out)) return true;
  out.resize(start);
  // OpenSSL's streaming decoder skips line breaks and blanks itself.
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
