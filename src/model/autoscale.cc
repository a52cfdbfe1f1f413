#include "model/autoscale.h"

#include <unicode/ucal.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <set>
#include <tuple>

#include "base/strings.h"

namespace dspool {
namespace {

constexpr int64_t kMinute = 60, kHour = 3600, kDay = 86400;

// The value at `key` as one of `allowed` (compared without case, as Azure
// does); written back in the allowed spelling.
void ReadEnum(JsonReader& r, const std::string& key, const std::vector<std::string>& allowed, std::string* out,
              bool required) {
  std::string value;
  if (required) r.Required(key, &value);
  else r.Optional(key, &value);
  if (!r.ok() || value.empty()) return;
  for (const std::string& a : allowed) {
    if (EqualsIgnoreCase(a, value)) {
      *out = a;
      return;
    }
  }
  std::string list;
  for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
  r.Fail(key, "'" + value + "' is not one of " + list);
}

// A count Azure writes as a string ("2"); an integer is taken too.
std::optional<int64_t> ReadCount(JsonReader& r, const std::string& key, bool required) {
  const Json* v = r.Raw(key);
  if (!v) {
    if (required) r.Fail(key, "is required");
    return std::nullopt;
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_string()) {
    const std::string& s = v->get_ref<const std::string&>();
    int64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (!s.empty() && ec == std::errc() && end == s.data() + s.size()) return n;
  }
  r.Fail(key, "must be a whole number (Azure writes it as a string, \"2\"), not " + v->dump());
  return std::nullopt;
}

// A duration field, checked against [min, max] seconds.
int64_t ReadDuration(JsonReader& r, const std::string& key, int64_t min, int64_t max, int64_t fallback, bool required,
                     const std::string& limits) {
  std::string text;
  if (required) r.Required(key, &text);
  else r.Optional(key, &text);
  if (!r.ok() || text.empty()) return fallback;
  auto seconds = ParseIsoDuration(text);
  if (!seconds) {
    r.Fail(key, "'" + text + "' is not an ISO 8601 duration like PT5M");
    return fallback;
  }
  if (*seconds < min || *seconds > max) r.Fail(key, "'" + text + "' must be " + limits);
  return *seconds;
}

// "2026-12-24T08:00:00", with seconds, fractions, "Z" or an offset
// optional: its fields, and the offset in seconds when one is written.
struct DateTimeText {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  std::optional<int64_t> offset;
};

std::optional<DateTimeText> ParseDateTimeText(const std::string& text) {
  DateTimeText t;
  int n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d%n", &t.year, &t.month, &t.day, &t.hour, &t.minute, &n) != 5 ||
      n != 16) {
    return std::nullopt;
  }
  std::string rest = text.substr(16);
  if (rest.size() >= 3 && rest[0] == ':') {
    if (!std::isdigit(static_cast<unsigned char>(rest[1])) || !std::isdigit(static_cast<unsigned char>(rest[2]))) {
      return std::nullopt;
    }
    t.second = (rest[1] - '0') * 10 + (rest[2] - '0');
    rest = rest.substr(3);
    if (!rest.empty() && rest[0] == '.') {
      size_t k = 1;
      while (k < rest.size() && std::isdigit(static_cast<unsigned char>(rest[k]))) ++k;
      if (k == 1) return std::nullopt;
      rest = rest.substr(k);
    }
  }
  if (rest == "Z" || rest == "z") {
    t.offset = 0;
    rest.clear();
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(rest.c_str() + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
    t.offset = (rest[0] == '+' ? 1 : -1) * (oh * kHour + om * kMinute);
    rest.clear();
  }
  if (!rest.empty() || t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59 ||
      t.second > 59) {
    return std::nullopt;
  }
  return t;
}

// Seconds since 1970 of the fields as UTC (Howard Hinnant's days from civil).
int64_t UtcSeconds(const DateTimeText& t) {
  const int yy = t.year - (t.month <= 2);
  const int era = (yy >= 0 ? yy : yy - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(yy - era * 400);
  const unsigned doy = (153 * (t.month + (t.month > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(t.day) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = static_cast<int64_t>(era) * 146097 + static_cast<int64_t>(doe) - 719468;
  return days * kDay + t.hour * kHour + t.minute * kMinute + t.second;
}

// As written, an offset applied (none: as if UTC): for checking a window's length.
std::optional<int64_t> ParseDateTime(const std::string& text) {
  auto t = ParseDateTimeText(text);
  if (!t) return std::nullopt;
  return UtcSeconds(*t) - t->offset.value_or(0);
}

void ReadTimeZone(JsonReader& r, const std::string& key, std::string* out, bool required) {
  if (required) r.Required(key, out);
  else r.Optional(key, out);
  if (r.ok() && !out->empty() && !IanaTimeZone(*out)) {
    r.Fail(key, "'" + *out + "' is not a Windows time-zone name as Azure takes them (\"Pacific Standard Time\", \"UTC\")");
  }
}

const std::vector<std::string> kDays = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

ScaleRule ReadRule(JsonReader& rule) {
  ScaleRule out;
  JsonReader m = rule.Object("metricTrigger", true);
  m.Required("metricName", &out.trigger.metric_name);
  if (m.ok()) {
    const auto& names = AutoscaleMetricNames();
    auto known = std::find_if(names.begin(), names.end(),
                              [&](const std::string& n) { return EqualsIgnoreCase(n, out.trigger.metric_name); });
    if (known == names.end()) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
      m.Fail("metricName", "'" + out.trigger.metric_name + "' is not a metric of a pool; known: " + list);
    } else {
      out.trigger.metric_name = *known;
    }
  }
  m.Optional("metricNamespace", &out.trigger.metric_namespace);
  m.Optional("metricResourceUri", &out.trigger.metric_resource_uri);
  std::string ignored;
  m.Optional("metricResourceLocation", &ignored);
  out.trigger.time_grain_seconds =
      ReadDuration(m, "timeGrain", kMinute, 12 * kHour, kMinute, true, "between 1 minute and 12 hours");
  ReadEnum(m, "statistic", {"Average", "Min", "Max", "Sum", "Count"}, &out.trigger.statistic, true);
  out.trigger.time_window_seconds =
      ReadDuration(m, "timeWindow", 5 * kMinute, 12 * kHour, 5 * kMinute, true, "between 5 minutes and 12 hours");
  if (m.ok() && out.trigger.time_window_seconds < out.trigger.time_grain_seconds) {
    m.Fail("timeWindow", "is shorter than timeGrain");
  }
  ReadEnum(m, "timeAggregation", {"Average", "Minimum", "Maximum", "Total", "Count", "Last"},
           &out.trigger.time_aggregation, false);
  ReadEnum(m, "operator",
           {"Equals", "NotEquals", "GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual"},
           &out.trigger.op, true);
  const Json* threshold = m.Raw("threshold");
  if (!threshold) m.Fail("threshold", "is required");
  else if (!threshold->is_number()) m.Fail("threshold", "must be a number, not " + threshold->dump());
  else out.trigger.threshold = threshold->get<double>();
  if (const Json* dims = m.Raw("dimensions"); dims && !(dims->is_array() && dims->empty())) {
    m.Fail("dimensions", "a pool's metrics have no dimensions here");
  }
  m.Optional("dividePerInstance", &out.trigger.divide_per_instance);

  JsonReader a = rule.Object("scaleAction", true);
  ReadEnum(a, "direction", {"Increase", "Decrease", "None"}, &out.action.direction, true);
  ReadEnum(a, "type", {"ChangeCount", "PercentChangeCount", "ExactCount", "ServiceAllowedNextValue"}, &out.action.type,
           true);
  if (a.ok() && out.action.type == "ServiceAllowedNextValue") {
    a.Fail("type", "ServiceAllowedNextValue has no documented meaning; use ChangeCount, PercentChangeCount or ExactCount");
  }
  if (a.Has("value")) {
    if (auto v = ReadCount(a, "value", false)) {
      out.action.value = *v;
      // dspool's one extension: ExactCount 0 scales a pool to zero.
      const int64_t least = out.action.type == "ExactCount" ? 0 : 1;
      if (*v < least) a.Fail("value", "must be " + std::to_string(least) + " or greater");
    }
  }
  out.action.cooldown_seconds =
      ReadDuration(a, "cooldown", kMinute, 7 * kDay, 5 * kMinute, true, "between 1 minute and 1 week");
  // Their unknown keys reach the rule's Finish once they are finished.
  m.Finish().IgnoreError();
  a.Finish().IgnoreError();
  return out;
}

}  // namespace

const std::vector<std::string>& AutoscaleMetricNames() {
  static const std::vector<std::string> names = {
      "Percentage CPU",   "Available Memory Bytes", "Network In Total", "Network Out Total",
      "Disk Read Bytes",  "Disk Write Bytes",       "ActiveSessions",   "ActiveUsers",
      "BusyKernels",      "PendingConnections"};
  return names;
}

std::optional<int64_t> ParseIsoDuration(std::string_view text) {
  if (text.size() < 3 || (text[0] != 'P' && text[0] != 'p')) return std::nullopt;
  int64_t total = 0;
  bool in_time = false, any = false;
  std::string_view rest = text.substr(1);
  std::string units_seen;
  while (!rest.empty()) {
    if (rest[0] == 'T' || rest[0] == 't') {
      if (in_time) return std::nullopt;
      in_time = true;
      rest.remove_prefix(1);
      continue;
    }
    int64_t n = 0;
    if (!std::isdigit(static_cast<unsigned char>(rest[0]))) return std::nullopt;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec != std::errc() || end == rest.data() || end == rest.data() + rest.size() || n > 1'000'000) {
      return std::nullopt;
    }
    const char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(*end)));
    int64_t scale;
    if (!in_time && unit == 'W') scale = 7 * kDay;
    else if (!in_time && unit == 'D') scale = kDay;
    else if (in_time && unit == 'H') scale = kHour;
    else if (in_time && unit == 'M') scale = kMinute;
    else if (in_time && unit == 'S') scale = 1;
    else return std::nullopt;  // years, months, or a unit out of place
    const char key = static_cast<char>(in_time ? std::tolower(unit) : unit);
    if (units_seen.find(key) != std::string::npos) return std::nullopt;
    units_seen += key;
    total += n * scale;
    any = true;
    rest.remove_prefix(static_cast<size_t>(end - rest.data()) + 1);
  }
  if (!any) return std::nullopt;
  return total;
}

std::string FormatIsoDuration(int64_t seconds) {
  std::string out = "P";
  if (seconds >= kDay) {
    out += std::to_string(seconds / kDay) + "D";
    seconds %= kDay;
  }
  if (seconds == 0) return out == "P" ? "PT0S" : out;
  out += "T";
  if (seconds >= kHour) out += std::to_string(seconds / kHour) + "H";
  seconds %= kHour;
  if (seconds >= kMinute) out += std::to_string(seconds / kMinute) + "M";
  seconds %= kMinute;
  if (seconds) out += std::to_string(seconds) + "S";
  return out;
}

std::optional<std::string> IanaTimeZone(std::string_view windows_name) {
  if (windows_name.empty() || windows_name.size() > 64) return std::nullopt;
  UChar id[64];
  for (size_t i = 0; i < windows_name.size(); ++i) id[i] = static_cast<unsigned char>(windows_name[i]);
  UChar iana[128];
  UErrorCode status = U_ZERO_ERROR;
  int32_t n = ucal_getTimeZoneIDForWindowsID(id, static_cast<int32_t>(windows_name.size()), nullptr, iana,
                                             static_cast<int32_t>(std::size(iana)), &status);
  if (U_FAILURE(status) || n <= 0) return std::nullopt;
  std::string out;
  for (int32_t i = 0; i < n; ++i) out += static_cast<char>(iana[i]);
  return out;
}

struct TimeZone::Calendar {
  UCalendar* cal = nullptr;
  ~Calendar() {
    if (cal) ucal_close(cal);
  }
};

std::optional<TimeZone> TimeZone::Open(std::string_view windows_name) {
  auto iana = IanaTimeZone(windows_name);
  if (!iana) return std::nullopt;
  std::vector<UChar> id(iana->begin(), iana->end());
  auto calendar = std::make_shared<Calendar>();
  UErrorCode status = U_ZERO_ERROR;
  calendar->cal = ucal_open(id.data(), static_cast<int32_t>(id.size()), "en_US_POSIX", UCAL_GREGORIAN, &status);
  if (U_FAILURE(status) || !calendar->cal) return std::nullopt;
  // A wall time that occurs twice is its first occurrence; one a change
  // skips, read with the offset before the change.
  ucal_setAttribute(calendar->cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
  ucal_setAttribute(calendar->cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_LAST);
  TimeZone zone;
  zone.calendar_ = std::move(calendar);
  zone.iana_ = *iana;
  return zone;
}

CivilTime TimeZone::ToLocal(int64_t unix_seconds) const {
  UCalendar* cal = calendar_->cal;
  UErrorCode status = U_ZERO_ERROR;
  ucal_setMillis(cal, static_cast<UDate>(unix_seconds) * 1000.0, &status);
  CivilTime t;
  t.year = ucal_get(cal, UCAL_EXTENDED_YEAR, &status);
  t.month = ucal_get(cal, UCAL_MONTH, &status) + 1;
  t.day = ucal_get(cal, UCAL_DATE, &status);
  t.weekday = ucal_get(cal, UCAL_DAY_OF_WEEK, &status) - UCAL_SUNDAY;
  t.hour = ucal_get(cal, UCAL_HOUR_OF_DAY, &status);
  t.minute = ucal_get(cal, UCAL_MINUTE, &status);
  t.second = ucal_get(cal, UCAL_SECOND, &status);
  return t;
}

int64_t TimeZone::FromLocal(const CivilTime& t) const {
  UCalendar* cal = calendar_->cal;
  UErrorCode status = U_ZERO_ERROR;
  ucal_clear(cal);
  ucal_set(cal, UCAL_EXTENDED_YEAR, t.year);
  ucal_set(cal, UCAL_MONTH, t.month - 1);
  ucal_set(cal, UCAL_DATE, t.day);
  ucal_set(cal, UCAL_HOUR_OF_DAY, t.hour);
  ucal_set(cal, UCAL_MINUTE, t.minute);
  ucal_set(cal, UCAL_SECOND, t.second);
  const UDate ms = ucal_getMillis(cal, &status);
  return static_cast<int64_t>(std::floor(ms / 1000.0));
}

std::optional<int64_t> FixedDateInstant(const std::string& text, const TimeZone& zone) {
  auto t = ParseDateTimeText(text);
  if (!t) return std::nullopt;
  if (t->offset) return UtcSeconds(*t) - *t->offset;
  return zone.FromLocal(CivilTime{.year = t->year, .month = t->month, .day = t->day, .hour = t->hour,
                                  .minute = t->minute, .second = t->second});
}

Result<AutoscaleSetting> ParseAutoscaleSetting(const Json& json, const std::string& path, int64_t max_instances) {
  JsonReader r(json, path);
  AutoscaleSetting out;
  r.Optional("name", &out.name);
  r.Optional("enabled", &out.enabled);
  std::string ignored;
  r.Optional("targetResourceUri", &ignored);       // the deployment's; a pool's setting is its own
  r.Optional("targetResourceLocation", &ignored);  // one host
  JsonReader predictive = r.Object("predictiveAutoscalePolicy");
  std::string mode;
  predictive.Optional("scaleMode", &mode);
  predictive.Optional("scaleLookAheadTime", &ignored);
  if (r.ok() && !mode.empty() && !EqualsIgnoreCase(mode, "Disabled")) {
    predictive.Fail("scaleMode", "predictive autoscale is not done here; only Disabled");
  }
  DSP_RETURN_IF_ERROR(predictive.Finish());
  const Json* profiles = r.Raw("profiles");
  const Json* notifications = r.Raw("notifications");
  DSP_RETURN_IF_ERROR(r.Finish());

  const std::string profiles_path = r.PathOf("profiles");
  if (!profiles || !profiles->is_array() || profiles->empty()) {
    return InvalidArgument(profiles_path + ": needs at least one profile");
  }
  if (profiles->size() > kMaxAutoscaleProfiles) {
    return InvalidArgument(profiles_path + ": holds more than " + std::to_string(kMaxAutoscaleProfiles) + " profiles");
  }
  std::set<std::string> names;
  int defaults = 0;
  for (size_t i = 0; i < profiles->size(); ++i) {
    const std::string at = profiles_path + "[" + std::to_string(i) + "]";
    JsonReader p((*profiles)[i], at);
    AutoscaleProfile profile;
    p.Required("name", &profile.name);
    JsonReader c = p.Object("capacity", true);
    auto min = ReadCount(c, "minimum", true), max = ReadCount(c, "maximum", true);
    auto def = ReadCount(c, "default", true);
    if (p.ok()) {
      profile.capacity = {*min, *max, *def};
      if (*min < 0) c.Fail("minimum", "must be 0 or greater");
      else if (*max > max_instances) c.Fail("maximum", "exceeds the pool's most instances, " + std::to_string(max_instances));
      else if (*min > *max) c.Fail("minimum", "is greater than maximum");
      else if (*def < *min || *def > *max) c.Fail("default", "must be between minimum and maximum");
    }
    DSP_RETURN_IF_ERROR(c.Finish());
    const Json* rules = p.Raw("rules");
    const bool fixed = p.Has("fixedDate"), recurring = p.Has("recurrence");
    JsonReader f = p.Object("fixedDate");
    JsonReader rec = p.Object("recurrence");
    if (fixed && recurring) p.Fail("recurrence", "is given with fixedDate; a profile has one or the other");
    if (fixed) {
      FixedDate date;
      ReadTimeZone(f, "timeZone", &date.time_zone, false);
      if (date.time_zone.empty()) date.time_zone = "UTC";
      f.Required("start", &date.start);
      f.Required("end", &date.end);
      if (p.ok()) {
        auto start = ParseDateTime(date.start), end = ParseDateTime(date.end);
        if (!start) f.Fail("start", "'" + date.start + "' is not a date and time like 2026-12-24T08:00:00");
        else if (!end) f.Fail("end", "'" + date.end + "' is not a date and time like 2026-12-24T18:00:00");
        else if (*end <= *start) f.Fail("end", "is not after start");
        else if (*end - *start > 365 * kDay) f.Fail("end", "is more than 365 days after start");
      }
      profile.fixed_date = date;
    }
    if (recurring) {
      Recurrence weekly;
      std::string frequency;
      rec.Required("frequency", &frequency);
      if (p.ok() && !EqualsIgnoreCase(frequency, "Week")) rec.Fail("frequency", "'" + frequency + "' must be Week");
      JsonReader s = rec.Object("schedule", true);
      ReadTimeZone(s, "timeZone", &weekly.time_zone, true);
      std::vector<std::string> days;
      s.Optional("days", &days);
      for (const std::string& d : days) {
        auto known = std::find_if(kDays.begin(), kDays.end(), [&](const std::string& k) { return EqualsIgnoreCase(k, d); });
        if (known == kDays.end()) s.Fail("days", "'" + d + "' is not a day from Sunday to Saturday");
        else weekly.days.push_back(*known);
      }
      if (p.ok() && days.empty()) s.Fail("days", "needs at least one day");
      for (const auto& [key, limit, list] : {std::tuple{"hours", int64_t{23}, &weekly.hours},
                                             std::tuple{"minutes", int64_t{59}, &weekly.minutes}}) {
        const Json* values = s.Raw(key);
        if (!values || !values->is_array() || values->empty()) {
          s.Fail(key, "needs at least one value");
          continue;
        }
        for (const Json& v : *values) {
          if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > limit) {
            s.Fail(key, v.dump() + " is not between 0 and " + std::to_string(limit));
            break;
          }
          list->push_back(v.get<int64_t>());
        }
      }
      DSP_RETURN_IF_ERROR(s.Finish());
      profile.recurrence = weekly;
    }
    DSP_RETURN_IF_ERROR(f.Finish());
    DSP_RETURN_IF_ERROR(rec.Finish());
    DSP_RETURN_IF_ERROR(p.Finish());
    if (!names.insert(ToLowerAscii(profile.name)).second) {
      return InvalidArgument(at + ".name: '" + profile.name + "' is the name of another profile too");
    }
    if (!fixed && !recurring && ++defaults > 1) {
      return InvalidArgument(at + ": a second default profile (one without fixedDate or recurrence); a setting has one");
    }
    if (!rules || !rules->is_array()) {
      return InvalidArgument(at + ".rules: is required (an empty list for a profile without rules)");
    }
    if (rules->size() > kMaxRulesPerProfile) {
      return InvalidArgument(at + ".rules: holds more than " + std::to_string(kMaxRulesPerProfile) + " rules");
    }
    for (size_t k = 0; k < rules->size(); ++k) {
      JsonReader rule((*rules)[k], at + ".rules[" + std::to_string(k) + "]");
      ScaleRule parsed = ReadRule(rule);
      DSP_RETURN_IF_ERROR(rule.Finish());
      profile.rules.push_back(std::move(parsed));
    }
    out.profiles.push_back(std::move(profile));
  }

  if (notifications) {
    const std::string list = r.PathOf("notifications");
    if (!notifications->is_array()) return InvalidArgument(list + ": must be an array");
    for (size_t i = 0; i < notifications->size(); ++i) {
      JsonReader n((*notifications)[i], list + "[" + std::to_string(i) + "]");
      std::string operation;
      n.Required("operation", &operation);
      if (n.ok() && !EqualsIgnoreCase(operation, "Scale")) n.Fail("operation", "'" + operation + "' must be Scale");
      JsonReader email = n.Object("email");
      bool admins = false, co_admins = false;
      std::vector<std::string> emails;
      email.Optional("sendToSubscriptionAdministrator", &admins);
      email.Optional("sendToSubscriptionCoAdministrators", &co_admins);
      email.Optional("customEmails", &emails);
      if (n.ok() && (admins || co_admins || !emails.empty())) {
        email.Fail(emails.empty() ? "sendToSubscriptionAdministrator" : "customEmails",
                   "this host sends no mail; notify a webhook");
      }
      DSP_RETURN_IF_ERROR(email.Finish());
      const Json* hooks = n.Raw("webhooks");
      DSP_RETURN_IF_ERROR(n.Finish());
      if (!hooks) continue;
      if (!hooks->is_array()) return InvalidArgument(n.PathOf("webhooks") + ": must be an array");
      for (size_t k = 0; k < hooks->size(); ++k) {
        JsonReader h((*hooks)[k], n.PathOf("webhooks[" + std::to_string(k) + "]"));
        Webhook hook;
        h.Required("serviceUri", &hook.service_uri);
        if (h.ok() && hook.service_uri.rfind("https://", 0) != 0 && hook.service_uri.rfind("http://", 0) != 0) {
          h.Fail("serviceUri", "'" + hook.service_uri + "' is not an http or https URL");
        }
        const Json* props = h.Raw("properties");
        DSP_RETURN_IF_ERROR(h.Finish());
        if (props && !props->is_object()) return InvalidArgument(h.PathOf("properties") + ": must be an object");
        if (props) {
          for (const auto& [key, value] : props->items()) {
            if (!value.is_string()) return InvalidArgument(h.PathOf("properties." + key) + ": must be a string");
            hook.properties.emplace_back(key, value.get<std::string>());
          }
        }
        out.webhooks.push_back(std::move(hook));
      }
    }
  }
  return out;
}

Json AutoscaleSettingToJson(const AutoscaleSetting& setting) {
  Json profiles = Json::array();
  for (const AutoscaleProfile& p : setting.profiles) {
    Json rules = Json::array();
    for (const ScaleRule& r : p.rules) {
      const MetricTrigger& t = r.trigger;
      Json trigger = {{"metricName", t.metric_name},
                      {"timeGrain", FormatIsoDuration(t.time_grain_seconds)},
                      {"statistic", t.statistic},
                      {"timeWindow", FormatIsoDuration(t.time_window_seconds)},
                      {"timeAggregation", t.time_aggregation},
                      {"operator", t.op},
                      {"threshold", t.threshold}};
      if (!t.metric_namespace.empty()) trigger["metricNamespace"] = t.metric_namespace;
      if (!t.metric_resource_uri.empty()) trigger["metricResourceUri"] = t.metric_resource_uri;
      if (t.divide_per_instance) trigger["dividePerInstance"] = true;
      rules.push_back({{"metricTrigger", trigger},
                       {"scaleAction",
                        {{"direction", r.action.direction},
                         {"type", r.action.type},
                         {"value", std::to_string(r.action.value)},
                         {"cooldown", FormatIsoDuration(r.action.cooldown_seconds)}}}});
    }
    Json profile = {{"name", p.name},
                    {"capacity",
                     {{"minimum", std::to_string(p.capacity.minimum)},
                      {"maximum", std::to_string(p.capacity.maximum)},
                      {"default", std::to_string(p.capacity.default_count)}}},
                    {"rules", rules}};
    if (p.fixed_date) {
      profile["fixedDate"] = {{"timeZone", p.fixed_date->time_zone}, {"start", p.fixed_date->start}, {"end", p.fixed_date->end}};
    }
    if (p.recurrence) {
      profile["recurrence"] = {{"frequency", "Week"},
                               {"schedule",
                                {{"timeZone", p.recurrence->time_zone},
                                 {"days", p.recurrence->days},
                                 {"hours", p.recurrence->hours},
                                 {"minutes", p.recurrence->minutes}}}};
    }
    profiles.push_back(profile);
  }
  Json out = {{"enabled", setting.enabled}, {"profiles", profiles}};
  if (!setting.name.empty()) out["name"] = setting.name;
  if (!setting.webhooks.empty()) {
    Json hooks = Json::array();
    for (const Webhook& w : setting.webhooks) {
      Json props = Json::object();
      for (const auto& [k, v] : w.properties) props[k] = v;
      hooks.push_back({{"serviceUri", w.service_uri}, {"properties", props}});
    }
    out["notifications"] = Json::array({{{"operation", "Scale"}, {"webhooks", hooks}}});
  }
  return out;
}

}  // namespace dspool
