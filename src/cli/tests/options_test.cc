#include "cli/options.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "base/testing/temp_dir.h"

namespace dspool {
namespace {

TEST(ResolveEndpointTest, FlagThenDataDirThenEnvironmentThenDefault) {
  Result<Endpoint> ep = ResolveEndpoint("tcp:127.0.0.1:7070", "", "unix:/env.sock");
  ASSERT_TRUE(ep.ok()) << ep.status();
  EXPECT_EQ(*ep, Endpoint::Tcp("127.0.0.1", 7070));

  ep = ResolveEndpoint("", "/srv/data", "unix:/env.sock");
  ASSERT_TRUE(ep.ok()) << ep.status();
  EXPECT_EQ(*ep, Endpoint::Unix("/srv/data/api.sock"));

  ep = ResolveEndpoint("", "", "unix:/env.sock");
  ASSERT_TRUE(ep.ok()) << ep.status();
  EXPECT_EQ(*ep, Endpoint::Unix("/env.sock"));

  ep = ResolveEndpoint("", "", std::string());
  ASSERT_TRUE(ep.ok()) << ep.status();
  EXPECT_EQ(*ep, Endpoint::Unix("/var/lib/dspool/api.sock"));

  ep = ResolveEndpoint("", "", std::nullopt);
  ASSERT_TRUE(ep.ok()) << ep.status();
  EXPECT_EQ(*ep, Endpoint::Unix("/var/lib/dspool/api.sock"));
}

TEST(ResolveEndpointTest, ErrorsNameTheirSource) {
  Result<Endpoint> ep = ResolveEndpoint("http://x", "", std::nullopt);
  ASSERT_FALSE(ep.ok());
  EXPECT_EQ(ep.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ep.status().message().rfind("--server: ", 0), 0u) << ep.status();

  ep = ResolveEndpoint("", "", "tcp:host:notaport");
  ASSERT_FALSE(ep.ok());
  EXPECT_EQ(ep.status().message().rfind("DSPOOL_SERVER: ", 0), 0u) << ep.status();

  ep = ResolveEndpoint("", std::string(200, 'd'), std::nullopt);
  ASSERT_FALSE(ep.ok());
  EXPECT_EQ(ep.status().message().rfind("--data-dir: ", 0), 0u) << ep.status();
}

constexpr std::string_view kFingerprint =
    "BF:BF:B2:8B:4F:4C:76:03:81:C4:90:C6:8A:EB:E0:C0:CD:4F:52:34:36:D0:13:65:82:63:28:F1:8A:21:42:49";

TEST(ApplyServerVerificationTest, FlagsThenEnvironmentForTlsServers) {
  Endpoint tls = Endpoint::Tls("pool-host", 7443);
  Endpoint ep = tls;
  ASSERT_TRUE(ApplyServerVerification({}, ep).ok());
  EXPECT_EQ(ep, tls) << "neither: the system's CAs";

  ep = tls;
  std::string lower = "sha256:bfbfb28b4f4c760381c490c68aebe0c0cd4f523436d01365826328f18a214249";
  ASSERT_TRUE(ApplyServerVerification({lower, "", "", "/env/ca.pem"}, ep).ok());
  EXPECT_EQ(ep.tls_fingerprint, kFingerprint) << "canonical form";
  EXPECT_EQ(ep.tls_ca_file, "") << "the flag wins over the environment";

  ep = tls;
  ASSERT_TRUE(ApplyServerVerification({"", "", std::string(kFingerprint), std::nullopt}, ep).ok());
  EXPECT_EQ(ep.tls_fingerprint, kFingerprint);

  ep = tls;
  ASSERT_TRUE(ApplyServerVerification({"", "/etc/ca.pem", std::string(kFingerprint), std::nullopt}, ep).ok());
  EXPECT_EQ(ep.tls_fingerprint, "");
  EXPECT_EQ(ep.tls_ca_file, "/etc/ca.pem");

  // The environment may stay set for a local server.
  Endpoint local = Endpoint::Unix("/var/lib/dspool/api.sock");
  ep = local;
  ASSERT_TRUE(ApplyServerVerification({"", "", std::string(kFingerprint), "/env/ca.pem"}, ep).ok());
  EXPECT_EQ(ep, local);
}

TEST(ApplyServerVerificationTest, ErrorsNameTheirSource) {
  Endpoint ep = Endpoint::Tls("pool-host", 7443);
  Status s = ApplyServerVerification({"AB:CD", "", std::nullopt, std::nullopt}, ep);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("--server-fingerprint: ", 0), 0u) << s;
  s = ApplyServerVerification({"", "", "nope", std::nullopt}, ep);
  EXPECT_EQ(s.message().rfind("DSPOOL_SERVER_FINGERPRINT: ", 0), 0u) << s;
  s = ApplyServerVerification({std::string(kFingerprint), "/ca.pem", std::nullopt, std::nullopt}, ep);
  EXPECT_NE(s.message().find("give one"), std::string::npos) << s;
  Endpoint tcp = Endpoint::Tcp("127.0.0.1", 7070);
  s = ApplyServerVerification({std::string(kFingerprint), "", std::nullopt, std::nullopt}, tcp);
  EXPECT_EQ(s.message(), "--server-fingerprint: only for a tls: server, and the server is tcp:127.0.0.1:7070");
}

TEST(ParseUidRangeTest, Valid) {
  Result<UidRange> r = ParseUidRange("20000-59999");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (UidRange{20000, 59999}));
  r = ParseUidRange("1000-1000");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (UidRange{1000, 1000}));
  r = ParseUidRange("100000-4294967294");
  ASSERT_TRUE(r.ok()) << r.status();
}

TEST(ParseUidRangeTest, InvalidNamesTheFlagAndWhy) {
  struct Case {
    const char* text;
    const char* why;
  };
  for (const Case& c :
       {Case{"", "is not FIRST-LAST"}, Case{"20000", "is not FIRST-LAST"}, Case{"20000-", "is not FIRST-LAST"},
        Case{"-5", "is not FIRST-LAST"}, Case{"a-b", "is not FIRST-LAST"}, Case{"20000-+3", "is not FIRST-LAST"},
        Case{"1 -2000", "is not FIRST-LAST"}, Case{"20000-30000-40000", "is not FIRST-LAST"},
        Case{"0-100", "starts below 1000"}, Case{"999-2000", "starts below 1000"},
        Case{"20000-4294967295", "ends above"}, Case{"30000-20000", "ends before it starts"}}) {
    Result<UidRange> r = ParseUidRange(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message().rfind("--uid-range: '" + std::string(c.text) + "' ", 0), 0u) << r.status();
    EXPECT_NE(r.status().message().find(c.why), std::string::npos) << c.text << ": " << r.status();
  }
}

TEST(ValidateListenAddressTest, AddressAndPort) {
  for (const char* good : {"127.0.0.1:7070", "0.0.0.0:1", "localhost:65535", "[::1]:7070"}) {
    EXPECT_TRUE(ValidateListenAddress(good).ok()) << good << ": " << ValidateListenAddress(good);
  }
  for (const char* bad : {"7070", ":7070", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x", "::1:7070",
                          "[]:7070", "[::1:7070"}) {
    Status s = ValidateListenAddress(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.message().rfind("--listen: ", 0), 0u) << s;
  }
}

TEST(SshKeyMaterialTest, IgnoresOptionsAndComment) {
  EXPECT_EQ(SshKeyMaterial("ssh-ed25519 AAAAC3 alice@laptop"), "ssh-ed25519 AAAAC3");
  EXPECT_EQ(SshKeyMaterial("  ssh-ed25519   AAAAC3  "), "ssh-ed25519 AAAAC3");
  EXPECT_EQ(SshKeyMaterial("no-pty,from=\"10.0.0.1\" ecdsa-sha2-nistp256 AAAAE2 c"), "ecdsa-sha2-nistp256 AAAAE2");
  EXPECT_EQ(SshKeyMaterial("garbage"), "");
}

TEST(ReadPasswordLineTest, OneLineWithoutItsEnding) {
  std::istringstream in("s3cret pass\r\nsecond\n");
  Result<std::string> p = ReadPasswordLine(in, "--password-stdin");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "s3cret pass");

  std::istringstream no_newline("last");
  p = ReadPasswordLine(no_newline, "--password-stdin");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "last");

  std::istringstream empty("");
  p = ReadPasswordLine(empty, "--password-stdin");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "--password-stdin: no password on standard input");

  std::istringstream blank("\n");
  p = ReadPasswordLine(blank, "--admin-password-stdin");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "--admin-password-stdin: the password on standard input is empty");
}

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(tmp_.path().empty()); }
  std::string Write(const std::string& name, const std::string& content) {
    std::string path = tmp_ / name;
    std::ofstream(path) << content;
    return path;
  }
  TempDir tmp_{"dspool-cli-options"};
};

TEST_F(FileTest, TokenIsTrimmed) {
  Result<std::string> t = ReadTokenFile(Write("token", "  abc123\n"), "--token-file");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "abc123");
}

TEST_F(FileTest, TokenErrorsNameTheSourceAndFile) {
  Result<std::string> t = ReadTokenFile(tmp_ / "missing", "DSPOOL_TOKEN_FILE");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(t.status().message(), "DSPOOL_TOKEN_FILE: open " + tmp_.path() + "/missing: No such file or directory");

  std::string empty = Write("empty", "\n \n");
  t = ReadTokenFile(empty, "--token-file");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "--token-file: token file " + empty + " is empty");

  t = ReadTokenFile(Write("two", "abc\ndef\n"), "--token-file");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("must hold one token"), std::string::npos) << t.status();
}

TEST_F(FileTest, SshKeysSkipBlankLinesAndComments) {
  std::string path = Write("keys", "# laptop\nssh-ed25519 AAAA1 a@b\n\n  ssh-rsa AAAA2 c@d  \n");
  Result<std::vector<std::string>> keys = ReadSshKeyFile(path, "--ssh-key");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(*keys, (std::vector<std::string>{"ssh-ed25519 AAAA1 a@b", "ssh-rsa AAAA2 c@d"}));
}

TEST_F(FileTest, SshKeyFileErrors) {
  std::string priv =
      Write("id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nxxx\n-----END OPENSSH PRIVATE KEY-----\n");
  Result<std::vector<std::string>> keys = ReadSshKeyFile(priv, "--ssh-key");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().message().rfind("--ssh-key: " + priv + " is a private key", 0), 0u) << keys.status();

  std::string blank = Write("blank", "# nothing\n\n");
  keys = ReadSshKeyFile(blank, "--ssh-key");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().message(), "--ssh-key: " + blank + " holds no SSH public key");

  keys = ReadSshKeyFile(tmp_.path(), "--ssh-key");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().message(), "--ssh-key: read " + tmp_.path() + ": is a directory");
}

}  // namespace
}  // namespace dspool
