#include "cli/table.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace dspool {
namespace {

constexpr std::string_view kColumnGap = "   ";

// One row stays one line, and no cell can send escape sequences.
std::string Clean(std::string_view cell) {
  std::string out;
  out.reserve(cell.size());
  for (char c : cell) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t') {
      out += ' ';
    } else if (u < 0x20 || u == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

// Characters, not bytes: UTF-8 continuation bytes do not count.
size_t DisplayWidth(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

void AppendPadded(std::string* line, const std::string& cell, size_t width) {
  *line += cell;
  line->append(width - DisplayWidth(cell), ' ');
}

void TrimRight(std::string* s) {
  size_t end = s->find_last_not_of(' ');
  s->erase(end == std::string::npos ? 0 : end + 1);
}

// Reads exactly `n` digits at `*pos`; false if any is not a digit.
bool ReadDigits(std::string_view text, size_t* pos, size_t n, int* out) {
  if (*pos + n > text.size()) return false;
  int value = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = text[*pos + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *pos += n;
  *out = value;
  return true;
}

bool Expect(std::string_view text, size_t* pos, std::string_view choices) {
  if (*pos >= text.size() || choices.find(text[*pos]) == std::string_view::npos) return false;
  ++*pos;
  return true;
}

}  // namespace

Table::Table(std::vector<std::string> header) : header_(std::move(header)), min_widths_(header_.size()) {
  for (std::string& cell : header_) cell = Clean(cell);
}

void Table::AddRow(std::vector<std::string> row) {
  row.resize(header_.size());
  for (std::string& cell : row) cell = Clean(cell);
  rows_.push_back(std::move(row));
}

std::vector<size_t> Table::ColumnWidths() const {
  std::vector<size_t> widths = min_widths_;
  for (size_t c = 0; c < header_.size(); ++c) widths[c] = std::max(widths[c], DisplayWidth(header_[c]));
  for (const auto& row : rows_) {
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  }
  return widths;
}

void Table::WidenTo(const std::vector<size_t>& widths) {
  for (size_t c = 0; c < min_widths_.size() && c < widths.size(); ++c) {
    min_widths_[c] = std::max(min_widths_[c], widths[c]);
  }
}

std::string Table::Render(bool with_header) const {
  std::vector<size_t> widths = ColumnWidths();
  std::string out;
  auto render_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) line += kColumnGap;
      AppendPadded(&line, row[c], widths[c]);
    }
    TrimRight(&line);
    out += line;
    out += '\n';
  };
  if (with_header) render_row(header_);
  for (const auto& row : rows_) render_row(row);
  return out;
}

std::string RenderFields(const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t width = 0;
  for (const auto& [key, value] : fields) width = std::max(width, DisplayWidth(Clean(key)) + 1);
  std::string out;
  for (const auto& [key, value] : fields) {
    std::string line;
    AppendPadded(&line, Clean(key) + ":", width);
    line += kColumnGap;
    line += Clean(value);
    TrimRight(&line);
    out += line;
    out += '\n';
  }
  return out;
}

Result<TimePoint> ParseRfc3339(std::string_view text) {
  auto bad = [&] { return InvalidArgument("'" + std::string(text) + "' is not an RFC 3339 time"); };
  size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!ReadDigits(text, &pos, 4, &year) || !Expect(text, &pos, "-") || !ReadDigits(text, &pos, 2, &month) ||
      !Expect(text, &pos, "-") || !ReadDigits(text, &pos, 2, &day) || !Expect(text, &pos, "Tt") ||
      !ReadDigits(text, &pos, 2, &hour) || !Expect(text, &pos, ":") || !ReadDigits(text, &pos, 2, &minute) ||
      !Expect(text, &pos, ":") || !ReadDigits(text, &pos, 2, &second)) {
    return bad();
  }
  std::chrono::nanoseconds fraction{0};
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int64_t scale = 100'000'000;
    size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fraction += std::chrono::nanoseconds((text[pos] - '0') * scale);
      scale /= 10;
      ++pos;
      ++digits;
    }
    if (digits == 0) return bad();
  }
  std::chrono::minutes offset{0};
  if (Expect(text, &pos, "Zz")) {
    // UTC.
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int off_hour = 0, off_minute = 0;
    if (!ReadDigits(text, &pos, 2, &off_hour) || !Expect(text, &pos, ":") || !ReadDigits(text, &pos, 2, &off_minute) ||
        off_hour > 23 || off_minute > 59) {
      return bad();
    }
    offset = std::chrono::minutes(sign * (off_hour * 60 + off_minute));
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  // Second 60 is a leap second; it is counted as the next second's start.
  if (hour > 23 || minute > 59 || second > 60) return bad();
  std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                   std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return bad();
  auto local = std::chrono::sys_days(date) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
               std::chrono::seconds(second) + fraction;
  return std::chrono::time_point_cast<TimePoint::duration>(local - offset);
}

std::string FormatAge(TimePoint then, TimePoint now) {
  int64_t seconds = std::chrono::duration_cast<std::chrono::seconds>(now - then).count();
  if (seconds < 60) return std::to_string(std::max<int64_t>(seconds, 0)) + "s";
  if (seconds < 3600) return std::to_string(seconds / 60) + "m";
  if (seconds < 86400) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

std::string AgeOf(std::string_view rfc3339, TimePoint now) {
  Result<TimePoint> then = ParseRfc3339(rfc3339);
  return then.ok() ? FormatAge(*then, now) : "-";
}

std::string FormatBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
  if (bytes < 0) return "-";
  size_t unit = 0;
  double value = static_cast<double>(bytes);
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof(buf), "%lldB", static_cast<long long>(bytes));
  } else if (value < 10 && static_cast<int64_t>(value * 10) % 10 != 0) {
    std::snprintf(buf, sizeof(buf), "%.1f%s", static_cast<int64_t>(value * 10) / 10.0, kUnits[unit]);
  } else {
    std::snprintf(buf, sizeof(buf), "%lld%s", static_cast<long long>(value), kUnits[unit]);
  }
  return buf;
}

std::string OrDash(std::string text) { return text.empty() ? "-" : text; }

}  // namespace dspool
