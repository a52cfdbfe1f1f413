#include "gateway/probe.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

TEST(ProbeTrackerTest, NewBackendJoinsAtFirstSuccess) {
  ProbeTracker t(2);
  EXPECT_FALSE(t.in_rotation());
  EXPECT_FALSE(t.Record(false));
  EXPECT_TRUE(t.Record(true));
  EXPECT_TRUE(t.in_rotation());
}

TEST(ProbeTrackerTest, OutAfterThresholdFailuresBackAfterThresholdSuccesses) {
  ProbeTracker t(2);
  t.Record(true);
  EXPECT_FALSE(t.Record(false));  // one failure: still in
  EXPECT_TRUE(t.in_rotation());
  EXPECT_FALSE(t.Record(true));  // a success resets the count
  EXPECT_FALSE(t.Record(false));
  EXPECT_TRUE(t.Record(false));  // two in a row: out
  EXPECT_FALSE(t.in_rotation());
  EXPECT_FALSE(t.Record(true));  // one success: still out
  EXPECT_FALSE(t.Record(false));
  EXPECT_FALSE(t.Record(true));
  EXPECT_TRUE(t.Record(true));  // two in a row: back
  EXPECT_TRUE(t.in_rotation());
}

TEST(ProbeTrackerTest, RemoveIsImmediate) {
  ProbeTracker t(3);
  t.Record(true);
  t.Remove();
  EXPECT_FALSE(t.in_rotation());
  EXPECT_FALSE(t.Record(true));
  EXPECT_FALSE(t.Record(true));
  EXPECT_TRUE(t.Record(true));
}

TEST(ProbeTrackerTest, ThresholdBelowOneMeansOne) {
  ProbeTracker t(0);
  t.Record(true);
  EXPECT_TRUE(t.Record(false));
  EXPECT_TRUE(t.Record(true));
}

}  // namespace
}  // namespace dspool
