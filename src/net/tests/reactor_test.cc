#include "net/reactor.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "net/stream.h"
#include "net/task.h"

namespace dspool {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A connected pair of non-blocking Unix stream sockets.
std::pair<UniqueFd, UniqueFd> SocketPair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

struct Recorder final : IoHandler {
  std::vector<uint32_t> events;
  std::function<void()> also;
  void OnIo(uint32_t e, uint32_t) override {
    events.push_back(e);
    if (also) also();
  }
};

class ReactorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = Reactor::Create(&clock_);
    ASSERT_TRUE(r.ok()) << r.status();
    reactor_ = std::move(*r);
  }
  // Runs the reactor on a thread until `done` says so (checked on the loop
  // after every posted step), then stops it.
  void RunUntil(const std::function<bool()>& done) {
    std::thread t([&] { ASSERT_TRUE(reactor_->Run().ok()); });
    for (;;) {
      std::promise<bool> p;
      auto f = p.get_future();
      ASSERT_TRUE(reactor_->Post([&] { p.set_value(done()); }));
      if (f.get()) break;
      std::this_thread::yield();
    }
    reactor_->Stop();
    t.join();
  }

  // Posts to the loop: a Stream over `fd`, `first` done with it (if
  // given), then ReadOnce on it into got_ and done_, with a deadline
  // `timeout` from now.
  void PostReadOnce(UniqueFd fd, Duration timeout, std::function<void(Stream&)> first = nullptr);

  SimulatedClock clock_;
  std::unique_ptr<Reactor> reactor_;
  UniqueFd stream_fd_;
  std::unique_ptr<Stream> stream_;  // destroyed before the reactor
  long got_ = 0;
  bool done_ = false;
};

TEST_F(ReactorTest, LevelTriggeredHandlersHearUntilDrained) {
  auto [a, b] = SocketPair();
  Recorder rec;
  auto slot = reactor_->Add(a.get(), Reactor::kReadable, &rec);
  ASSERT_TRUE(slot.ok());
  ASSERT_EQ(::write(b.get(), "x", 1), 1);
  rec.also = [&] {
    if (rec.events.size() == 3) {  // heard three times without reading; now read
      char c;
      EXPECT_EQ(::read(a.get(), &c, 1), 1);
    }
  };
  RunUntil([&] { return rec.events.size() >= 3; });
  EXPECT_EQ(rec.events.size(), 3u) << "level-triggered: told again while unread, not after";
}

TEST_F(ReactorTest, AnEventForARemovedSlotIsDroppedEvenIfTheSlotIsReused) {
  auto [a, b] = SocketPair();
  auto [c, d] = SocketPair();
  Recorder first, second, reused;
  ASSERT_TRUE(reactor_->Add(a.get(), Reactor::kReadable, &first).ok());
  uint32_t slot_c = *reactor_->Add(c.get(), Reactor::kReadable, &second);
  // Both become readable in the same batch; the first handler removes the
  // second's registration and registers another descriptor, which takes
  // the freed slot.
  auto [e, f] = SocketPair();
  first.also = [&, slot_c, cfd = c.get(), efd = e.get()] {
    reactor_->Remove(slot_c, cfd);
    EXPECT_EQ(*reactor_->Add(efd, Reactor::kReadable, &reused), slot_c);
    char x;
    (void)!::read(a.get(), &x, 1);
  };
  ASSERT_EQ(::write(b.get(), "x", 1), 1);
  ASSERT_EQ(::write(d.get(), "x", 1), 1);
  RunUntil([&] { return !first.events.empty(); });
  EXPECT_TRUE(second.events.empty()) << "removed before its event was handled";
  EXPECT_TRUE(reused.events.empty()) << "the stale event must not reach the slot's new owner";
}

TEST_F(ReactorTest, TimersRunInOrderAtTheirTimeNotBefore) {
  std::vector<int> ran;
  reactor_->RunAfter(seconds(2), [&] { ran.push_back(2); });
  reactor_->RunAfter(seconds(1), [&] { ran.push_back(1); });
  auto cancelled = reactor_->RunAfter(seconds(1), [&] { ran.push_back(99); });
  reactor_->Cancel(cancelled);
  std::thread t([&] { ASSERT_TRUE(reactor_->Run().ok()); });
  auto ran_now = [&] {
    std::promise<std::vector<int>> p;
    auto f = p.get_future();
    reactor_->Post([&] { p.set_value(ran); });
    return f.get();
  };
  clock_.Advance(milliseconds(999));
  reactor_->Wake();
  EXPECT_TRUE(ran_now().empty()) << "a millisecond early";
  clock_.Advance(milliseconds(1));
  reactor_->Wake();
  for (int i = 0; i < 100 && ran_now().size() < 1; ++i) reactor_->Wake();
  EXPECT_EQ(ran_now(), std::vector<int>{1});
  clock_.Advance(seconds(1));
  reactor_->Wake();
  for (int i = 0; i < 100 && ran_now().size() < 2; ++i) reactor_->Wake();
  EXPECT_EQ(ran_now(), (std::vector<int>{1, 2}));
  reactor_->Stop();
  t.join();
}

// A coroutine that reads one line-less chunk from `s` and records what it got.
Detached ReadOnce(Stream& s, MonoTime deadline, long* got, bool* done) {
  char buf[16];
  *got = co_await s.ReadSome(buf, sizeof(buf), deadline);
  *done = true;
}

void ReactorTest::PostReadOnce(UniqueFd fd, Duration timeout, std::function<void(Stream&)> first) {
  stream_fd_ = std::move(fd);
  ASSERT_TRUE(reactor_->Post([this, timeout, first] {
    stream_ = std::make_unique<Stream>(*reactor_, std::move(stream_fd_));
    if (first) first(*stream_);
    ReadOnce(*stream_, reactor_->now() + timeout, &got_, &done_);
  }));
}

TEST_F(ReactorTest, AStreamReadWaitsForInputAndResumesOnIt) {
  auto [a, b] = SocketPair();
  PostReadOnce(std::move(a), seconds(10));
  std::thread writer([fd = b.get()] { EXPECT_EQ(::write(fd, "hello", 5), 5); });
  RunUntil([&] { return done_; });
  writer.join();
  EXPECT_EQ(got_, 5);
}

TEST_F(ReactorTest, AStreamWaitTimesOutAtItsDeadlineAndNotBefore) {
  auto [a, b] = SocketPair();
  std::thread t([&] { ASSERT_TRUE(reactor_->Run().ok()); });
  auto on_loop = [&](std::function<void()> fn) {
    std::promise<void> p;
    auto f = p.get_future();
    reactor_->Post([&] {
      fn();
      p.set_value();
    });
    f.get();
  };
  PostReadOnce(std::move(a), seconds(5));
  on_loop([] {});  // the read has begun
  clock_.Advance(milliseconds(4999));
  for (int i = 0; i < 3; ++i) on_loop([] {});  // turns pass; the deadline is not yet
  on_loop([&] { EXPECT_FALSE(done_) << "timed out early"; });
  clock_.Advance(milliseconds(1) + Reactor::kWaitTick);
  bool seen = false;
  for (int i = 0; i < 1000 && !seen; ++i) on_loop([&] { seen = done_; });
  EXPECT_TRUE(seen);
  EXPECT_EQ(got_, Stream::kTimedOut);
  on_loop([&] { stream_.reset(); });
  reactor_->Stop();
  t.join();
}

TEST_F(ReactorTest, ShutdownWriteSendsOurFinAndReadingGoesOn) {
  auto [a, b] = SocketPair();
  PostReadOnce(std::move(a), seconds(10), [](Stream& s) { s.ShutdownWrite(); });
  std::thread peer([fd = b.get()] {
    pollfd p = {fd, POLLIN, 0};
    char c;
    EXPECT_EQ(::poll(&p, 1, 10000), 1);
    EXPECT_EQ(::read(fd, &c, 1), 0) << "the peer sees our FIN";
    EXPECT_EQ(::write(fd, "late", 4), 4) << "and may still send";
  });
  RunUntil([&] { return done_; });
  peer.join();
  EXPECT_EQ(got_, 4);
}

TEST_F(ReactorTest, StopReleasesEveryWaitAndRunsTheCoroutinesToTheirEnd) {
  auto [a, b] = SocketPair();
  PostReadOnce(std::move(a), seconds(3600));
  std::thread t([&] { ASSERT_TRUE(reactor_->Run().ok()); });
  std::promise<void> parked;
  reactor_->Post([&] { parked.set_value(); });
  parked.get_future().get();
  reactor_->Stop();
  t.join();
  EXPECT_TRUE(done_);
  EXPECT_EQ(got_, Stream::kFailed);
  EXPECT_FALSE(reactor_->Post([] {})) << "nothing is accepted after Stop";
}

TEST_F(ReactorTest, DeferredWorkRunsAfterTheBatchWithoutSleeping) {
  int runs = 0;
  std::function<void()> again = [&] {
    if (++runs < 5) reactor_->Defer(again);
  };
  ASSERT_TRUE(reactor_->Post([&] { reactor_->Defer(again); }));
  // No event and no timer: only the deferral keeps the loop turning.
  RunUntil([&] { return runs == 5; });
  EXPECT_EQ(runs, 5);
}

}  // namespace
}  // namespace dspool
