#include "metrics/registry.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "base/testing/temp_dir.h"
#include "os/fs.h"

namespace dspool::metrics {
namespace {

const PoolName kPool("team");
// 2026-12-09T10:00:00Z, a minute's start.
const TimePoint kT0 = FromUnixMillis(1796810400000);

TimePoint Min(double minutes) { return kT0 + std::chrono::milliseconds(static_cast<int64_t>(minutes * 60'000)); }

TEST(RegistryTest, GaugesAreAveragedAndDeltasSummedThenInstancesCombined) {
  Registry r("", std::chrono::hours(24));
  // Minute 0: instance a reports CPU 20 and 40 (a gauge: 30), b 60.
  r.Add(kPool, "Percentage CPU", "a", Min(0.1), 20);
  r.Add(kPool, "Percentage CPU", "a", Min(0.6), 40);
  r.Add(kPool, "Percentage CPU", "b", Min(0.5), 60);
  // Bytes are deltas: a minute is their sum.
  r.Add(kPool, "Network In Total", "a", Min(0.1), 1000);
  r.Add(kPool, "Network In Total", "a", Min(0.6), 500);
  r.Add(kPool, "Network In Total", "b", Min(0.5), 100);
  auto grains = [&](const std::string& metric, const std::string& statistic, TimePoint to) {
    return r.Grains(kPool, metric, statistic, 60, kT0, to);
  };
  EXPECT_TRUE(grains("Percentage CPU", "Average", Min(0.9)).empty());  // the minute has not ended
  EXPECT_EQ(grains("Percentage CPU", "Average", Min(1)), std::vector<double>{45});
  EXPECT_EQ(grains("Percentage CPU", "Min", Min(1)), std::vector<double>{30});
  EXPECT_EQ(grains("Percentage CPU", "Max", Min(1)), std::vector<double>{60});
  EXPECT_EQ(grains("Percentage CPU", "Sum", Min(1)), std::vector<double>{90});
  EXPECT_EQ(grains("Percentage CPU", "Count", Min(1)), std::vector<double>{2});
  EXPECT_EQ(grains("Network In Total", "Sum", Min(1)), std::vector<double>{1600});
  EXPECT_EQ(grains("Network In Total", "Average", Min(1)), std::vector<double>{800});
  EXPECT_TRUE(r.Grains(kPool, "ActiveSessions", "Average", 60, kT0, Min(5)).empty());
  EXPECT_TRUE(r.Grains(PoolName("other"), "Percentage CPU", "Average", 60, kT0, Min(5)).empty());
}

TEST(RegistryTest, ALongerGrainCombinesItsMinutesPerSourceFirst) {
  Registry r("", std::chrono::hours(24));
  // Five minutes of a (10, 20, 30, 40, 50) and two of b (100, 100), then
  // the next grain's first minute.
  for (int m = 0; m < 5; ++m) r.Add(kPool, "ActiveSessions", "a", Min(m + 0.5), 10.0 * (m + 1));
  r.Add(kPool, "ActiveSessions", "b", Min(3.5), 100);
  r.Add(kPool, "ActiveSessions", "b", Min(4.5), 100);
  r.Add(kPool, "ActiveSessions", "a", Min(5.5), 7);
  EXPECT_EQ(r.Grains(kPool, "ActiveSessions", "Average", 300, kT0, Min(6)), (std::vector<double>{65, 7}));
  EXPECT_EQ(r.Grains(kPool, "ActiveSessions", "Max", 300, kT0, Min(6)), (std::vector<double>{100, 7}));
  // Only the minutes in the window: from minute 3 on.
  EXPECT_EQ(r.Grains(kPool, "ActiveSessions", "Max", 300, Min(3), Min(5)), (std::vector<double>{100}));
  EXPECT_EQ(r.Grains(kPool, "ActiveSessions", "Min", 300, Min(3), Min(5)), (std::vector<double>{45}));
}

TEST(RegistryTest, AFlushedHistoryIsReadBackAfterARestart) {
  TempDir dir("dspool-metrics");
  const std::string path = dir.path() + "/metrics";
  {
    Registry r(path, std::chrono::hours(24));
    ASSERT_TRUE(r.Load().ok());
    r.Add(kPool, "Percentage CPU", "a", Min(0.5), 10);
    r.Add(kPool, "Percentage CPU", "a", Min(0.7), 30);
    r.Add(kPool, "PendingConnections", kPoolSource, Min(1.5), 3);
    ASSERT_TRUE(r.Flush(Min(1.2)).ok());  // minute 0 ended; minute 1 has not
    ASSERT_TRUE(r.Flush(Min(2.2)).ok());
    r.Add(kPool, "Percentage CPU", "a", Min(2.5), 99);  // not flushed: lost with the process
  }
  auto text = ReadFile(path + "/team.tsv");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "29946840\ta\tPercentage CPU\t40\t2\n29946841\tpool\tPendingConnections\t3\t1\n");
  // A line cut short by a crash, and one that is not a line of ours.
  ASSERT_TRUE(AppendFile(path + "/team.tsv", "not\ta line\n29946842\ta\tPercentage CPU\t4", 0600).ok());

  Registry again(path, std::chrono::hours(24));
  ASSERT_TRUE(again.Load().ok());
  EXPECT_EQ(again.Grains(kPool, "Percentage CPU", "Average", 60, kT0, Min(3)), std::vector<double>{20});
  EXPECT_EQ(again.Grains(kPool, "PendingConnections", "Sum", 60, kT0, Min(3)), std::vector<double>{3});
  // The file was written again, clean, as it was read (by metric and
  // source): later minutes start a line of their own.
  EXPECT_EQ(ReadFile(path + "/team.tsv").value_or(""),
            "29946841\tpool\tPendingConnections\t3\t1\n29946840\ta\tPercentage CPU\t40\t2\n");
  again.Add(kPool, "Percentage CPU", "a", Min(3.5), 50);
  ASSERT_TRUE(again.Flush(Min(4)).ok());
  Registry third(path, std::chrono::hours(24));
  ASSERT_TRUE(third.Load().ok());
  EXPECT_EQ(third.Grains(kPool, "Percentage CPU", "Average", 60, kT0, Min(4)), (std::vector<double>{20, 50}));

  ASSERT_TRUE(third.Forget(kPool).ok());
  EXPECT_FALSE(PathExists(path + "/team.tsv").value_or(true));
  EXPECT_TRUE(third.Grains(kPool, "Percentage CPU", "Average", 60, kT0, Min(4)).empty());
}

TEST(RegistryTest, WhatIsOlderThanTheRetentionGoesFromMemoryAndThenFromTheFile) {
  TempDir dir("dspool-metrics");
  const std::string path = dir.path() + "/metrics";
  Registry r(path, std::chrono::hours(1));
  ASSERT_TRUE(r.Load().ok());
  // Two days of minutes, one an hour in the file.
  for (int m = 0; m < 2 * 1440; ++m) {
    r.Add(kPool, "ActiveSessions", "a", Min(m + 0.5), 1);
    if (m % 60 == 59) {
      ASSERT_TRUE(r.Flush(Min(m + 1)).ok());
    }
  }
  const TimePoint end = Min(2 * 1440);
  EXPECT_EQ(r.Grains(kPool, "ActiveSessions", "Count", 60, kT0, end).size(), 60u);  // the last hour only
  auto text = ReadFile(path + "/team.tsv");
  ASSERT_TRUE(text.ok());
  // Rewritten when a day's lines had expired: at most a day and an hour left.
  const auto lines = std::count(text->begin(), text->end(), '\n');
  EXPECT_LE(lines, 1440 + 60);
  EXPECT_GE(lines, 60);
  Registry again(path, std::chrono::hours(1));
  ASSERT_TRUE(again.Load().ok());
  ASSERT_TRUE(again.Flush(end).ok());  // drops what expired while it was read
  EXPECT_EQ(again.Grains(kPool, "ActiveSessions", "Count", 60, kT0, end).size(), 60u);
}

}  // namespace
}  // namespace dspool::metrics
