#include "identity/uid_allocator.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

std::vector<User> UsersWithUids(std::initializer_list<int64_t> uids) {
  std::vector<User> users;
  for (int64_t uid : uids) {
    User u;
    u.name = UserName("u" + std::to_string(uid));
    u.uid = uid;
    users.push_back(u);
  }
  return users;
}

TEST(UidAllocatorTest, FirstUserGetsTheStartOfTheRange) {
  EXPECT_EQ(*AllocateUid({}, UidRange{}, 0), 20000);
  EXPECT_EQ(*AllocateUid({}, UidRange{30000, 30010}, 0), 30000);
}

TEST(UidAllocatorTest, NextAboveTheHighestExistingUser) {
  EXPECT_EQ(*AllocateUid(UsersWithUids({20000, 20001, 20005}), UidRange{}, 0), 20006);
}

TEST(UidAllocatorTest, UidsOfDeletedUsersAreNotReused) {
  // 20003..20009 were allocated once; their users are gone but their files are not.
  EXPECT_EQ(*AllocateUid(UsersWithUids({20000, 20002}), UidRange{}, 20009), 20010);
  EXPECT_EQ(*AllocateUid({}, UidRange{}, 20009), 20010);
  // A stale mark below an existing user does not cause a collision.
  EXPECT_EQ(*AllocateUid(UsersWithUids({20050}), UidRange{}, 20009), 20051);
}

TEST(UidAllocatorTest, UsersOutsideTheRangeDoNotMatter) {
  EXPECT_EQ(*AllocateUid(UsersWithUids({5000, 70000}), UidRange{}, 0), 20000);
}

TEST(UidAllocatorTest, SkipsNobody) {
  UidRange range{65530, 70000};
  EXPECT_EQ(*AllocateUid({}, range, 65533), 65536);
  EXPECT_EQ(*AllocateUid(UsersWithUids({65533}), range, 0), 65536);
}

TEST(UidAllocatorTest, ExhaustedRangeNamesIt) {
  UidRange range{20000, 20002};
  EXPECT_EQ(*AllocateUid(UsersWithUids({20000, 20001}), range, 0), 20002);
  auto full = AllocateUid(UsersWithUids({20000, 20001, 20002}), range, 0);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(full.status().message().find("20000-20002"), std::string::npos) << full.status();
  // Freed by deletion, but still not reused.
  EXPECT_EQ(AllocateUid({}, range, 20002).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(AllocateUid({}, range, INT64_MAX).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(AllocateUid({}, UidRange{65000, 65535}, 65533).status().code(), StatusCode::kResourceExhausted);
}

TEST(UidAllocatorTest, ValidateUidRange) {
  EXPECT_TRUE(ValidateUidRange(UidRange{}).ok());
  EXPECT_TRUE(ValidateUidRange(UidRange{1000, 1000}).ok());
  EXPECT_TRUE(ValidateUidRange(UidRange{20000, 99999}).ok());
  EXPECT_TRUE(ValidateUidRange(UidRange{100000, 4294967294}).ok());
  for (UidRange bad : {UidRange{999, 2000}, UidRange{0, 0}, UidRange{-5, 20000}, UidRange{30000, 20000},
                       UidRange{20000, 4294967295}, UidRange{65534, 65535}}) {
    Status s = ValidateUidRange(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad.first << "-" << bad.last;
    EXPECT_NE(s.message().find(std::to_string(bad.first) + "-" + std::to_string(bad.last)), std::string::npos) << s;
  }
  EXPECT_EQ(AllocateUid({}, UidRange{30000, 20000}, 0).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dspool
