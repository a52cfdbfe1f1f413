#include "net/event_loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

namespace dspool {

static_assert(EventLoop::kReadable == EPOLLIN && EventLoop::kWritable == EPOLLOUT &&
              EventLoop::kPeerClosed == EPOLLRDHUP && EventLoop::kError == EPOLLERR &&
              EventLoop::kHangup == EPOLLHUP);

namespace {
constexpr int kMaxEvents = 128;
// epoll data of the wake-up eventfd; watched descriptors carry
// (generation << 32 | fd) with a generation of at least 1.
constexpr uint64_t kWakeData = 0;
}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::Create(std::function<TimePoint()> now) {
  if (!now) now = [] { return std::chrono::steady_clock::now(); };
  UniqueFd epoll_fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd.valid()) return ErrnoStatus("event loop: epoll_create1", errno);
  UniqueFd wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd.valid()) return ErrnoStatus("event loop: eventfd", errno);
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeData;
  if (::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, wake_fd.get(), &ev) != 0) {
    return ErrnoStatus("event loop: epoll_ctl(eventfd)", errno);
  }
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(now), std::move(epoll_fd), std::move(wake_fd)));
}

EventLoop::EventLoop(std::function<TimePoint()> now, UniqueFd epoll_fd, UniqueFd wake_fd)
    : now_fn_(std::move(now)), epoll_fd_(std::move(epoll_fd)), wake_fd_(std::move(wake_fd)) {}

EventLoop::~EventLoop() = default;

Status EventLoop::Watch(int fd, uint32_t events, std::function<void(uint32_t)> handler) {
  if (watched_.count(fd)) return AlreadyExists("event loop: descriptor " + std::to_string(fd) + " is already watched");
  uint32_t generation = next_generation_++;
  if (next_generation_ == 0) next_generation_ = 1;
  epoll_event ev = {};
  ev.events = events;
  ev.data.u64 = (static_cast<uint64_t>(generation) << 32) | static_cast<uint32_t>(fd);
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return ErrnoStatus("event loop: epoll_ctl add", errno);
  watched_[fd] = Watched{generation, std::make_shared<std::function<void(uint32_t)>>(std::move(handler))};
  return Status::Ok();
}

Status EventLoop::Change(int fd, uint32_t events) {
  auto it = watched_.find(fd);
  if (it == watched_.end()) return NotFound("event loop: descriptor " + std::to_string(fd) + " is not watched");
  epoll_event ev = {};
  ev.events = events;
  ev.data.u64 = (static_cast<uint64_t>(it->second.generation) << 32) | static_cast<uint32_t>(fd);
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) return ErrnoStatus("event loop: epoll_ctl mod", errno);
  return Status::Ok();
}

void EventLoop::Unwatch(int fd) {
  if (watched_.erase(fd) == 0) return;
  (void)::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::RunAt(TimePoint when, std::function<void()> fn) {
  TimerId id = next_timer_++;
  timers_.emplace(std::make_pair(when, id), std::move(fn));
  timer_due_[id] = when;
  return id;
}

void EventLoop::Cancel(TimerId id) {
  auto it = timer_due_.find(id);
  if (it == timer_due_.end()) return;
  timers_.erase({it->second, id});
  timer_due_.erase(it);
}

bool EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return false;
    tasks_.push_back(std::move(fn));
  }
  Wake();
  return true;
}

void EventLoop::Wake() {
  uint64_t one = 1;
  // Fails only when the counter is full, i.e. a wake-up is pending anyway.
  (void)!::write(wake_fd_.get(), &one, sizeof(one));
}

void EventLoop::Stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  Wake();
}

Status EventLoop::Run() {
  {
    std::lock_guard lock(mu_);
    if (ran_) return FailedPrecondition("event loop: Run called twice");
    ran_ = true;
  }
  epoll_event events[kMaxEvents];
  Status result;
  for (;;) {
    RunTasks();
    RunDueTimers();
    {
      std::lock_guard lock(mu_);
      if (stopped_) break;
      if (!tasks_.empty()) continue;
    }
    int n = ::epoll_wait(epoll_fd_.get(), events, kMaxEvents, NextTimeoutMs());
    if (n < 0) {
      if (errno == EINTR) continue;
      result = ErrnoStatus("event loop: epoll_wait", errno);
      Stop();
      break;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t data = events[i].data.u64;
      if (data == kWakeData) {
        uint64_t count;
        (void)!::read(wake_fd_.get(), &count, sizeof(count));
        continue;
      }
      int fd = static_cast<int>(data & 0xffffffffu);
      auto it = watched_.find(fd);
      if (it == watched_.end() || it->second.generation != (data >> 32)) continue;  // unwatched meanwhile
      // The handler may Unwatch itself: keep it alive for the call.
      std::shared_ptr<std::function<void(uint32_t)>> handler = it->second.handler;
      (*handler)(events[i].events);
    }
  }
  RunTasks();  // accepted before Stop: they run (no more can come)
  return result;
}

void EventLoop::RunTasks() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
}

void EventLoop::RunDueTimers() {
  const TimePoint now = now_fn_();
  // One at a time, so a callback can still cancel a later one that is also
  // due; and only timers that existed before this turn, so one a callback
  // adds for "now" runs next turn and cannot starve the descriptors.
  const TimerId last = next_timer_ - 1;
  for (auto it = timers_.begin(); it != timers_.end() && it->first.first <= now;) {
    if (it->first.second > last) {
      ++it;
      continue;
    }
    auto node = timers_.extract(it);
    timer_due_.erase(node.key().second);
    node.mapped()();
    it = timers_.begin();
  }
}

int EventLoop::NextTimeoutMs() const {
  if (timers_.empty()) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(timers_.begin()->first.first - now_fn_());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, INT_MAX));
}

}  // namespace dspool
