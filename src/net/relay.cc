#include "net/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <climits>
#include <cstring>

#include "net/socket.h"
#include "os/process.h"

namespace dspool {
namespace {

// Fill-and-flush steps per direction per turn: a busy connection yields
// after moving about this many pipe_size bytes, so one fast stream cannot
// starve the others; it goes on the resume list and continues next turn.
constexpr int kMaxStepsPerTurn = 16;
// Edge-triggered: each socket is registered once, for both directions; the
// loop remembers what was reported and forgets it only on EAGAIN.
constexpr uint32_t kSocketEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
// Empty pipes kept for reuse; more are closed. Only directions with bytes on
// their way hold a pipe, so this is about the number of busy directions.
constexpr size_t kMaxSparePipes = 256;
// Entries of closed connections tolerated in the timer heap beyond the
// number of open connections, before it is rebuilt (see timers_).
constexpr size_t kStaleTimerSlack = 1024;

int SocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

Status PrepareSocket(const UniqueFd& fd, const char* which) {
  const std::string what = std::string("relay: ") + which;
  if (!fd.valid()) return InvalidArgument(what + " socket is not an open descriptor");
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    if (errno == ENOTSOCK) return InvalidArgument(what + " descriptor is not a socket");
    return ErrnoStatus(what + ": SO_TYPE", errno);
  }
  if (type != SOCK_STREAM) return InvalidArgument(what + " socket is not a stream socket");
  // Sockets from net/socket.h come non-blocking and close-on-exec: only the
  // checks then, no second set (this runs once per relayed connection).
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || (!(flags & O_NONBLOCK) && ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0)) {
    return ErrnoStatus(what + ": O_NONBLOCK", errno);
  }
  int fd_flags = ::fcntl(fd.get(), F_GETFD);
  if (fd_flags < 0 || (!(fd_flags & FD_CLOEXEC) && ::fcntl(fd.get(), F_SETFD, fd_flags | FD_CLOEXEC) != 0)) {
    return ErrnoStatus(what + ": FD_CLOEXEC", errno);
  }
  // Interactive sessions (SSH) must not wait for Nagle.
  SetNoDelay(fd);
  return Status::Ok();
}

// Sends RST instead of FIN when `fd` is closed.
void SetAbortiveClose(int fd) {
  linger l = {1, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

}  // namespace

struct RelayLoop::Pending {
  UniqueFd sockets[2];
  RelayOptions options;
};

// The IoHandler of both its sockets' registrations (slots[0], slots[1]).
struct RelayLoop::Connection final : IoHandler {
  explicit Connection(RelayLoop& loop) : relay(&loop) {}
  void OnIo(uint32_t events, uint32_t slot) override;

  // One direction: bytes from sockets[d] to sockets[1 - d] through a pipe
  // it holds only while bytes are on their way (see Pump).
  struct Direction {
    Pipe pipe;
    uint32_t in_pipe = 0;       // bytes spliced in and not yet out
    bool wait_for_room = false;  // the last fill found the pipe full (or the source empty): fill again once it drains
    bool eof = false;            // the source said EOF; the FIN follows once the pipe is empty
    bool done = false;           // EOF seen, pipe drained, FIN passed on
  };

  RelayLoop* relay;
  uint64_t id = 0;
  UniqueFd sockets[2];  // 0 client, 1 backend
  uint32_t slots[2] = {0, 0};  // their registrations in the reactor
  Direction dirs[2];    // 0 client->backend, 1 backend->client
  // What epoll reported for sockets[i] and no EAGAIN has denied since.
  bool readable[2] = {false, false};
  bool writable[2] = {false, false};
  // One byte for the four (the struct's size is promised in relay.h).
  bool failed : 1 = false;
  bool resuming : 1 = false;    // on resume_ (its last turn ended with work left)
  bool connecting : 1 = false;  // the backend's connect is in progress (RelayLoop::connecting_)
  bool timed : 1 = false;       // an entry of timers_ is for it
  // sockets[i] is registered without EPOLLIN: direction i waits for its
  // destination to take bytes, and new bytes at its source would only wake
  // the loop for nothing (see Service).
  bool input_paused[2] = {false, false};
  std::chrono::milliseconds idle_timeout{0};
  MonoTime last_activity;
  uint64_t tag = 0;
};

Result<std::unique_ptr<RelayLoop>> RelayLoop::Create(RelayLoopOptions options) {
  // The per-connection memory promised in relay.h (plus a hash-table node,
  // one timer entry and two registration slots).
  static_assert(sizeof(Connection) <= 112);
  if (options.pipe_size <= 0) return InvalidArgument("relay: pipe_size must be positive");
  DSP_ASSIGN_OR_RETURN(auto reactor, Reactor::Create(options.clock));
  return std::unique_ptr<RelayLoop>(new RelayLoop(std::move(options), std::move(reactor)));
}

RelayLoop::RelayLoop(RelayLoopOptions options, std::unique_ptr<Reactor> reactor)
    : options_(std::move(options)), reactor_(std::move(reactor)) {
  reactor_->SetTurnHook([this] { return ExpireIdle(); });
}

RelayLoop::~RelayLoop() { CloseAll(); }

Status RelayLoop::Add(UniqueFd client, UniqueFd backend, RelayOptions options) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return FailedPrecondition("relay: loop is stopped");
  }
  DSP_RETURN_IF_ERROR(PrepareSocket(client, "client"));
  DSP_RETURN_IF_ERROR(PrepareSocket(backend, "backend"));
  return AddPrepared(std::move(client), std::move(backend), options);
}

Status RelayLoop::AddPrepared(UniqueFd client, UniqueFd backend, RelayOptions options) {
  if (options.idle_timeout.count() < 0) return InvalidArgument("relay: negative idle_timeout");
  if (options.connect_timeout.count() < 0) return InvalidArgument("relay: negative connect_timeout");

  Pending p;
  p.sockets[0] = std::move(client);
  p.sockets[1] = std::move(backend);
  p.options = std::move(options);
  bool first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return FailedPrecondition("relay: loop is stopped");
    // The loop takes the whole list at once: only the first Add since it
    // last did needs to wake it.
    first = pending_.empty();
    pending_.push_back(std::move(p));
    counters_.connections_total.fetch_add(1, std::memory_order_relaxed);
    counters_.connections_active.fetch_add(1, std::memory_order_relaxed);
  }
  // A Post (the loop adopts the whole list at once) only for the first.
  if (first) reactor_->Post([this] { AdoptPending(); });
  return Status::Ok();
}

void RelayLoop::Wake() { reactor_->Wake(); }

std::vector<RelayLoop::Handed> RelayLoop::HandOverIdle() {
  std::promise<std::vector<Handed>> done;
  auto result = done.get_future();
  if (!reactor_->Post([&] {
        std::vector<Handed> out;
        std::vector<uint64_t> ids;
        for (const auto& [id, c] : connections_) {
          const bool quiet = !c->failed && !c->resuming && !c->connecting;
          bool idle = quiet;
          for (const Connection::Direction& d : c->dirs) idle = idle && d.in_pipe == 0 && !d.eof && !d.done;
          if (idle) ids.push_back(id);
        }
        for (uint64_t id : ids) {
          Connection& c = *connections_.at(id);
          // Out of this epoll set explicitly: the sockets stay open (in the
          // successor), so closing them here would not remove them.
          for (int side = 0; side < 2; ++side) reactor_->Remove(c.slots[side], c.sockets[side].get());
          out.push_back({std::move(c.sockets[0]), std::move(c.sockets[1]), c.tag, c.idle_timeout});
          counters_.connections_active.fetch_sub(1, std::memory_order_relaxed);
          if (c.timed) ++stale_timers_;
          for (Connection::Direction& dir : c.dirs) ReleasePipe(&dir.pipe);
          connections_.erase(id);
        }
        if (stale_timers_ > connections_.size() + kStaleTimerSlack) RebuildTimers();
        done.set_value(std::move(out));
      })) {
    return {};
  }
  return result.get();
}

void RelayLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  reactor_->Stop();
}

Status RelayLoop::Run() {
  if (ran_.exchange(true)) return FailedPrecondition("relay: Run called twice");
  ScopedSigpipeBlock sigpipe_block;
  Status result = reactor_->Run();
  CloseAll();
  return result;
}

void RelayLoop::AdoptPending() {
  std::vector<Pending> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending.swap(pending_);
  }
  const MonoTime now = reactor_->turn_time();
  for (Pending& p : pending) {
    auto c = std::make_unique<Connection>(*this);
    c->id = next_id_++;
    for (int i = 0; i < 2; ++i) c->sockets[i] = std::move(p.sockets[i]);
    c->idle_timeout = p.options.idle_timeout;
    c->tag = p.options.tag;
    c->last_activity = now;
    if (p.options.connect_timeout.count() > 0) {
      c->connecting = true;
      connecting_[c->id] = {now + p.options.connect_timeout, std::move(p.options.on_connect_failed)};
    }
    if (MonoTime due = Deadline(*c); due != MonoTime::max()) {
      timers_.emplace(due, c->id);
      c->timed = true;
      counters_.timer_entries.store(timers_.size(), std::memory_order_relaxed);
    }
    Connection& ref = *c;
    connections_.emplace(c->id, std::move(c));
    // Registering reports what is ready already (a connected socket is
    // writable; a client may have sent its first bytes).
    for (int side = 0; side < 2; ++side) {
      auto slot = reactor_->Add(ref.sockets[side].get(), kSocketEvents, &ref);
      if (!slot.ok()) {
        Close(ref.id, CloseReason::kError);  // ENOMEM, ENOSPC (max_user_watches)
        break;
      }
      ref.slots[side] = *slot;
    }
  }
}

void RelayLoop::Connection::OnIo(uint32_t events, uint32_t slot) {
  const int side = slot == slots[1] ? 1 : 0;
  // HUP and ERR are reported whatever was asked for: let both directions
  // that touch this socket find out what they mean (EOF, EPIPE, a reset).
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable[side] = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable[side] = true;
  if (connecting) {
    // The client waits (what it reported is remembered) until the backend
    // answers the connect: writable, or an error.
    if (writable[1]) relay->ConnectDone(*this);  // may free this connection
    return;
  }
  if ((events & EPOLLERR) && SocketError(sockets[side].get()) != 0) failed = true;
  relay->Service(*this);  // may close (and free) this connection: nothing after it
}

void RelayLoop::Resume() {
  std::vector<uint64_t> ids;
  ids.swap(resume_);
  for (uint64_t id : ids) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    it->second->resuming = false;
    Service(*it->second);
  }
}

void RelayLoop::Service(Connection& c) {
  bool more = false;
  for (int d = 0; d < 2 && !c.failed; ++d) more |= Pump(c, d);
  if (c.failed) return Close(c.id, CloseReason::kError);
  if (c.dirs[0].done && c.dirs[1].done) return Close(c.id, CloseReason::kDone);
  // A direction whose destination refused bytes (its pipe holds some) has
  // nothing to do until the destination's EPOLLOUT; edge-triggered epoll
  // would still wake the loop for every segment arriving at its source. So
  // its source socket leaves EPOLLIN out until then (HAProxy does the same):
  // in a one-stream transfer that halves the loop's wake-ups. Putting it
  // back reports the data that came meanwhile (epoll_ctl re-checks).
  for (int d = 0; d < 2; ++d) {
    const Connection::Direction& dir = c.dirs[d];
    bool pause = !dir.done && !dir.eof && dir.in_pipe > 0 && !c.writable[1 - d];
    if (pause == c.input_paused[d]) continue;
    uint32_t events = pause ? (kSocketEvents & ~EPOLLIN) : kSocketEvents;
    if (!reactor_->Modify(c.slots[d], c.sockets[d].get(), events).ok()) return Close(c.id, CloseReason::kError);
    c.input_paused[d] = pause;
  }
  if (more && !c.resuming) {
    c.resuming = true;
    if (resume_.empty()) reactor_->Defer([this] { Resume(); });
    resume_.push_back(c.id);
  }
}

bool RelayLoop::Pump(Connection& c, int d) {
  Connection::Direction& dir = c.dirs[d];
  if (dir.done) return false;
  const int src_side = d;
  const int dst_side = 1 - d;
  const int src = c.sockets[src_side].get();
  const int dst = c.sockets[dst_side].get();
  std::atomic<uint64_t>& bytes = d == 0 ? counters_.bytes_client_to_backend : counters_.bytes_backend_to_client;
  constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

  for (int step = 0; step < kMaxStepsPerTurn; ++step) {
    bool moved = false;
    // Fill: read the source while the pipe has room.
    if (!dir.eof && c.readable[src_side] && !dir.wait_for_room) {
      if (!dir.pipe.read.valid() && !AcquirePipe(&dir.pipe)) {
        c.failed = true;  // EMFILE, ENFILE
        return false;
      }
      ssize_t n = ::splice(src, nullptr, dir.pipe.write.get(), nullptr, dir.pipe.capacity - dir.in_pipe, kFlags);
      if (n > 0) {
        dir.in_pipe += static_cast<uint32_t>(n);
        dir.wait_for_room = dir.in_pipe >= dir.pipe.capacity;
        c.last_activity = reactor_->turn_time();
        moved = true;
      } else if (n == 0) {
        // EOF. A reset reads as an error (ECONNRESET), unless a FIN came
        // first: then the stream ended whole, and a reset after it is news
        // only while the connection lasts (EPOLLERR, or a failed write).
        dir.eof = true;
      } else if (errno == EAGAIN) {
        // EAGAIN means "the source is empty" or "the pipe is full": the
        // kernel counts a pipe's room in pages, not bytes. With an empty
        // pipe only the first can be; otherwise fill again once it drains.
        if (dir.in_pipe == 0) {
          c.readable[src_side] = false;
        } else {
          dir.wait_for_room = true;
        }
      } else if (errno == EINTR) {
        moved = true;  // try again
      } else {
        c.failed = true;
        return false;
      }
    }
    // Flush: write the pipe into the destination while it takes bytes.
    if (dir.in_pipe > 0 && c.writable[dst_side]) {
      ssize_t n = ::splice(dir.pipe.read.get(), nullptr, dst, nullptr, dir.in_pipe, kFlags);
      if (n > 0) {
        dir.in_pipe -= static_cast<uint32_t>(n);
        if (dir.in_pipe == 0) dir.wait_for_room = false;
        bytes.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
        c.last_activity = reactor_->turn_time();
        moved = true;
      } else if (n < 0 && errno == EAGAIN) {
        c.writable[dst_side] = false;  // wait for EPOLLOUT on dst
      } else if (n < 0 && errno == EINTR) {
        moved = true;  // try again
      } else {
        if (n < 0 && errno == EPIPE) ScopedSigpipeBlock::Drain();
        c.failed = true;  // EPIPE, ECONNRESET, ...
        return false;
      }
    }
    if (dir.in_pipe == 0) {
      // Nothing on its way: an idle direction holds no pipe.
      ReleasePipe(&dir.pipe);
      if (dir.eof) {
        // The last direction to end needs no shutdown: the close sends the
        // FIN (dst has no unread bytes; its own EOF was read).
        const bool last = c.dirs[1 - d].done;
        if (!last && ::shutdown(dst, SHUT_WR) != 0) {
          c.failed = true;
          return false;
        }
        dir.done = true;
        return false;
      }
    }
    if (!moved) return false;
  }
  return true;
}

bool RelayLoop::AcquirePipe(Pipe* pipe) {
  if (!spare_pipes_.empty()) {
    *pipe = std::move(spare_pipes_.back());
    spare_pipes_.pop_back();
    return true;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
  pipe->read.reset(fds[0]);
  pipe->write.reset(fds[1]);
  // Best effort, see RelayLoopOptions::pipe_size.
  (void)::fcntl(fds[1], F_SETPIPE_SZ, options_.pipe_size);
  int size = ::fcntl(fds[1], F_GETPIPE_SZ);
  pipe->capacity = size > 0 ? static_cast<uint32_t>(size) : 4096;
  counters_.pipes_created.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void RelayLoop::ReleasePipe(Pipe* pipe) {
  if (!pipe->read.valid()) return;
  if (spare_pipes_.size() < kMaxSparePipes) {
    spare_pipes_.push_back(std::move(*pipe));
  } else {
    *pipe = Pipe();
  }
}

void RelayLoop::Close(uint64_t id, CloseReason reason) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  switch (reason) {
    case CloseReason::kDone:
    case CloseReason::kStop:
      break;
    case CloseReason::kError:
      // The stream is broken: say so to both peers rather than end it cleanly.
      SetAbortiveClose(c.sockets[0].get());
      SetAbortiveClose(c.sockets[1].get());
      counters_.errors.fetch_add(1, std::memory_order_relaxed);
      break;
    case CloseReason::kIdle:
      counters_.idle_timeouts.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  // Counters first: a peer that sees the close finds them updated.
  counters_.connections_active.fetch_sub(1, std::memory_order_relaxed);
  uint64_t tag = c.tag;
  // Its timer entry stays behind, unless ExpireIdle just took it out.
  if (c.timed) ++stale_timers_;
  connecting_.erase(c.id);
  // Empty pipes serve the next connections; ones with bytes in them go.
  for (Connection::Direction& dir : c.dirs) {
    if (dir.in_pipe == 0) ReleasePipe(&dir.pipe);
  }
  // Closing the descriptors takes them out of the epoll set.
  for (uint32_t slot : c.slots) reactor_->Remove(slot, -1);
  connections_.erase(it);
  if (stale_timers_ > connections_.size() + kStaleTimerSlack) RebuildTimers();
  if (options_.on_close) options_.on_close(tag);
}

void RelayLoop::ConnectDone(Connection& c) {
  const int err = SocketError(c.sockets[1].get());
  if (err != 0) return ConnectFailed(c, Status(ConnectError("connect", err).code(), std::strerror(err)));
  c.connecting = false;
  connecting_.erase(c.id);
  c.last_activity = reactor_->turn_time();
  counters_.connects_completed.fetch_add(1, std::memory_order_relaxed);
  // Its timer entry (the connect deadline) becomes the idle one when due.
  Service(c);
}

void RelayLoop::ConnectFailed(Connection& c, Status why) {
  counters_.connects_failed.fetch_add(1, std::memory_order_relaxed);
  counters_.connections_active.fetch_sub(1, std::memory_order_relaxed);
  if (c.timed) ++stale_timers_;
  UniqueFd client = std::move(c.sockets[0]);
  // Out of the epoll set explicitly: the client socket stays open.
  reactor_->Remove(c.slots[0], client.get());
  reactor_->Remove(c.slots[1], -1);
  auto node = connecting_.extract(c.id);
  connections_.erase(c.id);  // closes the backend socket
  if (!node.empty() && node.mapped().on_failed) node.mapped().on_failed(std::move(client), std::move(why));
}

MonoTime RelayLoop::Deadline(const Connection& c) const {
  if (c.connecting) return connecting_.at(c.id).deadline;
  if (c.idle_timeout.count() > 0) return c.last_activity + c.idle_timeout;
  return MonoTime::max();
}

void RelayLoop::RebuildTimers() {
  std::vector<TimerEntry> entries;
  entries.reserve(connections_.size());
  for (const auto& [id, c] : connections_) {
    MonoTime due = Deadline(*c);
    c->timed = due != MonoTime::max();
    if (c->timed) entries.emplace_back(due, id);
  }
  timers_ = decltype(timers_)(std::greater<>(), std::move(entries));
  stale_timers_ = 0;
  counters_.timer_entries.store(timers_.size(), std::memory_order_relaxed);
}

MonoTime RelayLoop::ExpireIdle() {
  const MonoTime now = reactor_->turn_time();
  while (!timers_.empty() && timers_.top().first <= now) {
    uint64_t id = timers_.top().second;
    timers_.pop();
    auto it = connections_.find(id);
    if (it == connections_.end()) {
      --stale_timers_;
      continue;
    }
    Connection& c = *it->second;
    c.timed = false;  // its entry is out
    const MonoTime due = Deadline(c);
    if (due > now) {
      if (due != MonoTime::max()) {  // connected since (no idle timeout): no entry
        timers_.emplace(due, id);
        c.timed = true;
      }
    } else if (c.connecting) {
      ConnectFailed(c, DeadlineExceeded("timed out"));
    } else {
      Close(id, CloseReason::kIdle);
    }
  }
  counters_.timer_entries.store(timers_.size(), std::memory_order_relaxed);
  return timers_.empty() ? MonoTime::max() : timers_.top().first;
}

void RelayLoop::CloseAll() {
  std::vector<Pending> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    pending.swap(pending_);
  }
  counters_.connections_active.fetch_sub(pending.size() + connections_.size(), std::memory_order_relaxed);
  std::vector<uint64_t> tags;
  for (const Pending& p : pending) tags.push_back(p.options.tag);
  for (const auto& [id, c] : connections_) tags.push_back(c->tag);
  pending.clear();
  for (const auto& [id, c] : connections_) {
    for (uint32_t slot : c->slots) reactor_->Remove(slot, -1);
  }
  connections_.clear();
  connecting_.clear();
  resume_.clear();
  timers_ = {};
  stale_timers_ = 0;
  counters_.timer_entries.store(0, std::memory_order_relaxed);
  if (options_.on_close) {
    for (uint64_t tag : tags) options_.on_close(tag);
  }
}

}  // namespace dspool
