// EventLoop: a small reactor for the gateway's control of connections —
// listeners, connects in progress, held clients, health probes — on one
// thread. (The bytes of established connections move in RelayLoop, which
// needs no callbacks and keeps its own, tighter epoll loop.)
//
//   Watch(fd, events, handler)   handler(events) runs on the loop when fd is ready
//   RunAfter(delay, fn)          fn runs once, on the loop, after delay (timer id)
//   Post(fn)                     fn runs on the loop soon; from any thread
//
// Readiness is level-triggered: a handler that leaves data unread is called
// again. A handler may Unwatch (and close) its own descriptor, or any other,
// and may Watch new ones; an event already collected for a descriptor that
// was unwatched meanwhile is dropped, also when the number was reused.
//
// Time comes from the injected clock (default steady_clock). With a clock
// that does not follow real time, call Wake() after moving it.
//
// Threads: Run() on one thread. Post, Wake and Stop are thread-safe; every
// other method must be called on the loop thread (or before Run).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "base/status.h"
#include "os/unique_fd.h"

namespace dspool {

class EventLoop {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using TimerId = uint64_t;
  // Event bits (the values of EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLERR,
  // EPOLLHUP). kPeerClosed asks only to hear that the peer closed or reset,
  // without reading what it sent.
  static constexpr uint32_t kReadable = 0x001;
  static constexpr uint32_t kWritable = 0x004;
  static constexpr uint32_t kPeerClosed = 0x2000;
  static constexpr uint32_t kError = 0x008;   // always reported
  static constexpr uint32_t kHangup = 0x010;  // always reported

  static Result<std::unique_ptr<EventLoop>> Create(std::function<TimePoint()> now = {});
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Calls handler(events) on the loop whenever fd reports one of `events`
  // (or an error or hangup). The caller keeps owning fd, and must Unwatch it
  // before closing it. Errors: AlreadyExists if fd is watched; epoll_ctl's.
  Status Watch(int fd, uint32_t events, std::function<void(uint32_t)> handler);
  // Changes what fd is watched for. REQUIRES: fd is watched.
  Status Change(int fd, uint32_t events);
  // Stops watching fd; no-op if it is not watched.
  void Unwatch(int fd);

  TimerId RunAt(TimePoint when, std::function<void()> fn);
  TimerId RunAfter(std::chrono::nanoseconds delay, std::function<void()> fn) { return RunAt(now() + delay, std::move(fn)); }
  // No-op for a timer that ran or was cancelled.
  void Cancel(TimerId id);

  // Thread-safe. Returns false, dropping fn, once Stop was called; a task
  // it accepted always runs (Run runs what is left before it returns).
  bool Post(std::function<void()> fn);
  void Wake();
  void Stop();

  // Runs until Stop(), then runs the tasks posted before it. Returns
  // FailedPrecondition if called twice, or epoll_wait's error (which stops
  // the loop).
  Status Run();

  TimePoint now() const { return now_fn_(); }

 private:
  struct Watched {
    uint32_t generation;
    std::shared_ptr<std::function<void(uint32_t)>> handler;
  };

  EventLoop(std::function<TimePoint()> now, UniqueFd epoll_fd, UniqueFd wake_fd);
  void RunTasks();
  void RunDueTimers();
  int NextTimeoutMs() const;

  const std::function<TimePoint()> now_fn_;
  const UniqueFd epoll_fd_;
  const UniqueFd wake_fd_;

  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;  // guarded by mu_
  bool stopped_ = false;                      // guarded by mu_
  bool ran_ = false;

  // Loop thread only.
  uint32_t next_generation_ = 1;
  std::unordered_map<int, Watched> watched_;
  TimerId next_timer_ = 1;
  std::map<std::pair<TimePoint, TimerId>, std::function<void()>> timers_;
  std::unordered_map<TimerId, TimePoint> timer_due_;
};

}  // namespace dspool
