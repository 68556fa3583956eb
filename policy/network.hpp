// IP addresses and networks (CIDR) for org identification by client address.
//
// Contract: parse_ip / parse_network never throw; they return std::nullopt on any
// malformed input (they are fed untrusted config text and milter connect data).
// IPv4-mapped IPv6 addresses (::ffff:192.0.2.1) are treated as the IPv4 address,
// so an IPv4 network matches a client that Postfix reports in mapped form.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cllavio::policy {

struct IpAddress {
  bool v6 = false;                  // false: the first 4 bytes hold an IPv4 address
  std::array<std::uint8_t, 16> bytes{};

  std::string to_string() const;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

struct Network {
  IpAddress base;        // host bits are zero
  unsigned prefix = 0;   // 0..32 for IPv4, 0..128 for IPv6

  bool contains(const IpAddress& addr) const;
  std::string to_string() const;
  friend bool operator==(const Network&, const Network&) = default;
};

// "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1" (normalized to IPv4), "[2001:db8::1]".
std::optional<IpAddress> parse_ip(std::string_view text);

// "192.0.2.0/24", "2001:db8::/32", or a bare address (a /32 or /128 network).
// Host bits set below the prefix ("192.0.2.1/24") are rejected: almost always a typo.
std::optional<Network> parse_network(std::string_view text);

}  // namespace cllavio::policy
