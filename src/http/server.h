// HttpServer: an HTTP/1.1 server on Unix-domain and TCP sockets that hands each
// request to one synchronous Handler. Protocol only: routing, auth and error
// mapping belong to the caller's Handler.
//
//   HttpServer server(handler, HttpServerOptions{});
//   DSP_RETURN_IF_ERROR(server.ListenUnix("/var/lib/dspool/api.sock", 0660, "local"));
//   server.Start(4);
//   ...
//   server.Stop();
//
// Each connection is served by a small loop (one at a time per connection,
// connections in parallel across the I/O threads):
//
//   accept ─► wait for the first byte ──► read header ──► read body ──► Handler ──► write
//             (idle_timeout; the first       (header_read_  (body_read_              │
//              request: header_read_timeout)  timeout)       timeout)                │
//                  ▲                                                                 │
//                  └──────────── keep-alive and not closing ◄────────────────────────┘
//
// A TLS listener (ListenTls) adds the handshake before the first byte and
// TLS's close_notify before the connection closes.
//
// The server answers some requests itself, without calling the Handler, with
// a JSON error body (see JsonErrorBody), and then closes the connection:
// 400 malformed request or target (including ".." paths), 413 body over
// max_body_bytes, 431 header over 16 KiB. A Handler that throws, or returns
// a Response that breaks the rules in message.h, yields a 500 instead of its
// answer (the connection stays usable).
//
// Threading: the Handler runs on the server's I/O threads, several at once
// (one per connection being served), so it must be thread-safe; it should
// not block for long, since it holds an I/O thread. The HttpServer's methods may
// be called from any thread, concurrently, except as noted on Stop.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/status.h"
#include "http/message.h"
#include "net/tls.h"

namespace dspool {

// Called once per request, on an I/O thread. Should not throw: if it does,
// the client gets a 500 and the connection is closed.
using Handler = std::function<Response(const Request&)>;

struct HttpServerOptions {
  // A request whose body is larger gets a 413 (the Handler never sees it).
  size_t max_body_bytes = 1 << 20;
  // From accept (or from the first byte of a later request) to the end of
  // the header; exceeded: the connection is closed without a response.
  std::chrono::milliseconds header_read_timeout = std::chrono::seconds(10);
  // To read the body once the header is in.
  std::chrono::milliseconds body_read_timeout = std::chrono::seconds(30);
  // How long a kept-alive connection may wait for its next request.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  // To write one response; a client that does not read is cut off.
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
  // Connections beyond this many are closed right after accept, silently.
  size_t max_connections = 1024;
};

// Counters, for tests and metrics. A snapshot; values only grow, except
// connections_active.
struct HttpServerStats {
  uint64_t connections_accepted = 0;  // served (not counting refused ones)
  uint64_t connections_refused = 0;   // closed at once: over max_connections
  uint64_t connections_active = 0;
  uint64_t requests = 0;              // responses sent, by Handler or server
  uint64_t tls_handshake_failures = 0;  // TLS listeners: closed before a request
};

class HttpServer {
 public:
  // REQUIRES: handler is callable.
  HttpServer(Handler handler, HttpServerOptions options);
  // Stop()s.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens on a Unix-domain socket at `path`, whose file gets `mode` (e.g.
  // 0660: only the owner and group may connect) before any connection can be
  // accepted. A socket file left by a dead process is replaced; Unavailable
  // if a live server is accepting on it; FailedPrecondition (and nothing is
  // touched) if `path` exists and is not a socket. AlreadyExists if `tag` is
  // taken; FailedPrecondition after Stop. Requests from this listener carry
  // `tag` in Request::listener_tag. May be called before or after Start;
  // before Start, connections wait in the kernel's backlog.
  Status ListenUnix(const std::string& path, mode_t mode, std::string tag);

  // Listens on TCP `address` ("127.0.0.1", "::", ...) and `port`; port 0
  // picks a free one. Returns the bound port. InvalidArgument for a bad
  // address, Unavailable if the port is in use; otherwise as ListenUnix.
  Result<uint16_t> ListenTcp(const std::string& address, uint16_t port, std::string tag);

  // Listens as ListenTcp, serving TLS 1.2 or 1.3 with `certificate`: every
  // connection starts with the TLS handshake (within header_read_timeout;
  // one that fails is closed and counted in tls_handshake_failures) and ends
  // with TLS's close_notify. InvalidArgument, before anything is bound, if
  // the chain or the key does not parse or the key is not the certificate's.
  Result<uint16_t> ListenTls(const std::string& address, uint16_t port, TlsCertificate certificate,
                             std::string tag);

  // Stops the listener `tag`: its socket is closed before this returns (the
  // port or path is free; a Unix socket file is removed, unless another
  // process has replaced it meanwhile). Its connections then wind down:
  // those waiting for or reading a request are closed; a request already
  // read gets its response (with "Connection: close") and then the
  // connection closes. Other listeners are unaffected. NotFound if no
  // listener has this tag.
  Status Unlisten(const std::string& tag);

  // Starts `threads` (at least 1) I/O threads. REQUIRES: called at most once.
  void Start(int threads);

  // Stops accepting (every listener as by Unlisten), winds down every
  // connection as Unlisten does, and joins the I/O threads: it returns once
  // responses already being produced are written (each bounded by
  // write_timeout) and every Handler call has returned. Idempotent; safe
  // from any thread, e.g. one waiting for signals, but REQUIRES: not called
  // from a Handler (it would wait for itself).
  void Stop();

  HttpServerStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dspool
