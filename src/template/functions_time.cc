// The date functions: dateTimeAdd, dateTimeFromEpoch, dateTimeToEpoch, and
// utcNow's formatting. Times are UTC, held as 100 ns ticks since the Unix
// epoch (.NET's resolution); formats are .NET's, standard ("u", "o", "d"...)
// and custom ("yyyyMMddTHHmmssZ"), with the en-US names and patterns ARM's
// documentation shows ("4/7/2023 2:53:14 PM").
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "template/functions.h"

namespace dspool::arm::internal {

namespace {

constexpr int64_t kTicksPerSecond = 10'000'000;
constexpr int64_t kTicksPerDay = 86'400 * kTicksPerSecond;
// 0001-01-01 to 9999-12-31, as .NET's DateTime.
constexpr int64_t kMinDay = -719'162, kMaxDay = 2'932'896;

// Howard Hinnant's days_from_civil / civil_from_days.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Civil {
  int64_t year;
  unsigned month, day, hour, minute, second;
  int64_t fraction;  // ticks within the second
  unsigned weekday;  // 0 Sunday
};

Civil CivilFromTicks(int64_t ticks) {
  int64_t days = ticks >= 0 ? ticks / kTicksPerDay : -((-ticks + kTicksPerDay - 1) / kTicksPerDay);
  int64_t rest = ticks - days * kTicksPerDay;
  Civil c{};
  c.weekday = static_cast<unsigned>(((days % 7) + 11) % 7);  // 1970-01-01 was a Thursday
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  c.day = doy - (153 * mp + 2) / 5 + 1;
  c.month = mp < 10 ? mp + 3 : mp - 9;
  c.year = static_cast<int64_t>(yoe) + era * 400 + (c.month <= 2);
  int64_t seconds = rest / kTicksPerSecond;
  c.fraction = rest % kTicksPerSecond;
  c.hour = static_cast<unsigned>(seconds / 3600);
  c.minute = static_cast<unsigned>(seconds / 60 % 60);
  c.second = static_cast<unsigned>(seconds % 60);
  return c;
}

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// Digits at s[i..], exactly `n` of them.
bool Digits(const std::string& s, size_t& i, size_t n, int64_t* out) {
  if (i + n > s.size()) return false;
  int64_t v = 0;
  for (size_t k = 0; k < n; ++k) {
    if (!std::isdigit(static_cast<unsigned char>(s[i + k]))) return false;
    v = v * 10 + (s[i + k] - '0');
  }
  i += n;
  *out = v;
  return true;
}

// ISO 8601 date and time, extended ("2020-04-07T14:53:14.5Z", a space for
// the T, an offset "+01:00") or basic ("20200407T145314Z", utcNow's
// default); a date alone is midnight; no zone is UTC.
std::optional<int64_t> ParseDateTime(const std::string& s) {
  size_t i = 0;
  int64_t y, mo, d, h = 0, mi = 0, sec = 0, fraction = 0;
  if (!Digits(s, i, 4, &y)) return std::nullopt;
  const bool extended = i < s.size() && s[i] == '-';
  if (extended) ++i;
  if (!Digits(s, i, 2, &mo)) return std::nullopt;
  if (extended && (i >= s.size() || s[i++] != '-')) return std::nullopt;
  if (!Digits(s, i, 2, &d)) return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, static_cast<unsigned>(mo))) return std::nullopt;
  int64_t offset_minutes = 0;
  if (i < s.size() && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
    ++i;
    if (!Digits(s, i, 2, &h)) return std::nullopt;
    if (extended && (i >= s.size() || s[i++] != ':')) return std::nullopt;
    if (!Digits(s, i, 2, &mi)) return std::nullopt;
    if (i < s.size() && (s[i] == ':' || std::isdigit(static_cast<unsigned char>(s[i])))) {
      if (s[i] == ':') ++i;
      if (!Digits(s, i, 2, &sec)) return std::nullopt;
    }
    if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
      ++i;
      int64_t scale = kTicksPerSecond;
      size_t start = i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
        scale /= 10;
        fraction += (s[i] - '0') * scale;
        ++i;
      }
      if (i == start) return std::nullopt;
    }
    if (h > 23 || mi > 59 || sec > 59) return std::nullopt;
    if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
      ++i;
    } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      const int sign = s[i++] == '-' ? -1 : 1;
      int64_t oh, om = 0;
      if (!Digits(s, i, 2, &oh)) return std::nullopt;
      if (i < s.size() && s[i] == ':') ++i;
      if (i < s.size() && !Digits(s, i, 2, &om)) return std::nullopt;
      offset_minutes = sign * (oh * 60 + om);
    }
  }
  if (i != s.size()) return std::nullopt;
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return days * kTicksPerDay + ((h * 60 + mi - offset_minutes) * 60 + sec) * kTicksPerSecond + fraction;
}

// ISO 8601 duration: [-]P[nY][nM][nW][nD][T[nH][nM][n[.n]S]]; a year is
// 365 days and a month 30, as .NET's XmlConvert reads them.
std::optional<int64_t> ParseDuration(const std::string& s) {
  size_t i = 0;
  int sign = 1;
  if (i < s.size() && s[i] == '-') {
    sign = -1;
    ++i;
  }
  if (i >= s.size() || (s[i] != 'P' && s[i] != 'p')) return std::nullopt;
  ++i;
  bool time = false, any = false;
  long double total = 0;
  while (i < s.size()) {
    if (s[i] == 'T' || s[i] == 't') {
      if (time) return std::nullopt;
      time = true;
      ++i;
      continue;
    }
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.' || s[i] == ',')) ++i;
    if (i == start || i >= s.size() || i - start > 12) return std::nullopt;
    std::string number = s.substr(start, i - start);
    for (char& c : number) c = c == ',' ? '.' : c;
    long double n = std::strtold(number.c_str(), nullptr);
    char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(s[i++])));
    long double seconds;
    if (!time && unit == 'Y') {
      seconds = 365.0L * 86400;
    } else if (!time && unit == 'M') {
      seconds = 30.0L * 86400;
    } else if (!time && unit == 'W') {
      seconds = 7.0L * 86400;
    } else if (!time && unit == 'D') {
      seconds = 86400;
    } else if (time && unit == 'H') {
      seconds = 3600;
    } else if (time && unit == 'M') {
      seconds = 60;
    } else if (time && unit == 'S') {
      seconds = 1;
    } else {
      return std::nullopt;
    }
    total += n * seconds * kTicksPerSecond;
    any = true;
  }
  if (!any) return std::nullopt;
  return sign * static_cast<int64_t>(total);
}

const char* const kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                               "July",    "August",   "September", "October", "November", "December"};
const char* const kDays[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

std::string Pad(int64_t v, size_t width) {
  std::string s = std::to_string(v < 0 ? -v : v);
  if (s.size() < width) s.insert(0, width - s.size(), '0');
  return (v < 0 ? "-" : "") + s;
}

std::string ExpandStandard(const std::string& f) {
  if (f.size() != 1) return f;
  switch (f[0]) {
    case 'd': return "M/d/yyyy";
    case 'D': return "dddd, MMMM d, yyyy";
    case 't': return "h:mm tt";
    case 'T': return "h:mm:ss tt";
    case 'f': return "dddd, MMMM d, yyyy h:mm tt";
    case 'F':
    case 'U': return "dddd, MMMM d, yyyy h:mm:ss tt";
    case 'g': return "M/d/yyyy h:mm tt";
    case 'G': return "M/d/yyyy h:mm:ss tt";
    case 'M':
    case 'm': return "MMMM d";
    case 'O':
    case 'o': return "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK";
    case 'R':
    case 'r': return "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'";
    case 's': return "yyyy'-'MM'-'dd'T'HH':'mm':'ss";
    case 'u': return "yyyy'-'MM'-'dd HH':'mm':'ss'Z'";
    case 'Y':
    case 'y': return "MMMM yyyy";
    default: return "";
  }
}

Result<std::string> Format(int64_t ticks, const std::string& name, const std::string& format) {
  std::string f = ExpandStandard(format);
  if (f.empty()) return FunctionError(name, "does not know the date format '" + format + "'");
  Civil c = CivilFromTicks(ticks);
  std::string out;
  for (size_t i = 0; i < f.size();) {
    char ch = f[i];
    size_t run = 1;
    while (i + run < f.size() && f[i + run] == ch) ++run;
    switch (ch) {
      case 'y':
        out += run == 1 ? std::to_string(c.year % 100) : run == 2 ? Pad(c.year % 100, 2) : Pad(c.year, run);
        break;
      case 'M':
        out += run == 1 ? std::to_string(c.month) : run == 2 ? Pad(c.month, 2)
               : run == 3                              ? std::string(kMonths[c.month - 1]).substr(0, 3)
                                                       : kMonths[c.month - 1];
        break;
      case 'd':
        out += run == 1 ? std::to_string(c.day) : run == 2 ? Pad(c.day, 2)
               : run == 3                            ? std::string(kDays[c.weekday]).substr(0, 3)
                                                     : kDays[c.weekday];
        break;
      case 'H': out += run == 1 ? std::to_string(c.hour) : Pad(c.hour, 2); break;
      case 'h': {
        unsigned h12 = c.hour % 12 == 0 ? 12 : c.hour % 12;
        out += run == 1 ? std::to_string(h12) : Pad(h12, 2);
        break;
      }
      case 'm': out += run == 1 ? std::to_string(c.minute) : Pad(c.minute, 2); break;
      case 's': out += run == 1 ? std::to_string(c.second) : Pad(c.second, 2); break;
      case 'f':
      case 'F': {
        if (run > 7) return FunctionError(name, "does not know the date format '" + format + "'");
        std::string digits = Pad(c.fraction, 7).substr(0, run);
        if (ch == 'F') {
          while (!digits.empty() && digits.back() == '0') digits.pop_back();
          if (digits.empty() && !out.empty() && out.back() == '.') out.pop_back();
        }
        out += digits;
        break;
      }
      case 't': out += run == 1 ? (c.hour < 12 ? "A" : "P") : (c.hour < 12 ? "AM" : "PM"); break;
      case 'K': out += "Z"; break;
      case 'z': out += run == 1 ? "+0" : run == 2 ? "+00" : "+00:00"; break;
      case '\'':
      case '"': {
        size_t close = f.find(ch, i + 1);
        if (close == std::string::npos) return FunctionError(name, "was given a date format with an unclosed quote: '" + format + "'");
        out += f.substr(i + 1, close - i - 1);
        run = close - i + 1;
        break;
      }
      case '\\':
        if (i + 1 < f.size()) out += f[i + 1];
        run = 2;
        break;
      default: out.append(run, ch); break;
    }
    i += run;
  }
  return out;
}

Result<int64_t> ArgDateTime(const std::string& name, const Args& args, size_t i) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, i));
  auto t = ParseDateTime(s);
  if (!t) return FunctionError(name, "expects an ISO 8601 date and time such as '2020-04-07T14:53:14Z'; it was given '" + s + "'");
  return *t;
}

Result<Value> Checked(const std::string& name, int64_t ticks, const std::string& format) {
  if (ticks < kMinDay * kTicksPerDay || ticks >= (kMaxDay + 1) * kTicksPerDay) {
    return FunctionError(name, "gives a time outside the years 1 to 9999");
  }
  DSP_ASSIGN_OR_RETURN(std::string text, Format(ticks, name, format));
  return Value(text);
}

}  // namespace

Result<Value> DateTimeAdd(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(int64_t base, ArgDateTime(name, args, 0));
  DSP_ASSIGN_OR_RETURN(std::string iso, ArgString(name, args, 1));
  auto duration = ParseDuration(iso);
  if (!duration) return FunctionError(name, "expects an ISO 8601 duration such as 'P1D' or '-PT3H'; it was given '" + iso + "'");
  std::string format = "G";
  if (args.size() > 2) {
    DSP_ASSIGN_OR_RETURN(format, ArgString(name, args, 2));
  }
  return Checked(name, base + *duration, format);
}

Result<Value> DateTimeFromEpoch(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(int64_t seconds, ArgInt(name, args, 0));
  if (seconds < kMinDay * 86400 || seconds > kMaxDay * 86400) return FunctionError(name, "gives a time outside the years 1 to 9999");
  return Checked(name, seconds * kTicksPerSecond, "yyyy'-'MM'-'dd'T'HH':'mm':'ss'Z'");
}

Result<Value> DateTimeToEpoch(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(int64_t ticks, ArgDateTime(name, args, 0));
  int64_t seconds = ticks >= 0 ? ticks / kTicksPerSecond : -((-ticks + kTicksPerSecond - 1) / kTicksPerSecond);
  return Value(seconds);
}

Result<std::string> FormatUtc(int64_t unix_seconds, int64_t ticks, const std::string& format) {
  return Format(unix_seconds * kTicksPerSecond + ticks, "utcNow", format);
}

}  // namespace dspool::arm::internal
