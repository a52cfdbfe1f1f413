// ProxyWorker: one of the web proxy's I/O threads, on a net Reactor of its
// own, with what its connections share there: a pool of I/O buffers and
// the kept-alive upstream connections (per address:port).
//
//   worker 0:   listeners (level-triggered) ─► Accept ─► the next worker,
//               round robin: itself (served at once) or HandOff
//   any worker: HandOff ─► pending list ─► one Post per batch ─► Adopt
//               ─► ClientConnection::Serve (proxy_connection.cc), a
//               coroutine that stays on this worker for the connection's life
//
// (Why not SO_REUSEPORT per thread: listeners may come before Start, when
// the thread count is unknown, and the kernel's hash would not balance a
// few dozen long-lived connections as evenly as round robin.)
//
// Stop: the listeners are closed and the idle upstream connections dropped
// (on the loop, first), then the reactor stops: every parked wait fails, so
// each connection's coroutine runs to its end before the thread exits.
//
// Threads: Start, Stop, Join, RunOnLoop and HandOff from any thread; the
// rest on the worker's loop (or before Start, or after Join).
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "http/http1_parser.h"
#include "http/message.h"
#include "http/proxy_internal.h"
#include "net/reactor.h"
#include "net/stream.h"
#include "net/task.h"
#include "os/unique_fd.h"

namespace dspool {

// A listening socket, served by worker 0. Connections keep a reference for
// their TLS context (and tag) until their handshake is done.
struct ProxyListener {
  UniqueFd fd;
  std::unique_ptr<TlsServerContext> tls;  // null: plain TCP
  uint16_t port = 0;
  std::string tag;     // the port as text: Request::listener_tag
  uint32_t slot = 0;   // its registration in worker 0's reactor
};

// An accepted client socket on its way to the worker that serves it.
struct AcceptedClient {
  UniqueFd fd;
  Peer peer;
  std::shared_ptr<const ProxyListener> listener;
};

class ProxyWorker;

// The heads of one request and of its response as they are parsed (a few
// KiB of header views): a connection holds them only while it serves a
// request, taken from its worker's spares (an idle connection holds none).
struct ProxyHeads {
  http1::RequestHead request;
  http1::ResponseHead response;
};

// A connection's I/O buffer: kSize bytes from its worker's pool, taken when
// first read into and given back whenever it is empty and the connection
// waits for input (an idle connection holds none). Bytes live in
// [ptr(), ptr() + size()).
class IoBuffer {
 public:
  static constexpr size_t kSize = 32 * 1024;

  explicit IoBuffer(ProxyWorker& worker) : worker_(worker) {}
  ~IoBuffer() { Drop(); }
  IoBuffer(const IoBuffer&) = delete;
  IoBuffer& operator=(const IoBuffer&) = delete;

  size_t size() const { return end_ - begin_; }
  char* ptr() const { return data_ + begin_; }
  std::string_view view() const { return {data_ + begin_, end_ - begin_}; }
  void Consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Gives the memory back to the pool (and whatever bytes it held).
  void Drop();

  // Reads what `s` has into the free room (compacting first), waiting for
  // it until `deadline`; lets go of the memory while it waits with nothing
  // held. Bytes read, 0 at the end of the stream, Stream::kFailed (also
  // for a full buffer) or Stream::kTimedOut.
  Task<long> ReadFrom(Stream& s, MonoTime deadline);

 private:
  ProxyWorker& worker_;
  char* data_ = nullptr;
  size_t begin_ = 0;
  size_t end_ = 0;
};

class ProxyWorker final : public IoHandler {
 public:
  // Kept-alive upstream connections are pooled by address << 16 | port.
  using UpstreamKey = uint64_t;

  // The worker's reactor, on options.clock. Errors: Reactor::Create's.
  static Result<std::unique_ptr<ProxyWorker>> Create(ProxyShared& shared, size_t index);
  ~ProxyWorker();  // REQUIRES: Join()ed, or never started
  ProxyWorker(const ProxyWorker&) = delete;
  ProxyWorker& operator=(const ProxyWorker&) = delete;

  // Starts the thread ("web-proxy-<index>"). `peers`: the workers accepted
  // connections are dealt to, round robin (this one among them); only the
  // worker holding listeners uses it.
  void Start(std::vector<ProxyWorker*> peers);
  // Closes the listeners, drops the idle upstream connections and ends
  // every connection; returns at once (Join waits). Idempotent.
  void Stop();
  void Join();
  // Makes the loop look at its clock again (after a test moved a simulated
  // one).
  void Wake() { reactor_->Wake(); }

  // Runs fn on the loop and returns once it ran: at once on the loop
  // thread, or when no loop runs (before Start, after the loop ended);
  // otherwise posted and waited for. Dropped (not run) if the loop is
  // stopping.
  void RunOnLoop(std::function<void()> fn);

  // On the loop: starts accepting on `listener` (FailedPrecondition once
  // stopping), or stops and closes it.
  Status AddListener(std::shared_ptr<ProxyListener> listener);
  void RemoveListener(uint16_t port);

  // From any thread: `client` is served on this worker. Dropped (closed,
  // and no longer counted active) once the worker stops.
  void HandOff(AcceptedClient client);

  // For the connections, on the loop.
  Reactor& reactor() { return *reactor_; }
  ProxyShared& shared() { return shared_; }
  // Client connections served here now.
  size_t live() const { return live_; }
  // A connection's coroutine ended.
  void ConnectionEnded();
  // A request failed for its upstream (`address`:`port`): counted, and
  // logged with `why` (at most once a second per worker, with the number
  // left unlogged since; an instance can make its server fail at will).
  void UpstreamFailed(uint32_t address, uint16_t port, std::string_view why);
  char* TakeBuffer();
  void GiveBuffer(char* buffer);
  std::unique_ptr<ProxyHeads> TakeHeads();
  void GiveHeads(std::unique_ptr<ProxyHeads> heads);
  // A pooled connection to `key` that the upstream has not closed, or null.
  std::unique_ptr<Stream> TakeIdle(UpstreamKey key);
  // Pools `upstream` (at most options.max_idle_upstream per key); drops it
  // once stopping.
  void GiveBack(UpstreamKey key, std::unique_ptr<Stream> upstream);

  // A listener is readable.
  void OnIo(uint32_t events, uint32_t slot) override;

  // A request held (ProxyHold) on this worker, parked in the reactor for
  // its deadline too.
  struct HoldWaiter {
    Reactor::Waiter node;  // first: the reactor hands it back
    ProxyWorker* worker = nullptr;
  };
  struct Holding {
    ProxyWorker& worker;
    HoldWaiter w;
    bool await_ready() const { return false; }
    void await_suspend(std::coroutine_handle<> h);
    // 0 (released by ReleaseHolds), Reactor::kTimedOut or kStopped.
    int await_resume() const { return w.node.result; }
  };
  // On the loop: `co_await Hold(deadline)` parks the coroutine until
  // ReleaseHolds or the deadline.
  Holding Hold(MonoTime deadline) { return Holding{*this, HoldWaiter{{deadline}, this}}; }
  // From any thread: every held request resumes (in a later turn), to be
  // decided again.
  void ReleaseHolds();

 private:
  ProxyWorker(ProxyShared& shared, size_t index, std::unique_ptr<Reactor> reactor);
  void Loop();
  void Accept(const std::shared_ptr<ProxyListener>& listener);
  void Adopt();
  void Spawn(AcceptedClient client);
  // Listeners closed, the upstream pool dropped, no new connection served.
  void BeginStopping();
  // The reactor let `w` go itself (deadline, Stop): out of held_.
  static void Unhold(Reactor::Waiter* w);

  ProxyShared& shared_;
  const size_t index_;
  const std::unique_ptr<Reactor> reactor_;

  enum class LoopState { kNotStarted, kRunning, kEnded };
  std::mutex mu_;
  LoopState state_ = LoopState::kNotStarted;  // guarded by mu_
  std::thread thread_;                        // guarded by mu_
  std::thread::id loop_thread_;               // guarded by mu_
  std::vector<AcceptedClient> pending_;       // guarded by mu_

  // Loop thread only (or while no loop runs).
  bool stopping_ = false;
  size_t live_ = 0;
  // The most connections live since the heap was last trimmed; a trim is
  // due when half of them have ended (ConnectionEnded), if there were at
  // least kTrimPeak.
  static constexpr size_t kTrimPeak = 128;
  size_t peak_live_ = 0;
  bool trim_pending_ = false;
  std::vector<ProxyWorker*> peers_;
  size_t next_peer_ = 0;
  std::vector<std::shared_ptr<ProxyListener>> listeners_;
  std::unordered_map<UpstreamKey, std::vector<std::unique_ptr<Stream>>> idle_;
  std::vector<char*> spare_buffers_;
  std::vector<std::unique_ptr<ProxyHeads>> spare_heads_;
  std::vector<HoldWaiter*> held_;  // few: users waiting for their server
  MonoTime upstream_failure_logged_{};  // UpstreamFailed's last log line
  uint64_t upstream_failures_unlogged_ = 0;
};

}  // namespace dspool
