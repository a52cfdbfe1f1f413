#include "model/instance.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

Instance SomeInstance() {
  Instance i;
  i.id = InstanceId("team-1-3fa9c1");
  i.pool = PoolName("team");
  i.index = 1;
  i.phase = InstancePhase::kReady;
  i.address = "10.231.0.3";
  i.created_at = FromUnixMillis(1'700'000'000'000);
  i.phase_since = FromUnixMillis(1'700'000'001'000);
  return i;
}

TEST(InstanceTest, DrainingRoundTrips) {
  Instance i = SomeInstance();
  EXPECT_EQ(InstanceToJson(i)["draining"], false);
  i.draining = true;
  Json j = InstanceToJson(i);
  EXPECT_EQ(j["draining"], true);
  auto back = InstanceFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, i);
}

TEST(InstanceTest, RecordWrittenBeforeDrainingExistedIsNotDraining) {
  Json old = InstanceToJson(SomeInstance());
  old.erase("draining");
  auto back = InstanceFromJson(old);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->draining);
  EXPECT_EQ(*back, SomeInstance());
}

TEST(InstanceTest, MalformedDrainingIsAnError) {
  Json bad = InstanceToJson(SomeInstance());
  bad["draining"] = "yes";
  auto back = InstanceFromJson(bad);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), StatusCode::kInternal);
  EXPECT_EQ(back.status().message().rfind("stored instance is malformed: ", 0), 0u) << back.status();
}

TEST(InstanceTest, HealthJson) {
  EXPECT_EQ(InstanceHealthToJson({"healthy", true, 3}),
            Json::parse(R"({"state": "healthy", "inRotation": true, "connections": 3})"));
  EXPECT_EQ(InstanceHealthToJson({}), Json::parse(R"({"state": "", "inRotation": false, "connections": 0})"));
}

}  // namespace
}  // namespace dspool
