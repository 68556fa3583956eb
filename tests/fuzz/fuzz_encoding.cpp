// Fuzzes QP and base64: decoders never crash; encoders keep lines <= 76 and round-trip;
// the base64 decoder accepts exactly what a plain reading of its rules accepts, with the
// same bytes, and what it calls whole data before a trailer decodes on its own.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tracking/encoding.hpp"

namespace {

std::size_t longest(std::string_view s) {
  std::size_t best = 0, cur = 0;
  for (char c : s) {
    if (c == '\n') {
      best = cur > best ? cur : best;
      cur = 0;
    } else if (c != '\r') {
      ++cur;
    }
  }
  return cur > best ? cur : best;
}

// The base64 rules of encoding.hpp, written plainly (slow, obviously right).
std::optional<std::string> reference_base64(std::string_view in) {
  std::vector<std::string_view> lines;
  bool gap = false;
  for (std::size_t pos = 0; pos < in.size();) {
    std::size_t nl = in.find('\n', pos);
    std::string_view line = in.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? in.size() : nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty()) {
      gap = !lines.empty();
    } else {
      if (gap) return std::nullopt;
      lines.push_back(line);
    }
  }
  std::string all;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    bool last = i + 1 == lines.size();
    if ((!last && lines[i].size() != lines[0].size()) || lines[i].size() > lines[0].size()) return std::nullopt;
    all += lines[i];
  }
  std::size_t pad = 0;
  while (pad < all.size() && all[all.size() - 1 - pad] == '=') ++pad;
  if (all.size() % 4 != 0 || pad > 2) return std::nullopt;
  constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t bits = 0;
  int nbits = 0;
  for (std::size_t i = 0; i < all.size() - pad; ++i) {
    std::size_t v = kAlphabet.find(all[i]);
    if (v == std::string_view::npos) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((bits >> nbits) & 0xFF));
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio::tracking;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string a, b;
  qp_decode(in, a);
  std::size_t data_end = 0;
  bool ok = base64_decode(in, b, &data_end);
  std::optional<std::string> ref = reference_base64(in);
  if (ok != ref.has_value() || (ok && b != *ref)) std::abort();
  if (!ok && data_end != std::string_view::npos) {  // whole data, then text starting a line
    std::string prefix;
    if (data_end == 0 || in[data_end - 1] != '\n' || !base64_decode(in.substr(0, data_end), prefix)) std::abort();
  }

  std::string enc, dec;
  base64_encode(in, Eol::crlf, enc);
  if (longest(enc) > 76 || !base64_decode(enc, dec) || dec != in) std::abort();

  // QP carries line breaks as hard breaks: compare after normalizing them to CRLF.
  std::string norm;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\r' && i + 1 < in.size() && in[i + 1] == '\n') continue;
    if (in[i] == '\n') norm += "\r\n";
    else norm.push_back(in[i]);
  }
  std::string qp, back;
  qp_encode(in, Eol::crlf, qp);
  qp_decode(qp, back);
  if (longest(qp) > 76 || back != norm) std::abort();
  return 0;
}
