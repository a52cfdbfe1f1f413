// Clock: the only source of "now" for dspool's loops, with two readings.
//
//   Now()        the wall clock (system_clock): what people read (event and
//                record timestamps, "last activity") and what expires at a
//                date (session cookies, later secrets). It may step, forwards
//                or back, whenever the host's time is set.
//   Monotonic()  a clock that only moves forwards at the rate of real time
//                (steady_clock): every timeout, interval, silence, backoff
//                and idle period. A step of the wall clock changes no
//                decision made on it.
//
// The two are different types (TimePoint, MonoTime), so the compiler refuses
// a deadline computed from one and compared with the other. Monotonic times
// mean nothing outside this process: they are never stored or sent (send a
// duration instead).
//
// Every loop (reconcile, health, culling, the agent's) takes a Clock&, so
// tests and the simulator drive time with SimulatedClock instead of
// sleeping, and can step its wall clock alone.
//
// Thread safety: both readings may be taken from any thread on both
// implementations.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace dspool {

using TimePoint = std::chrono::system_clock::time_point;
using MonoTime = std::chrono::steady_clock::time_point;
using Duration = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  // The wall clock.
  virtual TimePoint Now() const = 0;
  // The monotonic clock.
  virtual MonoTime Monotonic() const = 0;
};

class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  MonoTime Monotonic() const override { return std::chrono::steady_clock::now(); }
};

// The process's RealClock, for defaults ("no clock given: the real one").
const Clock& SystemClock();

// Time that moves only when told to. The wall clock starts at a fixed,
// arbitrary instant (2023-11-14T22:13:20Z), the monotonic one at an
// arbitrary other.
class SimulatedClock final : public Clock {
 public:
  SimulatedClock() : wall_ms_(1'700'000'000'000), mono_ms_(1'000'000'000) {}
  TimePoint Now() const override { return TimePoint(std::chrono::milliseconds(wall_ms_.load())); }
  MonoTime Monotonic() const override { return MonoTime(std::chrono::milliseconds(mono_ms_.load())); }
  // Time passes: both readings move by `d`. REQUIRES: d >= 0.
  void Advance(Duration d) {
    wall_ms_ += d.count();
    mono_ms_ += d.count();
  }
  // The wall clock is set (as by `date -s` or an NTP step): it jumps by
  // `d`, forwards or back; the monotonic clock does not move.
  void StepWall(Duration d) { wall_ms_ += d.count(); }

 private:
  std::atomic<int64_t> wall_ms_;
  std::atomic<int64_t> mono_ms_;
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
