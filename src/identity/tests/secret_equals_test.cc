#include "identity/secret_equals.h"

#include <gtest/gtest.h>

#include <string>

namespace dspool {
namespace {

TEST(SecretEqualsTest, EqualOnlyForTheSameBytes) {
  const std::string token = "s3cret-token-0123456789";
  EXPECT_TRUE(SecretEquals(token, token));
  EXPECT_TRUE(SecretEquals(std::string(token), token)) << "a copy, not the same buffer";
  EXPECT_FALSE(SecretEquals("s3cret-token-0123456788", token)) << "last byte";
  EXPECT_FALSE(SecretEquals("S3cret-token-0123456789", token)) << "first byte";
  EXPECT_FALSE(SecretEquals("s3cret-token-012345678", token)) << "a prefix";
  EXPECT_FALSE(SecretEquals(token + "0", token)) << "longer";
  EXPECT_FALSE(SecretEquals("", token));
  EXPECT_FALSE(SecretEquals(std::string_view("s3cret-token-0123456789\0", 24), token)) << "a NUL more";
}

TEST(SecretEqualsTest, AnEmptySecretMatchesNothing) {
  EXPECT_FALSE(SecretEquals("", ""));
  EXPECT_FALSE(SecretEquals("x", ""));
}

TEST(SecretHasherTest, DigestsDependOnTheValueAndTheKey) {
  SecretHasher a;
  SecretHasher b;
  EXPECT_TRUE(SecretHasher::Equal(a.Hash("alice.1.mac"), a.Hash("alice.1.mac")));
  EXPECT_FALSE(SecretHasher::Equal(a.Hash("alice.1.mac"), a.Hash("alice.1.mad")));
  EXPECT_FALSE(SecretHasher::Equal(a.Hash("alice.1.mac"), b.Hash("alice.1.mac"))) << "each hasher has its own key";
}

}  // namespace
}  // namespace dspool
