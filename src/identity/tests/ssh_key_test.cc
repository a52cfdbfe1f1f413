#include "identity/ssh_key.h"

#include <gtest/gtest.h>

#include <string>

namespace dspool {
namespace {

// Public keys made on this machine with `ssh-keygen -t ... -N ''` (ed25519,
// ecdsa -b 256/384/521, rsa -b 3072/1024). The two sk-* lines were assembled
// from the ed25519 and ecdsa-256 keys in the PROTOCOL.u2f layout (application
// "ssh:"); `ssh-keygen -lf` accepts them. Fingerprints below are what
// `ssh-keygen -lf` printed for each.
constexpr char kEd25519[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAVaUb7kn02Z0LlTAYxTllGgZ8x23MZaa6G9S2bEmjZE user@ed25519";
constexpr char kEcdsa256[] =
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFGzqmCJibtuPS00yHvv8FKC"
    "iSTBF2Q6ORROFXO/0mPIR2xmxCfYaNdpKEX6dWt2d+gcEXZkIRnp2ntqyQbD+mg= user@ecdsab256";
constexpr char kEcdsa384[] =
    "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBBlkiF3IgCeh5x0ggttPu5tb"
    "Yjr/5EsE6lhFlKlIoWbi7FS3cvMBUfBQxO7ZE5j2EuHQ+sn5Uwdz2Tdl2pohOx7ngsjlR/00mFdGeCCIcVoL76yL93IStiWx"
    "svNV8gLCeg== user@ecdsab384";
constexpr char kEcdsa521[] =
    "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBABAbjX3jcCD8aMLoLG05Z+6"
    "zUn+FdsYQ61F8IGdEAZJrQg3m/S1Do8arxJtAsmuEbPYifvIvsqaqDD0KuLe9F3qxgCvzt2PSaT9za6xUxcpiSMck5rwIoc8"
    "jhgEumJKYgZgZ5WjknaLvxxBj1j/L3T72o8aJLfrO0I12AdaDn7CDLCvzQ== user@ecdsab521";
constexpr char kRsa3072[] =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCjvrFq6EaJTLwVL31aZ6XNXCmP+pQlhH0e2XUQoIRm/ulHjMftvw3ngHca"
    "vwwACJNGOGynIl0yp1eU/5lWGFC0cQBeOv3M33gwkZE8NoMk7io+KC9/v+LQDDWF40ZSAIo+dsJWWpILFNd//BjgI7JidJkB"
    "pi90DwHus3O2hnXOikxV8fLJ2VNpjJXWVErbQdgj4LdpvriT48OVvbhwl72s1b+ZDkhQb5KoPPCeACxmcmt3don+tTNbVjOE"
    "xEESOYF07XByELuQCrIGS6MN6RdsSFMkB9Y9S2S4RWRp+1za4jQ5bhqP3EJ3T2KsH63rApTlNPjZ0P+N0u97LkTuFasI7TRM"
    "MAJkpCe3IhZTYqhE1OQc1AptJt2S92qn4cjwdAeK8n8f2B3cbUuEUH0O4NeJxQu1AvegWsIIlS1z8LfjZWVJteRA4JaNXZ5b"
    "laoeXMx5bTynzIIxTSrivyTGqm3Fu7b/fFpnRFX5Y7DLe7gjWxN3i6OqKR8cFDQBpj6TMy8= user@rsab3072";
constexpr char kRsa1024[] =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDeJRs6jRvqKJIT83NoD+TNfhQdIcRaEaZVwyN5q7OUQRN8PPjEbKE7eu6C"
    "VA8aT4/mdmpcxUtqCAZcXkzwjBhvpneytdM94wQHjgNVpfJQ/xZVb30lcc1EiiVzOTtLXlkP3qNdmd/0KibNQT2hXSnMCe1y"
    "gNkDEa/Lqd1l27hDjQ== user@rsab1024";
constexpr char kSkEd25519[] =
    "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIAVaUb7kn02Z0LlTAYxTllGgZ"
    "8x23MZaa6G9S2bEmjZEAAAABHNzaDo= user@sked";
constexpr char kSkEcdsa[] =
    "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlzd"
    "HAyNTYAAABBBFGzqmCJibtuPS00yHvv8FKCiSTBF2Q6ORROFXO/0mPIR2xmxCfYaNdpKEX6dWt2d+gcEXZkIRnp2ntqyQbD+"
    "mgAAAAEc3NoOg== user@skec";

// Only the opening of an OpenSSH private key file (a generic header, no key
// material): enough to be recognised.
constexpr char kPrivateKey[] =
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n";
constexpr char kRfc4716[] =
    "---- BEGIN SSH2 PUBLIC KEY ----\n"
    "Comment: \"256-bit ED25519, converted by root@vm from OpenSSH\"\n"
    "AAAAC3NzaC1lZDI1NTE5AAAAIAVaUb7kn02Z0LlTAYxTllGgZ8x23MZaa6G9S2bEmjZE\n"
    "---- END SSH2 PUBLIC KEY ----\n";
constexpr char kEd25519Blob[] = "AAAAC3NzaC1lZDI1NTE5AAAAIAVaUb7kn02Z0LlTAYxTllGgZ8x23MZaa6G9S2bEmjZE";

struct AcceptCase {
  const char* line;
  const char* fingerprint;
};

TEST(SshKeyTest, AcceptsRealKeysAndFingerprintsLikeSshKeygen) {
  const AcceptCase cases[] = {
      {kEd25519, "SHA256:N/psw+X3smZoZ03JlImLH8W0ZmtxZhX1Iy/pFGHv37A"},
      {kEcdsa256, "SHA256:abAx9OsaZJeszYc/HB56kFRO9XqI/JF6pEkU8xpow0k"},
      {kEcdsa384, "SHA256:jarel2xkkJD6dARSRVSacLSUIz8tabo4B8BavCtehYI"},
      {kEcdsa521, "SHA256:jSVi7b0G6/FjQySuAT61eWGGhg/MjaVQdD45TI5foG8"},
      {kRsa3072, "SHA256:H/TJN8WMko/9Xo+rJV6L5viTBorAY1IyZA4CYNbiuNA"},
      {kSkEd25519, "SHA256:jkTqIUFKytbvzkV7qn7J3bcQE6ukwPFD8/QbuNq8dKE"},
      {kSkEcdsa, "SHA256:v1bZKgzh3zpd+5SLjmjDRQ4qdIcLluBenZr/2xBBMQI"},
  };
  for (const AcceptCase& c : cases) {
    auto key = NormalizeSshPublicKey(c.line);
    ASSERT_TRUE(key.ok()) << c.line << ": " << key.status();
    EXPECT_EQ(*key, c.line);
    EXPECT_EQ(SshKeyFingerprint(*key), c.fingerprint) << c.line;
  }
}

TEST(SshKeyTest, Normalizes) {
  std::string blob = kEd25519Blob;
  EXPECT_EQ(*NormalizeSshPublicKey("  ssh-ed25519\t" + blob + "   alice laptop  \n"),
            "ssh-ed25519 " + blob + " alice laptop");
  EXPECT_EQ(*NormalizeSshPublicKey("ssh-ed25519 " + blob + "\r\n"), "ssh-ed25519 " + blob);
  EXPECT_EQ(*NormalizeSshPublicKey("ssh-ed25519 " + blob), "ssh-ed25519 " + blob);
  EXPECT_EQ(SshKeyFingerprint("ssh-ed25519 " + blob), "SHA256:N/psw+X3smZoZ03JlImLH8W0ZmtxZhX1Iy/pFGHv37A")
      << "the comment does not change the fingerprint";
}

struct RejectCase {
  std::string line;
  std::string message_part;  // the error must say this
};

TEST(SshKeyTest, RejectsWithHelpfulErrors) {
  std::string blob = kEd25519Blob;
  std::string ecdsa256 = kEcdsa256;
  std::string ecdsa_blob = ecdsa256.substr(ecdsa256.find(' ') + 1, ecdsa256.rfind(' ') - ecdsa256.find(' ') - 1);
  const RejectCase cases[] = {
      {kPrivateKey, "this is a private key; give the .pub file"},
      {"-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----", "private key"},
      {"PuTTY-User-Key-File-3: ssh-ed25519", "private key"},
      {kRfc4716, "ssh-keygen -i"},
      {"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----", "PEM"},
      {"", "empty"},
      {"   \n", "empty"},
      {"ssh-ed25519 " + blob + " a\nssh-ed25519 " + blob + " b", "single line"},
      {"from=\"10.0.0.0/8\",no-pty ssh-ed25519 " + blob + " alice", "options"},
      {"command=\"/bin/echo hi\" ssh-ed25519 " + blob, "options"},
      {"ssh-dss AAAAB3NzaC1kc3MAAACBAP= old", "unsupported key type 'ssh-dss'"},
      {"ssh-ed25519", "missing"},
      {"ssh-ed25519 AAAA$$$$", "base64"},
      {"ssh-ed25519 " + blob.substr(0, blob.size() - 1), "base64"},     // no longer a multiple of 4
      {"ssh-ed25519 " + blob.substr(0, blob.size() - 8), "malformed"},  // valid base64, truncated key
      {"ssh-rsa " + blob + " mismatched", "the key data is a 'ssh-ed25519' key but the line says 'ssh-rsa'"},
      {"ecdsa-sha2-nistp384 " + ecdsa_blob, "'ecdsa-sha2-nistp256' key but the line says 'ecdsa-sha2-nistp384'"},
      {"sk-ssh-ed25519@openssh.com " + blob, "line says 'sk-ssh-ed25519@openssh.com'"},
      {kRsa1024, "1024 bits; at least 2048"},
      {"ssh-ed25519 " + blob + " " + std::string(300, 'c'), "comment is longer"},
      {"ssh-ed25519 " + blob + " bell\a", "control characters"},
      {"ssh-ed25519 " + blob + std::string(17000, ' '), "16 KiB"},
  };
  for (const RejectCase& c : cases) {
    auto key = NormalizeSshPublicKey(c.line);
    ASSERT_FALSE(key.ok()) << "accepted: " << c.line;
    EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument) << c.line;
    EXPECT_NE(key.status().message().find(c.message_part), std::string::npos)
        << "for: " << c.line.substr(0, 80) << "\n got: " << key.status().message();
  }
}

TEST(SshKeyTest, FingerprintOfUndecodableLineIsEmpty) {
  EXPECT_EQ(SshKeyFingerprint("ssh-ed25519 !!!"), "");
  EXPECT_EQ(SshKeyFingerprint(""), "");
}

}  // namespace
}  // namespace dspool
