#include "base/strings.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

TEST(StringsTest, CaseIsAsciiOnly) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(EqualsIgnoreCase("abc", "abd"));
  EXPECT_FALSE(EqualsIgnoreCase("abc", "ab"));
  EXPECT_FALSE(EqualsIgnoreCase("\xc3\x84", "\xc3\xa4"));  // Ä and ä: not ASCII
  EXPECT_EQ(ToLowerAscii("/Subscriptions/S/resourceGroups/RG-1"), "/subscriptions/s/resourcegroups/rg-1");
  EXPECT_EQ(ToUpperAscii("ab-Z\xc3\xa4"), "AB-Z\xc3\xa4");
}

TEST(StringsTest, PercentEncodingKeepsOnlyUnreservedBytes) {
  EXPECT_EQ(PercentEncode("a b/c~d.e_f-g"), "a%20b%2Fc~d.e_f-g");
  EXPECT_EQ(PercentEncode("/a b/c", "/"), "/a%20b/c");
  EXPECT_EQ(PercentEncode("\xc3\xa4"), "%C3%A4");
}

}  // namespace
}  // namespace dspool
