#include "gateway/probe.h"

namespace dspool {

bool ProbeTracker::Record(bool success) {
  bool before = in_rotation_;
  if (success) {
    ++successes_;
    failures_ = 0;
    if (!ever_succeeded_ || successes_ >= threshold_) in_rotation_ = true;
    ever_succeeded_ = true;
  } else {
    ++failures_;
    successes_ = 0;
    if (failures_ >= threshold_) in_rotation_ = false;
  }
  return in_rotation_ != before;
}

void ProbeTracker::Remove() {
  in_rotation_ = false;
  successes_ = 0;
}

}  // namespace dspool
