#include "model/autoscale.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

// The setting of Azure's VMSS autoscale quickstart, in its own form.
Json Setting() {
  return Json::parse(R"({
    "name": "cpuautoscale", "enabled": true,
    "targetResourceUri": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/pool",
    "profiles": [{
      "name": "Autoscale by percentage based on CPU usage",
      "capacity": {"minimum": "1", "maximum": "5", "default": "2"},
      "rules": [
        {"metricTrigger": {"metricName": "Percentage CPU", "metricNamespace": "", "metricResourceUri": "/x",
                           "timeGrain": "PT1M", "statistic": "Average", "timeWindow": "PT5M",
                           "timeAggregation": "Average", "operator": "GreaterThan", "threshold": 70},
         "scaleAction": {"direction": "Increase", "type": "ChangeCount", "value": "1", "cooldown": "PT5M"}},
        {"metricTrigger": {"metricName": "percentage cpu", "timeGrain": "PT1M", "statistic": "Average",
                           "timeWindow": "PT10M", "timeAggregation": "Average", "operator": "LessThan", "threshold": 30.5},
         "scaleAction": {"direction": "Decrease", "type": "ChangeCount", "value": "1", "cooldown": "PT1H"}}]},
     {"name": "weekend", "capacity": {"minimum": 0, "maximum": 2, "default": 0}, "rules": [],
      "recurrence": {"frequency": "Week", "schedule": {"timeZone": "Pacific Standard Time", "days": ["saturday", "Sunday"],
                                                       "hours": [0], "minutes": [0]}}},
     {"name": "launch", "capacity": {"minimum": "3", "maximum": "5", "default": "3"}, "rules": [],
      "fixedDate": {"timeZone": "W. Europe Standard Time", "start": "2026-12-24T08:00:00", "end": "2026-12-24T18:00:00"}}],
    "notifications": [{"operation": "Scale",
                       "email": {"sendToSubscriptionAdministrator": false, "sendToSubscriptionCoAdministrators": false,
                                 "customEmails": []},
                       "webhooks": [{"serviceUri": "https://hooks.example/scale", "properties": {"team": "ds"}}]}]
  })");
}

std::string Error(const Json& j) {
  auto r = ParseAutoscaleSetting(j, "autoscale", 100);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

TEST(AutoscaleTest, AzuresFormParsesAndWritesBack) {
  auto s = ParseAutoscaleSetting(Setting(), "autoscale", 100);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->profiles.size(), 3u);
  const AutoscaleProfile& cpu = s->profiles[0];
  EXPECT_EQ(cpu.capacity, (ScaleCapacity{1, 5, 2}));
  ASSERT_EQ(cpu.rules.size(), 2u);
  EXPECT_EQ(cpu.rules[1].trigger.metric_name, "Percentage CPU");  // its spelling, whatever the case
  EXPECT_EQ(cpu.rules[1].trigger.time_window_seconds, 600);
  EXPECT_EQ(cpu.rules[1].trigger.threshold, 30.5);
  EXPECT_EQ(cpu.rules[1].action.cooldown_seconds, 3600);
  EXPECT_EQ(s->profiles[1].recurrence->days, (std::vector<std::string>{"Saturday", "Sunday"}));
  EXPECT_EQ(s->profiles[2].fixed_date->time_zone, "W. Europe Standard Time");
  ASSERT_EQ(s->webhooks.size(), 1u);
  EXPECT_EQ(s->webhooks[0].properties[0], (std::pair<std::string, std::string>{"team", "ds"}));
  Json back = AutoscaleSettingToJson(*s);
  EXPECT_EQ(back["profiles"][0]["capacity"]["default"], "2");
  EXPECT_EQ(back["profiles"][0]["rules"][1]["scaleAction"]["cooldown"], "PT1H");
  auto again = ParseAutoscaleSetting(back, "autoscale", 100);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *s);
}

TEST(AutoscaleTest, DurationsAreIso8601) {
  EXPECT_EQ(ParseIsoDuration("PT5M"), 300);
  EXPECT_EQ(ParseIsoDuration("P1DT2H"), 93600);
  EXPECT_EQ(ParseIsoDuration("P1W"), 604800);
  EXPECT_EQ(ParseIsoDuration("PT1H30M15S"), 5415);
  for (const char* bad : {"", "P", "PT", "5M", "PT5", "P1M", "P1Y", "PT5M5M", "PTM", "PT-5M", "P1H"}) {
    EXPECT_FALSE(ParseIsoDuration(bad).has_value()) << bad;
  }
  EXPECT_EQ(FormatIsoDuration(300), "PT5M");
  EXPECT_EQ(FormatIsoDuration(93600), "P1DT2H");
  EXPECT_EQ(FormatIsoDuration(604800), "P7D");
}

TEST(AutoscaleTest, WindowsTimeZonesMapToIanaOnes) {
  EXPECT_EQ(IanaTimeZone("Pacific Standard Time"), "America/Los_Angeles");
  EXPECT_EQ(IanaTimeZone("W. Europe Standard Time"), "Europe/Berlin");
  EXPECT_TRUE(IanaTimeZone("UTC").has_value());
  EXPECT_FALSE(IanaTimeZone("Mars Standard Time").has_value());
  EXPECT_FALSE(IanaTimeZone("").has_value());
}

TEST(AutoscaleTest, EveryLimitIsNamedByItsPath) {
  auto with = [](const std::string& pointer, Json value) {
    Json j = Setting();
    if (value.is_null()) {
      std::string parent = pointer.substr(0, pointer.rfind('/'));
      j[Json::json_pointer(parent)].erase(pointer.substr(pointer.rfind('/') + 1));
    } else {
      j[Json::json_pointer(pointer)] = value;
    }
    return j;
  };
  const std::string rule0 = "/profiles/0/rules/0";
  EXPECT_EQ(Error(with("/profiles/0/capacity/minimum", "6")), "autoscale.profiles[0].capacity.minimum: is greater than maximum");
  EXPECT_EQ(Error(with("/profiles/0/capacity/default", "9")),
            "autoscale.profiles[0].capacity.default: must be between minimum and maximum");
  EXPECT_EQ(Error(with("/profiles/0/capacity/maximum", "101")),
            "autoscale.profiles[0].capacity.maximum: exceeds the pool's most instances, 100");
  EXPECT_NE(Error(with("/profiles/0/capacity/maximum", "five")).find("capacity.maximum: must be a whole number"),
            std::string::npos);
  EXPECT_NE(Error(with(rule0 + "/metricTrigger/metricName", "Queue Length"))
                .find("profiles[0].rules[0].metricTrigger.metricName: 'Queue Length' is not a metric of a pool"),
            std::string::npos);
  EXPECT_EQ(Error(with(rule0 + "/metricTrigger/timeGrain", "PT30S")),
            "autoscale.profiles[0].rules[0].metricTrigger.timeGrain: 'PT30S' must be between 1 minute and 12 hours");
  EXPECT_EQ(Error(with(rule0 + "/metricTrigger/timeWindow", "PT2M")),
            "autoscale.profiles[0].rules[0].metricTrigger.timeWindow: 'PT2M' must be between 5 minutes and 12 hours");
  EXPECT_EQ(Error(with(rule0 + "/metricTrigger/timeGrain", "PT10M")),
            "autoscale.profiles[0].rules[0].metricTrigger.timeWindow: is shorter than timeGrain");
  EXPECT_NE(Error(with(rule0 + "/metricTrigger/operator", "Above")).find("metricTrigger.operator: 'Above' is not one of"),
            std::string::npos);
  EXPECT_NE(Error(with(rule0 + "/metricTrigger/threshold", "70")).find("metricTrigger.threshold: must be a number"),
            std::string::npos);
  EXPECT_NE(Error(with(rule0 + "/metricTrigger/threshold", nullptr)).find("metricTrigger.threshold: is required"),
            std::string::npos);
  EXPECT_NE(Error(with(rule0 + "/metricTrigger/dimensions", Json::array({{{"DimensionName", "VMName"}}})))
                .find("metricTrigger.dimensions: a pool's metrics have no dimensions"),
            std::string::npos);
  EXPECT_EQ(Error(with(rule0 + "/scaleAction/cooldown", "P8D")),
            "autoscale.profiles[0].rules[0].scaleAction.cooldown: 'P8D' must be between 1 minute and 1 week");
  EXPECT_EQ(Error(with(rule0 + "/scaleAction/value", "0")), "autoscale.profiles[0].rules[0].scaleAction.value: must be 1 or greater");
  EXPECT_NE(Error(with(rule0 + "/scaleAction/type", "ServiceAllowedNextValue")).find("no documented meaning"),
            std::string::npos);
  EXPECT_NE(Error(with(rule0 + "/scaleAction/typo", "x")).find("typo"), std::string::npos);
  // ExactCount 0: a pool may be sent to zero.
  Json zero = with(rule0 + "/scaleAction/type", "ExactCount");
  zero[Json::json_pointer(rule0 + "/scaleAction/value")] = "0";
  EXPECT_TRUE(ParseAutoscaleSetting(zero, "autoscale", 100).ok());

  EXPECT_EQ(Error(with("/profiles/1/recurrence/frequency", "Day")), "autoscale.profiles[1].recurrence.frequency: 'Day' must be Week");
  EXPECT_NE(Error(with("/profiles/1/recurrence/schedule/timeZone", "Pacific Time"))
                .find("recurrence.schedule.timeZone: 'Pacific Time' is not a Windows time-zone name"),
            std::string::npos);
  EXPECT_EQ(Error(with("/profiles/1/recurrence/schedule/hours", {24})),
            "autoscale.profiles[1].recurrence.schedule.hours: 24 is not between 0 and 23");
  EXPECT_NE(Error(with("/profiles/1/recurrence/schedule/days", {"Funday"})).find("'Funday' is not a day"), std::string::npos);
  EXPECT_EQ(Error(with("/profiles/2/fixedDate/end", "2026-12-24T07:00:00")),
            "autoscale.profiles[2].fixedDate.end: is not after start");
  EXPECT_EQ(Error(with("/profiles/2/fixedDate/end", "2028-01-01T00:00:00")),
            "autoscale.profiles[2].fixedDate.end: is more than 365 days after start");
  EXPECT_NE(Error(with("/profiles/2/fixedDate/start", "Christmas")).find("fixedDate.start: 'Christmas' is not a date"),
            std::string::npos);
  Json both = Setting();
  both["profiles"][2]["recurrence"] = both["profiles"][1]["recurrence"];
  EXPECT_EQ(Error(both), "autoscale.profiles[2].recurrence: is given with fixedDate; a profile has one or the other");
  Json two_defaults = Setting();
  two_defaults["profiles"][1].erase("recurrence");
  EXPECT_EQ(Error(two_defaults),
            "autoscale.profiles[1]: a second default profile (one without fixedDate or recurrence); a setting has one");
  Json same_name = Setting();
  same_name["profiles"][1]["name"] = "LAUNCH";
  same_name["profiles"][2]["name"] = "launch";
  EXPECT_EQ(Error(same_name), "autoscale.profiles[2].name: 'launch' is the name of another profile too");
  Json many_rules = Setting();
  for (int i = 0; i < 9; ++i) many_rules["profiles"][0]["rules"].push_back(many_rules["profiles"][0]["rules"][0]);
  EXPECT_EQ(Error(many_rules), "autoscale.profiles[0].rules: holds more than 10 rules");
  EXPECT_EQ(Error(with("/profiles", Json::array())), "autoscale.profiles: needs at least one profile");
  EXPECT_EQ(Error(with("/notifications/0/email/customEmails", {"ops@example.com"})),
            "autoscale.notifications[0].email.customEmails: this host sends no mail; notify a webhook");
  EXPECT_EQ(Error(with("/notifications/0/webhooks/0/serviceUri", "ftp://x")),
            "autoscale.notifications[0].webhooks[0].serviceUri: 'ftp://x' is not an http or https URL");
  EXPECT_EQ(Error(with("/predictiveAutoscalePolicy", {{"scaleMode", "Enabled"}})),
            "autoscale.predictiveAutoscalePolicy.scaleMode: predictive autoscale is not done here; only Disabled");
}

TEST(TimeZoneTest, WallTimesAcrossDaylightSavingChanges) {
  auto berlin = TimeZone::Open("W. Europe Standard Time");
  ASSERT_TRUE(berlin);
  EXPECT_EQ(berlin->iana(), "Europe/Berlin");
  // 2026-12-09T09:00:00Z is Wednesday 10:00 in Berlin (CET, +1).
  CivilTime t = berlin->ToLocal(1796806800);
  EXPECT_EQ(t, (CivilTime{.year = 2026, .month = 12, .day = 9, .hour = 10, .minute = 0, .second = 0, .weekday = 3}));
  EXPECT_EQ(berlin->FromLocal(CivilTime{.year = 2026, .month = 12, .day = 9, .hour = 10}), 1796806800);
  // Summer (CEST, +2).
  EXPECT_EQ(berlin->FromLocal(CivilTime{.year = 2026, .month = 7, .day = 1, .hour = 12}), 1782900000);
  // 02:30 on 2026-03-29 does not exist: read as if the change had not
  // happened, 02:30 CET = 01:30Z.
  EXPECT_EQ(berlin->FromLocal(CivilTime{.year = 2026, .month = 3, .day = 29, .hour = 2, .minute = 30}), 1774747800);
  // 02:30 on 2026-10-25 happens twice: the first, 02:30 CEST = 00:30Z.
  EXPECT_EQ(berlin->FromLocal(CivilTime{.year = 2026, .month = 10, .day = 25, .hour = 2, .minute = 30}), 1792888200);
  EXPECT_FALSE(TimeZone::Open("Mars Standard Time"));

  auto utc = TimeZone::Open("UTC");
  ASSERT_TRUE(utc);
  EXPECT_EQ(FixedDateInstant("2026-12-24T08:00:00", *utc), 1798099200);
  EXPECT_EQ(FixedDateInstant("2026-12-24T08:00:00", *berlin), 1798095600);
  EXPECT_EQ(FixedDateInstant("2026-12-24T08:00:00-05:00", *berlin), 1798117200);  // a written offset wins
  EXPECT_FALSE(FixedDateInstant("2026-12-24 08:00", *utc));
}

}  // namespace
}  // namespace dspool
