// Clock: the only source of "now" for dspool's loops.
//
// Every loop (reconcile, health, later autoscale) takes a Clock&, so tests and
// the simulator drive time with SimulatedClock instead of sleeping.
//
// Thread safety: Now() may be called from any thread on both implementations.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace dspool {

using TimePoint = std::chrono::system_clock::time_point;
using Duration = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
};

// Time that moves only when told to. Starts at a fixed, arbitrary instant.
class SimulatedClock final : public Clock {
 public:
  SimulatedClock() : now_ms_(1'700'000'000'000) {}
  TimePoint Now() const override { return TimePoint(std::chrono::milliseconds(now_ms_.load())); }
  void Advance(Duration d) { now_ms_ += d.count(); }

 private:
  std::atomic<int64_t> now_ms_;
};

// Milliseconds since the Unix epoch, the form stored and shown in JSON.
inline int64_t ToUnixMillis(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline TimePoint FromUnixMillis(int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

// RFC 3339 in UTC with milliseconds: "2026-11-26T23:55:21.042Z".
std::string FormatTime(TimePoint t);

// Reads an RFC 3339 time with a date, a time of day, an optional fraction
// (any number of digits; kept to the millisecond, truncated) and a zone ("Z",
// "+00:00", "-05:30"): what FormatTime, Python's isoformat() and Jupyter
// write. InvalidArgument naming the text otherwise.
Result<TimePoint> ParseTime(std::string_view text);

}  // namespace dspool
