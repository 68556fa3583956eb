#include "policy/network.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace cllavio::policy {

namespace {

bool is_v4_mapped(const std::array<std::uint8_t, 16>& b) {
  for (int i = 0; i < 10; ++i)
    if (b[i] != 0) return false;
  return b[10] == 0xff && b[11] == 0xff;
}

}  // namespace

std::optional<IpAddress> parse_ip(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
    text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() > 64) return std::nullopt;
  char buf[65];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  if (std::memchr(buf, '\0', text.size()) != nullptr) return std::nullopt;

  IpAddress out;
  if (inet_pton(AF_INET, buf, out.bytes.data()) == 1) return out;
  if (inet_pton(AF_INET6, buf, out.bytes.data()) == 1) {
    if (is_v4_mapped(out.bytes)) {
      std::array<std::uint8_t, 16> v4{};
      std::memcpy(v4.data(), out.bytes.data() + 12, 4);
      out.bytes = v4;
      return out;
    }
    out.v6 = true;
    return out;
  }
  return std::nullopt;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf) == nullptr) return "?";
  return buf;
}

bool Network::contains(const IpAddress& addr) const {
  if (addr.v6 != base.v6) return false;
  unsigned full = prefix / 8, rest = prefix % 8;
  for (unsigned i = 0; i < full; ++i)
    if (addr.bytes[i] != base.bytes[i]) return false;
  if (rest == 0) return true;
  std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (addr.bytes[full] & mask) == base.bytes[full];
}

std::string Network::to_string() const {
  return base.to_string() + "/" + std::to_string(prefix);
}

std::optional<Network> parse_network(std::string_view text) {
  auto slash = text.find('/');
  auto addr_text = text.substr(0, slash);
  auto addr = parse_ip(addr_text);
  if (!addr) return std::nullopt;
  // A mapped IPv6 network (::ffff:192.0.2.0/120) becomes the IPv4 network.
  bool mapped = !addr->v6 && addr_text.find(':') != std::string_view::npos;
  unsigned max = (addr->v6 || mapped) ? 128 : 32;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc{} || p != digits.data() + digits.size() || prefix > max) return std::nullopt;
  }
  if (mapped) {
    if (prefix < 96) return std::nullopt;
    prefix -= 96;
  }
  Network net{*addr, prefix};
  // Reject host bits below the prefix.
  Network masked = net;
  unsigned full = prefix / 8, rest = prefix % 8;
  for (unsigned i = full; i < 16; ++i) {
    if (i == full && rest != 0)
      masked.base.bytes[i] &= static_cast<std::uint8_t>(0xff << (8 - rest));
    else
      masked.base.bytes[i] = 0;
  }
  if (!(masked.base == net.base)) return std::nullopt;
  return net;
}

}  // namespace cllavio::policy
