#include "autoscale/scaler.h"

#include <gtest/gtest.h>

#include "store/memory/memory_store.h"

namespace dspool::autoscale {
namespace {

// 2026-12-09T10:00:00Z.
const TimePoint kNow = FromUnixMillis(1796810400000);

AutoscaleSetting Setting(const std::string& profiles) {
  auto s = ParseAutoscaleSetting(Json::parse(R"({"profiles": )" + profiles + "}"), "autoscale", 100);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.value_or(AutoscaleSetting{});
}

const char* kCpuRules = R"([{"name": "default", "capacity": {"minimum": "0", "maximum": "5", "default": "1"}, "rules": [
  {"metricTrigger": {"metricName": "Percentage CPU", "timeGrain": "PT1M", "statistic": "Average", "timeWindow": "PT5M",
                     "timeAggregation": "Average", "operator": "GreaterThan", "threshold": 70},
   "scaleAction": {"direction": "Increase", "type": "ChangeCount", "value": "1", "cooldown": "PT5M"}},
  {"metricTrigger": {"metricName": "Percentage CPU", "timeGrain": "PT1M", "statistic": "Average", "timeWindow": "PT5M",
                     "timeAggregation": "Average", "operator": "LessThan", "threshold": 10},
   "scaleAction": {"direction": "Decrease", "type": "ExactCount", "value": "0", "cooldown": "PT5M"}}]}])";

class ScalerTest : public ::testing::Test {
 protected:
  ScalerTest()
      : scaler_(store_, metrics_,
                ScalerHooks{
                    .open_sessions =
                        [this](const std::vector<InstanceId>& ids) {
                          std::map<InstanceId, int64_t> out;
                          for (const InstanceId& id : ids) out[id] = sessions_;
                          return out;
                        },
                    .apply =
                        [this](const PoolName& pool, const Evaluation& e) {
                          applied_.push_back(pool.value() + ": " + e.summary);
                          if (!apply_status_.ok()) return apply_status_;
                          auto p = store_.GetPool(pool);
                          Pool next = *p;
                          next.spec.instance_count = e.target;
                          next.autoscale_last_action = e.memory.last_action;
                          next.autoscale_cooldown_seconds = e.memory.cooldown_seconds;
                          return store_.Write(WriteBatch().Add(WriteBatch::UpdatePool{next, p->generation}));
                        },
                    .record = [this](const PoolName& pool, const Evaluation& e) {
                      recorded_.push_back(pool.value() + ": " + e.blocked);
                    }}) {}

  void AddPool(const std::string& name, int64_t count, std::optional<AutoscaleSetting> setting,
               PoolState state = PoolState::kActive) {
    Pool p;
    p.spec.name = PoolName(name);
    p.spec.instance_count = count;
    p.spec.network.subnet = *ParseIpv4Subnet("10.231.0.0/24");
    p.spec.autoscale = std::move(setting);
    p.state = state;
    WriteBatch batch;
    batch.Add(WriteBatch::CreatePool{p});
    for (int64_t i = 0; i < count; ++i) {
      Instance instance;
      instance.id = InstanceId(name + "-" + std::to_string(i) + "-aa");
      instance.pool = p.spec.name;
      instance.index = i;
      batch.Add(WriteBatch::PutInstance{instance});
    }
    ASSERT_TRUE(store_.Write(batch).ok());
  }

  void Cpu(const std::string& pool, double value) {
    for (int m = 1; m <= 6; ++m) metrics_.Add(PoolName(pool), "Percentage CPU", pool + "-0-aa", kNow - std::chrono::minutes(m), value);
  }

  int64_t Count(const std::string& pool) { return store_.GetPool(PoolName(pool))->spec.instance_count; }

  MemoryStore store_;
  metrics::Registry metrics_{"", std::chrono::hours(1)};
  int64_t sessions_ = 0;
  Status apply_status_ = Status::Ok();
  std::vector<std::string> applied_, recorded_;
  Scaler scaler_;
};

TEST_F(ScalerTest, EachPoolWithASettingIsBroughtWhereItsRulesSay) {
  AddPool("busy", 1, Setting(kCpuRules));
  AddPool("range", 1, Setting(R"([{"name": "default", "capacity": {"minimum": "2", "maximum": "4", "default": "2"}, "rules": []}])"));
  AddPool("plain", 1, std::nullopt);
  AutoscaleSetting off = Setting(R"([{"name": "default", "capacity": {"minimum": "3", "maximum": "4", "default": "3"}, "rules": []}])");
  off.enabled = false;
  AddPool("off", 1, off);
  AddPool("going", 1, Setting(R"([{"name": "default", "capacity": {"minimum": "3", "maximum": "4", "default": "3"}, "rules": []}])"),
          PoolState::kDeleting);
  Cpu("busy", 90);
  scaler_.RunOnce(kNow);
  EXPECT_EQ(applied_, (std::vector<std::string>{
                          "busy: profile 'default': scale out 1 → 2 (Percentage CPU Average over PT5M = 90 > 70)",
                          "range: profile 'default': 1 → 2, up to the minimum"}));
  EXPECT_EQ(Count("busy"), 2);
  EXPECT_EQ(Count("range"), 2);
  EXPECT_EQ(Count("plain"), 1);
  EXPECT_EQ(Count("off"), 1);
  EXPECT_EQ(Count("going"), 1);
  // The run's memory is the pool's: the next run is in the cooldown.
  EXPECT_EQ(store_.GetPool(PoolName("busy"))->autoscale_last_action, kNow);
  EXPECT_EQ(store_.GetPool(PoolName("busy"))->autoscale_cooldown_seconds, 300);
  ASSERT_TRUE(scaler_.Last(PoolName("busy")));
  EXPECT_EQ(scaler_.Last(PoolName("busy"))->target, 2);
  EXPECT_FALSE(scaler_.Last(PoolName("plain")));

  applied_.clear();
  scaler_.RunOnce(kNow + std::chrono::minutes(1));
  EXPECT_TRUE(applied_.empty());
  EXPECT_EQ(recorded_, std::vector<std::string>{"busy: in the cooldown of PT5M until 2026-12-09T10:05:00.000Z"});
}

TEST_F(ScalerTest, AHeldBackRunIsRecordedOnceForEachNewReason) {
  AddPool("team", 1, Setting(kCpuRules));
  Cpu("team", 5);
  sessions_ = 1;
  scaler_.RunOnce(kNow);
  scaler_.RunOnce(kNow + std::chrono::minutes(1));
  EXPECT_TRUE(applied_.empty());
  EXPECT_EQ(recorded_, std::vector<std::string>{"team: not to zero: 1 session is open"});
  // The session ends: the pool goes to zero, and a later hold is new again.
  sessions_ = 0;
  scaler_.RunOnce(kNow + std::chrono::minutes(2));
  EXPECT_EQ(applied_.size(), 1u);
  EXPECT_EQ(Count("team"), 0);
}

TEST_F(ScalerTest, ACountChangedMeanwhileIsLeftForTheNextRun) {
  AddPool("team", 1, Setting(kCpuRules));
  Cpu("team", 90);
  apply_status_ = Aborted("pool 'team' was scaled to 3 meanwhile");
  scaler_.RunOnce(kNow);
  EXPECT_EQ(applied_.size(), 1u);
  EXPECT_EQ(Count("team"), 1);
  apply_status_ = Status::Ok();
  scaler_.RunOnce(kNow + std::chrono::minutes(1));
  EXPECT_EQ(Count("team"), 2);
}

}  // namespace
}  // namespace dspool::autoscale
