#include "model/ipv4.h"

#include <charconv>

namespace dspool {

std::optional<uint32_t> ParseIpv4(std::string_view text) {
  uint32_t addr = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
    if (p == end || *p < '0' || *p > '9') return std::nullopt;
    if (*p == '0' && p + 1 != end && p[1] >= '0' && p[1] <= '9') return std::nullopt;  // no leading zeros
    unsigned octet = 0;
    auto [next, ec] = std::from_chars(p, end, octet);
    if (ec != std::errc() || octet > 255) return std::nullopt;
    p = next;
    addr = (addr << 8) | octet;
  }
  if (p != end) return std::nullopt;
  return addr;
}

std::string FormatIpv4(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
         std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255);
}

std::optional<Ipv4Subnet> ParseIpv4Subnet(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = ParseIpv4(text.substr(0, slash));
  if (!addr) return std::nullopt;
  std::string_view p = text.substr(slash + 1);
  int prefix = -1;
  auto [next, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (ec != std::errc() || next != p.data() + p.size() || prefix < 0 || prefix > 32) return std::nullopt;
  Ipv4Subnet s{*addr, prefix};
  if ((*addr & s.Mask()) != *addr) return std::nullopt;
  return s;
}

std::string Ipv4Subnet::ToString() const { return FormatIpv4(network) + "/" + std::to_string(prefix); }

}  // namespace dspool
