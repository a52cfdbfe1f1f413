// ClientConnection: one client connection of the web proxy, served by one
// coroutine on its worker from accept to close (the diagram in proxy.h).
//
//   proxy_connection.cc, the client side: the TLS handshake, then request
//     after request: the head parsed in place in the connection's buffer
//     (http1_parser.h), routed by the ProxyRouter, answered locally (a
//     Reply, or a small body read for Serve) or forwarded; at the end a
//     TLS close_notify and a lingering close.
//   proxy_forward.cc, the upstream side: an upstream from the worker's
//     pool or a new one, the head rewritten, bodies streamed both ways in
//     buffer-sized steps, 1xx responses, one retry on a pooled upstream
//     that closed, and tunnels after a 101.
//
// Every deadline is the reactor's turn_time() plus a timeout from
// ProxyOptions: no clock read per wait. The heads live here rather than in
// the coroutine frames of each step, which would allocate a few KiB per
// request.
//
// Thread safety: none; a ClientConnection lives in its coroutine's frame on
// its worker's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "http/http1_parser.h"
#include "http/proxy.h"
#include "http/proxy_worker.h"
#include "net/stream.h"
#include "net/task.h"

namespace dspool {

class ClientConnection {
 public:
  // Serves `client` to its end, then tells the worker (ConnectionEnded).
  static Detached Serve(ProxyWorker& worker, AcceptedClient client);

 private:
  ClientConnection(ProxyWorker& worker, UniqueFd fd, Peer peer, std::string tag);

  // Results of StreamBody.
  enum StreamResult { kStreamed, kReadFailed, kWriteFailed, kBadFraming };

  MonoTime now() const { return reactor_.turn_time(); }

  // ---- proxy_connection.cc
  // Reads, routes and answers one request. True if the connection may
  // carry another.
  Task<bool> ServeRequest(MonoTime deadline);
  // Reads a ProxyLocal request's body (at most max_local_body wire bytes)
  // into `request` and answers with the router's Serve.
  Task<bool> ServeLocal(Request& request, http1::BodyScanner& body, bool keep_alive);
  // Writes `response` (SerializeResponse's rules). False if it could not.
  Task<bool> Reply(Response response, int version_minor, bool head, bool keep_alive);
  // The request head as the router sees it, from heads_->request.
  Request RouterRequest(Target target) const;
  // Our FIN, then what the client still sends is read and dropped for a
  // while, so that it reads our last answer rather than a reset.
  Task<bool> LingeringClose();

  // ---- proxy_forward.cc
  // Forwards the request in heads_->request (and its body) and the response;
  // `request` is the head as the router saw it.
  // True if the client connection may carry another request.
  Task<bool> Forward(const Request& request, http1::BodyScanner& body, const ProxyForward& forward, bool keep_alive,
                     bool head_request);
  // The request head for the upstream, into out_.
  void UpstreamHead(const ProxyForward& forward, bool upgrade);
  // The response head in heads_->response for the client, into out_: as received,
  // but for the connection's own fields.
  void ClientHead(std::string_view raw, bool keep_alive);
  // A new upstream connection, counted; null if it failed.
  Task<std::unique_ptr<Stream>> Connect(uint32_t address, uint16_t port);
  // Writes `prefix` (a head; may be empty) and then the body from `from`
  // (its first bytes already in `buf`) to `to`; the prefix goes out with
  // the first body bytes, in one write. A kUntilClose body ends at the end
  // of `from`'s stream. On kBadFraming a prefix still in `prefix` was not
  // sent.
  Task<int> StreamBody(Stream& from, IoBuffer& buf, http1::BodyScanner& body, Stream& to, std::string& prefix);
  // 1 with a head parsed into heads_->response; 0 if the upstream closed (or
  // reset) before any byte of it; -2 if io_timeout passed; -1 on other
  // failures.
  Task<int> ReadResponseHead(Stream& up, IoBuffer& resp);
  // Bytes both ways between the client and `up` until either side ends.
  Task<bool> Tunnel(Stream& up, uint64_t tag);
  struct TunnelState;
  Task<bool> Pump(Stream& from, Stream& to, IoBuffer& buf, TunnelState& st, uint64_t tag);
  Detached PumpAndCancel(Stream& from, Stream& to, IoBuffer& buf, TunnelState& st, uint64_t tag);

  ProxyWorker& worker_;
  Reactor& reactor_;
  ProxyShared& shared_;
  const ProxyOptions& options_;
  Stream client_;
  IoBuffer in_;
  std::string out_;  // heads on their way; keeps its capacity
  // The heads being parsed, held while a request is served (ServeRequest
  // takes them once its first bytes are there); given back to the worker
  // between requests and when the connection becomes a tunnel.
  std::unique_ptr<ProxyHeads> heads_;
  Peer peer_;
  std::string tag_;
  // An upgrade answered 101: Forward leaves the upstream here and Serve
  // runs the tunnel.
  struct PendingTunnel {
    std::unique_ptr<Stream> up;
    uint64_t tag = 0;
  };
  std::optional<PendingTunnel> tunnel_;
};

}  // namespace dspool
