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

TEST(StringsTest, Base64RoundTripsEveryLengthAndRefusesWhatIsNotWholeBase64) {
  // RFC 4648's test vectors.
  const char* vectors[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},    {"foo", "Zm9v"},
                              {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    EXPECT_EQ(Base64Decode(encoded), std::optional<std::string>(plain));
  }
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  EXPECT_EQ(Base64Decode(Base64Encode(bytes)), std::optional<std::string>(bytes));
  EXPECT_EQ(Base64Decode("Zm9"), std::nullopt);        // not a multiple of 4
  EXPECT_EQ(Base64Decode("Zm 9v"), std::nullopt);      // a blank
  EXPECT_EQ(Base64Decode("Zg==Zm9v"), std::nullopt);   // padding in the middle
  EXPECT_EQ(Base64Decode("Z==="), std::nullopt);       // three padding characters
  EXPECT_EQ(Base64Decode("Zm9v-_=="), std::nullopt);   // the URL alphabet
}

}  // namespace
}  // namespace dspool
