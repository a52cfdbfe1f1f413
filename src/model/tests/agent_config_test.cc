#include "model/agent_config.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

// What a server sends, as text: the parser sees exactly this.
Json Sample() {
  return Json::parse(R"({
    "instanceId": "demo-1-abc", "pool": "demo", "hostname": "demo1", "address": "10.80.0.11",
    "shareMountPath": "/srv/share", "hostPrivateKey": "private", "hostPublicKey": "public",
    "configVersion": 3,
    "users": [{"name": "alice", "uid": 20000, "admin": true, "sshKeys": ["ssh-ed25519 AAAA alice"]}]})");
}

TEST(AgentConfigTest, RoundTripsWithTheAddress) {
  auto config = ParseAgentConfig(Sample());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->address, "10.80.0.11");
  auto back = ParseAgentConfig(AgentConfigToJson(*config));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->address, "10.80.0.11");
  EXPECT_EQ(back->users.at(0).uid, 20000);
}

TEST(AgentConfigTest, JupyterIsOptionalAndRoundTrips) {
  auto without = ParseAgentConfig(Sample());
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_FALSE(without->jupyter);
  Json json = Sample();
  json["jupyter"] = true;
  auto with = ParseAgentConfig(json);
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_TRUE(with->jupyter);
  auto back = ParseAgentConfig(AgentConfigToJson(*with));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->jupyter);
  json["jupyter"] = "yes";
  auto bad = ParseAgentConfig(json);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("config.jupyter"), std::string::npos) << bad.status();
}

TEST(AgentConfigTest, AddressIsOptionalButMustBeIpv4) {
  Json json = Sample();
  json.erase("address");
  auto old = ParseAgentConfig(json);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->address, "");
  json["address"] = "10.80.0.300";
  auto bad = ParseAgentConfig(json);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "config.address: '10.80.0.300' is not an IPv4 address");
}

}  // namespace
}  // namespace dspool
