// Stable uids for pool users.
//
// Each user gets a uid from the server's configured range once, at creation,
// and keeps it forever; the user's private group has gid == uid (model/user.h).
// The same uid is used on every instance, so files on the shared workspace
// have the same owner everywhere.
//
// Policy: uids are never reused. Deleting a user does not delete their files
// on the share, and those files keep the numeric owner. Handing that uid to a
// newcomer would hand them the old user's files. So the server keeps a
// high-water mark, the highest uid it has ever allocated, and AllocateUid
// takes the next uid above both that mark and every existing user's uid.
// When the range is used up, an admin widens it (raises `last`); moving the
// range below the mark does not make old uids available again.
//
// uids 65534 (nobody) and 65535 (the 16-bit -1) are never allocated, even if
// the range covers them.
//
// Thread safety: pure functions. Allocation is only safe if the caller
// serialises it with storing the new user and the new high-water mark (one
// WriteBatch), so two concurrent allocations cannot pick the same uid.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "model/user.h"

namespace dspool {

struct UidRange {
  int64_t first = 20000;
  int64_t last = 59999;
  friend bool operator==(const UidRange&, const UidRange&) = default;
};

// OK iff 1000 <= first <= last <= 4294967294 (below 1000 are the system's
// accounts; 4294967295 is (uid_t)-1) and the range holds at least one
// allocatable uid. InvalidArgument naming the range otherwise.
Status ValidateUidRange(const UidRange& range);

// The uid for a new user: the smallest allocatable uid in `range` that is
// greater than `high_water_mark` and than the uid of every user in `existing`
// that lies in the range (uids outside the range cannot collide with it).
// Pass high_water_mark 0 when nothing was ever allocated.
// Errors: InvalidArgument if the range is invalid; ResourceExhausted, naming
// the range, once no uid above the mark is left in it.
Result<int64_t> AllocateUid(const std::vector<User>& existing, const UidRange& range, int64_t high_water_mark);

}  // namespace dspool
