// Reactor: the one event loop of dspool's data paths. The splice relay
// (relay.h), the gateway's control of connections (listeners, connects,
// holds, probes) and the web proxy (http/proxy.h) each run on Reactors:
// one thread, one epoll set, one clock.
//
//   Add(fd, events, handler)    handler->OnIo(events) on the loop when fd is
//                               ready; edge- or level-triggered as `events`
//                               says (kEdge)
//   Watch(fd, events, fn)       the same with a callback, keyed by fd (for
//                               the few descriptors of a control loop)
//   RunAt(when, fn) / Cancel    precise timers on the monotonic clock
//   Schedule(coroutine)         resumed in this turn, after the events
//   Wait(waiter)                a coroutine parked until Release(waiter) or
//                               its deadline (coarse: checked at most every
//                               kWaitTick), for socket waits (task.h)
//   Defer(fn)                   fn runs after the next batch of events (work
//                               that yielded its turn)
//   SetTurnHook(fn)             fn runs at the end of every turn and says
//                               when it next must (the relay's idle sweep)
//   Post(fn) / Wake / Stop      from any thread
//
// One turn of Run():
//
//   posted tasks ─► ready coroutines ─► epoll_wait ─► handlers of the events
//        ▲          (then deferred work)   (no wait     (stale ones dropped:
//        │                                  while work   a slot freed meanwhile)
//        │                                  is ready)         │
//        └─── due timers, expired waits (resumed as timed out) ◄┘
//
// Registration slots: each registered descriptor takes a slot, and epoll's
// data carries (generation << 32 | slot); Remove bumps the generation, so an
// event already collected for a descriptor removed meanwhile is dropped,
// also when the slot or the descriptor number is reused in the same turn.
//
// Time: the injected Clock's monotonic reading (default: the real clock):
// now() reads it, turn_time() is the reading at the start of this turn's
// work (for hot paths that set many deadlines). With a simulated clock,
// Wake() the loop after moving it.
//
// Threads: Run() on one thread. Post, Wake and Stop are thread-safe; every
// other method must be called on the loop thread (or before Run, or after
// it returned).
#pragma once

#include <coroutine>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "base/status.h"
#include "os/unique_fd.h"

namespace dspool {

// Told of a registered descriptor's events (epoll's bits) on the loop, and
// which registration (slot) they are for: one handler may hold several.
class IoHandler {
 public:
  virtual void OnIo(uint32_t events, uint32_t slot) = 0;

 protected:
  ~IoHandler() = default;
};

class Reactor {
 public:
  // Event bits: epoll's values. kEdge registers edge-triggered (reported
  // once per change: read until EAGAIN); without it, level-triggered.
  static constexpr uint32_t kReadable = 0x001;
  static constexpr uint32_t kWritable = 0x004;
  static constexpr uint32_t kError = 0x008;       // always reported
  static constexpr uint32_t kHangup = 0x010;      // always reported
  static constexpr uint32_t kPeerClosed = 0x2000;  // the peer shut down or reset
  static constexpr uint32_t kEdge = 1u << 31;
  // How often parked waits are checked for their deadlines, at most.
  static constexpr Duration kWaitTick = std::chrono::milliseconds(20);

  using TimerId = uint64_t;

  // A coroutine parked by Wait: in the reactor's list until Release or its
  // deadline. The owner (an awaitable in a coroutine frame) keeps it alive
  // while it is parked.
  struct Waiter {
    MonoTime deadline;
    std::coroutine_handle<> handle;
    // Set before the handle resumes: 0 released, kTimedOut, kStopped.
    int result = 0;
    // Called when the reactor releases the wait itself (deadline, Stop),
    // before it schedules the handle: the owner unlinks it from its own
    // lists. Optional.
    void (*on_expire)(Waiter*) = nullptr;
    Waiter* prev = nullptr;
    Waiter* next = nullptr;
  };
  static constexpr int kTimedOut = -2;
  static constexpr int kStopped = -1;

  // The epoll set and the wake-up eventfd. `clock` (its Monotonic()) must
  // outlive the reactor; nullptr: the real clock.
  static Result<std::unique_ptr<Reactor>> Create(const Clock* clock = nullptr);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Registers fd (the caller keeps owning it, and must Remove it before
  // closing it) for `events` (kEdge for edge-triggered). Returns the slot
  // that names the registration. Errors: epoll_ctl's.
  Result<uint32_t> Add(int fd, uint32_t events, IoHandler* handler);
  Status Modify(uint32_t slot, int fd, uint32_t events);
  // No-op for slot 0. Events already collected for it are dropped. fd -1:
  // the caller is about to close the descriptor (its last reference), which
  // takes it out of the epoll set without a system call.
  void Remove(uint32_t slot, int fd);

  // Calls fn(events) on the loop whenever fd reports one of `events` (kEdge
  // for edge-triggered). The caller keeps owning fd, and must Unwatch it
  // before closing it; fn may Unwatch its own fd, or any other, and Watch
  // new ones. Errors: AlreadyExists if fd is watched; epoll_ctl's.
  Status Watch(int fd, uint32_t events, std::function<void(uint32_t)> fn);
  // Changes what fd is watched for. NotFound if it is not watched.
  Status Change(int fd, uint32_t events);
  // No-op if fd is not watched.
  void Unwatch(int fd);

  TimerId RunAt(MonoTime when, std::function<void()> fn);
  TimerId RunAfter(Duration delay, std::function<void()> fn) { return RunAt(now() + delay, std::move(fn)); }
  // No-op for a timer that ran or was cancelled.
  void Cancel(TimerId id);

  // Resumes `handle` in this turn (before the next epoll_wait).
  void Schedule(std::coroutine_handle<> handle) { ready_.push_back(handle); }
  // Parks `w` (its deadline and handle set) until Release(w) or the deadline.
  void Wait(Waiter* w);
  // Unparks `w` with `result` and schedules its coroutine.
  void Release(Waiter* w, int result);
  // Unparks `w` only: the caller resumes it (at once, say, from OnIo).
  static void Unpark(Waiter* w);
  // Runs fn after the next batch of events; the loop does not sleep while
  // any is pending.
  void Defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }
  // fn runs at the end of every turn (after the events, deferred work and
  // timers) and returns when it next needs to, at the latest: the loop
  // wakes for it then (MonoTime::max(): only for other reasons). One hook
  // per reactor; set before Run.
  void SetTurnHook(std::function<MonoTime()> fn) { turn_hook_ = std::move(fn); }

  // Thread-safe. Returns false, dropping fn, once Stop was called; a task
  // it accepted always runs.
  bool Post(std::function<void()> fn);
  void Wake();
  // Run returns after its current turn: parked waits are released with
  // kStopped (so their coroutines can end), then posted tasks and ready
  // coroutines run until none is left. Thread-safe; idempotent.
  void Stop();
  bool stopping() const { return stopping_; }

  // Runs until Stop(). FailedPrecondition if called twice; epoll_wait's
  // error (which stops the loop).
  Status Run();

  // The clock's monotonic reading.
  MonoTime now() const { return clock_.Monotonic(); }
  // now() as read when this turn's work began (after epoll_wait returned):
  // at most a turn old.
  MonoTime turn_time() const { return now_; }

 private:
  struct Slot {
    IoHandler* handler = nullptr;
    uint32_t generation = 1;
  };
  // A Watch: the callback behind an IoHandler. Shared, so that a callback
  // that unwatches its own descriptor outlives its own call.
  struct Watcher final : IoHandler {
    uint32_t slot = 0;
    std::shared_ptr<std::function<void(uint32_t)>> fn;
    void OnIo(uint32_t events, uint32_t) override {
      auto keep = fn;
      (*keep)(events);
    }
  };

  Reactor(const Clock& clock, UniqueFd epoll_fd, UniqueFd wake_fd);
  bool RunPosted();
  void RunReady();
  void RunDeferred();
  void RunDueTimers();
  void ExpireWaits(bool all);
  int NextTimeoutMs() const;

  const Clock& clock_;
  const UniqueFd epoll_fd_;
  const UniqueFd wake_fd_;

  std::mutex mu_;
  std::vector<std::function<void()>> posted_;  // guarded by mu_
  bool stopped_ = false;                       // guarded by mu_
  bool ran_ = false;                           // guarded by mu_

  // Loop thread only.
  bool stopping_ = false;
  MonoTime now_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<std::coroutine_handle<>> ready_;
  std::vector<std::function<void()>> deferred_;
  std::function<MonoTime()> turn_hook_;
  MonoTime hook_due_ = MonoTime::max();
  std::unordered_map<int, std::unique_ptr<Watcher>> watched_;
  // Watchers unwatched during this turn: freed at its end (an event already
  // collected may still point at them).
  std::vector<std::unique_ptr<Watcher>> retired_;
  TimerId next_timer_ = 1;
  std::map<std::pair<MonoTime, TimerId>, std::function<void()>> timers_;
  std::unordered_map<TimerId, MonoTime> timer_due_;
  // Parked waits, a ring with a sentinel. `earliest_` is no later than the
  // earliest deadline among them (Wait lowers it, a scan recomputes it), so
  // a wait released early costs at most one scan that finds nothing.
  Waiter parked_;
  MonoTime earliest_ = MonoTime::max();
  MonoTime last_scan_;
};

}  // namespace dspool
