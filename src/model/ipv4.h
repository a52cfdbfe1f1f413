// IPv4 addresses and subnets as plain values (host byte order).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dspool {

struct Ipv4Subnet {
  uint32_t network = 0;  // host byte order, host bits zero
  int prefix = 0;        // 0..32

  uint32_t Mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }
  // Usable host addresses (excludes network and broadcast).
  uint32_t HostCount() const { return prefix >= 31 ? 0 : (uint32_t{1} << (32 - prefix)) - 2; }
  bool Contains(uint32_t addr) const { return (addr & Mask()) == network; }
  bool Overlaps(const Ipv4Subnet& o) const {
    int p = prefix < o.prefix ? prefix : o.prefix;
    uint32_t m = p == 0 ? 0 : ~uint32_t{0} << (32 - p);
    return (network & m) == (o.network & m);
  }
  std::string ToString() const;
  friend bool operator==(const Ipv4Subnet&, const Ipv4Subnet&) = default;
};

std::optional<uint32_t> ParseIpv4(std::string_view text);
std::string FormatIpv4(uint32_t addr);
// "10.231.0.0/24". Rejects host bits set ("10.231.0.5/24").
std::optional<Ipv4Subnet> ParseIpv4Subnet(std::string_view text);

}  // namespace dspool
