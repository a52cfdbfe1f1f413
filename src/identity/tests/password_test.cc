#include "identity/password.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

// Made on this machine with libxcrypt (crypt_gensalt_rn + crypt_rn) for the
// password "password"; the method name is in each hash.
constexpr char kYescrypt[] = "$y$j9T$PsniDUotTsV43HlV/.Tam.$lYJ6Hh9Du2oCI660op./zoikU8TqrCINuHBcd8qPO23";
constexpr char kGostYescrypt[] = "$gy$j9T$DT3dxbfJQVLQ58w.goAVH1$FxzVALsQeQWXxIJqv27N7fRGqhhi39h6tY9j5sO0L50";
constexpr char kScrypt[] = "$7$CU..../....sx4Jq8hDuh7jumd4vsQlE1$U.CKBGVwJVNno.3tJdbJr.kWadltmppRAE3RPzo4pM8";
constexpr char kBcrypt[] = "$2b$05$OAuQXDNE9d1s0Oic//1npeiC7pkqzx8oonqcN3g6KR2itpsjKnx3u";
constexpr char kSha512[] =
    "$6$pxQpQCiQJAQOJo2d$xA58dC2/PQJj0GIKMWMkhm2Zf.ttXcRrF5WiEwYPdoaI0/jr9ZaLWepOuA6sdvXpuRJ/MCvOESdQk/VTbN.jP/";
constexpr char kSha256[] = "$5$tWmIyG/vON98SE3E$hxy7wAG2L/D9mO82A6AKRwwy1lPE5ZagkEdyOxwSqe.";
constexpr char kSha512Rounds[] =
    "$6$rounds=10000$saltsaltsaltsalt$"
    "ven1Z5uj7RDawucOM1A67FJkxPT8ty925GjP2I3C1I1otSzw05mv4Y24JfAguQfbNUK9F68UUwzofnEXKC9"
    "xP/";
constexpr char kMd5[] = "$1$gBHsdDKN$MdOc1Q98JULwgR4vGfJUW.";
constexpr char kDes[] = "3orMDy42Bd9OM";

TEST(PasswordTest, HashAndVerifyRoundTrip) {
  auto hash = HashPassword("correct horse battery");
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_TRUE(hash->starts_with("$y$")) << *hash;
  EXPECT_TRUE(VerifyPassword("correct horse battery", *hash));
  EXPECT_FALSE(VerifyPassword("correct horse batterY", *hash));
  EXPECT_FALSE(VerifyPassword("correct horse battery ", *hash));
  EXPECT_FALSE(VerifyPassword("", *hash));
  EXPECT_TRUE(ValidatePasswordHash(*hash).ok());
}

TEST(PasswordTest, SaltsDiffer) {
  auto a = HashPassword("same password");
  auto b = HashPassword("same password");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(PasswordTest, HashRejectsInvalidPasswords) {
  EXPECT_EQ(HashPassword("short").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HashPassword(std::string("pass\0word", 9)).status().code(), StatusCode::kInvalidArgument);
}

TEST(PasswordTest, VerifiesEveryAcceptedMethod) {
  for (const char* hash : {kYescrypt, kGostYescrypt, kScrypt, kBcrypt, kSha512, kSha256, kSha512Rounds}) {
    EXPECT_TRUE(VerifyPassword("password", hash)) << hash;
    EXPECT_FALSE(VerifyPassword("passwort", hash)) << hash;
  }
}

TEST(PasswordTest, VerifyIsFalseForUnusableHashes) {
  for (const char* hash : {"", "*", "!", "!$y$j9T$PsniDUotTsV43HlV/.Tam.$lYJ6Hh9Du2oCI660op./zoikU8TqrCINuHBcd8qPO23",
                           "$y$j9T$abc$", "$6$saltsalt$garbage!!", "not a hash"}) {
    EXPECT_FALSE(VerifyPassword("password", hash)) << hash;
  }
  EXPECT_FALSE(VerifyPassword(std::string("password\0x", 10), kYescrypt));
  EXPECT_FALSE(VerifyPassword(std::string(2000, 'a'), kYescrypt));
}

TEST(PasswordTest, ValidatePassword) {
  EXPECT_TRUE(ValidatePassword("12345678").ok());
  EXPECT_TRUE(ValidatePassword(std::string(1024, 'x')).ok());
  EXPECT_TRUE(ValidatePassword("pässwörd with spaces and\ttab").ok());
  for (const std::string& bad : {std::string(""), std::string("1234567"), std::string(1025, 'x'),
                                 std::string("password\n"), std::string("pass\rword"), std::string("pass\0word", 9)}) {
    Status s = ValidatePassword(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    if (!bad.empty()) {
      EXPECT_EQ(s.message().find(bad), std::string::npos) << "the error leaks the password";
    }
  }
}

TEST(PasswordTest, ValidatePasswordHashAccepts) {
  for (const char* hash : {kYescrypt, kGostYescrypt, kScrypt, kBcrypt, kSha512, kSha256, kSha512Rounds}) {
    Status s = ValidatePasswordHash(hash);
    EXPECT_TRUE(s.ok()) << hash << ": " << s;
  }
}

TEST(PasswordTest, ValidatePasswordHashRejects) {
  std::string yescrypt = kYescrypt;
  const std::string cases[] = {
      "",                                       // empty
      "*",                                      // disabled
      "!",                                      // locked
      "!" + yescrypt,                           // locked hash
      "*LK*",                                   // Solaris-style lock
      kMd5,                                     // weak method
      kDes,                                     // weak method
      "$y$j9T$abc$",                            // digest missing
      yescrypt.substr(0, yescrypt.size() - 5),  // digest truncated
      yescrypt + "AAAA",                        // digest too long
      yescrypt.substr(0, 30),                   // cut inside the salt
      "$6$saltsalt$garbage!!",                  // not crypt base64
      yescrypt + ":",                           // would break /etc/shadow
      yescrypt + "\n",                          // control character
      "$y$" + std::string(400, 'a'),            // too long
      "$y$zzz$",                                // cost does not parse
      "password",                               // plaintext, not a hash
      // a salt longer than sha512crypt's 16 characters: crypt would silently cut it
      "$6$saltsaltsaltsaltLONGER$bcXJ8qxwY5sQ4v8MTl.0B1jeZ0z0JlA9jjmbUoCJZ.1wYXiLTU."
      "q2ILyrDJLm890lyfuF7sWAeli0yjOyFPkf0",
  };
  for (const std::string& hash : cases) {
    EXPECT_EQ(ValidatePasswordHash(hash).code(), StatusCode::kInvalidArgument) << "'" << hash << "'";
  }
}

}  // namespace
}  // namespace dspool
