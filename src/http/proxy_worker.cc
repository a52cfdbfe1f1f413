#include "http/proxy_worker.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <future>

#include "base/log.h"
#include "base/thread_name.h"
#include "http/proxy_connection.h"
#include "model/ipv4.h"
#include "net/socket.h"
#include "os/process.h"

namespace dspool {

namespace {

constexpr std::string_view kLog = "proxy";
// Buffers (32 KiB) and heads (6 KiB) kept for reuse per worker, enough for
// as many requests in flight at once; more are freed.
constexpr size_t kSpareBuffers = 64;
constexpr size_t kSpareHeads = 64;
// Connections accepted per readable listener per turn, so that the loop
// gets back to the connections it serves.
constexpr int kAcceptsPerTurn = 64;

}  // namespace

// ---- IoBuffer ----------------------------------------------------------------

void IoBuffer::Drop() {
  if (data_) worker_.GiveBuffer(data_);
  data_ = nullptr;
  begin_ = end_ = 0;
}

Task<long> IoBuffer::ReadFrom(Stream& s, MonoTime deadline) {
  if (size() == 0 && !s.HasInput()) {
    Drop();
    long r = co_await s.WaitReadable(deadline);
    if (r != 0) co_return r;
  }
  if (!data_) data_ = worker_.TakeBuffer();
  if (begin_ > 0 && end_ == kSize) {
    std::memmove(data_, data_ + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == kSize) co_return Stream::kFailed;
  long n = co_await s.ReadSome(data_ + end_, kSize - end_, deadline);
  if (n > 0) end_ += static_cast<size_t>(n);
  co_return n;
}

// ---- the thread ----------------------------------------------------------------

Result<std::unique_ptr<ProxyWorker>> ProxyWorker::Create(ProxyShared& shared, size_t index) {
  DSP_ASSIGN_OR_RETURN(auto reactor, Reactor::Create(shared.options.clock));
  return std::unique_ptr<ProxyWorker>(new ProxyWorker(shared, index, std::move(reactor)));
}

ProxyWorker::ProxyWorker(ProxyShared& shared, size_t index, std::unique_ptr<Reactor> reactor)
    : shared_(shared), index_(index), reactor_(std::move(reactor)) {}

ProxyWorker::~ProxyWorker() {
  // Never started: nothing ran, but listeners may be registered and
  // connections handed off.
  BeginStopping();
  shared_.counters.active -= pending_.size();
  pending_.clear();
  for (char* b : spare_buffers_) delete[] b;
}

void ProxyWorker::Start(std::vector<ProxyWorker*> peers) {
  std::lock_guard lock(mu_);
  if (state_ != LoopState::kNotStarted) return;
  peers_ = std::move(peers);
  state_ = LoopState::kRunning;
  thread_ = std::thread([this] { Loop(); });
  loop_thread_ = thread_.get_id();
}

void ProxyWorker::Stop() {
  // Posted before the reactor stops, so it runs first: a task the reactor
  // accepted always runs. False when stopped already.
  (void)reactor_->Post([this] { BeginStopping(); });
  reactor_->Stop();
}

void ProxyWorker::Join() {
  std::thread t;
  {
    std::lock_guard lock(mu_);
    t = std::move(thread_);
  }
  if (t.joinable()) t.join();
}

void ProxyWorker::Loop() {
  SetThreadName("web-proxy-" + std::to_string(index_));
  ScopedSigpipeBlock sigpipe_block;  // OpenSSL writes with write(2)
  Status s = reactor_->Run();
  if (!s.ok()) DSP_LOG(kError, kLog) << "worker " << index_ << " stopped: " << s;
  // Run returns once every connection's coroutine ended; a failed Run
  // skipped the posted BeginStopping.
  BeginStopping();
  if (live_ != 0) DSP_LOG(kError, kLog) << "worker " << index_ << " ended with " << live_ << " connections";
  std::lock_guard lock(mu_);
  state_ = LoopState::kEnded;
  shared_.counters.active -= pending_.size();
  pending_.clear();
}

void ProxyWorker::RunOnLoop(std::function<void()> fn) {
  {
    std::unique_lock lock(mu_);
    if (state_ != LoopState::kRunning) {
      // Nothing else drives the reactor; the lock keeps Start away.
      fn();
      return;
    }
    if (std::this_thread::get_id() == loop_thread_) {
      lock.unlock();
      fn();
      return;
    }
  }
  std::promise<void> done;
  auto future = done.get_future();
  if (!reactor_->Post([&] {
        fn();
        done.set_value();
      })) {
    return;
  }
  future.wait();
}

void ProxyWorker::Holding::await_suspend(std::coroutine_handle<> h) {
  w.node.handle = h;
  w.node.on_expire = &ProxyWorker::Unhold;
  worker.held_.push_back(&w);
  worker.reactor_->Wait(&w.node);
}

void ProxyWorker::Unhold(Reactor::Waiter* node) {
  auto* w = reinterpret_cast<HoldWaiter*>(node);
  std::vector<HoldWaiter*>& held = w->worker->held_;
  held.erase(std::find(held.begin(), held.end(), w));
}
static_assert(offsetof(ProxyWorker::HoldWaiter, node) == 0, "Unhold finds the HoldWaiter from its node");

void ProxyWorker::ReleaseHolds() {
  (void)reactor_->Post([this] {
    std::vector<HoldWaiter*> held;
    held.swap(held_);
    for (HoldWaiter* w : held) reactor_->Release(&w->node, 0);
  });
}

void ProxyWorker::BeginStopping() {
  stopping_ = true;
  for (auto& l : listeners_) reactor_->Remove(l->slot, l->fd.get());
  for (auto& l : listeners_) l->fd.reset();
  listeners_.clear();
  idle_.clear();
}

// ---- listeners and hand-offs ------------------------------------------------------

Status ProxyWorker::AddListener(std::shared_ptr<ProxyListener> listener) {
  if (stopping_) return FailedPrecondition("the proxy is stopping");
  auto slot = reactor_->Add(listener->fd.get(), Reactor::kReadable, this);
  if (!slot.ok()) return slot.status();
  listener->slot = *slot;
  listeners_.push_back(std::move(listener));
  return Status::Ok();
}

void ProxyWorker::RemoveListener(uint16_t port) {
  auto it = std::find_if(listeners_.begin(), listeners_.end(), [&](const auto& l) { return l->port == port; });
  if (it == listeners_.end()) return;
  reactor_->Remove((*it)->slot, (*it)->fd.get());
  (*it)->fd.reset();
  listeners_.erase(it);
}

void ProxyWorker::OnIo(uint32_t, uint32_t slot) {
  for (const auto& l : listeners_) {
    if (l->slot == slot) {
      Accept(std::shared_ptr<ProxyListener>(l));  // a copy: serving may change the list
      return;
    }
  }
}

void ProxyWorker::Accept(const std::shared_ptr<ProxyListener>& listener) {
  ProxyCounters& counters = shared_.counters;
  for (int i = 0; i < kAcceptsPerTurn && listener->fd.valid(); ++i) {
    TcpEndpoint from;
    auto accepted = TryAcceptTcp(listener->fd, &from);
    if (!accepted.ok()) {
      // EMFILE and friends: the listener stays readable, the next turn
      // tries again.
      DSP_LOG(kWarning, kLog) << "accept on port " << listener->port << ": " << accepted.status();
      return;
    }
    if (!accepted->has_value()) return;
    if (counters.active >= shared_.options.max_connections) continue;  // closes it
    if (!shared_.router.Admit(from.ip, from.port, listener->port)) {
      ++counters.refused;
      CloseWithReset(std::move(**accepted));
      continue;
    }
    ++counters.accepted;
    ++counters.active;
    AcceptedClient client{std::move(**accepted), Peer{}, listener};
    client.peer.address = FormatIpv4(from.ip);
    client.peer.port = from.port;
    ProxyWorker* target = peers_.empty() ? this : peers_[next_peer_++ % peers_.size()];
    if (target == this) {
      Spawn(std::move(client));
    } else {
      target->HandOff(std::move(client));
    }
  }
}

void ProxyWorker::HandOff(AcceptedClient client) {
  bool first;
  {
    std::lock_guard lock(mu_);
    if (state_ == LoopState::kEnded) {
      --shared_.counters.active;
      return;
    }
    // The loop adopts the whole list at once: only the first hand-off since
    // it last did needs a Post (a failed one leaves the list to Loop's end).
    first = pending_.empty();
    pending_.push_back(std::move(client));
  }
  if (first) (void)reactor_->Post([this] { Adopt(); });
}

void ProxyWorker::Adopt() {
  std::vector<AcceptedClient> adopted;
  {
    std::lock_guard lock(mu_);
    adopted.swap(pending_);
  }
  for (AcceptedClient& c : adopted) Spawn(std::move(c));
}

void ProxyWorker::Spawn(AcceptedClient client) {
  if (stopping_) {
    --shared_.counters.active;
    return;  // closes it
  }
  ++live_;
  peak_live_ = std::max(peak_live_, live_);
  ClientConnection::Serve(*this, std::move(client));
}

void ProxyWorker::UpstreamFailed(uint32_t address, uint16_t port, std::string_view why) {
  ++shared_.counters.upstream_errors;
  const MonoTime now = reactor_->turn_time();
  if (upstream_failure_logged_ != MonoTime{} && now - upstream_failure_logged_ < std::chrono::seconds(1)) {
    ++upstream_failures_unlogged_;
    return;
  }
  DSP_LOG(kWarning, kLog) << "upstream " << FormatIpv4(address) << ":" << port << ": " << why
                          << (upstream_failures_unlogged_ > 0
                                  ? " (and " + std::to_string(upstream_failures_unlogged_) +
                                        " more upstream failures since the last report)"
                                  : "");
  upstream_failure_logged_ = now;
  upstream_failures_unlogged_ = 0;
}

void ProxyWorker::ConnectionEnded() {
  --live_;
  --shared_.counters.active;
  // Many connections gone (half of the most held since the last time):
  // give their memory back once this batch of events is done.
  if (peak_live_ >= kTrimPeak && live_ <= peak_live_ / 2 && !trim_pending_) {
    trim_pending_ = true;
    reactor_->Defer([this] {
      trim_pending_ = false;
      peak_live_ = live_;
      ReleaseFreeHeap();
    });
  }
}

// ---- pools ----------------------------------------------------------------------

char* ProxyWorker::TakeBuffer() {
  if (spare_buffers_.empty()) return new char[IoBuffer::kSize];
  char* b = spare_buffers_.back();
  spare_buffers_.pop_back();
  return b;
}

void ProxyWorker::GiveBuffer(char* buffer) {
  if (spare_buffers_.size() < kSpareBuffers) {
    spare_buffers_.push_back(buffer);
  } else {
    delete[] buffer;
  }
}

std::unique_ptr<ProxyHeads> ProxyWorker::TakeHeads() {
  if (spare_heads_.empty()) return std::make_unique<ProxyHeads>();
  std::unique_ptr<ProxyHeads> h = std::move(spare_heads_.back());
  spare_heads_.pop_back();
  return h;
}

void ProxyWorker::GiveHeads(std::unique_ptr<ProxyHeads> heads) {
  if (heads && spare_heads_.size() < kSpareHeads) spare_heads_.push_back(std::move(heads));
}

std::unique_ptr<Stream> ProxyWorker::TakeIdle(UpstreamKey key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  while (!it->second.empty()) {
    std::unique_ptr<Stream> s = std::move(it->second.back());
    it->second.pop_back();
    if (!s->peer_closed() && !s->canceled()) return s;
  }
  return nullptr;
}

void ProxyWorker::GiveBack(UpstreamKey key, std::unique_ptr<Stream> upstream) {
  if (stopping_ || reactor_->stopping()) return;
  auto& pool = idle_[key];
  if (pool.size() < shared_.options.max_idle_upstream) pool.push_back(std::move(upstream));
}

}  // namespace dspool
