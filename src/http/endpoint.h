// Endpoint: where a Client connects, written "unix:<path>" or
// "tcp:<host>:<port>" ("tcp:[::1]:7070" for an IPv6 literal).
//
// A value; copies are independent and may be used from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace dspool {

struct Endpoint {
  enum class Kind { kUnix, kTcp };

  Kind kind = Kind::kUnix;
  std::string path;   // kUnix: the socket file
  std::string host;   // kTcp: a name or an address, without brackets
  uint16_t port = 0;  // kTcp

  static Endpoint Unix(std::string path);
  static Endpoint Tcp(std::string host, uint16_t port);

  // The text ParseEndpoint accepts: "unix:/run/x.sock", "tcp:[::1]:80".
  std::string ToString() const;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// Parses "unix:<path>" or "tcp:<host>:<port>". The Unix path must be
// non-empty and fit in sockaddr_un (at most 107 bytes); the port must be
// 1..65535. InvalidArgument naming the text and what is wrong otherwise.
Result<Endpoint> ParseEndpoint(std::string_view text);

}  // namespace dspool
