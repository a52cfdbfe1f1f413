#include "identity/session.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <vector>

// Counts this binary's allocations on the calling thread, so a test can
// assert a call makes none.
namespace {
thread_local size_t allocations = 0;
}  // namespace

void* operator new(size_t size) {
  ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace dspool {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

TEST(SessionTest, SignedValueVerifiesUntilItExpires) {
  std::string key = NewSessionKey();
  ASSERT_EQ(key.size(), kSessionKeyBytes);
  TimePoint now = FromUnixMillis(1'800'000'000'000);
  std::string cookie = SignSession("alice", now + hours(12), key);
  EXPECT_EQ(cookie.rfind("alice.", 0), 0u);
  auto user = VerifySession(cookie, now, key);
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(*user, "alice");
  EXPECT_EQ(VerifySession(cookie, now + hours(12), key).status().message(), "session cookie: expired");
}

TEST(SessionTest, AlteredOrForeignValuesAreRefused) {
  std::string key = NewSessionKey();
  TimePoint now = FromUnixMillis(1'800'000'000'000);
  std::string cookie = SignSession("alice", now + hours(1), key);
  // Another user, a later expiry, another key, garbage: all refused.
  std::string as_bob = "bob" + cookie.substr(5);
  EXPECT_EQ(VerifySession(as_bob, now, key).status().code(), StatusCode::kPermissionDenied);
  size_t dot = cookie.find('.');
  std::string extended = cookie.substr(0, dot + 1) + "9" + cookie.substr(dot + 1);
  EXPECT_FALSE(VerifySession(extended, now, key).ok());
  EXPECT_FALSE(VerifySession(cookie, now, NewSessionKey()).ok());
  for (std::string bad : {"", ".", "..", "alice", "alice.1", ".1.x", "alice..x", "alice.x1.y"}) {
    EXPECT_FALSE(VerifySession(bad, now, key).ok()) << bad;
  }
}

TEST(SessionVerifierTest, RemembersValidValuesUntilTheyExpire) {
  SessionVerifier verifier(NewSessionKey());
  TimePoint now = FromUnixMillis(1'800'000'000'000);
  std::string cookie = SignSession("alice", now + hours(12), verifier.key());
  for (int i = 0; i < 3; ++i) {  // the first checks, the others remember
    auto user = verifier.Verify(cookie, now);
    ASSERT_TRUE(user.ok()) << user.status();
    EXPECT_EQ(*user, "alice");
  }
  EXPECT_EQ(verifier.Verify(cookie, now + hours(12)).status().message(), "session cookie: expired");
  // Altered values are checked, not matched against the remembered one.
  std::string as_bob = "bob" + cookie.substr(5);
  EXPECT_EQ(verifier.Verify(as_bob, now).status().code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(verifier.Verify(cookie + "x", now).ok());
}

TEST(SessionVerifierTest, VerifiersDoNotShareWhatTheyRemember) {
  SessionVerifier a(NewSessionKey());
  SessionVerifier b(NewSessionKey());
  TimePoint now = FromUnixMillis(1'800'000'000'000);
  std::string cookie = SignSession("alice", now + hours(1), a.key());
  ASSERT_TRUE(a.Verify(cookie, now).ok());
  EXPECT_EQ(b.Verify(cookie, now).status().message(), "session cookie: bad signature");
}

TEST(SessionVerifierTest, ARememberedValueIsFoundWithoutAllocating) {
  // The memory exists to make the per-request check cheap: a hit hashes the
  // value into a digest on the stack and allocates nothing.
  SessionVerifier verifier(NewSessionKey());
  TimePoint now = FromUnixMillis(1'800'000'000'000);
  std::string cookie = SignSession("alice", now + hours(1), verifier.key());
  ASSERT_TRUE(verifier.Verify(cookie, now).ok());  // checked and remembered
  size_t before = allocations;
  for (int i = 0; i < 100; ++i) {
    auto user = verifier.Verify(cookie, now);
    ASSERT_TRUE(user.ok()) << user.status();
  }
  EXPECT_EQ(allocations - before, 0u);
}

TEST(SessionVerifierTest, ManyUsersOnOneThread) {
  // More values than a thread remembers: each still verifies as its own.
  SessionVerifier verifier(NewSessionKey());
  TimePoint now = FromUnixMillis(1'800'000'000'000);
  std::vector<std::string> cookies;
  for (int i = 0; i < 20; ++i) cookies.push_back(SignSession("u" + std::to_string(i), now + hours(1), verifier.key()));
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 20; ++i) {
      auto user = verifier.Verify(cookies[static_cast<size_t>(i)], now);
      ASSERT_TRUE(user.ok()) << user.status();
      EXPECT_EQ(*user, "u" + std::to_string(i));
    }
  }
}

TEST(LoginThrottleTest, LimitsFailuresPerUserAndPerAddress) {
  SimulatedClock clock;
  LoginThrottle throttle(clock, {.failures = 3, .window = minutes(5)});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(throttle.Wait("alice", "10.0.0.1").count(), 0);
    throttle.RecordFailure("alice", "10.0.0.1");
  }
  EXPECT_EQ(throttle.Wait("alice", "10.0.0.1"), minutes(5));
  EXPECT_EQ(throttle.Wait("alice", "10.0.0.2"), minutes(5)) << "the account, from anywhere";
  EXPECT_EQ(throttle.Wait("bob", "10.0.0.1"), minutes(5)) << "the address, for any account";
  EXPECT_EQ(throttle.Wait("bob", "10.0.0.2").count(), 0);
  clock.Advance(minutes(4));
  EXPECT_EQ(throttle.Wait("alice", "10.0.0.2"), minutes(1));
  clock.Advance(minutes(1));
  EXPECT_EQ(throttle.Wait("alice", "10.0.0.1").count(), 0);
}

TEST(LoginThrottleTest, SuccessClearsTheUsersCount) {
  SimulatedClock clock;
  LoginThrottle throttle(clock, {.failures = 2, .window = minutes(5)});
  throttle.RecordFailure("alice", "10.0.0.1");
  throttle.RecordSuccess("alice");
  throttle.RecordFailure("alice", "10.0.0.2");
  EXPECT_EQ(throttle.Wait("alice", "10.0.0.3").count(), 0);
}

}  // namespace
}  // namespace dspool

namespace dspool {
namespace {

TEST(SessionKeyTextTest, RoundTripsAndRefusesWhatIsNotAKey) {
  std::string key = NewSessionKey();
  std::string text = SessionKeyToText(key);
  EXPECT_EQ(text.size(), 2 * kSessionKeyBytes + 1);
  EXPECT_EQ(text.back(), '\n');
  auto back = SessionKeyFromText(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, key);
  EXPECT_EQ(*SessionKeyFromText("  " + text + "\n"), key) << "surrounding whitespace is not part of it";
  for (std::string bad : {std::string(), text.substr(0, 62), text.substr(0, 63) + "g", text + "00"}) {
    EXPECT_EQ(SessionKeyFromText(bad).status().message(), "not a session key (64 hex digits)") << bad;
  }
  // A cookie signed with the key before is still good with the key read back.
  TimePoint expires = FromUnixMillis(4'000'000'000'000);
  std::string cookie = SignSession("alice", expires, key);
  EXPECT_EQ(*VerifySession(cookie, FromUnixMillis(1'800'000'000'000), *back), "alice");
}

}  // namespace
}  // namespace dspool
