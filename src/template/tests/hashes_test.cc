#include "template/hashes.h"

#include <gtest/gtest.h>

#include <set>

namespace dspool::arm {
namespace {

// The published pairs (arm-templates.md §5.1), including two from
// Microsoft's own package.
TEST(UniqueStringTest, ReproducesThePublishedValues) {
  EXPECT_EQ(UniqueString({"test"}), "rbgf3xv4ufgzg");
  EXPECT_EQ(UniqueString({"/subscriptions/31e9f9a0-9fd2-4294-a0a3-0101246d9700/resourceGroups/rg-modm201-20230913120256/"
                          "providers/Microsoft.Compute/virtualMachines/bobjacmodm201"}),
            "yvjxno3je5on2");
  EXPECT_EQ(UniqueString({"hello", "world"}), "a7wkljktk6wne");
  EXPECT_EQ(UniqueString({"tyeth"}), "zcztcwvu6iyg6");
  EXPECT_EQ(UniqueString({"abc"}), "cgtzqvhu4i23s");
  EXPECT_EQ(UniqueString({"foo", "bar", "baz"}), "xzi4ioaxtmth4");
  EXPECT_EQ(UniqueString({""}), "aaaaaaaaaaaaa");
  EXPECT_EQ(UniqueString({"ABC"}), "ppflwahdryew2");
}

TEST(UniqueStringTest, JoinsItsPartsWithADash) {
  EXPECT_EQ(UniqueString({"a", "b"}), UniqueString({"a-b"}));
  EXPECT_NE(UniqueString({"ab"}), UniqueString({"a-b"}));
}

TEST(UniqueStringTest, EveryTailLengthHashesDifferently) {
  // Lengths 1 to 17 cover every tail (0 to 7 bytes) over one and two blocks.
  std::set<std::string> seen;
  std::string s;
  for (int i = 0; i < 17; ++i) {
    s += static_cast<char>('a' + i);
    EXPECT_TRUE(seen.insert(UniqueString({s})).second) << s;
    EXPECT_EQ(UniqueString({s}).size(), 13u);
  }
}

TEST(GuidTest, IsTheVersion5Reconstruction) {
  EXPECT_EQ(GuidOf({"a", "b", "c"}), "a98fa280-e03f-5afa-8d8e-92d0a9c201e8");
  EXPECT_EQ(GuidOf({"test"}), "d6a5baf1-8b9b-542a-8525-2982f1f98a0c");
  EXPECT_EQ(GuidOf({"a", "b"}), GuidOf({"a-b"}));
}

}  // namespace
}  // namespace dspool::arm
