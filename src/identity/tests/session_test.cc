#include "identity/session.h"

#include <gtest/gtest.h>

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
