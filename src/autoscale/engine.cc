#include "autoscale/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace dspool::autoscale {
namespace {

int64_t UnixSeconds(TimePoint t) {
  const int64_t ms = ToUnixMillis(t);
  return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

// Days since 1970-01-01 of a civil date, and back (Howard Hinnant's
// algorithms).
int64_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

CivilTime CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  CivilTime t;
  t.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  t.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  t.year = static_cast<int>(yoe + era * 400 + (t.month <= 2));
  return t;
}

const char* kDayNames[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

bool InFixedDate(const FixedDate& f, int64_t now) {
  auto zone = TimeZone::Open(f.time_zone);
  if (!zone) return false;
  auto start = FixedDateInstant(f.start, *zone), end = FixedDateInstant(f.end, *zone);
  return start && end && *start <= now && now < *end;
}

// When `r` last started at or before `now` (it starts every listed day at
// each hour x minute, in its zone), within the last week and a day.
std::optional<int64_t> LastStart(const Recurrence& r, int64_t now) {
  auto zone = TimeZone::Open(r.time_zone);
  if (!zone) return std::nullopt;
  const CivilTime today = zone->ToLocal(now);
  const int64_t today_days = DaysFromCivil(today.year, today.month, today.day);
  for (int64_t back = 0; back <= 7; ++back) {
    const int64_t days = today_days - back;
    const int weekday = static_cast<int>(((days % 7) + 11) % 7);  // 1970-01-01 was a Thursday
    if (std::find(r.days.begin(), r.days.end(), kDayNames[weekday]) == r.days.end()) continue;
    std::optional<int64_t> best;
    CivilTime t = CivilFromDays(days);
    for (int64_t hour : r.hours) {
      for (int64_t minute : r.minutes) {
        t.hour = static_cast<int>(hour);
        t.minute = static_cast<int>(minute);
        const int64_t at = zone->FromLocal(t);
        if (at <= now && (!best || at > *best)) best = at;
      }
    }
    // A start on a later day is later than any on an earlier one.
    if (best) return best;
  }
  return std::nullopt;
}

bool Compare(double value, const std::string& op, double threshold) {
  if (op == "Equals") return value == threshold;
  if (op == "NotEquals") return value != threshold;
  if (op == "GreaterThan") return value > threshold;
  if (op == "GreaterThanOrEqual") return value >= threshold;
  if (op == "LessThan") return value < threshold;
  return value <= threshold;  // LessThanOrEqual
}

const char* OperatorSymbol(const std::string& op) {
  if (op == "Equals") return "==";
  if (op == "NotEquals") return "!=";
  if (op == "GreaterThan") return ">";
  if (op == "GreaterThanOrEqual") return ">=";
  if (op == "LessThan") return "<";
  return "<=";
}

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::optional<double> Aggregate(const std::vector<double>& grains, const std::string& how) {
  if (grains.empty()) return std::nullopt;
  if (how == "Minimum") return *std::min_element(grains.begin(), grains.end());
  if (how == "Maximum") return *std::max_element(grains.begin(), grains.end());
  if (how == "Total") return std::accumulate(grains.begin(), grains.end(), 0.0);
  if (how == "Count") return static_cast<double>(grains.size());
  if (how == "Last") return grains.back();
  return std::accumulate(grains.begin(), grains.end(), 0.0) / static_cast<double>(grains.size());  // Average
}

// A value that is per instance changes with the count: an average (or
// minimum, maximum) across instances, or one divided per instance. A
// pool's total (Sum, Count) does not.
bool PerInstance(const MetricTrigger& t) {
  return t.divide_per_instance || t.statistic == "Average" || t.statistic == "Min" || t.statistic == "Max";
}

// Azure's flapping guard: would `candidate` instances fire a scale-out
// rule, the per-instance values projected from `count` onto it? At zero
// there is no instance, so no per-instance value (Azure's host metrics
// have no data at zero): only a pool's total can fire.
bool WouldScaleOut(const AutoscaleProfile& profile, const std::vector<RuleResult>& results, int64_t count,
                   int64_t candidate) {
  for (const RuleResult& r : results) {
    const ScaleRule& rule = profile.rules[r.index];
    if (rule.action.direction != "Increase" || !r.value) continue;
    double projected = *r.value;
    if (PerInstance(rule.trigger)) {
      if (candidate == 0) continue;
      projected = *r.value * static_cast<double>(count) / static_cast<double>(candidate);
    }
    if (Compare(projected, rule.trigger.op, rule.trigger.threshold)) return true;
  }
  return false;
}

std::string Instances(int64_t n) { return std::to_string(n) + (n == 1 ? " instance" : " instances"); }

std::string Change(int64_t from, int64_t to) { return std::to_string(from) + " → " + std::to_string(to); }

}  // namespace

std::string_view ActionName(Action a) {
  switch (a) {
    case Action::kNone: return "None";
    case Action::kScaleOut: return "ScaleOut";
    case Action::kScaleIn: return "ScaleIn";
    case Action::kToMinimum: return "ToMinimum";
    case Action::kToMaximum: return "ToMaximum";
    case Action::kToDefault: return "ToDefault";
  }
  return "None";
}

std::string RuleResult::ToString(const ScaleRule& rule) const {
  const MetricTrigger& t = rule.trigger;
  std::string out = t.metric_name + " " + t.time_aggregation + " over " + FormatIsoDuration(t.time_window_seconds);
  if (t.divide_per_instance) out += " per instance";
  out += " = " + (value ? Number(*value) : std::string("no data"));
  out += std::string(" ") + OperatorSymbol(t.op) + " " + Number(t.threshold);
  return out;
}

const AutoscaleProfile* ActiveProfile(const AutoscaleSetting& setting, TimePoint now) {
  const int64_t t = UnixSeconds(now);
  for (const AutoscaleProfile& p : setting.profiles) {
    if (p.fixed_date && InFixedDate(*p.fixed_date, t)) return &p;
  }
  const AutoscaleProfile* recurring = nullptr;
  std::optional<int64_t> latest;
  for (const AutoscaleProfile& p : setting.profiles) {
    if (!p.recurrence) continue;
    auto start = LastStart(*p.recurrence, t);
    if (start && (!latest || *start > *latest)) {
      latest = start;
      recurring = &p;
    }
  }
  if (recurring) return recurring;
  for (const AutoscaleProfile& p : setting.profiles) {
    if (!p.fixed_date && !p.recurrence) return &p;
  }
  return nullptr;
}

int64_t Apply(const ScaleAction& action, int64_t count) {
  const bool out = action.direction == "Increase";
  if (action.direction != "Increase" && action.direction != "Decrease") return count;
  if (action.type == "ExactCount") return out ? std::max(count, action.value) : std::min(count, action.value);
  int64_t change = action.value;
  if (action.type == "PercentChangeCount") {
    const double exact = static_cast<double>(count) * static_cast<double>(action.value) / 100.0;
    change = std::max<int64_t>(1, static_cast<int64_t>(out ? std::ceil(exact) : std::floor(exact)));
  }
  return out ? count + change : std::max<int64_t>(0, count - change);
}

Evaluation Evaluate(const AutoscaleSetting& setting, const Input& input, const Memory& memory,
                    const MetricView& metrics) {
  Evaluation e;
  e.count = e.target = input.count;
  e.memory = memory;
  if (!setting.enabled) {
    e.summary = "the setting is disabled";
    return e;
  }
  const AutoscaleProfile* profile = ActiveProfile(setting, input.now);
  if (!profile) {
    e.summary = "no profile applies";
    return e;
  }
  e.profile = profile->name;
  const ScaleCapacity& cap = profile->capacity;
  const std::string head = "profile '" + profile->name + "': ";
  const int64_t count = input.count;

  for (size_t i = 0; i < profile->rules.size(); ++i) {
    const ScaleRule& rule = profile->rules[i];
    const MetricTrigger& t = rule.trigger;
    RuleResult r;
    r.index = i;
    r.asks = count;
    const TimePoint from = input.now - std::chrono::seconds(t.time_window_seconds);
    r.value = Aggregate(metrics.Grains(t.metric_name, t.statistic, t.time_grain_seconds, from, input.now),
                        t.time_aggregation);
    if (r.value && t.divide_per_instance) *r.value /= static_cast<double>(std::max<int64_t>(count, 1));
    if (!r.value && std::find(e.missing_metrics.begin(), e.missing_metrics.end(), t.metric_name) ==
                        e.missing_metrics.end()) {
      e.missing_metrics.push_back(t.metric_name);
    }
    r.fired = r.value && rule.action.direction != "None" && Compare(*r.value, t.op, t.threshold);
    if (r.fired) r.asks = Apply(rule.action, count);
    e.rules.push_back(r);
  }
  auto describe = [&](const RuleResult& r) { return r.ToString(profile->rules[r.index]); };

  // The profile's range first, whatever the cooldown.
  if (count < cap.minimum || count > cap.maximum) {
    e.target = std::clamp(count, cap.minimum, cap.maximum);
    e.action = count < cap.minimum ? Action::kToMinimum : Action::kToMaximum;
    e.summary = head + Change(count, e.target) + (count < cap.minimum ? ", up to the minimum" : ", down to the maximum");
    return e;
  }

  // Scale out if any Increase rule fires: the largest count asked for.
  const RuleResult* acting = nullptr;
  bool out_fired = false;
  int64_t target = count;
  for (const RuleResult& r : e.rules) {
    if (!r.fired || profile->rules[r.index].action.direction != "Increase") continue;
    out_fired = true;
    if (r.asks > target) {
      target = r.asks;
      acting = &r;
    }
  }
  Action action = Action::kNone;
  std::string limit;  // what the profile's range held back
  if (out_fired) {
    if (target > cap.maximum) {
      target = cap.maximum;
      if (target == count) limit = "at the profile's maximum";
    }
    if (target > count) action = Action::kScaleOut;
  } else if (!e.missing_metrics.empty() && count < cap.default_count) {
    e.target = cap.default_count;
    e.action = Action::kToDefault;
    e.summary = head + Change(count, e.target) + ", up to the default: no data for " + e.missing_metrics.front();
    return e;
  } else {
    // Scale in only if every Decrease rule fires: the largest count asked
    // for, so as few instances go as the rules allow.
    bool all = false;
    target = 0;
    for (const RuleResult& r : e.rules) {
      if (profile->rules[r.index].action.direction != "Decrease") continue;
      if (!r.fired) {
        all = false;
        break;
      }
      if (!all || r.asks > target) {
        target = r.asks;
        acting = &r;
      }
      all = true;
    }
    if (!all) target = count;
    if (target < cap.minimum) {
      target = cap.minimum;
      if (target == count) limit = "at the profile's minimum";
    }
    if (target < count) action = Action::kScaleIn;
  }

  std::string because;
  for (const RuleResult& r : e.rules) {
    if (r.fired) because += (because.empty() ? " (" : "; ") + describe(r);
  }
  if (!because.empty()) because += ")";
  if (action == Action::kNone) {
    e.summary = head + "stays at " + std::to_string(count) + because;
    e.blocked = limit;
    if (!e.blocked.empty()) e.summary += ": " + e.blocked;
    return e;
  }
  const std::string wanted = head + (action == Action::kScaleOut ? "scale out " : "scale in ") + Change(count, target);

  // The cooldown of the rule that acted last, in either direction.
  if (memory.last_action && input.now >= *memory.last_action &&
      input.now < *memory.last_action + std::chrono::seconds(memory.cooldown_seconds)) {
    e.blocked = "in the cooldown of " + FormatIsoDuration(memory.cooldown_seconds) + " until " +
                FormatTime(*memory.last_action + std::chrono::seconds(memory.cooldown_seconds));
    e.summary = wanted + because + ": blocked, " + e.blocked;
    return e;
  }

  if (action == Action::kScaleIn) {
    // Azure's flapping guard: the nearest count at or above the target that
    // fires no scale-out rule; none below the count: no scale-in.
    int64_t chosen = target;
    while (chosen < count && WouldScaleOut(*profile, e.rules, count, chosen)) ++chosen;
    if (chosen == count) {
      e.blocked = "flapping: at " + Instances(target) + " a scale-out rule would fire";
      e.summary = wanted + because + ": blocked, " + e.blocked;
      return e;
    }
    if (chosen != target) e.intended = target;
    target = chosen;
    // dspool's rule: a pool goes to zero only when no session is open.
    if (target == 0 && input.open_sessions > 0) {
      e.intended = e.intended.value_or(0);
      target = 1;
      e.blocked = "not to zero: " + std::to_string(input.open_sessions) + " session" +
                  (input.open_sessions == 1 ? " is" : "s are") + " open";
      if (target == count) {
        e.summary = wanted + because + ": blocked, " + e.blocked;
        return e;
      }
    }
  }

  e.target = target;
  e.action = action;
  e.memory.last_action = input.now;
  e.memory.cooldown_seconds = profile->rules[acting->index].action.cooldown_seconds;
  e.summary = head + (action == Action::kScaleOut ? "scale out " : "scale in ") + Change(count, target) + because;
  if (e.intended && e.blocked.empty()) {
    e.summary += ": " + std::to_string(*e.intended) + " would flap, so " + std::to_string(target);
  } else if (!e.blocked.empty()) {
    e.summary += ": " + e.blocked;
  }
  return e;
}

}  // namespace dspool::autoscale
