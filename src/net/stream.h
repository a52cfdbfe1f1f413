// Stream: a connected, non-blocking stream socket on a Reactor, read and
// written by coroutines (task.h), in the clear or over TLS (OpenSSL, driven
// here and nowhere else). The web proxy's client and upstream connections
// are Streams.
//
// The socket joins the reactor's epoll set once, edge-triggered for reading
// and writing; the stream remembers "readable" and "writable" until a read
// or write answers EAGAIN (or a short read drains the socket), so a call
// that could only say EAGAIN is not made. A coroutine that must wait parks
// in the stream (reader and writer may wait at once, as in a tunnel) and in
// the reactor with its deadline; the event resumes it directly.
//
//   ReadSome(buf, n, deadline)   bytes; 0 at the end of the stream (FIN, or
//                                TLS close_notify); kFailed; kTimedOut
//   WriteAll(p, n, deadline)     all of it, or false
//   Cancel()                     every wait fails now and every later one
//   ShutdownWrite()              our FIN; reads go on (a lingering close)
//
// TLS: TlsServerContext holds a certificate and key (TLS 1.2+); a stream
// made with it runs the server side of the handshake (AcceptTls), then
// ReadSome and WriteAll go through the session; SendCloseNotify ends it
// politely without waiting.
//
// Thread safety: none; a Stream lives on its reactor's thread. That thread
// blocks SIGPIPE (ScopedSigpipeBlock, socket.h): OpenSSL writes with
// write(2), which raises it on a reset connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/result.h"
#include "net/reactor.h"
#include "net/tls.h"
#include "net/task.h"
#include "os/unique_fd.h"

struct bio_st;
struct ssl_st;
struct ssl_ctx_st;

namespace dspool {

// A server certificate chain and its key, under net/tls.h's policy.
class TlsServerContext {
 public:
  // InvalidArgument as ConfigureTlsServer.
  static Result<std::unique_ptr<TlsServerContext>> Create(const TlsCertificate& certificate);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

 private:
  friend class Stream;
  explicit TlsServerContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
  ssl_ctx_st* ctx_;
};

class Stream final : public IoHandler {
 public:
  // Results of reads and waits besides a count of bytes.
  static constexpr long kFailed = -1;
  static constexpr long kTimedOut = -2;

  // Takes `fd` (non-blocking, connected or connecting) and registers it in
  // `reactor`; if that fails, the stream starts canceled.
  Stream(Reactor& reactor, UniqueFd fd);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Leaves the reactor, ends the TLS session and closes the socket; every
  // wait fails. Idempotent.
  void Close();
  // Every wait fails now, and every later one.
  void Cancel();

  // Makes this the server side of a TLS session with `ctx`, and runs its
  // handshake. `release_buffers`: OpenSSL gives its buffers (about 34 KiB)
  // back whenever they empty, for mostly idle connections (each malloc and
  // free costs time per request). False on failure or timeout.
  Task<bool> AcceptTls(const TlsServerContext& ctx, bool release_buffers, MonoTime deadline);
  // Sends a TLS close_notify if it can go at once; never waits.
  void SendCloseNotify();
  // Sends our FIN (shutdown(SHUT_WR)); reading goes on. After
  // SendCloseNotify on a TLS stream.
  void ShutdownWrite();

  Task<long> ReadSome(char* buf, size_t n, MonoTime deadline);
  Task<bool> WriteAll(const char* p, size_t n, MonoTime deadline);
  // co_await WaitReadable(deadline): 0 when there is input (or the end of
  // it), kTimedOut or kFailed.
  struct Waiting;
  Waiting WaitReadable(MonoTime deadline);
  Waiting WaitWritable(MonoTime deadline);

  // Input is there to read without waiting (also TLS bytes OpenSSL holds).
  bool HasInput() const;
  bool peer_closed() const { return peer_closed_; }
  bool canceled() const { return canceled_; }
  int fd() const { return fd_.get(); }
  Reactor& reactor() const { return reactor_; }

  void OnIo(uint32_t events, uint32_t slot) override;

  // One coroutine's wait on this stream (EPOLLIN or EPOLLOUT), parked in the
  // reactor too for its deadline.
  struct Waiter {
    Reactor::Waiter node;  // first: the reactor hands it back
    Stream* stream = nullptr;
    uint32_t events = 0;
    Waiter* next = nullptr;
  };
  struct Waiting {
    Stream& s;
    uint32_t events;
    Waiter w;
    bool await_ready();
    void await_suspend(std::coroutine_handle<> h);
    long await_resume() const;
  };

 private:
  static void Detach(Reactor::Waiter* w);
  // For OpenSSL's read callback: a short read drained the socket.
  static long ObserveTlsRead(::bio_st* bio, int oper, const char*, size_t len, int, long, int ret,
                             size_t* processed);

  Reactor& reactor_;
  UniqueFd fd_;
  ssl_st* ssl_ = nullptr;
  uint32_t slot_ = 0;
  bool readable_ = false;
  bool writable_ = false;
  bool peer_closed_ = false;
  bool canceled_ = false;
  Waiter* waiters_ = nullptr;
};

// Connects to `address`:`port` (IPv4, host order) from `reactor`, with
// TCP_NODELAY and, if not empty, its own TCP congestion control: the
// stream once connected. Errors as StartConnectTcp and FinishConnect give
// them; DeadlineExceeded if not connected by `deadline`; Unavailable if the
// wait was canceled (the reactor stopping).
Task<Result<std::unique_ptr<Stream>>> ConnectStream(Reactor& reactor, uint32_t address, uint16_t port,
                                                    const std::string& congestion_control, MonoTime deadline);

}  // namespace dspool
