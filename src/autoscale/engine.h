// The autoscale rule engine: one run of an autoscale setting against a
// pool, as Azure Monitor's autoscale job runs it (azure-semantics.md part
// A4), as a pure function of the setting, the pool's count, the metrics,
// what the last runs remembered and the time (docs/autoscale.md, "How a
// run decides").
//
//   1. The profile: the first fixed-date profile whose window holds now,
//      else the recurring profile that started last (a recurrence lasts
//      until the next one starts), else the default profile.
//   2. The count is brought into the profile's [minimum, maximum] at once,
//      cooldown or not (Azure resets a manual count outside the range).
//   3. Each rule's metric over its time window: per time grain the pool's
//      value (its instances combined by `statistic`), the grains combined
//      by `timeAggregation`, divided by the count if `dividePerInstance`.
//   4. Scale out if any Increase rule fires (the largest count asked for);
//      else scale in if every Decrease rule fires (the largest count asked
//      for: as little as possible). A rule without data does not fire; and
//      when a metric has no data and the count is below the profile's
//      default, the count goes to the default (Azure's rule).
//   5. Not within the cooldown of the rule that acted last (in either
//      direction); a scale-in must pass Azure's flapping guard: the count
//      it leads to must not fire a scale-out rule, with per-instance
//      values projected onto it (value × count / new count); if it would,
//      the nearest count above it that does not, or no scale-in at all.
//   6. dspool's rule for interactive work: no scale-in to zero while a
//      session is open.
//
// Every run says what it decided and why, blocked or not, for the events
// `monitor autoscale show` lists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "model/autoscale.h"

namespace dspool::autoscale {

// Where a run reads metrics.
class MetricView {
 public:
  virtual ~MetricView() = default;
  // The pool's values of `metric` for each `grain_seconds` grain that
  // starts in [from, to) and has data, oldest first: in each grain, the
  // instances' values combined by `statistic` (Average, Min, Max, Sum,
  // Count), as Azure combines a scale set's instances.
  virtual std::vector<double> Grains(const std::string& metric, const std::string& statistic, int64_t grain_seconds,
                                     TimePoint from, TimePoint to) const = 0;
};

// What a run remembers for the next: kept with the pool.
struct Memory {
  std::optional<TimePoint> last_action;  // when a rule last changed the count
  int64_t cooldown_seconds = 0;          // that rule's cooldown
  friend bool operator==(const Memory&, const Memory&) = default;
};

struct Input {
  int64_t count = 0;          // the pool's instance count now
  int64_t open_sessions = 0;  // SSH sessions and notebook servers open in it
  TimePoint now;              // wall time: profiles are schedules in time zones
};

enum class Action {
  kNone,        // the count stays
  kScaleOut,    // a rule asked for more
  kScaleIn,     // every scale-in rule asked for fewer
  kToMinimum,   // below the profile's minimum
  kToMaximum,   // above the profile's maximum
  kToDefault,   // a metric has no data, and the count is below the default
};
std::string_view ActionName(Action a);  // "None", "ScaleOut", ...

// One rule in a run.
struct RuleResult {
  size_t index = 0;                  // in the profile's rules
  std::optional<double> value;       // the aggregated metric; nullopt: no data in the window
  bool fired = false;
  int64_t asks = 0;                  // the count it asks for when it fired
  // "Percentage CPU Average over PT5M = 82.5 > 70" (or "= no data").
  std::string ToString(const ScaleRule& rule) const;
};

struct Evaluation {
  std::string profile;  // the profile in force; empty if the setting is disabled
  int64_t count = 0;    // Input::count
  int64_t target = 0;   // the count to go to; == count: no change
  Action action = Action::kNone;
  // A change the rules asked for and did not get, and why ("cooldown of
  // PT10M until ...", "flapping: ...", "sessions are open"); empty if none.
  std::string blocked;
  // Set when the flapping guard scaled in by less than the rule asked.
  std::optional<int64_t> intended;
  std::vector<RuleResult> rules;
  std::vector<std::string> missing_metrics;  // metrics with no data in their window
  Memory memory;                             // for the next run
  // One line for people: the profile, what happened, and the values that
  // decided it.
  std::string summary;
};

// The profile in force at `now` (nullptr: none applies, which a valid
// setting with a default profile never has).
const AutoscaleProfile* ActiveProfile(const AutoscaleSetting& setting, TimePoint now);

// The count a rule's action asks for from `count`. A percent change is
// rounded up when scaling out and down when scaling in, and is at least 1
// (docs/autoscale.md: Azure does not document its rounding); ExactCount
// asks for its value only in its direction.
int64_t Apply(const ScaleAction& action, int64_t count);

Evaluation Evaluate(const AutoscaleSetting& setting, const Input& input, const Memory& memory,
                    const MetricView& metrics);

}  // namespace dspool::autoscale
