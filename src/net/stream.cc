#include "net/stream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <climits>

#include "net/socket.h"

namespace dspool {

// ---- TlsServerContext ------------------------------------------------------

Result<std::unique_ptr<TlsServerContext>> TlsServerContext::Create(const TlsCertificate& certificate) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return Internal("TLS: cannot make a context");
  std::unique_ptr<TlsServerContext> out(new TlsServerContext(ctx));
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);
  DSP_RETURN_IF_ERROR(ConfigureTlsServer(ctx, certificate));
  return out;
}

TlsServerContext::~TlsServerContext() { SSL_CTX_free(ctx_); }

// ---- Stream: registration and waits ----------------------------------------

Stream::Stream(Reactor& reactor, UniqueFd fd) : reactor_(reactor), fd_(std::move(fd)) {
  auto slot = reactor_.Add(fd_.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this);
  if (slot.ok()) {
    slot_ = *slot;
  } else {
    canceled_ = true;
  }
}

Stream::~Stream() { Close(); }

void Stream::Close() {
  if (!fd_.valid()) return;
  Cancel();
  reactor_.Remove(slot_, fd_.get());
  slot_ = 0;
  if (ssl_) SSL_free(ssl_);
  ssl_ = nullptr;
  fd_.reset();
}

void Stream::Cancel() {
  canceled_ = true;
  while (waiters_) {
    Waiter* w = waiters_;
    waiters_ = w->next;
    reactor_.Release(&w->node, Reactor::kStopped);
  }
}

bool Stream::HasInput() const { return readable_ || (ssl_ && SSL_has_pending(ssl_)); }

void Stream::OnIo(uint32_t events, uint32_t) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_closed_ = true;
  // Unlink every wait now satisfied, then resume them: a resumed coroutine
  // may close this stream.
  Waiter* go[4];
  int n = 0;
  for (Waiter** p = &waiters_; *p;) {
    Waiter* w = *p;
    if ((w->events == EPOLLIN && readable_) || (w->events == EPOLLOUT && writable_)) {
      *p = w->next;
      Reactor::Unpark(&w->node);
      w->node.result = 0;
      if (n < 4) {
        go[n++] = w;
      } else {
        reactor_.Schedule(w->node.handle);  // never in practice: at most two wait on a stream
      }
    } else {
      p = &w->next;
    }
  }
  for (int i = 0; i < n; ++i) go[i]->node.handle.resume();
}

void Stream::Detach(Reactor::Waiter* node) {
  auto* w = reinterpret_cast<Waiter*>(node);
  for (Waiter** p = &w->stream->waiters_; *p; p = &(*p)->next) {
    if (*p == w) {
      *p = w->next;
      return;
    }
  }
}

Stream::Waiting Stream::WaitReadable(MonoTime deadline) { return Waiting{*this, EPOLLIN, Waiter{{deadline}}}; }
Stream::Waiting Stream::WaitWritable(MonoTime deadline) { return Waiting{*this, EPOLLOUT, Waiter{{deadline}}}; }

bool Stream::Waiting::await_ready() {
  if (s.canceled_ || s.reactor_.stopping()) {
    w.node.result = kFailed;
    return true;
  }
  return (events == EPOLLIN && s.readable_) || (events == EPOLLOUT && s.writable_);
}

void Stream::Waiting::await_suspend(std::coroutine_handle<> h) {
  w.node.handle = h;
  w.node.on_expire = &Stream::Detach;
  w.stream = &s;
  w.events = events;
  w.next = s.waiters_;
  s.waiters_ = &w;
  s.reactor_.Wait(&w.node);
}

long Stream::Waiting::await_resume() const {
  switch (w.node.result) {
    case 0: return 0;
    case Reactor::kTimedOut: return kTimedOut;
    default: return kFailed;
  }
}

static_assert(offsetof(Stream::Waiter, node) == 0, "Detach finds the Waiter from its node");

// ---- reads and writes -------------------------------------------------------

Task<long> Stream::ReadSome(char* buf, size_t n, MonoTime deadline) {
  for (;;) {
    if (canceled_ || reactor_.stopping()) co_return kFailed;
    if (!HasInput()) {
      long r = co_await WaitReadable(deadline);
      if (r != 0) co_return r;
    }
    if (ssl_) {
      ERR_clear_error();
      int r = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(n, INT_MAX)));
      if (r > 0) co_return r;
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ) {
        readable_ = false;
        continue;
      }
      if (e == SSL_ERROR_WANT_WRITE) {
        writable_ = false;
        long w = co_await WaitWritable(deadline);
        if (w != 0) co_return w;
        continue;
      }
      if (e == SSL_ERROR_ZERO_RETURN) co_return 0;
      if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && r == 0) co_return 0;  // FIN without close_notify
      ERR_clear_error();
      co_return kFailed;
    }
    ssize_t r = ::recv(fd_.get(), buf, n, 0);
    if (r >= 0) {
      if (r == 0) {
        readable_ = true;  // stays at the end of the stream
      } else if (static_cast<size_t>(r) < n && !peer_closed_) {
        // A short read drained the socket: the next edge sets the flag
        // again. Not once the FIN was reported: no edge follows it.
        readable_ = false;
      }
      co_return r;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      readable_ = false;
      continue;
    }
    if (errno == EINTR) continue;
    co_return kFailed;
  }
}

Task<bool> Stream::WriteAll(const char* p, size_t n, MonoTime deadline) {
  while (n > 0) {
    if (canceled_ || reactor_.stopping()) co_return false;
    if (ssl_) {
      ERR_clear_error();
      int r = SSL_write(ssl_, p, static_cast<int>(std::min<size_t>(n, INT_MAX)));
      if (r > 0) {
        p += r;
        n -= static_cast<size_t>(r);
        continue;
      }
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_WRITE) {
        writable_ = false;
        if (co_await WaitWritable(deadline) != 0) co_return false;
        continue;
      }
      if (e == SSL_ERROR_WANT_READ) {
        readable_ = false;
        if (co_await WaitReadable(deadline) != 0) co_return false;
        continue;
      }
      ERR_clear_error();
      co_return false;
    }
    ssize_t r = ::send(fd_.get(), p, n, MSG_NOSIGNAL);
    if (r >= 0) {
      p += r;
      n -= static_cast<size_t>(r);
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      writable_ = false;
      if (co_await WaitWritable(deadline) != 0) co_return false;
      continue;
    }
    if (errno == EINTR) continue;
    co_return false;
  }
  co_return true;
}

// ---- TLS ----------------------------------------------------------------------

long Stream::ObserveTlsRead(::bio_st* bio, int oper, const char*, size_t len, int, long, int ret,
                            size_t* processed) {
  // The socket BIO's reads, seen from outside: a short one drained the
  // socket, so the next SSL_read need not try (and get EAGAIN) before the
  // next edge, as for plain sockets in ReadSome.
  if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed && *processed < len) {
    auto* s = reinterpret_cast<Stream*>(BIO_get_callback_arg(bio));
    if (!s->peer_closed_) s->readable_ = false;
  }
  return ret;
}

Task<bool> Stream::AcceptTls(const TlsServerContext& ctx, bool release_buffers, MonoTime deadline) {
  ssl_ = SSL_new(ctx.ctx_);
  if (!ssl_) co_return false;
  if (release_buffers) SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  SSL_set_fd(ssl_, fd_.get());
  BIO* rbio = SSL_get_rbio(ssl_);
  BIO_set_callback_arg(rbio, reinterpret_cast<char*>(this));
  BIO_set_callback_ex(rbio, &ObserveTlsRead);
  SSL_set_accept_state(ssl_);
  for (;;) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r == 1) co_return true;
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ) {
      readable_ = false;
      if (co_await WaitReadable(deadline) != 0) co_return false;
    } else if (e == SSL_ERROR_WANT_WRITE) {
      writable_ = false;
      if (co_await WaitWritable(deadline) != 0) co_return false;
    } else {
      ERR_clear_error();
      co_return false;
    }
  }
}

void Stream::SendCloseNotify() {
  if (!ssl_ || !fd_.valid() || (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN)) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

void Stream::ShutdownWrite() {
  if (fd_.valid()) (void)::shutdown(fd_.get(), SHUT_WR);
}

// ---- connecting -------------------------------------------------------------

Task<Result<std::unique_ptr<Stream>>> ConnectStream(Reactor& reactor, uint32_t address, uint16_t port,
                                                    const std::string& congestion_control, MonoTime deadline) {
  Result<UniqueFd> fd = StartConnectTcp(address, port, congestion_control);
  if (!fd.ok()) co_return fd.status();
  auto s = std::make_unique<Stream>(reactor, std::move(*fd));
  const long waited = co_await s->WaitWritable(deadline);
  if (waited == Stream::kTimedOut) {
    co_return DeadlineExceeded("connect " + FormatEndpoint(address, port) + ": no answer in time");
  }
  if (waited != 0) co_return Unavailable("connect " + FormatEndpoint(address, port) + ": canceled");
  Status connected = FinishConnect(s->fd(), address, port);
  if (!connected.ok()) co_return connected;
  co_return std::move(s);
}

}  // namespace dspool
