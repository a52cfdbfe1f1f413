// RelayLoop: the L4 data path. One thread, one epoll set, many relayed TCP
// connections; bytes move between the two sockets of a connection with
// splice(2), never through user space.
//
// A relayed connection is a pair of connected stream sockets, `client` and
// `backend`, and two directions: client->backend (reads client, writes
// backend) and backend->client. A direction with bytes on their way holds a
// pipe: splice moves them socket -> pipe -> socket inside the kernel. When
// the pipe is empty and the source has nothing more, the pipe goes back to
// the loop's spare list, so an idle connection holds no pipe at all.
//
// Readiness is edge-triggered: each socket joins the epoll set once, for
// reading and writing, and the connection remembers "readable"/"writable"
// until a splice answers EAGAIN. No epoll_ctl follows while bytes flow,
// except that a direction waiting for its destination to take bytes takes
// EPOLLIN off its source until then (otherwise every arriving segment
// would wake the loop for nothing).
//
// One direction (the other is the same with the sockets swapped) repeats a
// step while either end is ready:
//
//   fill:  src readable and pipe has room  ->  splice src -> pipe
//   flush: pipe holds bytes, dst writable   ->  splice pipe -> dst
//
// The kernel counts a pipe's room in pages, so EAGAIN on a fill means
// "src is empty" only if the pipe was empty; otherwise the direction fills
// again once the pipe has drained. A slow destination therefore pushes back
// through the kernel's socket buffers (TCP flow control) instead of growing
// any buffer here. When src reports EOF and the pipe is empty, the FIN is
// passed on: shutdown(dst, SHUT_WR).
//
// A busy direction yields after kMaxStepsPerTurn steps (relay.cc) and
// continues after the loop's next batch of events, so one fast stream
// cannot starve the others.
//
// The loop is a Reactor (reactor.h): each connection is the IoHandler of
// its two sockets' registrations, its yielded turns are the reactor's
// deferred work, and the idle sweep is the reactor's turn hook.
//
// The connection:
//
//   Add ──► pending ──► (loop adopts) ──► RELAYING ──► both directions DONE ──► closed (FIN)
//                            │                ▲  │
//                            │     connected  │  ├── error on either socket (RST, EPIPE, ...)
//                            └──► CONNECTING ─┘  │     ──► closed with RST on both   [errors]
//                                  │             ├── no byte either way for idle_timeout
//        (backend added connecting)│             │     ──► closed (FIN) on both      [idle_timeouts]
//                                  │             └── Stop() ──► closed (FIN) on both
//                                  └── refused, unreachable or connect_timeout
//                                        ──► backend closed; the client socket, unread,
//                                            to on_connect_failed   [connects_failed]
//
// Half-close is therefore relayed: a client that shuts down its write side
// makes the backend read EOF, and the backend's reply still reaches the
// client.
//
// Cost per idle connection: its two sockets and under 170 bytes of loop
// state (a struct of at most 112 bytes, its hash-table node, one timer
// entry, two registration slots of 16 bytes); no pipe and no user-space
// buffer. A busy direction adds a pipe (2
// descriptors, at most RelayLoopOptions::pipe_size bytes of page
// references) while its bytes are in flight; up to 256 empty pipes are kept
// for reuse. Plan RLIMIT_NOFILE at 2 descriptors per connection plus 2 per
// direction busy at once.
//
// Threads: Run() is the loop; it runs on the calling thread until Stop().
// Add, Stop and Wake may be called from any thread (they Post to the
// loop's Reactor); counters() may be read from any thread. Run blocks
// SIGPIPE on its own thread (a splice into a reset socket raises it) and
// consumes any it caused, so the process need not ignore SIGPIPE.
//
// Every descriptor the loop creates is close-on-exec; sockets handed to Add
// are made non-blocking and close-on-exec.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "base/status.h"
#include "net/reactor.h"
#include "os/unique_fd.h"

namespace dspool {

// Per-connection settings.
struct RelayOptions {
  // No byte relayed in either direction for this long closes both sockets
  // (FIN, not RST) and counts an idle timeout. Zero: never.
  std::chrono::milliseconds idle_timeout{0};
  // Handed to RelayLoopOptions::on_close when the connection ends.
  uint64_t tag = 0;
  // Nonzero: `backend` is still connecting (a non-blocking connect(2) that
  // answered EINPROGRESS). The loop moves no byte until it is connected.
  // If it fails, or is not connected within this long, the connection ends
  // without on_close: the loop calls on_connect_failed on its thread with
  // the client socket, from which nothing was read, and why (the reason
  // alone, as strerror says it, with the code of net/socket.h's
  // ConnectError; or "timed out", DeadlineExceeded), so the caller can try
  // another backend.
  // Without on_connect_failed the client socket is closed.
  std::chrono::milliseconds connect_timeout{0};
  std::function<void(UniqueFd client, Status why)> on_connect_failed;
};

// Per-loop settings.
struct RelayLoopOptions {
  // The clock of idle timeouts (its monotonic reading); nullptr: the real
  // one. Must outlive the loop. With a clock that does not follow real
  // time, call RelayLoop::Wake() after moving it so the loop looks again.
  const Clock* clock = nullptr;
  // Capacity asked of each pipe (F_SETPIPE_SZ). If the kernel refuses (an
  // unprivileged user over /proc/sys/fs/pipe-user-pages-soft), the pipe keeps
  // the size it got; relaying still works, in smaller steps.
  int pipe_size = 64 * 1024;
  // Called on the loop thread with the connection's RelayOptions::tag when
  // a connection is closed, whatever the reason (also by Stop). Must not
  // block. Default: nothing.
  std::function<void(uint64_t tag)> on_close;
};

// Monotonic unless noted; relaxed atomics, so a reader sees each value
// exactly but not necessarily all of them at the same instant.
struct RelayCounters {
  std::atomic<uint64_t> connections_active{0};  // added and not yet closed (a gauge)
  std::atomic<uint64_t> connections_total{0};   // accepted by Add
  std::atomic<uint64_t> bytes_client_to_backend{0};  // written into backend sockets
  std::atomic<uint64_t> bytes_backend_to_client{0};  // written into client sockets
  std::atomic<uint64_t> idle_timeouts{0};  // connections closed by idle_timeout
  std::atomic<uint64_t> errors{0};         // connections ended by a socket error
  std::atomic<uint64_t> pipes_created{0};  // pipes made (the rest were reused)
  // Backends added still connecting (RelayOptions::connect_timeout) whose
  // connect completed; and those whose connect failed or timed out.
  std::atomic<uint64_t> connects_completed{0};
  std::atomic<uint64_t> connects_failed{0};
  // Timer entries the loop holds (a gauge): one per open connection with an
  // idle timeout or still connecting, plus closed ones' not yet swept (at
  // most about 1024 more).
  std::atomic<uint64_t> timer_entries{0};
};

class RelayLoop {
 public:
  // Creates the loop's Reactor.
  // Errors: ResourceExhausted (descriptor limits), Internal.
  static Result<std::unique_ptr<RelayLoop>> Create(RelayLoopOptions options = {});

  // Closes every connection still held. REQUIRES: Run() is not running.
  ~RelayLoop();

  RelayLoop(const RelayLoop&) = delete;
  RelayLoop& operator=(const RelayLoop&) = delete;

  // Takes ownership of two connected stream sockets and relays between them
  // until both directions are done, either side fails, or the idle timeout
  // passes. The loop picks the connection up on its next turn (Add before
  // Run is fine). Sets O_NONBLOCK, FD_CLOEXEC and TCP_NODELAY (where it
  // applies) on both.
  // Errors (the sockets are closed): InvalidArgument if either is not a
  // stream socket; FailedPrecondition after Stop(). (A pipe that cannot be
  // made later, when bytes flow, ends that connection as an error.)
  // Thread-safe.
  Status Add(UniqueFd client, UniqueFd backend, RelayOptions options);
  // Add for sockets as net/socket.h makes them: TCP (the backend connected,
  // or connecting with RelayOptions::connect_timeout), already
  // non-blocking and close-on-exec, with TCP_NODELAY (TryAcceptTcp from a
  // ListenTcp listener, StartConnectTcp). Nothing is checked or set: Add's
  // checks cost eight system calls per connection, a quarter of what the
  // gateway made for a short one (docs/benchmarks.md).
  Status AddPrepared(UniqueFd client, UniqueFd backend, RelayOptions options);

  // Runs the loop on the calling thread until Stop(); then closes every
  // connection (FIN) and returns OK. Returns Internal if epoll itself fails
  // (connections are closed too); FailedPrecondition if called a second time.
  Status Run();

  // Makes Run() return (after closing all connections) and every later Add
  // fail. Thread-safe; idempotent; may be called before Run().
  void Stop();

  // Makes the loop re-read the clock and expire idle connections now.
  // Thread-safe. Only needed with an injected clock.
  void Wake();

  const RelayCounters& counters() const { return counters_; }

  // For a successor process (the gateway's upgrade): takes every
  // connection with no bytes on their way and both directions open (an
  // idle interactive session, most of them) out of the loop without
  // closing it, and returns its sockets; on_close is not called for them
  // (the caller ends its bookkeeping once it has read it). The rest go on
  // here. Blocks until the loop has done it; empty if the loop is stopped.
  struct Handed {
    UniqueFd client;
    UniqueFd backend;
    uint64_t tag = 0;
    std::chrono::milliseconds idle_timeout{0};
  };
  std::vector<Handed> HandOverIdle();

 private:
  struct Connection;
  struct Pending;
  struct Pipe {
    UniqueFd read;
    UniqueFd write;
    uint32_t capacity = 0;
  };
  enum class CloseReason { kDone, kError, kIdle, kStop };

  RelayLoop(RelayLoopOptions options, std::unique_ptr<Reactor> reactor);

  void AdoptPending();
  // Gives the connections on resume_ their next turn.
  void Resume();
  // Pumps both directions; then closes the connection, puts it on resume_,
  // or leaves it to wait for epoll.
  void Service(Connection& c);
  // Moves bytes of direction `d` (0: client->backend, 1: backend->client)
  // until neither end is ready, it finishes, it fails, or it uses up its
  // turn (then returns true: work is left).
  bool Pump(Connection& c, int d);
  void Close(uint64_t id, CloseReason reason);
  // A pipe from the spare list, or a new one; false if none can be made.
  bool AcquirePipe(Pipe* pipe);
  // Back to the spare list (or closed). REQUIRES: the pipe is empty.
  void ReleasePipe(Pipe* pipe);
  // The backend of a connection added connecting reported: connected, or
  // failed (ConnectFailed).
  void ConnectDone(Connection& c);
  // Ends a connection whose backend did not connect and hands its client
  // socket to on_connect_failed.
  void ConnectFailed(Connection& c, Status why);
  // When `c`'s timer entry is due: its connect deadline while connecting,
  // else its idle deadline; MonoTime::max() for none.
  MonoTime Deadline(const Connection& c) const;
  // Closes the idle connections and fails the connects that took too long;
  // returns when the next may be due.
  MonoTime ExpireIdle();
  // timers_ anew from the open connections.
  void RebuildTimers();
  void CloseAll();

  const RelayLoopOptions options_;
  const std::unique_ptr<Reactor> reactor_;
  RelayCounters counters_;

  std::mutex mu_;
  bool stopped_ = false;               // guarded by mu_
  std::vector<Pending> pending_;       // guarded by mu_
  std::atomic<bool> ran_{false};

  // Loop thread only.
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  // (deadline, connection id), earliest first. One entry per open
  // connection with an idle timeout; an entry is checked against the
  // connection's real deadline when it comes due, so activity costs no heap
  // operation. A closed connection's entry stays until it comes due
  // (stale_timers_ of them); when they outnumber the open connections (plus
  // some slack) the heap is rebuilt, so its size follows the connections
  // open, not those closed within the last idle timeout (30 minutes by
  // default: 16 bytes each, at any connection rate).
  using TimerEntry = std::pair<MonoTime, uint64_t>;
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> timers_;
  size_t stale_timers_ = 0;
  std::vector<Pipe> spare_pipes_;
  // The connections added connecting, until their backend connects or fails.
  struct Connecting {
    MonoTime deadline;
    std::function<void(UniqueFd client, Status why)> on_failed;
  };
  std::unordered_map<uint64_t, Connecting> connecting_;
  // Connections whose last turn ended with bytes still to move: epoll
  // (edge-triggered) will not report them again, so the loop serves them
  // after the next batch of events (Resume, deferred on the reactor).
  std::vector<uint64_t> resume_;
};

}  // namespace dspool
