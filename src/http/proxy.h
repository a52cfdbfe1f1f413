// ProxyServer: an HTTP/1.1 front, over TLS or plain TCP, that answers some
// requests itself and forwards the others to upstream servers, streaming
// bodies both ways (never a whole body in memory) and tunnelling upgraded
// connections (WebSocket) once the upstream agrees with a 101.
//
// Per request, the ProxyRouter looks at the head (method, target, headers,
// peer; no body yet) and picks one of:
//
//   ProxyReply    answer now; a request body, if any, is not read and the
//                 connection closes after the answer
//   ProxyLocal    read the body (at most max_local_body bytes) and let
//                 Serve(request) answer (login forms, small API calls)
//   ProxyForward  send it to address:port with the target and headers as
//                 given; stream the body, then the response, back
//   ProxyHold     nothing to say yet (a page waiting for a server to
//                 start): the request is held and decided again whenever
//                 the router calls RoutesChanged(); still held at_most
//                 after it came, it gets `otherwise`
//
//   client ──► read head ──► Decide ──┬─ Reply ──► write
//                                     ├─ Local ──► read body ──► Serve ──► write
//                                     ├─ Hold ──► RoutesChanged ──► Decide again
//                                     │           (or at_most later: `otherwise`)
//                                     └─ Forward ──► upstream (kept-alive pool)
//                                          write head, stream body ──► read response head
//                                          ├─ 101 + Upgrade ──► tunnel bytes both ways until either closes
//                                          └─ else ──► stream response body ──► next request
//
// An upstream that cannot be connected (refused, unreachable, timed out)
// gives the client what the router's Unreachable says (by default a 502);
// one that fails to answer, a 502 (head not yet sent) or a closed
// connection (response under way). Activity(tag) is called for every
// forwarded request and, in a tunnel, at most once a second per direction
// while bytes flow, so the caller can tell idle from busy.
//
// Threads: connections run on `threads` I/O threads as coroutines, each
// connection on one thread for its whole life (a net Reactor per thread);
// Decide, Serve and Activity are called on them, concurrently, and must be
// thread-safe and quick.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "http/message.h"
#include "net/tls.h"

namespace dspool {

struct ProxyReply {
  Response response;
};
struct ProxyLocal {};
struct ProxyForward {
  uint32_t address = 0;  // IPv4, host byte order
  uint16_t port = 0;
  std::string target;    // request-target sent upstream (path and query)
  std::vector<std::pair<std::string, std::string>> set_headers;  // replace or add
  std::vector<std::string> remove_headers;                        // lower-case names
  uint64_t tag = 0;  // handed to Activity
};
// A long poll: the client gets an answer the moment there is one, without
// reloading a page every second. The connection is not read while held (a
// client that leaves is noticed at the answer) and closes after `otherwise`.
struct ProxyHold {
  std::chrono::milliseconds at_most{0};
  Response otherwise;
};
using ProxyRoute = std::variant<ProxyReply, ProxyLocal, ProxyForward, ProxyHold>;

class ProxyRouter {
 public:
  virtual ~ProxyRouter() = default;
  // `head` has no body. Its headers map has lower-case names; its
  // listener_tag is the port the client connected to ("8000").
  virtual ProxyRoute Decide(const Request& head) = 0;
  // For ProxyLocal: the whole request, body included.
  virtual Response Serve(const Request& request) = 0;
  virtual void Activity(uint64_t tag) = 0;
  // Whether a client from address:port (IPv4, host byte order) that came
  // in on `listener_port` may be served at all; one that may not is reset
  // before a byte is read. Called on the accepting thread.
  virtual bool Admit(uint32_t address, uint16_t port, uint16_t listener_port) {
    (void)address;
    (void)port;
    (void)listener_port;
    return true;
  }
  // `forward`, Decide's answer to `head`, found no upstream: the connect
  // was refused, unreachable or timed out (nothing was sent). The answer
  // for the client, after which the connection closes; nullopt: a 502.
  virtual std::optional<Response> Unreachable(const Request& head, const ProxyForward& forward) {
    (void)head;
    (void)forward;
    return std::nullopt;
  }
};

struct ProxyOptions {
  size_t max_local_body = 64 * 1024;
  std::chrono::milliseconds header_read_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};     // between requests on a kept-alive connection
  std::chrono::milliseconds io_timeout{60000};       // any single read or write of a body
  std::chrono::milliseconds connect_timeout{5000};   // to an upstream
  std::chrono::milliseconds tunnel_idle_timeout{3600000};  // an upgraded connection with no byte either way
  size_t max_idle_upstream = 64;  // kept-alive upstream connections kept, per address:port and thread
  size_t max_connections = 10000;
  // TCP congestion control of upstream connections (TCP_CONGESTION, say
  // "cubic"); empty: the host's default. The caller checks that the host
  // has it (net/socket.h's CheckCongestionControl); one it lacks is ignored.
  std::string upstream_congestion_control;
  // The monotonic clock of every deadline (its Monotonic()); must outlive
  // the server. nullptr: the real clock. With a simulated one, Wake() the
  // server after moving it.
  const Clock* clock = nullptr;
};

struct ProxyStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_active = 0;
  uint64_t requests = 0;
  uint64_t forwarded = 0;
  uint64_t upstream_connects = 0;  // new upstream connections (the rest were reused)
  uint64_t upstream_errors = 0;    // 502s and cut responses
  uint64_t tunnels = 0;            // upgrades relayed
  uint64_t tls_handshake_failures = 0;
  uint64_t refused = 0;  // reset at accept: the router did not Admit them
};

class ProxyServer {
 public:
  static Result<std::unique_ptr<ProxyServer>> Create(ProxyRouter& router, ProxyOptions options);
  ~ProxyServer();  // Stop()s
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  // Listens on address:port (port 0: any), in the clear or with TLS (the
  // key is loaded before ListenTls returns; the caller wipes its copy).
  // Returns the bound port. Errors name the address, or what is wrong with
  // the certificate (net/tls.h). May be called before or after Start.
  Result<uint16_t> Listen(const std::string& address, uint16_t port);
  Result<uint16_t> ListenTls(const std::string& address, uint16_t port, const TlsCertificate& certificate);
  // Stops listening on that port; open connections go on.
  void Unlisten(uint16_t port);

  void Start(int threads);
  // Closes listeners and connections and joins the threads.
  void Stop();
  // Makes every thread look at its clock again (ProxyOptions::clock).
  void Wake();
  // What Decide answers may have changed: every held request (ProxyHold)
  // is decided again, soon, on its thread. Thread-safe.
  void RoutesChanged();

  ProxyStats stats() const;

 private:
  class Impl;
  explicit ProxyServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dspool
