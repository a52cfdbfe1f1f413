// ProbeTracker: whether one backend is in rotation, from its probe results
// (azure-semantics.md B1, with the probeThreshold reading): out after
// `threshold` consecutive failures, back after `threshold` consecutive
// successes. A new backend is out until its first success: nothing is sent
// to an instance that has never answered, and a fresh instance joins at its
// first good probe rather than `threshold` intervals later. Out at once on
// Remove (the server deleted or drained it).
//
// Not thread-safe: one tracker per backend, owned by the health checker.
#pragma once

#include <cstdint>

namespace dspool {

class ProbeTracker {
 public:
  explicit ProbeTracker(int64_t threshold) : threshold_(threshold < 1 ? 1 : threshold) {}

  // Records one probe result; returns true if the rotation state changed.
  bool Record(bool success);
  // Takes the backend out now (deleted, drained, stopped).
  void Remove();

  bool in_rotation() const { return in_rotation_; }
  // Whether any probe ever succeeded (a backend that never answered is
  // probed more often, so it joins soon after it comes up).
  bool ever_succeeded() const { return ever_succeeded_; }
  int64_t consecutive_failures() const { return failures_; }
  int64_t consecutive_successes() const { return successes_; }

 private:
  int64_t threshold_;
  bool in_rotation_ = false;
  bool ever_succeeded_ = false;
  int64_t failures_ = 0;
  int64_t successes_ = 0;
};

}  // namespace dspool
