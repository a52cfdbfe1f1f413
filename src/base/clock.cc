#include "base/clock.h"

#include <cctype>
#include <ctime>

namespace dspool {

const Clock& SystemClock() {
  static const RealClock clock;
  return clock;
}

std::string FormatTime(TimePoint t) {
  int64_t ms = ToUnixMillis(t);
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm_utc;
  gmtime_r(&secs, &tm_utc);
  char buf[40];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm_utc);
  snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

namespace {

// Reads exactly `digits` decimal digits at text[*pos]; false if any is not one.
bool ReadDigits(std::string_view text, size_t* pos, int digits, int* out) {
  if (*pos + digits > text.size()) return false;
  int value = 0;
  for (int i = 0; i < digits; ++i) {
    char c = text[*pos + i];
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    value = value * 10 + (c - '0');
  }
  *pos += digits;
  *out = value;
  return true;
}

bool Expect(std::string_view text, size_t* pos, char c) {
  if (*pos >= text.size() || text[*pos] != c) return false;
  ++*pos;
  return true;
}

}  // namespace

Result<TimePoint> ParseTime(std::string_view text) {
  auto bad = [&](const char* what) {
    return InvalidArgument("time \"" + std::string(text.substr(0, 64)) + "\": " + what);
  };
  size_t pos = 0;
  int year, month, day, hour, minute, second;
  if (!ReadDigits(text, &pos, 4, &year) || !Expect(text, &pos, '-') || !ReadDigits(text, &pos, 2, &month) ||
      !Expect(text, &pos, '-') || !ReadDigits(text, &pos, 2, &day)) {
    return bad("expected a date YYYY-MM-DD");
  }
  if (pos >= text.size() || (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ')) {
    return bad("expected 'T' after the date");
  }
  ++pos;
  if (!ReadDigits(text, &pos, 2, &hour) || !Expect(text, &pos, ':') || !ReadDigits(text, &pos, 2, &minute) ||
      !Expect(text, &pos, ':') || !ReadDigits(text, &pos, 2, &second)) {
    return bad("expected a time of day hh:mm:ss");
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return bad("a field is out of range");
  }
  int64_t millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (digits < 3) millis = millis * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return bad("expected digits after '.'");
    for (int i = digits; i < 3; ++i) millis *= 10;
  }
  int64_t offset_minutes = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int oh, om;
    if (!ReadDigits(text, &pos, 2, &oh) || !Expect(text, &pos, ':') || !ReadDigits(text, &pos, 2, &om) ||
        oh > 23 || om > 59) {
      return bad("expected a zone offset +hh:mm");
    }
    offset_minutes = sign * (oh * 60 + om);
  } else {
    return bad("expected a zone ('Z' or +hh:mm)");
  }
  if (pos != text.size()) return bad("unexpected text after the zone");
  struct tm tm_utc{};
  tm_utc.tm_year = year - 1900;
  tm_utc.tm_mon = month - 1;
  tm_utc.tm_mday = day;
  tm_utc.tm_hour = hour;
  tm_utc.tm_min = minute;
  tm_utc.tm_sec = second;
  time_t secs = timegm(&tm_utc);
  int64_t ms = (static_cast<int64_t>(secs) - offset_minutes * 60) * 1000 + millis;
  return FromUnixMillis(ms);
}

}  // namespace dspool
