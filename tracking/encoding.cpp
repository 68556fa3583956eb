#include "tracking/encoding.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstdint>

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
  out.reserve(out.size() + in.size());
  std::size_t i = 0, n = in.size();
  while (i < n) {
    // Copy a run of ordinary bytes at once.
    std::size_t eq = in.find('=', i);
    if (eq == std::string_view::npos) {
      out.append(in.substr(i));
      break;
    }
    out.append(in.substr(i, eq - i));
    i = eq + 1;
    if (i + 1 < n) {  // room for "=XX"
      int hi = hex_value(in[i]), lo = hex_value(in[i + 1]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    // "=" + optional blanks + line break: a soft line break.
    std::size_t j = i;
    while (j < n && (in[j] == ' ' || in[j] == '\t')) ++j;
    if (j < n && in[j] == '\n') {
      i = j + 1;
      continue;
    }
    if (j + 1 < n && in[j] == '\r' && in[j + 1] == '\n') {
      i = j + 2;
      continue;
    }
    if (j == n) {  // "=" at the very end: a soft break without line ending
      i = n;
      continue;
    }
    out.push_back('=');  // stray '=': keep it
  }
}

void qp_encode(std::string_view in, Eol eol, std::string& out) {
  const std::string_view nl = eol_str(eol);
  out.reserve(out.size() + in.size() + in.size() / 8 + 16);
  std::size_t col = 0;  // characters on the current output line
  auto soft_break_if_needed = [&](std::size_t width) {
    if (col + width > 75) {  // keep room for the '=' of a soft break: lines stay <= 76
      out.push_back('=');
      out.append(nl);
      col = 0;
    }
  };
  auto put_encoded = [&](unsigned char c) {
    soft_break_if_needed(3);
    out.push_back('=');
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
    col += 3;
  };
  const std::size_t n = in.size();
  for (std::size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(in[i]);
    if (c == '\n' || (c == '\r' && i + 1 < n && in[i + 1] == '\n')) {
      if (c == '\r') ++i;
      out.append(nl);  // hard line break
      col = 0;
      continue;
    }
    if (kQpLiteral[c]) {
      // Fast path: a run of literal bytes, split only at the line limit.
      std::size_t j = i;
      while (j < n && kQpLiteral[static_cast<unsigned char>(in[j])]) ++j;
      std::string_view run = in.substr(i, j - i);
      while (!run.empty()) {
        if (col >= 75) soft_break_if_needed(1);
        std::size_t take = std::min(run.size(), 75 - col);
        out.append(run.substr(0, take));
        col += take;
        run.remove_prefix(take);
      }
      i = j - 1;
      continue;
    }
    if (c == ' ' || c == '\t') {
      // A blank before a line break or at the end must be encoded (transports strip it).
      bool at_end = i + 1 == n || in[i + 1] == '\n' || (in[i + 1] == '\r' && i + 2 < n && in[i + 2] == '\n');
      if (at_end) {
        put_encoded(c);
      } else {
        soft_break_if_needed(1);
        out.push_back(static_cast<char>(c));
        ++col;
      }
      continue;
    }
    put_encoded(c);
  }
}

bool base64_decode(std::string_view in, std::string& out) {
  // Strip line breaks and blanks, then let OpenSSL decode whole 4-byte groups.
  std::string packed;
  packed.reserve(in.size());
  for (char c : in)
    if (c != '\r' && c != '\n' && c != ' ' && c != '\t') packed.push_back(c);
  if (packed.size() % 4 != 0) return false;
  std::size_t pad = 0;
  if (!packed.empty() && packed.back() == '=') ++pad;
  if (packed.size() >= 2 && packed[packed.size() - 2] == '=') ++pad;
  if (packed.find('=') < packed.size() - pad) return false;  // '=' only as final padding
  std::size_t start = out.size();
  out.resize(start + packed.size() / 4 * 3);
  int len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data() + start),
                            reinterpret_cast<const unsigned char*>(packed.data()), static_cast<int>(packed.size()));
  if (len < 0) {
    out.resize(start);
    return false;
  }
  out.resize(start + static_cast<std::size_t>(len) - pad);
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
