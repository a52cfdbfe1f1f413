#include "identity/uid_allocator.h"

#include <algorithm>

namespace dspool {
namespace {

constexpr int64_t kMinUid = 1000;
constexpr int64_t kMaxUid = 4294967294;  // (uid_t)-1 is "no change" for chown

bool Reserved(int64_t uid) { return uid == 65534 || uid == 65535; }

std::string RangeText(const UidRange& r) { return std::to_string(r.first) + "-" + std::to_string(r.last); }

}  // namespace

Status ValidateUidRange(const UidRange& r) {
  if (r.first < kMinUid) {
    return InvalidArgument("uid range " + RangeText(r) + " starts below 1000, among the system's accounts");
  }
  if (r.last > kMaxUid) return InvalidArgument("uid range " + RangeText(r) + " ends above 4294967294");
  if (r.first > r.last) return InvalidArgument("uid range " + RangeText(r) + " ends before it starts");
  if (r.first >= 65534 && r.last <= 65535) {
    return InvalidArgument("uid range " + RangeText(r) + " holds only reserved uids (65534 nobody, 65535)");
  }
  return Status::Ok();
}

Result<int64_t> AllocateUid(const std::vector<User>& existing, const UidRange& range, int64_t high_water_mark) {
  DSP_RETURN_IF_ERROR(ValidateUidRange(range));
  int64_t highest = std::max(high_water_mark, range.first - 1);
  for (const User& u : existing) {
    if (u.uid >= range.first && u.uid <= range.last) highest = std::max(highest, u.uid);
  }
  int64_t uid = highest < range.last ? highest + 1 : range.last + 1;  // no overflow for a huge mark
  while (Reserved(uid)) ++uid;
  if (uid > range.last) {
    return ResourceExhausted("uid range " + RangeText(range) + " is used up (uids up to " + std::to_string(highest) +
                             " have been allocated, and uids of deleted users are not reused); widen the range");
  }
  return uid;
}

}  // namespace dspool
