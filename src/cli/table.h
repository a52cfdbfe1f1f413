// Text for people: aligned tables like `kubectl get` prints, "Key: value"
// blocks like `kubectl describe`, and the small formatters their cells use
// (ages, byte sizes).
//
// Pure functions and values; no I/O. Safe to use from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace dspool {

// Rows of strings rendered as columns, each as wide as its widest cell
// (counted in UTF-8 characters), separated by three spaces, under a header
// row. Trailing spaces are trimmed; every line ends with '\n'. Control
// characters in cells (a newline in an error message, an escape sequence in
// a name) are shown as spaces or '?', so one row stays one line and a cell
// cannot drive the terminal.
//
//   Table t({"NAME", "STATE"});
//   t.AddRow({"demo", "active"});
//   out << t.Render();
//     NAME   STATE
//     demo   active
class Table {
 public:
  explicit Table(std::vector<std::string> header);

  // A row shorter than the header is padded with empty cells; cells beyond
  // the header's width are dropped.
  void AddRow(std::vector<std::string> row);

  size_t rows() const { return rows_.size(); }

  // Each column's width: its widest cell, header included, or the width set
  // by WidenTo if larger.
  std::vector<size_t> ColumnWidths() const;

  // Makes columns at least as wide as `widths` (extra entries are ignored),
  // so rows printed later line up under an earlier table's (`events
  // --follow`).
  void WidenTo(const std::vector<size_t>& widths);

  // The header (unless !with_header) and every row. A table without rows
  // still prints its header.
  std::string Render(bool with_header = true) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<size_t> min_widths_;
};

// "Key:   value" lines, values aligned one column after the longest key;
// cells are cleaned as in Table.
//
//   Name:    demo
//   State:   active
std::string RenderFields(const std::vector<std::pair<std::string, std::string>>& fields);

// Parses an RFC 3339 date-time: "2026-11-26T23:55:21Z",
// "2026-11-26T23:55:21.042+01:00" ('T' and 'Z' in either case). InvalidArgument
// naming the text otherwise.
Result<TimePoint> ParseRfc3339(std::string_view text);

// How long before `now` `then` was, in its largest whole unit: "0s".."59s",
// "1m".."59m", "1h".."23h", then days ("4d", "400d"). A `then` in the future
// (clock skew between hosts) counts as "0s".
std::string FormatAge(TimePoint then, TimePoint now);

// FormatAge of an RFC 3339 string; "-" if it is empty or not RFC 3339.
std::string AgeOf(std::string_view rfc3339, TimePoint now);

// Binary units, as `kubectl top` shows memory: "512B", "1.5Ki", "120Mi",
// "12Gi" (one decimal below 10 of a unit, unless it is whole).
std::string FormatBytes(int64_t bytes);

// `text`, or "-" for an empty cell.
std::string OrDash(std::string text);

}  // namespace dspool
