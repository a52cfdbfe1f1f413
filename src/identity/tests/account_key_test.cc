#include "identity/account_key.h"

#include <gtest/gtest.h>

#include <set>

namespace dspool {
namespace {

TEST(AccountKeyTest, IsAzuresFormAndNeverRepeats) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string key = NewAccountKey();
    ASSERT_EQ(key.size(), 88u) << key;
    EXPECT_EQ(key.substr(86), "==") << key;
    for (char c : key.substr(0, 86)) {
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/') << key;
    }
    EXPECT_TRUE(seen.insert(key).second) << "repeated: " << key;
  }
}

}  // namespace
}  // namespace dspool
