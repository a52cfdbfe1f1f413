// The client side of a proxied connection: handshake, request heads,
// routing, local answers, the lingering close. Forwarding is in
// proxy_forward.cc.
#include "http/proxy_connection.h"

#include <chrono>
#include <string_view>
#include <variant>

#include "http/response_writer.h"
#include "net/socket.h"

namespace dspool {

namespace {

using BodyKind = http1::BodyScanner::Kind;

// OpenSSL's own buffers (about 34 KiB) are given back whenever they empty
// only past this many connections on a worker: the malloc and free of each
// per request cost a third of the p99 (bench/http_proxy.sh), while many
// connections are mostly idle ones.
constexpr size_t kKeepTlsBuffers = 64;
// The lingering close: how long, and how much, is read and dropped.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerBytes = 1 << 20;

}  // namespace

ClientConnection::ClientConnection(ProxyWorker& worker, UniqueFd fd, Peer peer, std::string tag)
    : worker_(worker),
      reactor_(worker.reactor()),
      shared_(worker.shared()),
      options_(shared_.options),
      client_(reactor_, std::move(fd)),
      in_(worker),
      peer_(std::move(peer)),
      tag_(std::move(tag)) {}

Detached ClientConnection::Serve(ProxyWorker& worker, AcceptedClient accepted) {
  struct Ended {
    ProxyWorker& worker;
    ~Ended() { worker.ConnectionEnded(); }
  } ended{worker};
  // TCP_NODELAY came with the socket, from its listener (net/socket.h).
  std::shared_ptr<const ProxyListener> listener = std::move(accepted.listener);
  ClientConnection c(worker, std::move(accepted.fd), std::move(accepted.peer), listener ? listener->tag : "");
  if (listener && listener->tls) {
    const bool release_buffers = worker.live() > kKeepTlsBuffers;
    if (!co_await c.client_.AcceptTls(*listener->tls, release_buffers, c.now() + c.options_.header_read_timeout)) {
      ++c.shared_.counters.tls_failures;
      co_return;
    }
  }
  listener.reset();
  MonoTime deadline = c.now() + c.options_.header_read_timeout;
  for (;;) {
    // Idle between requests, waiting here rather than in ServeRequest (whose
    // frame is over a KiB), with no heads and no buffer: an idle connection
    // costs its TLS state and this frame.
    if (c.in_.size() == 0 && !c.client_.HasInput()) {
      worker.GiveHeads(std::move(c.heads_));
      c.in_.Drop();
      if (co_await c.client_.WaitReadable(deadline) != 0) break;
    }
    if (!co_await c.ServeRequest(deadline)) break;
    deadline = c.now() + c.options_.idle_timeout;
  }
  worker.GiveHeads(std::move(c.heads_));
  if (c.tunnel_) {
    c.out_ = std::string();  // its capacity, too
    co_await c.Tunnel(*c.tunnel_->up, c.tunnel_->tag);
  }
  co_await c.LingeringClose();  // (at once after a tunnel: both sides are closed)
}

Task<bool> ClientConnection::LingeringClose() {
  client_.SendCloseNotify();
  if (client_.canceled() || reactor_.stopping()) co_return true;
  client_.ShutdownWrite();
  const MonoTime until = now() + kLingerTime;
  size_t drained = 0;
  while (drained < kLingerBytes) {
    in_.Consume(in_.size());
    long n = co_await in_.ReadFrom(client_, until);
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
  co_return true;
}

Task<bool> ClientConnection::Reply(Response response, int version_minor, bool head, bool keep_alive) {
  out_.clear();
  SerializeResponse(std::move(response), version_minor, head, keep_alive, out_);
  bool ok = co_await client_.WriteAll(out_.data(), out_.size(), now() + options_.io_timeout);
  out_.clear();
  co_return ok;
}

Task<bool> ClientConnection::ServeRequest(MonoTime deadline) {
  if (!heads_) heads_ = worker_.TakeHeads();
  http1::RequestHead& head = heads_->request;
  for (;;) {
    if (in_.size() > 0) {
      http1::ParseResult r = http1::ParseRequestHead(in_.view(), http1::kMaxHeadSize, &head);
      if (r == http1::ParseResult::kComplete) break;
      if (r == http1::ParseResult::kError) {
        ++shared_.counters.requests;
        co_await Reply(ErrorResponse(400, "bad request"), 1, false, false);
        co_return false;
      }
    }
    long n = co_await in_.ReadFrom(client_, deadline);
    if (n <= 0) co_return false;  // closed, timed out, failed: nothing to answer
  }
  ++shared_.counters.requests;
  const bool head_request = head.method == "HEAD";
  const int minor = head.version_minor;
  const bool keep_alive = minor == 1 ? !head.framing.connection_close : head.framing.connection_keep_alive;

  Result<Target> target = ParseTarget(head.target);
  if (!target.ok()) {
    co_await Reply(ErrorResponse(400, "bad request target"), minor, head_request, false);
    co_return false;
  }
  Request request = RouterRequest(std::move(*target));
  http1::BodyScanner body = http1::BodyScanner::ForRequest(head.framing);

  ProxyRoute route = shared_.router.Decide(request);
  if (auto* hold = std::get_if<ProxyHold>(&route)) {
    const MonoTime until = now() + hold->at_most;
    for (;;) {
      const int held = co_await worker_.Hold(until);
      if (held == Reactor::kStopped) co_return false;
      if (held == Reactor::kTimedOut) {
        in_.Consume(head.head_size);
        co_await Reply(std::move(std::get<ProxyHold>(route).otherwise), minor, head_request, false);
        co_return false;
      }
      route = shared_.router.Decide(request);
      if (!std::holds_alternative<ProxyHold>(route)) break;
    }
  }
  if (auto* reply = std::get_if<ProxyReply>(&route)) {
    in_.Consume(head.head_size);
    const bool keep = keep_alive && body.kind() == BodyKind::kNone;  // an unread body ends the connection
    bool ok = co_await Reply(std::move(reply->response), minor, head_request, keep);
    co_return ok && keep;
  }
  if (std::holds_alternative<ProxyLocal>(route)) {
    in_.Consume(head.head_size);
    co_return co_await ServeLocal(request, body, keep_alive);
  }
  co_return co_await Forward(request, body, std::get<ProxyForward>(route), keep_alive, head_request);
}

Request ClientConnection::RouterRequest(Target target) const {
  const http1::RequestHead& head = heads_->request;
  Request request;
  request.method.assign(head.method);
  request.target.assign(head.target);
  request.path = std::move(target.path);
  request.query = std::move(target.query);
  std::string name;
  for (size_t i = 0; i < head.num_headers; ++i) {
    const http1::Header& h = head.headers[i];
    name.assign(h.name);
    for (char& ch : name) ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch;
    auto [it, inserted] = request.headers.try_emplace(name, h.value);
    if (!inserted) {
      it->second += ", ";
      it->second += h.value;
    }
  }
  request.peer = peer_;
  request.listener_tag = tag_;
  return request;
}

Task<bool> ClientConnection::ServeLocal(Request& request, http1::BodyScanner& body, bool keep_alive) {
  // The head was consumed: only these of its fields are read.
  const bool head_request = request.method == "HEAD";
  const int minor = heads_->request.version_minor;
  if (body.kind() == BodyKind::kLength && body.remaining() > options_.max_local_body) {
    co_await Reply(ErrorResponse(413, "request body too large"), minor, head_request, false);
    co_return false;
  }
  if (heads_->request.framing.expect_continue && !body.done() && in_.size() == 0 && minor == 1) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    if (!co_await client_.WriteAll(kContinue.data(), kContinue.size(), now() + options_.io_timeout)) co_return false;
  }
  while (!body.done()) {
    if (in_.size() == 0) {
      if (co_await in_.ReadFrom(client_, now() + options_.io_timeout) <= 0) co_return false;
      continue;
    }
    long take = body.Take(in_.ptr(), in_.size(), &request.body);
    if (take < 0) {
      co_await Reply(ErrorResponse(400, "bad request"), minor, head_request, false);
      co_return false;
    }
    in_.Consume(static_cast<size_t>(take));
    if (body.consumed() > options_.max_local_body) {
      co_await Reply(ErrorResponse(413, "request body too large"), minor, head_request, false);
      co_return false;
    }
  }
  bool ok = co_await Reply(shared_.router.Serve(request), minor, head_request, keep_alive);
  co_return ok && keep_alive;
}

}  // namespace dspool
