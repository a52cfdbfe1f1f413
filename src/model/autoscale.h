// AutoscaleSetting: Azure Monitor's autoscale settings
// (Microsoft.Insights/autoscaleSettings; azure-semantics.md part A) as a
// value, parsed strictly from Azure's JSON form of the setting's
// properties, with every limit Azure documents checked and named by its
// JSON path (docs/autoscale.md).
//
// A pool's `autoscale` holds one: profiles (the default one, fixed-date
// ones, weekly recurrences), each with a capacity and up to 10 metric
// rules, and notifications. Evaluating them is the autoscale engine's
// (issue 16); this is what a template's setting or a pool spec holds.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "model/json_reader.h"

namespace dspool {

// The metrics a rule may name: Azure's host metrics that apply to an
// instance, and dspool's demand metrics (docs/autoscale.md).
const std::vector<std::string>& AutoscaleMetricNames();

// An ISO 8601 duration ("PT5M", "P1DT2H", "PT30S", "P1W") in seconds;
// nullopt if it is not one. Years and months are refused (their length
// varies).
std::optional<int64_t> ParseIsoDuration(std::string_view text);
std::string FormatIsoDuration(int64_t seconds);

struct MetricDimension {
  std::string name;
  std::string op;  // "Equals" or "NotEquals"
  std::vector<std::string> values;
  friend bool operator==(const MetricDimension&, const MetricDimension&) = default;
};

struct MetricTrigger {
  std::string metric_name;
  std::string metric_namespace;
  std::string metric_resource_uri;  // a template's; a native spec means its own pool
  int64_t time_grain_seconds = 60;
  std::string statistic = "Average";         // Average, Min, Max, Sum, Count
  int64_t time_window_seconds = 300;
  std::string time_aggregation = "Average";  // Average, Minimum, Maximum, Total, Count, Last
  std::string op = "GreaterThan";            // Equals, NotEquals, GreaterThan(OrEqual), LessThan(OrEqual)
  double threshold = 0;
  std::vector<MetricDimension> dimensions;
  bool divide_per_instance = false;
  friend bool operator==(const MetricTrigger&, const MetricTrigger&) = default;
};

struct ScaleAction {
  std::string direction = "Increase";  // Increase, Decrease, None
  std::string type = "ChangeCount";    // ChangeCount, PercentChangeCount, ExactCount
  int64_t value = 1;
  int64_t cooldown_seconds = 300;
  friend bool operator==(const ScaleAction&, const ScaleAction&) = default;
};

struct ScaleRule {
  MetricTrigger trigger;
  ScaleAction action;
  friend bool operator==(const ScaleRule&, const ScaleRule&) = default;
};

struct ScaleCapacity {
  int64_t minimum = 0;
  int64_t maximum = 0;
  int64_t default_count = 0;
  friend bool operator==(const ScaleCapacity&, const ScaleCapacity&) = default;
};

// A fixed-date profile's window, as written ("2026-12-24T00:00:00", an
// offset or Z allowed) in `time_zone` (a Windows zone name, as Azure's).
struct FixedDate {
  std::string time_zone = "UTC";
  std::string start;
  std::string end;
  friend bool operator==(const FixedDate&, const FixedDate&) = default;
};

// A weekly recurrence: the profile starts at each of `hours` x `minutes`
// of each of `days`, in `time_zone`, and lasts until the next profile's
// start.
struct Recurrence {
  std::string time_zone;
  std::vector<std::string> days;  // "Sunday".."Saturday"
  std::vector<int64_t> hours;     // 0..23
  std::vector<int64_t> minutes;   // 0..59
  friend bool operator==(const Recurrence&, const Recurrence&) = default;
};

struct AutoscaleProfile {
  std::string name;
  ScaleCapacity capacity;
  std::vector<ScaleRule> rules;
  std::optional<FixedDate> fixed_date;
  std::optional<Recurrence> recurrence;
  friend bool operator==(const AutoscaleProfile&, const AutoscaleProfile&) = default;
};

struct Webhook {
  std::string service_uri;
  std::vector<std::pair<std::string, std::string>> properties;
  friend bool operator==(const Webhook&, const Webhook&) = default;
};

struct AutoscaleSetting {
  std::string name;
  bool enabled = true;
  std::vector<AutoscaleProfile> profiles;
  std::vector<Webhook> webhooks;  // notifications[].webhooks, operation Scale
  friend bool operator==(const AutoscaleSetting&, const AutoscaleSetting&) = default;
};

inline constexpr size_t kMaxAutoscaleProfiles = 20;
inline constexpr size_t kMaxRulesPerProfile = 10;

// Checks a Windows time-zone name as Azure takes it ("Pacific Standard
// Time", "UTC"): its IANA zone, or nullopt if it names none.
std::optional<std::string> IanaTimeZone(std::string_view windows_name);

// A wall-clock time; `weekday` 0 is Sunday (ToLocal fills it; FromLocal
// ignores it).
struct CivilTime {
  int year = 1970, month = 1, day = 1;
  int hour = 0, minute = 0, second = 0;
  int weekday = 0;
  friend bool operator==(const CivilTime&, const CivilTime&) = default;
};

// A Windows time zone as Azure names them, on the IANA zone ICU maps it to
// (and ICU's time-zone data). A value; copies share one calendar, so a
// TimeZone is used by one thread at a time.
class TimeZone {
 public:
  static std::optional<TimeZone> Open(std::string_view windows_name);
  const std::string& iana() const { return iana_; }
  CivilTime ToLocal(int64_t unix_seconds) const;
  // The instant of a wall time. One that a daylight-saving change skips is
  // read as if the change had not happened (02:30 on the spring-forward
  // night is 03:30); one that occurs twice is its first occurrence.
  int64_t FromLocal(const CivilTime& t) const;

 private:
  struct Calendar;
  TimeZone() = default;
  std::shared_ptr<Calendar> calendar_;
  std::string iana_;
};

// A fixed date's start or end as seconds since 1970: with an offset or Z
// as written; else the wall time in `zone`. Nullopt if it is not a date
// and time.
std::optional<int64_t> FixedDateInstant(const std::string& text, const TimeZone& zone);

// Parses Azure's form of the setting's properties ({"name", "enabled",
// "profiles", "notifications", "targetResourceUri", ...}); errors name the
// JSON path under `path`. `max_instances` bounds every capacity.
Result<AutoscaleSetting> ParseAutoscaleSetting(const Json& json, const std::string& path, int64_t max_instances);
// Azure's form again (capacities and values as strings, as Azure writes
// them).
Json AutoscaleSettingToJson(const AutoscaleSetting& setting);

}  // namespace dspool
