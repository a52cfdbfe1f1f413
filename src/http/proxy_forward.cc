// The upstream side of a proxied connection: a request forwarded, its
// response streamed back, and tunnels after a 101. The client side is in
// proxy_connection.cc.
#include <chrono>
#include <coroutine>
#include <string>
#include <utility>

#include "base/log.h"
#include "http/proxy_connection.h"
#include "http/response_writer.h"

namespace dspool {

namespace {

constexpr std::string_view kLog = "proxy";

using BodyKind = http1::BodyScanner::Kind;

// A tunnel tells the router of its traffic at most this often per direction.
constexpr auto kActivityEvery = std::chrono::seconds(1);

bool IsHopByHop(std::string_view name) {
  return EqualsIgnoreCase(name, "connection") || EqualsIgnoreCase(name, "keep-alive") ||
         EqualsIgnoreCase(name, "proxy-connection");
}

}  // namespace

// ---- a request and its response ---------------------------------------------

Task<bool> ClientConnection::Forward(const Request& request, http1::BodyScanner& body, const ProxyForward& forward,
                                     bool client_keep_alive, bool head_request) {
  const http1::RequestHead& head = heads_->request;
  ++shared_.counters.forwarded;
  shared_.router.Activity(forward.tag);
  const int minor = head.version_minor;
  // RFC 9110 7.8: Upgrade in an HTTP/1.0 request is ignored.
  const bool upgrade = head.framing.has_upgrade && head.framing.connection_upgrade && minor == 1;
  UpstreamHead(forward, upgrade);
  in_.Consume(head.head_size);  // the head's views are not used after this, but for a retry (below)

  // A body that is all here already can be sent again on a second
  // upstream connection; a streamed one cannot.
  http1::BodyScanner probe = body;
  long buffered = probe.Take(in_.ptr(), in_.size());
  if (buffered < 0) {
    co_await Reply(ErrorResponse(400, "bad request"), minor, head_request, false);
    co_return false;
  }
  const bool body_buffered = probe.done();
  const size_t buffered_body = body_buffered ? static_cast<size_t>(buffered) : 0;
  if (body_buffered) body = probe;
  // RFC 9110 10.1.1: Expect is for HTTP/1.1 requests only.
  const bool wait_for_continue = head.framing.expect_continue && !body_buffered && minor == 1;

  const ProxyWorker::UpstreamKey key = (static_cast<uint64_t>(forward.address) << 16) | forward.port;
  std::unique_ptr<Stream> up;
  IoBuffer resp(worker_);
  const http1::ResponseHead& rh = heads_->response;
  bool sent_continue = false;
  for (int attempt = 0;; ++attempt) {
    up = attempt == 0 ? worker_.TakeIdle(key) : nullptr;
    const bool reused = up != nullptr;
    if (!up) up = co_await Connect(forward.address, forward.port);
    if (!up) {
      worker_.UpstreamFailed(forward.address, forward.port, "could not connect");
      // A named local, not a temporary in the co_await's expression: built
      // by GCC 12 there, a conditional's temporary was freed twice.
      Response answer = shared_.router.Unreachable(request, forward).value_or(ErrorResponse(502, "bad gateway"));
      co_await Reply(std::move(answer), minor, head_request, false);
      co_return false;
    }
    // Again for a retry: the head's bytes are still in in_'s memory, as
    // nothing was read into it since (the body was all there).
    if (attempt > 0) UpstreamHead(forward, upgrade);
    bool sent;
    if (body_buffered) {
      out_.append(in_.ptr(), buffered_body);
      sent = co_await up->WriteAll(out_.data(), out_.size(), now() + options_.io_timeout);
      out_.clear();
    } else if (wait_for_continue) {
      sent = co_await up->WriteAll(out_.data(), out_.size(), now() + options_.io_timeout);
      out_.clear();
    } else {
      int r = co_await StreamBody(client_, in_, body, *up, out_);
      if (r == kBadFraming) {
        co_await Reply(ErrorResponse(400, "bad request"), minor, head_request, false);
        co_return false;
      }
      if (r == kReadFailed) co_return false;  // the client went away
      sent = r == kStreamed;
    }
    const bool may_retry = reused && body_buffered && attempt == 0;
    if (!sent) {
      if (may_retry) continue;
      worker_.UpstreamFailed(forward.address, forward.port, "the request could not be sent");
      co_await Reply(ErrorResponse(502, "bad gateway"), minor, head_request, false);
      co_return false;
    }
    // The response head: 1xx ones are passed on, to HTTP/1.1 clients only
    // (an HTTP/1.0 one waits for the final response, RFC 9110 15.2), and
    // the body is sent after a 100 when the client waits for it.
    int got = co_await ReadResponseHead(*up, resp);
    if (got == 1 && wait_for_continue && !sent_continue && rh.status == 100) {
      sent_continue = true;
      if (!co_await client_.WriteAll(resp.ptr(), rh.head_size, now() + options_.io_timeout)) co_return false;
      resp.Consume(rh.head_size);
      std::string none;
      int r = co_await StreamBody(client_, in_, body, *up, none);
      if (r == kBadFraming) {
        co_await Reply(ErrorResponse(400, "bad request"), minor, head_request, false);
        co_return false;
      }
      if (r == kReadFailed) co_return false;
      got = r == kStreamed ? co_await ReadResponseHead(*up, resp) : -1;
    }
    while (got == 1 && rh.status >= 100 && rh.status < 200 && rh.status != 101) {
      if (minor == 1 && !co_await client_.WriteAll(resp.ptr(), rh.head_size, now() + options_.io_timeout)) {
        co_return false;
      }
      resp.Consume(rh.head_size);
      got = co_await ReadResponseHead(*up, resp);
    }
    if (got == 0 && may_retry) continue;  // a kept-alive connection closed before answering
    if (got != 1) {
      worker_.UpstreamFailed(forward.address, forward.port,
                             got == 0    ? "closed the connection without an answer"
                             : got == -2 ? "no response head within the I/O timeout"
                                         : "its response head failed or did not parse");
      co_await Reply(ErrorResponse(502, "bad gateway"), minor, head_request, false);
      co_return false;
    }
    break;
  }
  if (body_buffered) in_.Consume(buffered_body);
  if (wait_for_continue && !body.done()) client_keep_alive = false;  // the body was never read

  if (rh.status == 101) {
    if (!upgrade) {
      worker_.UpstreamFailed(forward.address, forward.port,
                             "101 Switching Protocols to a request that asked for no upgrade");
      co_await Reply(ErrorResponse(502, "bad gateway"), minor, head_request, false);
      co_return false;
    }
    // The 101 and whatever the upstream sent after it go out now; the
    // tunnel itself runs from Serve, once this request's frames are gone
    // (a WebSocket may last hours: it keeps only what it needs).
    if (!co_await client_.WriteAll(resp.ptr(), resp.size(), now() + options_.io_timeout)) co_return false;
    ++shared_.counters.tunnels;
    tunnel_ = PendingTunnel{std::move(up), forward.tag};
    co_return false;
  }

  http1::BodyScanner rbody = http1::BodyScanner::ForResponse(rh.framing, rh.status, head_request);
  const bool upstream_keep = rbody.kind() != BodyKind::kUntilClose && !upgrade &&
                             (rh.version_minor == 1 ? !rh.framing.connection_close : rh.framing.connection_keep_alive);
  const bool keep = client_keep_alive && !upgrade && rbody.kind() != BodyKind::kUntilClose;
  ClientHead(resp.view(), keep);
  resp.Consume(rh.head_size);

  int r = co_await StreamBody(*up, resp, rbody, client_, out_);
  if (r != kStreamed) {
    if (r == kWriteFailed) {
      ++shared_.counters.upstream_errors;  // a cut response, but the client's doing: not logged
    } else {
      worker_.UpstreamFailed(forward.address, forward.port, "its response body failed or was badly framed");
    }
    // Broken framing before the head went out gives a 502; once the
    // response is under way, all we can do is close.
    if (r == kBadFraming && !out_.empty()) co_await Reply(ErrorResponse(502, "bad gateway"), minor, head_request, false);
    out_.clear();
    co_return false;
  }
  out_.clear();
  if (upstream_keep && resp.size() == 0) worker_.GiveBack(key, std::move(up));
  co_return keep;
}

void ClientConnection::UpstreamHead(const ProxyForward& forward, bool upgrade) {
  const http1::RequestHead& head = heads_->request;
  std::string& out = out_;
  out.clear();
  out.append(head.method);
  out += ' ';
  out += forward.target;
  out += head.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
  for (size_t i = 0; i < head.num_headers; ++i) {
    const http1::Header& h = head.headers[i];
    if (!upgrade && IsHopByHop(h.name)) continue;
    bool drop = false;
    for (const std::string& r : forward.remove_headers) drop = drop || EqualsIgnoreCase(h.name, r);
    for (const auto& s : forward.set_headers) drop = drop || EqualsIgnoreCase(h.name, s.first);
    if (drop) continue;
    AppendHeader(out, h.name, h.value);
  }
  for (const auto& [name, value] : forward.set_headers) AppendHeader(out, name, value);
  // An HTTP/1.0 request asks for keep-alive, so no chunked answer comes back.
  if (!upgrade && head.version_minor == 0) out += "Connection: keep-alive\r\n";
  out += "\r\n";
}

void ClientConnection::ClientHead(std::string_view raw, bool keep_alive) {
  const http1::ResponseHead& rh = heads_->response;
  std::string& out = out_;
  out.clear();
  out.append(raw.substr(0, raw.find('\n') + 1));  // the status line
  for (size_t i = 0; i < rh.num_headers; ++i) {
    const http1::Header& h = rh.headers[i];
    if (IsHopByHop(h.name)) continue;
    AppendHeader(out, h.name, h.value);
  }
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (heads_->request.version_minor == 0) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

Task<std::unique_ptr<Stream>> ClientConnection::Connect(uint32_t address, uint16_t port) {
  Result<std::unique_ptr<Stream>> up = co_await ConnectStream(reactor_, address, port,
                                                              options_.upstream_congestion_control,
                                                              now() + options_.connect_timeout);
  if (!up.ok()) {
    DSP_LOG(kDebug, kLog) << up.status();
    co_return nullptr;
  }
  ++shared_.counters.upstream_connects;
  co_return std::move(*up);
}

Task<int> ClientConnection::ReadResponseHead(Stream& up, IoBuffer& resp) {
  bool any = resp.size() > 0;
  for (;;) {
    if (resp.size() > 0) {
      http1::ParseResult r = http1::ParseResponseHead(resp.view(), http1::kMaxHeadSize, &heads_->response);
      if (r == http1::ParseResult::kComplete) co_return 1;
      if (r == http1::ParseResult::kError) co_return -1;
    }
    long n = co_await resp.ReadFrom(up, now() + options_.io_timeout);
    if (n > 0) {
      any = true;
      continue;
    }
    if ((n == 0 || n == Stream::kFailed) && !any && !reactor_.stopping()) co_return 0;
    co_return n == Stream::kTimedOut ? -2 : -1;
  }
}

// ---- bodies -------------------------------------------------------------------

Task<int> ClientConnection::StreamBody(Stream& from, IoBuffer& buf, http1::BodyScanner& body, Stream& to,
                                       std::string& prefix) {
  for (;;) {
    if (buf.size() > 0 && !body.done()) {
      long take = body.Take(buf.ptr(), buf.size());
      if (take < 0) co_return kBadFraming;
      if (!prefix.empty()) {
        prefix.append(buf.ptr(), static_cast<size_t>(take));
      } else if (!co_await to.WriteAll(buf.ptr(), static_cast<size_t>(take), now() + options_.io_timeout)) {
        co_return kWriteFailed;
      }
      buf.Consume(static_cast<size_t>(take));
    }
    if (!prefix.empty()) {
      bool ok = co_await to.WriteAll(prefix.data(), prefix.size(), now() + options_.io_timeout);
      prefix.clear();
      if (!ok) co_return kWriteFailed;
    }
    if (body.done()) co_return kStreamed;
    long n = co_await buf.ReadFrom(from, now() + options_.io_timeout);
    if (n == 0 && body.kind() == BodyKind::kUntilClose) {
      body.EndOfStream();
      co_return kStreamed;
    }
    if (n <= 0) co_return kReadFailed;
  }
}

// ---- tunnels --------------------------------------------------------------------

// The two directions of a tunnel: when either last moved a byte (each
// direction's idle deadline counts from it), and the end of the direction
// running on its own.
struct ClientConnection::TunnelState {
  MonoTime last;
  bool other_done = false;
  std::coroutine_handle<> waiting;

  struct OtherDone {
    TunnelState& st;
    bool await_ready() const noexcept { return st.other_done; }
    void await_suspend(std::coroutine_handle<> h) noexcept { st.waiting = h; }
    void await_resume() const noexcept {}
  };
};

Task<bool> ClientConnection::Tunnel(Stream& up, uint64_t tag) {
  IoBuffer resp(worker_);
  TunnelState st;
  st.last = now();
  PumpAndCancel(up, client_, resp, st, tag);
  co_await Pump(client_, up, in_, st, tag);
  // Tell the client the stream ended cleanly, then close both.
  client_.SendCloseNotify();
  client_.Cancel();
  up.Cancel();
  co_await TunnelState::OtherDone{st};
  client_.SendCloseNotify();
  co_return true;
}

Task<bool> ClientConnection::Pump(Stream& from, Stream& to, IoBuffer& buf, TunnelState& st, uint64_t tag) {
  MonoTime last_report = now() - kActivityEvery;
  for (;;) {
    if (buf.size() > 0) {
      if (!co_await to.WriteAll(buf.ptr(), buf.size(), now() + options_.io_timeout)) co_return false;
      buf.Consume(buf.size());
      st.last = now();
      if (now() - last_report >= kActivityEvery) {
        last_report = now();
        shared_.router.Activity(tag);
      }
    }
    long n = co_await buf.ReadFrom(from, st.last + options_.tunnel_idle_timeout);
    if (n == Stream::kTimedOut && now() < st.last + options_.tunnel_idle_timeout) continue;  // the other way moved
    if (n <= 0) co_return true;
  }
}

// The upstream-to-client direction, on its own: when it ends, both streams
// are canceled (which ends the other direction too) and Tunnel resumes.
Detached ClientConnection::PumpAndCancel(Stream& from, Stream& to, IoBuffer& buf, TunnelState& st, uint64_t tag) {
  co_await Pump(from, to, buf, st, tag);
  from.Cancel();
  to.Cancel();
  st.other_done = true;
  if (st.waiting) std::exchange(st.waiting, {}).resume();
}

}  // namespace dspool
