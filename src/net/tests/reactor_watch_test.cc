#include "net/reactor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace dspool {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Waits, a bounded time, until done() holds.
bool WaitFor(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

// A reactor on its own thread, stopped and joined at the end of the test;
// its descriptors watched with callbacks (Watch, Change, Unwatch), as a
// control loop does.
class ReactorWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = Reactor::Create(&clock_);
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
  }
  void TearDown() override {
    loop_->Stop();
    if (thread_.joinable()) thread_.join();
  }
  void Start() {
    thread_ = std::thread([this] { ASSERT_TRUE(loop_->Run().ok()); });
  }
  // Runs fn on the loop and waits for it.
  void OnLoop(std::function<void()> fn) {
    std::atomic<bool> done{false};
    loop_->Post([&] {
      fn();
      done = true;
    });
    ASSERT_TRUE(WaitFor([&] { return done.load(); })) << "the loop did not run a posted task";
  }
  // Returns once the loop has run its timers at the current time: a task
  // posted after another runs on the turn after that one's, and a turn runs
  // its tasks, then its due timers.
  void Settle() {
    OnLoop([] {});
    OnLoop([] {});
  }
  void Advance(Duration d) {
    clock_.Advance(d);
    loop_->Wake();
  }

  SimulatedClock clock_;
  std::unique_ptr<Reactor> loop_;
  std::thread thread_;
};

TEST_F(ReactorWatchTest, ReadableDescriptorCallsItsHandler) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  std::atomic<int> calls{0};
  ASSERT_TRUE(loop_->Watch(r.get(), Reactor::kReadable, [&](uint32_t events) {
                     EXPECT_TRUE(events & Reactor::kReadable);
                     char c;
                     ASSERT_EQ(::read(r.get(), &c, 1), 1);
                     ++calls;
                   }).ok());
  EXPECT_EQ(loop_->Watch(r.get(), Reactor::kReadable, [](uint32_t) {}).code(), StatusCode::kAlreadyExists);
  Start();
  ASSERT_EQ(::write(w.get(), "ab", 2), 2);
  ASSERT_TRUE(WaitFor([&] { return calls >= 2; }));
  OnLoop([&] { loop_->Unwatch(r.get()); });
  ASSERT_EQ(::write(w.get(), "c", 1), 1);
  OnLoop([] {});
  EXPECT_EQ(calls, 2);
}

TEST_F(ReactorWatchTest, TimersRunInOrderOnTheInjectedClock) {
  std::vector<int> ran;
  std::atomic<int> count{0};
  Start();
  OnLoop([&] {
    loop_->RunAfter(seconds(2), [&] { ran.push_back(2); ++count; });
    loop_->RunAfter(seconds(1), [&] { ran.push_back(1); ++count; });
    loop_->RunAfter(seconds(3), [&] { ran.push_back(3); ++count; });
  });
  Advance(milliseconds(999));
  Settle();
  EXPECT_EQ(count, 0) << "a timer ran before its time";
  Advance(milliseconds(1));
  ASSERT_TRUE(WaitFor([&] { return count >= 1; }));
  Advance(milliseconds(999));
  Settle();
  EXPECT_EQ(count, 1) << "a timer ran before its time";
  Advance(seconds(5));
  ASSERT_TRUE(WaitFor([&] { return count >= 3; }));
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
}

TEST_F(ReactorWatchTest, ACallbackCancelsAnotherTimerDueAtTheSameTime) {
  std::atomic<int> ran{0};
  Reactor::TimerId second = 0;
  Start();
  OnLoop([&] {
    loop_->RunAfter(seconds(1), [&] {
      ++ran;
      loop_->Cancel(second);
    });
    second = loop_->RunAfter(seconds(1), [&] { ran += 100; });
  });
  Advance(seconds(3));
  ASSERT_TRUE(WaitFor([&] { return ran >= 1; }));
  OnLoop([] {});
  EXPECT_EQ(ran, 1);
}

TEST_F(ReactorWatchTest, UnwatchInsideAHandlerDropsEventsOfAReusedNumber) {
  int a[2], b[2];
  ASSERT_EQ(::pipe2(a, O_NONBLOCK | O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(b, O_NONBLOCK | O_CLOEXEC), 0);
  UniqueFd ar(a[0]), aw(a[1]), br(b[0]), bw(b[1]);
  std::atomic<int> a_calls{0}, b_calls{0};
  // Both readable before the loop runs: one epoll_wait reports both; a's
  // handler unwatches and closes b, so b's event must not be delivered.
  ASSERT_EQ(::write(aw.get(), "x", 1), 1);
  ASSERT_EQ(::write(bw.get(), "x", 1), 1);
  ASSERT_TRUE(loop_->Watch(ar.get(), Reactor::kReadable, [&](uint32_t) {
                     ++a_calls;
                     loop_->Unwatch(ar.get());
                     loop_->Unwatch(br.get());
                   }).ok());
  ASSERT_TRUE(loop_->Watch(br.get(), Reactor::kReadable, [&](uint32_t) {
                     ++b_calls;
                     loop_->Unwatch(br.get());
                     loop_->Unwatch(ar.get());
                   }).ok());
  Start();
  ASSERT_TRUE(WaitFor([&] { return a_calls + b_calls >= 1; }));
  OnLoop([] {});
  EXPECT_EQ(a_calls + b_calls, 1);
}

TEST_F(ReactorWatchTest, PostFromManyThreadsRunsEveryTask) {
  Start();
  std::atomic<int> ran{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) loop_->Post([&] { ++ran; });
    });
  }
  for (auto& t : posters) t.join();
  OnLoop([] {});
  EXPECT_EQ(ran, 4000);
}

TEST_F(ReactorWatchTest, RunTwiceIsRefused) {
  Start();
  OnLoop([] {});
  EXPECT_EQ(loop_->Run().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dspool

namespace dspool {
namespace {

TEST(ReactorStopTest, PostAfterStopIsRefusedAndAcceptedTasksRun) {
  auto loop = Reactor::Create();
  ASSERT_TRUE(loop.ok());
  int ran = 0;
  EXPECT_TRUE((*loop)->Post([&] { ++ran; }));
  (*loop)->Stop();
  EXPECT_FALSE((*loop)->Post([&] { ran += 100; }));
  EXPECT_TRUE((*loop)->Run().ok());  // stops at once, after running the accepted task
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace dspool
