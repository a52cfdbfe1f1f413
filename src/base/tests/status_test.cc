#include "base/status.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "base/clock.h"
#include "base/result.h"

namespace dspool {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  DSP_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = NotFound("pool 'x' does not exist");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "NotFound: pool 'x' does not exist");
  EXPECT_EQ(s.WithPrefix("spec.json").message(), "spec.json: pool 'x' does not exist");
  EXPECT_EQ(StatusCodeFromName(StatusCodeName(StatusCode::kAborted)), StatusCode::kAborted);
  EXPECT_EQ(ErrnoStatus("open /x", ENOENT).code(), StatusCode::kNotFound);
}

TEST(ResultTest, PropagatesFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
}

TEST(ClockTest, SimulatedClockMovesOnlyWhenTold) {
  SimulatedClock clock;
  TimePoint t0 = clock.Now();
  EXPECT_EQ(clock.Now(), t0);
  clock.Advance(std::chrono::seconds(5));
  EXPECT_EQ(clock.Now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(FormatTime(FromUnixMillis(1'700'000'000'042)), "2023-11-14T22:13:20.042Z");
}

}  // namespace
}  // namespace dspool
