#include "autoscale/engine.h"

#include <gtest/gtest.h>

#include <map>

namespace dspool::autoscale {
namespace {

TimePoint At(const std::string& text) {
  auto t = ParseTime(text);
  EXPECT_TRUE(t.ok()) << text;
  return t.value_or(TimePoint());
}

// Samples by metric, one per grain, at the grain's start; the statistic is
// the view's business, so each sample is already the pool's value.
class FakeMetrics final : public MetricView {
 public:
  void Set(const std::string& metric, TimePoint at, double value) { samples_[metric][at] = value; }
  // `value` in every minute of the `minutes` before `now`.
  void Steady(const std::string& metric, TimePoint now, double value, int minutes = 10) {
    for (int i = 1; i <= minutes; ++i) Set(metric, now - std::chrono::minutes(i), value);
  }
  std::vector<double> Grains(const std::string& metric, const std::string&, int64_t, TimePoint from,
                             TimePoint to) const override {
    std::vector<double> out;
    auto it = samples_.find(metric);
    if (it == samples_.end()) return out;
    for (auto s = it->second.lower_bound(from); s != it->second.end() && s->first < to; ++s) out.push_back(s->second);
    return out;
  }

 private:
  std::map<std::string, std::map<TimePoint, double>> samples_;
};

Json Rule(const std::string& metric, const std::string& op, double threshold, const std::string& direction,
          const std::string& type = "ChangeCount", int64_t value = 1, const std::string& cooldown = "PT5M",
          const std::string& statistic = "Average", const std::string& aggregation = "Average") {
  return {{"metricTrigger",
           {{"metricName", metric},
            {"timeGrain", "PT1M"},
            {"statistic", statistic},
            {"timeWindow", "PT5M"},
            {"timeAggregation", aggregation},
            {"operator", op},
            {"threshold", threshold}}},
          {"scaleAction", {{"direction", direction}, {"type", type}, {"value", std::to_string(value)}, {"cooldown", cooldown}}}};
}

Json Profile(const std::string& name, int64_t min, int64_t max, int64_t def, Json rules = Json::array()) {
  return {{"name", name},
          {"capacity", {{"minimum", std::to_string(min)}, {"maximum", std::to_string(max)}, {"default", std::to_string(def)}}},
          {"rules", rules}};
}

AutoscaleSetting Setting(Json profiles) {
  auto s = ParseAutoscaleSetting(Json{{"profiles", profiles}}, "autoscale", 1000);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.value_or(AutoscaleSetting{});
}

class EngineTest : public ::testing::Test {
 protected:
  Evaluation Run(const AutoscaleSetting& s, int64_t count, int64_t sessions = 0) {
    Evaluation e = Evaluate(s, Input{.count = count, .open_sessions = sessions, .now = now_}, memory_, metrics_);
    memory_ = e.memory;
    return e;
  }
  TimePoint now_ = At("2026-12-09T10:00:00Z");  // a Wednesday
  Memory memory_;
  FakeMetrics metrics_;
};

// ---------------------------------------------------------------- profiles

TEST(ProfileTest, FixedDateThenTheRecurrenceThatStartedLastThenTheDefault) {
  Json work = Profile("work", 2, 10, 2);
  work["recurrence"] = {{"frequency", "Week"},
                        {"schedule", {{"timeZone", "W. Europe Standard Time"}, {"days", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}}, {"hours", {9}}, {"minutes", {0}}}}};
  Json night = Profile("night", 0, 2, 0);
  night["recurrence"] = {{"frequency", "Week"},
                         {"schedule", {{"timeZone", "W. Europe Standard Time"}, {"days", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}}, {"hours", {18}}, {"minutes", {0}}}}};
  Json course = Profile("course", 5, 20, 5);
  course["fixedDate"] = {{"timeZone", "Pacific Standard Time"}, {"start", "2026-12-09T08:00:00"}, {"end", "2026-12-09T12:00:00"}};
  const AutoscaleSetting s = Setting({Profile("default", 1, 3, 1), work, night, course});
  auto name = [&](const std::string& t) {
    const AutoscaleProfile* p = ActiveProfile(s, At(t));
    return p ? p->name : "(none)";
  };
  // Wednesday 10:00 in Berlin (09:00Z): "work" started at 08:00Z.
  EXPECT_EQ(name("2026-12-09T09:00:00Z"), "work");
  EXPECT_EQ(name("2026-12-09T07:59:59Z"), "night");  // before 09:00 Berlin: Tuesday's night still runs
  EXPECT_EQ(name("2026-12-10T17:00:00Z"), "night");  // Thursday 18:00 Berlin
  // Saturday and Sunday: Friday's night lasts until Monday's work.
  EXPECT_EQ(name("2026-12-12T12:00:00Z"), "night");
  EXPECT_EQ(name("2026-12-14T08:00:00Z"), "work");
  // The course, 08:00-12:00 in Los Angeles (16:00Z-20:00Z), wins over both.
  EXPECT_EQ(name("2026-12-09T16:00:00Z"), "course");
  EXPECT_EQ(name("2026-12-09T19:59:59Z"), "course");
  EXPECT_EQ(name("2026-12-09T20:00:00Z"), "night");  // its end is not in it

  // Without recurrences, the default.
  EXPECT_EQ(ActiveProfile(Setting({Profile("default", 1, 3, 1), course}), At("2026-12-10T09:00:00Z"))->name, "default");
}

TEST(ProfileTest, AnOffsetWrittenInAFixedDateWinsOverItsTimeZone) {
  Json p = Profile("p", 1, 1, 1);
  p["fixedDate"] = {{"timeZone", "Tokyo Standard Time"}, {"start", "2026-12-09T08:00:00Z"}, {"end", "2026-12-09T10:00:00+01:00"}};
  const AutoscaleSetting s = Setting({Profile("default", 0, 1, 0), p});
  EXPECT_EQ(ActiveProfile(s, At("2026-12-09T08:00:00Z"))->name, "p");
  EXPECT_EQ(ActiveProfile(s, At("2026-12-09T08:59:00Z"))->name, "p");
  EXPECT_EQ(ActiveProfile(s, At("2026-12-09T09:00:00Z"))->name, "default");
  EXPECT_EQ(ActiveProfile(s, At("2026-12-08T23:00:00Z"))->name, "default");  // 08:00 in Tokyo: the offset wins
}

TEST(ProfileTest, ARecurrenceFollowsDaylightSavingTime) {
  // 09:00 in New York: 14:00Z in winter, 13:00Z in summer.
  Json work = Profile("work", 1, 1, 1);
  work["recurrence"] = {{"frequency", "Week"},
                        {"schedule", {{"timeZone", "Eastern Standard Time"}, {"days", {"Monday"}}, {"hours", {9}}, {"minutes", {0}}}}};
  Json off = Profile("off", 0, 0, 0);
  off["recurrence"] = {{"frequency", "Week"},
                       {"schedule", {{"timeZone", "Eastern Standard Time"}, {"days", {"Monday"}}, {"hours", {17}}, {"minutes", {0}}}}};
  const AutoscaleSetting s = Setting({Profile("default", 0, 1, 0), work, off});
  EXPECT_EQ(ActiveProfile(s, At("2026-01-12T13:30:00Z"))->name, "off");   // 08:30 EST
  EXPECT_EQ(ActiveProfile(s, At("2026-01-12T14:00:00Z"))->name, "work");  // 09:00 EST
  EXPECT_EQ(ActiveProfile(s, At("2026-07-13T13:00:00Z"))->name, "work");  // 09:00 EDT
  EXPECT_EQ(ActiveProfile(s, At("2026-07-13T12:59:00Z"))->name, "off");
  // The Monday after the spring change (Sunday 2026-03-08): 13:00Z.
  EXPECT_EQ(ActiveProfile(s, At("2026-03-09T13:00:00Z"))->name, "work");
}

TEST(ProfileTest, AStartADaylightSavingChangeSkipsComesAnHourLater) {
  // Europe springs forward on Sunday 2026-03-29: 02:00 CET is 03:00 CEST,
  // so 02:30 does not exist; it is read as 03:30 CEST (01:30Z).
  Json p = Profile("early", 1, 1, 1);
  p["recurrence"] = {{"frequency", "Week"},
                     {"schedule", {{"timeZone", "W. Europe Standard Time"}, {"days", {"Sunday"}}, {"hours", {2}}, {"minutes", {30}}}}};
  Json q = Profile("late", 0, 0, 0);
  q["recurrence"] = {{"frequency", "Week"},
                     {"schedule", {{"timeZone", "W. Europe Standard Time"}, {"days", {"Saturday"}}, {"hours", {12}}, {"minutes", {0}}}}};
  const AutoscaleSetting s = Setting({Profile("default", 0, 1, 0), p, q});
  EXPECT_EQ(ActiveProfile(s, At("2026-03-29T01:29:00Z"))->name, "late");
  EXPECT_EQ(ActiveProfile(s, At("2026-03-29T01:30:00Z"))->name, "early");
}

// ---------------------------------------------------------------- rules

TEST(ApplyTest, CountsPercentsAndExactCounts) {
  auto apply = [](const std::string& dir, const std::string& type, int64_t value, int64_t count) {
    return Apply(ScaleAction{.direction = dir, .type = type, .value = value}, count);
  };
  EXPECT_EQ(apply("Increase", "ChangeCount", 2, 3), 5);
  EXPECT_EQ(apply("Decrease", "ChangeCount", 5, 3), 0);
  EXPECT_EQ(apply("Increase", "PercentChangeCount", 15, 10), 12);  // 1.5 up: 2
  EXPECT_EQ(apply("Increase", "PercentChangeCount", 20, 0), 1);    // at least 1: out of zero
  EXPECT_EQ(apply("Decrease", "PercentChangeCount", 50, 3), 2);    // 1.5 down: 1
  EXPECT_EQ(apply("Decrease", "PercentChangeCount", 50, 1), 0);    // at least 1
  EXPECT_EQ(apply("Decrease", "PercentChangeCount", 50, 10), 5);
  EXPECT_EQ(apply("Increase", "ExactCount", 3, 1), 3);
  EXPECT_EQ(apply("Increase", "ExactCount", 3, 5), 5);  // "increase to 3" never lowers
  EXPECT_EQ(apply("Decrease", "ExactCount", 0, 5), 0);
  EXPECT_EQ(apply("Decrease", "ExactCount", 7, 5), 5);
  EXPECT_EQ(apply("None", "ChangeCount", 2, 5), 5);
}

TEST_F(EngineTest, TheWindowsGrainsAreAggregatedAsTheRuleSays) {
  // Azure's worked example: a one-minute average per grain, and the
  // highest grain of the window compared with the threshold.
  for (int i = 1; i <= 5; ++i) metrics_.Set("Percentage CPU", now_ - std::chrono::minutes(i), i == 3 ? 90 : 40);
  metrics_.Set("Percentage CPU", now_ - std::chrono::minutes(6), 99);  // before the window
  auto with = [&](const std::string& aggregation) {
    return Setting({Profile("default", 1, 10, 1,
                            {Rule("Percentage CPU", "GreaterThan", 70, "Increase", "ChangeCount", 1, "PT5M", "Average",
                                  aggregation)})});
  };
  auto value = [&](const std::string& aggregation) { return *Run(with(aggregation), 2).rules[0].value; };
  EXPECT_EQ(value("Maximum"), 90);
  EXPECT_EQ(value("Minimum"), 40);
  EXPECT_EQ(value("Average"), 50);
  EXPECT_EQ(value("Total"), 250);
  EXPECT_EQ(value("Count"), 5);
  EXPECT_EQ(value("Last"), 40);
  memory_ = Memory();  // the first run scaled out: no cooldown for this one
  Evaluation e = Run(with("Maximum"), 2);
  EXPECT_EQ(e.action, Action::kScaleOut);
  EXPECT_EQ(e.target, 3);
  EXPECT_EQ(e.summary, "profile 'default': scale out 2 → 3 (Percentage CPU Maximum over PT5M = 90 > 70)");
}

TEST_F(EngineTest, ScaleOutOnAnyRuleToTheLargestCountScaleInOnlyWhenAllAgree) {
  // The best-practice example: CPU < 30 and memory < 50 to scale in; CPU >
  // 75 or memory > 75 to scale out.
  const AutoscaleSetting s = Setting({Profile(
      "default", 1, 20, 1,
      {Rule("Percentage CPU", "LessThan", 30, "Decrease", "ChangeCount", 1),
       Rule("BusyKernels", "LessThan", 50, "Decrease", "PercentChangeCount", 50),
       Rule("Percentage CPU", "GreaterThan", 75, "Increase", "ChangeCount", 3),
       Rule("BusyKernels", "GreaterThan", 75, "Increase", "PercentChangeCount", 50)})});
  auto run = [&](double cpu, double memory) {
    metrics_ = FakeMetrics();
    metrics_.Steady("Percentage CPU", now_, cpu);
    metrics_.Steady("BusyKernels", now_, memory);
    memory_ = Memory();
    return Run(s, 10);
  };
  EXPECT_EQ(run(76, 50).target, 13);  // +3
  EXPECT_EQ(run(50, 76).target, 15);  // +50%
  EXPECT_EQ(run(76, 76).target, 15);  // both: the larger
  Evaluation e = run(25, 51);
  EXPECT_EQ(e.action, Action::kNone);  // only one scale-in rule fires
  EXPECT_EQ(e.target, 10);
  e = run(29, 49);
  EXPECT_EQ(e.action, Action::kScaleIn);
  EXPECT_EQ(e.target, 9);  // -1 and -50%: as little as possible
}

TEST_F(EngineTest, TheProfilesRangeIsEnforcedAtOnceCooldownOrNot) {
  const AutoscaleSetting s = Setting({Profile("default", 3, 6, 3)});
  memory_ = Memory{.last_action = now_, .cooldown_seconds = 3600};
  Evaluation e = Run(s, 1);
  EXPECT_EQ(e.action, Action::kToMinimum);
  EXPECT_EQ(e.target, 3);
  e = Run(s, 8);
  EXPECT_EQ(e.action, Action::kToMaximum);
  EXPECT_EQ(e.target, 6);
  EXPECT_EQ(e.summary, "profile 'default': 8 → 6, down to the maximum");
}

TEST_F(EngineTest, AtTheMaximumAFiringRuleIsHeldBackAndSaysSo) {
  metrics_.Steady("Percentage CPU", now_, 95);
  Evaluation e = Run(Setting({Profile("default", 1, 4, 1, {Rule("Percentage CPU", "GreaterThan", 70, "Increase")})}), 4);
  EXPECT_EQ(e.action, Action::kNone);
  EXPECT_EQ(e.blocked, "at the profile's maximum");
}

TEST_F(EngineTest, TheCooldownOfTheRuleThatActedLastHoldsBothDirections) {
  // Azure's example: a scale-out with a 60-minute cooldown at 10:00 holds
  // everything until 11:00; a scale-in at 13:00 with a 40-minute one holds
  // a scale-out at 13:20 until 13:40.
  const AutoscaleSetting s = Setting({Profile(
      "default", 1, 10, 1,
      {Rule("Percentage CPU", "GreaterThan", 70, "Increase", "ChangeCount", 1, "PT60M"),
       Rule("Percentage CPU", "LessThan", 20, "Decrease", "ChangeCount", 1, "PT40M")})});
  auto at = [&](const std::string& t, double cpu, int64_t count) {
    now_ = At(t);
    metrics_ = FakeMetrics();
    metrics_.Steady("Percentage CPU", now_, cpu);
    return Run(s, count);
  };
  EXPECT_EQ(at("2026-12-09T10:00:00Z", 90, 2).target, 3);
  Evaluation e = at("2026-12-09T10:30:00Z", 10, 3);
  EXPECT_EQ(e.action, Action::kNone);
  EXPECT_EQ(e.target, 3);
  EXPECT_EQ(e.blocked, "in the cooldown of PT1H until 2026-12-09T11:00:00.000Z");
  EXPECT_EQ(at("2026-12-09T10:59:00Z", 90, 3).target, 3);
  EXPECT_EQ(at("2026-12-09T11:00:00Z", 10, 3).target, 2);  // cooldown over: scale in (40 minutes now)
  EXPECT_EQ(at("2026-12-09T11:20:00Z", 90, 2).target, 2);
  EXPECT_EQ(at("2026-12-09T11:40:00Z", 90, 2).target, 3);
}

// Azure's flapping examples (azure-semantics.md A4).
TEST_F(EngineTest, AScaleInThatWouldTripAScaleOutIsNotMade) {
  // A: 1250 threads on 3 instances, 417 each; out at >= 600, in below 600.
  // Two instances would carry 625 each: no scale-in.
  metrics_.Steady("ActiveSessions", now_, 1250.0 / 3);
  const AutoscaleSetting a = Setting({Profile(
      "default", 1, 10, 1,
      {Rule("ActiveSessions", "GreaterThanOrEqual", 600, "Increase"), Rule("ActiveSessions", "LessThan", 600, "Decrease")})});
  Evaluation e = Run(a, 3);
  EXPECT_EQ(e.action, Action::kNone);
  EXPECT_EQ(e.target, 3);
  EXPECT_EQ(e.blocked, "flapping: at 2 instances a scale-out rule would fire");
  EXPECT_FALSE(e.memory.last_action);  // nothing was done: no cooldown

  // B: CPU 56% on one instance went to two at 28%; back to one would be 56%
  // again, above the 50% scale-out threshold.
  metrics_ = FakeMetrics();
  metrics_.Steady("Percentage CPU", now_, 28);
  const AutoscaleSetting b = Setting({Profile(
      "default", 1, 10, 1,
      {Rule("Percentage CPU", "GreaterThan", 50, "Increase"), Rule("Percentage CPU", "LessThan", 30, "Decrease")})});
  EXPECT_EQ(Run(b, 2).blocked, "flapping: at 1 instance a scale-out rule would fire");
}

TEST_F(EngineTest, TheFlappingGuardScalesInByLessWhenThatIsSafe) {
  // 30 instances at 54% each; the rule says -10 (to 20), but below 27 the
  // projected load passes the 60% scale-out threshold: 27 it is.
  metrics_.Steady("Percentage CPU", now_, 54);
  const AutoscaleSetting s = Setting({Profile(
      "default", 1, 50, 1,
      {Rule("Percentage CPU", "GreaterThan", 60, "Increase"), Rule("Percentage CPU", "LessThan", 55, "Decrease", "ChangeCount", 10)})});
  Evaluation e = Run(s, 30);
  EXPECT_EQ(e.action, Action::kScaleIn);
  EXPECT_EQ(e.target, 27);
  EXPECT_EQ(e.intended, 20);
  EXPECT_NE(e.summary.find("20 would flap, so 27"), std::string::npos) << e.summary;
}

TEST_F(EngineTest, APoolsTotalIsNotProjectedOntoFewerInstances) {
  // Held connections are the pool's, not an instance's: with none held, a
  // scale-in is no flapping risk, however few instances remain.
  metrics_.Steady("PendingConnections", now_, 0);
  metrics_.Steady("ActiveSessions", now_, 0);
  const AutoscaleSetting s = Setting({Profile(
      "default", 0, 10, 0,
      {Rule("PendingConnections", "GreaterThan", 0, "Increase", "ChangeCount", 1, "PT1M", "Sum", "Maximum"),
       Rule("ActiveSessions", "LessThanOrEqual", 0, "Decrease", "ExactCount", 0, "PT5M", "Sum", "Maximum")})});
  Evaluation e = Run(s, 2);
  EXPECT_EQ(e.action, Action::kScaleIn);
  EXPECT_EQ(e.target, 0);
}

TEST_F(EngineTest, DividePerInstanceMakesAQueueLengthPerInstance) {
  // Azure's queue example: out at >= 50 per instance, in at <= 10. With 2
  // instances the first scale-out needs 100 held connections in all.
  const AutoscaleSetting s = Setting({Profile(
      "default", 1, 10, 1,
      {Rule("PendingConnections", "GreaterThanOrEqual", 50, "Increase", "ChangeCount", 1, "PT5M", "Sum"),
       Rule("PendingConnections", "LessThanOrEqual", 10, "Decrease", "ChangeCount", 1, "PT5M", "Sum")})});
  AutoscaleSetting per = s;
  for (ScaleRule& r : per.profiles[0].rules) r.trigger.divide_per_instance = true;
  metrics_.Steady("PendingConnections", now_, 99);
  EXPECT_EQ(Run(per, 2).action, Action::kNone);
  metrics_.Steady("PendingConnections", now_, 100);
  Evaluation e = Run(per, 2);
  EXPECT_EQ(e.target, 3);
  EXPECT_EQ(*e.rules[0].value, 50);
  EXPECT_NE(e.summary.find("PendingConnections Average over PT5M per instance = 50 >= 50"), std::string::npos) << e.summary;
}

TEST_F(EngineTest, WithoutMetricsTheCountGoesUpToTheDefaultAndNeverDown) {
  const AutoscaleSetting s = Setting({Profile(
      "default", 0, 10, 2,
      {Rule("Percentage CPU", "GreaterThan", 70, "Increase"), Rule("Percentage CPU", "LessThan", 20, "Decrease")})});
  Evaluation e = Run(s, 1);
  EXPECT_EQ(e.action, Action::kToDefault);
  EXPECT_EQ(e.target, 2);
  EXPECT_EQ(e.missing_metrics, std::vector<std::string>{"Percentage CPU"});
  EXPECT_EQ(e.summary, "profile 'default': 1 → 2, up to the default: no data for Percentage CPU");
  e = Run(s, 5);
  EXPECT_EQ(e.action, Action::kNone);
  EXPECT_EQ(e.target, 5);
  EXPECT_FALSE(e.rules[1].value);
}

TEST_F(EngineTest, ThePoolGoesToZeroOnlyWhenNoSessionIsOpen) {
  metrics_.Steady("BusyKernels", now_, 0);
  const AutoscaleSetting s = Setting({Profile(
      "default", 0, 10, 0, {Rule("BusyKernels", "LessThanOrEqual", 0, "Decrease", "ExactCount", 0)})});
  Evaluation e = Run(s, 3, /*sessions=*/2);
  EXPECT_EQ(e.action, Action::kScaleIn);
  EXPECT_EQ(e.target, 1);
  EXPECT_EQ(e.blocked, "not to zero: 2 sessions are open");
  memory_ = Memory();
  e = Run(s, 1, /*sessions=*/1);
  EXPECT_EQ(e.action, Action::kNone);
  EXPECT_EQ(e.target, 1);
  EXPECT_EQ(e.blocked, "not to zero: 1 session is open");
  e = Run(s, 1, /*sessions=*/0);
  EXPECT_EQ(e.target, 0);
}

TEST_F(EngineTest, ADisabledSettingDoesNothing) {
  AutoscaleSetting s = Setting({Profile("default", 3, 6, 3)});
  s.enabled = false;
  Evaluation e = Run(s, 1);
  EXPECT_EQ(e.action, Action::kNone);
  EXPECT_EQ(e.target, 1);
  EXPECT_EQ(e.summary, "the setting is disabled");
}

}  // namespace
}  // namespace dspool::autoscale
