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

TEST(ClockTest, ParseTimeReadsWhatFormatTimeAndJupyterWrite) {
  const TimePoint t = FromUnixMillis(1'700'000'000'042);
  EXPECT_EQ(*ParseTime("2023-11-14T22:13:20.042Z"), t);
  EXPECT_EQ(*ParseTime(FormatTime(t)), t);
  // Jupyter: microseconds and "Z"; Python isoformat: "+00:00"; fractions truncate.
  EXPECT_EQ(*ParseTime("2023-11-14T22:13:20.042999Z"), t);
  EXPECT_EQ(*ParseTime("2023-11-14T22:13:20.042+00:00"), t);
  EXPECT_EQ(*ParseTime("2023-11-14T22:13:20Z"), FromUnixMillis(1'700'000'000'000));
  EXPECT_EQ(*ParseTime("2023-11-14T22:13:20.4Z"), FromUnixMillis(1'700'000'000'400));
  EXPECT_EQ(*ParseTime("2023-11-15T00:43:20.042+02:30"), t);
  EXPECT_EQ(*ParseTime("2023-11-14T17:13:20.042-05:00"), t);
}

TEST(ClockTest, ParseTimeRefusesWhatIsNotATimeAndNamesIt) {
  for (const char* text : {"", "2023-11-14", "2023-11-14T22:13:20", "2023-11-14T22:13:20.Z",
                           "2023-13-14T22:13:20Z", "2023-11-14T22:13:20Zx", "2023-11-14T22:13Z",
                           "yesterday", "2023-11-14T22:13:20+0200"}) {
    Result<TimePoint> r = ParseTime(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(r.status().message().find(std::string("\"") + text + "\""), std::string::npos) << r.status();
  }
}

}  // namespace
}  // namespace dspool
