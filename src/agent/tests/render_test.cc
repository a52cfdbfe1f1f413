#include "agent/render.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

AgentConfig TwoUsers() {
  AgentConfig c;
  c.instance_id = "demo-0-abc";
  c.pool = "demo";
  c.hostname = "demo0";
  c.share_mount_path = "/datamnt/dsvmshare";
  c.users = {{"alice", 20000, true, "$y$j9T$salt$hash", {"ssh-ed25519 AAAA a"}},
             {"bob", 20001, false, "", {}}};
  c.host_private_key = "PRIVATE";
  c.host_public_key = "ssh-ed25519 AAAA host";
  c.config_version = 7;
  return c;
}

const char* kImagePasswd =
    "root:x:0:0:root:/root:/bin/bash\n"
    "sshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    "hostuser:x:1000:1000:,,,:/home/hostuser:/bin/bash\n"
    "alice:x:1001:1001::/home/alice:/bin/sh\n";

TEST(RenderTest, PasswdKeepsSystemAccountsDropsHostUsersAddsPoolUsers) {
  std::string out = RenderPasswd(kImagePasswd, TwoUsers());
  EXPECT_EQ(out,
            "root:x:0:0:root:/root:/bin/bash\n"
            "sshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            "alice:x:20000:20000:dspool user:/datamnt/dsvmshare/home/alice:/bin/bash\n"
            "bob:x:20001:20001:dspool user:/datamnt/dsvmshare/home/bob:/bin/bash\n");
}

TEST(RenderTest, RenderedUsersAreWhatPasswdAndGroupSay) {
  auto users = RenderedUsers(TwoUsers());
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[1], (RenderedUser{"bob", 20001, 20001, {20001}, "/datamnt/dsvmshare/home/bob", "/bin/bash"}));
}

TEST(RenderTest, GroupHasPrivateGroups) {
  std::string out = RenderGroup("root:x:0:\nusers:x:100:\nhostuser:x:1000:\n", TwoUsers());
  EXPECT_EQ(out, "root:x:0:\nusers:x:100:\nalice:x:20000:\nbob:x:20001:\n");
}

TEST(RenderTest, ShadowLocksSystemAccountsAndCarriesHashes) {
  std::string out = RenderShadow(kImagePasswd, TwoUsers());
  EXPECT_EQ(out,
            "root:*:19000:0:99999:7:::\n"
            "sshd:*:19000:0:99999:7:::\n"
            "nobody:*:19000:0:99999:7:::\n"
            "alice:$y$j9T$salt$hash:19000:0:99999:7:::\n"
            "bob:*:19000:0:99999:7:::\n");
}

TEST(RenderTest, SshdConfigUsesKeysCommandAndPoolHostKey) {
  std::string out = RenderSshdConfig({"/etc/ssh/dspool/ssh_host_ed25519_key", "/usr/local/lib/dspool/dspool"});
  EXPECT_NE(out.find("HostKey /etc/ssh/dspool/ssh_host_ed25519_key\n"), std::string::npos);
  EXPECT_NE(out.find("AuthorizedKeysCommand /usr/local/lib/dspool/dspool agent authorized-keys %u\n"),
            std::string::npos);
  EXPECT_NE(out.find("AuthorizedKeysFile none\n"), std::string::npos);
  EXPECT_NE(out.find("PermitRootLogin no\n"), std::string::npos);
  // A shared pool's bursts of logins from one address (the gateway's).
  EXPECT_NE(out.find("MaxStartups 256:30:1024\n"), std::string::npos);
  EXPECT_NE(out.find("PerSourceMaxStartups none\n"), std::string::npos);
  EXPECT_NE(out.find("LoginGraceTime 30\n"), std::string::npos);
}

TEST(RenderTest, ConfigRoundTripsAndRejectsUnknownFields) {
  AgentConfig c = TwoUsers();
  auto parsed = ParseAgentConfig(AgentConfigToJson(c));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->users.size(), 2u);
  EXPECT_EQ(parsed->users[0].ssh_keys, c.users[0].ssh_keys);
  EXPECT_EQ(parsed->config_version, 7);
  Json j = AgentConfigToJson(c);
  j["surprise"] = 1;
  EXPECT_EQ(ParseAgentConfig(j).status().message(), "config.surprise: unknown field");
  j = AgentConfigToJson(c);
  j["users"][1].erase("uid");
  EXPECT_EQ(ParseAgentConfig(j).status().message(), "config.users[1].uid: is required");
}

TEST(RenderTest, HostsNamesTheInstance) {
  EXPECT_NE(RenderHosts(TwoUsers()).find("127.0.1.1\tdemo0\n"), std::string::npos);
}

TEST(RenderTest, SudoersListsOnlyAdmins) {
  EXPECT_EQ(RenderSudoers(TwoUsers()),
            "# Written by dspool agent; changes are overwritten.\nalice ALL=(ALL:ALL) NOPASSWD: ALL\n");
}

TEST(RenderTest, SharePaths) {
  EXPECT_EQ(HomeOf(TwoUsers(), "bob"), "/datamnt/dsvmshare/home/bob");
  AgentConfig local = TwoUsers();
  local.share_mount_path.clear();
  EXPECT_EQ(HomeOf(local, "bob"), "/home/bob");
}

}  // namespace
}  // namespace dspool
