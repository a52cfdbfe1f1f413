#include "http/endpoint.h"

#include <boost/asio/ip/address.hpp>
#include <charconv>

#include "net/socket.h"

namespace dspool {

Endpoint Endpoint::Unix(std::string path) {
  Endpoint e;
  e.kind = Kind::kUnix;
  e.path = std::move(path);
  return e;
}

Endpoint Endpoint::Tcp(std::string host, uint16_t port) {
  Endpoint e;
  e.kind = Kind::kTcp;
  e.host = std::move(host);
  e.port = port;
  return e;
}

Endpoint Endpoint::Tls(std::string host, uint16_t port) {
  Endpoint e = Tcp(std::move(host), port);
  e.kind = Kind::kTls;
  return e;
}

std::string Endpoint::ToString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  bool ipv6 = host.find(':') != std::string::npos;
  return (kind == Kind::kTls ? "tls:" : "tcp:") + (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool IsLoopbackAddress(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::address address = boost::asio::ip::make_address(host, ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6()).is_loopback();
  }
  return address.is_loopback();
}

Result<Endpoint> ParseEndpoint(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("endpoint '" + std::string(text) + "': " + std::string(why) +
                           " (want unix:<path>, tcp:<host>:<port> or tls:<host>:<port>)");
  };
  if (text.starts_with("unix:")) {
    std::string_view path = text.substr(5);
    if (path.empty()) return bad("empty socket path");
    if (path.size() > kMaxUnixSocketPath) return bad("socket path too long");
    if (path.find('\0') != std::string_view::npos) return bad("socket path contains NUL");
    return Endpoint::Unix(std::string(path));
  }
  if (!text.starts_with("tcp:") && !text.starts_with("tls:")) return bad("unknown scheme");
  const bool tls = text.starts_with("tls:");
  std::string_view rest = text.substr(4);
  std::string_view host;
  std::string_view port;
  if (rest.starts_with("[")) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return bad("expected [<ipv6>]:<port>");
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("write an IPv6 address in brackets");
  }
  if (host.empty()) return bad("empty host");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return bad("port must be 1..65535");
  }
  if (tls) return Endpoint::Tls(std::string(host), static_cast<uint16_t>(value));
  return Endpoint::Tcp(std::string(host), static_cast<uint16_t>(value));
}

}  // namespace dspool
