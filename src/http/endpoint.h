// Endpoint: where a Client connects, written "unix:<path>",
// "tcp:<host>:<port>" ("tcp:[::1]:7070" for an IPv6 literal) or
// "tls:<host>:<port>" (TCP with TLS; how the server's certificate is checked
// is part of the endpoint, see `tls_fingerprint` and `tls_ca_file`).
//
// A value; copies are independent and may be used from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace dspool {

struct Endpoint {
  enum class Kind { kUnix, kTcp, kTls };

  Kind kind = Kind::kUnix;
  std::string path;   // kUnix: the socket file
  std::string host;   // kTcp, kTls: a name or an address, without brackets
  uint16_t port = 0;  // kTcp, kTls
  // kTls: how the client checks the server's certificate. A fingerprint
  // (net/tls.h's form) pins that one certificate, whoever signed it (a
  // server's self-signed one); else the certificate must chain to a CA in
  // `tls_ca_file` (PEM), or to the system's CAs when that is empty too, and
  // name `host`. Not part of the text form.
  std::string tls_fingerprint;
  std::string tls_ca_file;

  static Endpoint Unix(std::string path);
  static Endpoint Tcp(std::string host, uint16_t port);
  static Endpoint Tls(std::string host, uint16_t port);

  // The text ParseEndpoint accepts: "unix:/run/x.sock", "tcp:[::1]:80",
  // "tls:pool.example:7443".
  std::string ToString() const;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// Parses "unix:<path>", "tcp:<host>:<port>" or "tls:<host>:<port>". The
// Unix path must be non-empty and fit in sockaddr_un (at most 107 bytes);
// the port must be 1..65535. InvalidArgument naming the text and what is
// wrong otherwise.
Result<Endpoint> ParseEndpoint(std::string_view text);

// Whether `host` is a loopback address literal: 127.0.0.0/8, ::1, or
// ::ffff:127.x.y.z. False for names (even "localhost") and other text.
bool IsLoopbackAddress(const std::string& host);

}  // namespace dspool
