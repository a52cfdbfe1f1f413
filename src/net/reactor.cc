#include "net/reactor.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

namespace dspool {

static_assert(Reactor::kReadable == EPOLLIN && Reactor::kWritable == EPOLLOUT && Reactor::kError == EPOLLERR &&
              Reactor::kHangup == EPOLLHUP && Reactor::kPeerClosed == EPOLLRDHUP && Reactor::kEdge == EPOLLET);

namespace {

constexpr int kMaxEvents = 256;
// Slot 0 is the wake-up eventfd's.
constexpr uint64_t kWakeData = 0;

}  // namespace

Result<std::unique_ptr<Reactor>> Reactor::Create(const Clock* clock) {
  UniqueFd epoll_fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd.valid()) return ErrnoStatus("reactor: epoll_create1", errno);
  UniqueFd wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd.valid()) return ErrnoStatus("reactor: eventfd", errno);
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeData;
  if (::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, wake_fd.get(), &ev) != 0) {
    return ErrnoStatus("reactor: epoll_ctl(eventfd)", errno);
  }
  return std::unique_ptr<Reactor>(
      new Reactor(clock ? *clock : SystemClock(), std::move(epoll_fd), std::move(wake_fd)));
}

Reactor::Reactor(const Clock& clock, UniqueFd epoll_fd, UniqueFd wake_fd)
    : clock_(clock), epoll_fd_(std::move(epoll_fd)), wake_fd_(std::move(wake_fd)), now_(clock.Monotonic()) {
  slots_.push_back({});  // the eventfd's
  parked_.prev = parked_.next = &parked_;
  last_scan_ = now_;
}

Reactor::~Reactor() = default;

Result<uint32_t> Reactor::Add(int fd, uint32_t events, IoHandler* handler) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.push_back({});
  }
  epoll_event ev = {};
  ev.events = events;
  ev.data.u64 = (static_cast<uint64_t>(slots_[slot].generation) << 32) | slot;
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    free_slots_.push_back(slot);
    return ErrnoStatus("reactor: epoll_ctl add", err);
  }
  slots_[slot].handler = handler;
  return slot;
}

Status Reactor::Modify(uint32_t slot, int fd, uint32_t events) {
  epoll_event ev = {};
  ev.events = events;
  ev.data.u64 = (static_cast<uint64_t>(slots_[slot].generation) << 32) | slot;
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) return ErrnoStatus("reactor: epoll_ctl mod", errno);
  return Status::Ok();
}

void Reactor::Remove(uint32_t slot, int fd) {
  if (slot == 0 || slot >= slots_.size() || slots_[slot].handler == nullptr) return;
  if (fd >= 0) (void)::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  slots_[slot].handler = nullptr;
  if (++slots_[slot].generation == 0) slots_[slot].generation = 1;
  free_slots_.push_back(slot);
}

Status Reactor::Watch(int fd, uint32_t events, std::function<void(uint32_t)> fn) {
  if (watched_.count(fd)) return AlreadyExists("reactor: descriptor " + std::to_string(fd) + " is already watched");
  auto w = std::make_unique<Watcher>();
  w->fn = std::make_shared<std::function<void(uint32_t)>>(std::move(fn));
  DSP_ASSIGN_OR_RETURN(w->slot, Add(fd, events, w.get()));
  watched_.emplace(fd, std::move(w));
  return Status::Ok();
}

Status Reactor::Change(int fd, uint32_t events) {
  auto it = watched_.find(fd);
  if (it == watched_.end()) return NotFound("reactor: descriptor " + std::to_string(fd) + " is not watched");
  return Modify(it->second->slot, fd, events);
}

void Reactor::Unwatch(int fd) {
  auto it = watched_.find(fd);
  if (it == watched_.end()) return;
  Remove(it->second->slot, fd);
  retired_.push_back(std::move(it->second));
  watched_.erase(it);
}

Reactor::TimerId Reactor::RunAt(MonoTime when, std::function<void()> fn) {
  TimerId id = next_timer_++;
  timers_.emplace(std::make_pair(when, id), std::move(fn));
  timer_due_[id] = when;
  return id;
}

void Reactor::Cancel(TimerId id) {
  auto it = timer_due_.find(id);
  if (it == timer_due_.end()) return;
  timers_.erase({it->second, id});
  timer_due_.erase(it);
}

void Reactor::Wait(Waiter* w) {
  if (stopping_) {
    if (w->on_expire) w->on_expire(w);
    w->result = kStopped;
    ready_.push_back(w->handle);
    return;
  }
  earliest_ = std::min(earliest_, w->deadline);
  w->next = &parked_;
  w->prev = parked_.prev;
  parked_.prev->next = w;
  parked_.prev = w;
}

void Reactor::Unpark(Waiter* w) {
  w->prev->next = w->next;
  w->next->prev = w->prev;
  w->prev = w->next = nullptr;
}

void Reactor::Release(Waiter* w, int result) {
  Unpark(w);
  w->result = result;
  ready_.push_back(w->handle);
}

void Reactor::ExpireWaits(bool all) {
  earliest_ = MonoTime::max();
  for (Waiter* w = parked_.next; w != &parked_;) {
    Waiter* next = w->next;
    if (all || w->deadline <= now_) {
      if (w->on_expire) w->on_expire(w);
      Release(w, all ? kStopped : kTimedOut);
    } else {
      earliest_ = std::min(earliest_, w->deadline);
    }
    w = next;
  }
  last_scan_ = now_;
}

bool Reactor::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return false;
    posted_.push_back(std::move(fn));
  }
  Wake();
  return true;
}

void Reactor::Wake() {
  uint64_t one = 1;
  // Fails only when the counter is full, i.e. a wake-up is pending anyway.
  (void)!::write(wake_fd_.get(), &one, sizeof(one));
}

void Reactor::Stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  Wake();
}

bool Reactor::RunPosted() {
  std::vector<std::function<void()>> todo;
  bool stopped;
  {
    std::lock_guard lock(mu_);
    todo.swap(posted_);
    stopped = stopped_;
  }
  for (auto& fn : todo) fn();
  return stopped;
}

void Reactor::RunReady() {
  while (!ready_.empty()) {
    std::vector<std::coroutine_handle<>> batch;
    batch.swap(ready_);
    for (auto h : batch) h.resume();
  }
}

void Reactor::RunDeferred() {
  std::vector<std::function<void()>> batch;
  batch.swap(deferred_);
  for (auto& fn : batch) fn();
}

void Reactor::RunDueTimers() {
  while (!timers_.empty() && timers_.begin()->first.first <= now_) {
    auto node = timers_.extract(timers_.begin());
    timer_due_.erase(node.key().second);
    node.mapped()();
  }
}

int Reactor::NextTimeoutMs() const {
  if (!ready_.empty() || !deferred_.empty()) return 0;
  MonoTime next = MonoTime::max();
  if (!timers_.empty()) next = timers_.begin()->first.first;
  if (parked_.next != &parked_) next = std::min(next, std::max(earliest_, last_scan_ + kWaitTick));
  next = std::min(next, hook_due_);
  if (next == MonoTime::max()) return -1;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now_).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, INT_MAX));
}

Status Reactor::Run() {
  {
    std::lock_guard lock(mu_);
    if (ran_) return FailedPrecondition("reactor: Run called twice");
    ran_ = true;
  }
  epoll_event events[kMaxEvents];
  Status result;
  for (;;) {
    now_ = clock_.Monotonic();
    if (RunPosted() && !stopping_) {
      stopping_ = true;
      ExpireWaits(/*all=*/true);
    }
    RunReady();
    if (stopping_) {
      // Run what is left (coroutines ending, tasks they post) and return.
      RunDeferred();
      std::lock_guard lock(mu_);
      if (ready_.empty() && deferred_.empty() && posted_.empty()) break;
      continue;
    }
    int n = ::epoll_wait(epoll_fd_.get(), events, kMaxEvents, NextTimeoutMs());
    if (n < 0 && errno != EINTR) {
      result = ErrnoStatus("reactor: epoll_wait", errno);
      Stop();
      continue;
    }
    now_ = clock_.Monotonic();
    for (int i = 0; i < n; ++i) {
      const uint64_t data = events[i].data.u64;
      if (data == kWakeData) {
        uint64_t count;
        (void)!::read(wake_fd_.get(), &count, sizeof(count));
        continue;
      }
      const auto slot = static_cast<uint32_t>(data);
      if (slot >= slots_.size() || slots_[slot].generation != static_cast<uint32_t>(data >> 32)) continue;
      if (IoHandler* h = slots_[slot].handler) h->OnIo(events[i].events, slot);
    }
    RunReady();
    RunDeferred();
    RunDueTimers();
    if (parked_.next != &parked_ && now_ >= std::max(earliest_, last_scan_ + kWaitTick)) ExpireWaits(false);
    if (turn_hook_) hook_due_ = turn_hook_();
    retired_.clear();
  }
  return result;
}

}  // namespace dspool
