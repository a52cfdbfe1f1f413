#include "net/tls.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

namespace dspool {
namespace {

// A self-signed P-256 certificate (its key was thrown away) and its
// fingerprint as `openssl x509 -noout -fingerprint -sha256` printed it.
constexpr std::string_view kCertificate = R"(-----BEGIN CERTIFICATE-----
MIIBhDCCASmgAwIBAgIUbHN0NSPPrdg8RRlzWX7HLKKEc3swCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLZHNwb29sIHRlc3QwIBcNMjYxMjA2MDU1MDA2WhgPMjEyNjEx
MTIwNTUwMDZaMBYxFDASBgNVBAMMC2RzcG9vbCB0ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAE3RRpP7zq690SDTUZGk32hwOP0Bnjd3G1jX5oYFw+t+xo6kWY
81DF46SWNPcT7fP5vEjZVIXrWOAgKOUOe/yvm6NTMFEwHQYDVR0OBBYEFDXJSWl4
23u+KguK69NYhUeEFfzRMB8GA1UdIwQYMBaAFDXJSWl423u+KguK69NYhUeEFfzR
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAIyZjHLXzsJjxock
m3KhYACwd6cCIhYoSsP554Km3wyiAiEAiBO2WH2ykIFYUCjDsNYIMDJE5u8ieAHR
gNlmLajchII=
-----END CERTIFICATE-----
)";
constexpr std::string_view kFingerprint =
    "BF:BF:B2:8B:4F:4C:76:03:81:C4:90:C6:8A:EB:E0:C0:CD:4F:52:34:36:D0:13:65:82:63:28:F1:8A:21:42:49";

TEST(CertificateFingerprintTest, IsOpensslsSha256Fingerprint) {
  auto fingerprint = CertificateFingerprint(kCertificate);
  ASSERT_TRUE(fingerprint.ok()) << fingerprint.status();
  EXPECT_EQ(*fingerprint, kFingerprint);
  // The first of a chain.
  EXPECT_EQ(*CertificateFingerprint(std::string(kCertificate) + std::string(kCertificate)), kFingerprint);
}

TEST(CertificateFingerprintTest, TextWithoutACertificateIsRefused) {
  for (std::string_view bad : {"", "hello", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}) {
    auto fingerprint = CertificateFingerprint(bad);
    ASSERT_FALSE(fingerprint.ok()) << bad;
    EXPECT_EQ(fingerprint.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(fingerprint.status().message().find("no PEM certificate"), std::string::npos);
  }
}

TEST(ParseCertificateFingerprintTest, AcceptsTheFormsPeoplePaste) {
  std::string bare;
  for (char c : kFingerprint) {
    if (c != ':') bare += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  for (std::string given : {std::string(kFingerprint), bare, "SHA256:" + std::string(kFingerprint),
                            "sha256 Fingerprint=" + std::string(kFingerprint), "sha256:" + bare}) {
    auto parsed = ParseCertificateFingerprint(given);
    ASSERT_TRUE(parsed.ok()) << given << ": " << parsed.status();
    EXPECT_EQ(*parsed, kFingerprint) << given;
  }
}

TEST(ParseCertificateFingerprintTest, RefusesWhatIsNotOne) {
  struct Case {
    std::string text;
    std::string why;
  };
  std::string good(kFingerprint);
  for (const Case& c : {Case{"", "has 0 hex digits"}, Case{good.substr(3), "has 62 hex digits"},
                        Case{good + ":00", "has 66 hex digits"}, Case{"X" + good.substr(1), "not a hex digit: 'X'"},
                        Case{good + ":", "':' must separate"}, Case{"B:FBF" + good.substr(5), "':' must separate"},
                        Case{"SHA1:" + good, "not a hex digit: 'S'"}}) {
    auto parsed = ParseCertificateFingerprint(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_NE(parsed.status().message().find(c.why), std::string::npos) << parsed.status();
  }
}

}  // namespace
}  // namespace dspool
