#include "model/load_balancer.h"

#include <gtest/gtest.h>

#include "model/pool.h"

namespace dspool {
namespace {

// The sample template's rules and probes, plus the NAT pool its variables
// describe but never create (sample-template.md, section 6).
Json SampleLb() {
  return Json::parse(R"({
    "rules": [
      {"name": "Jupyter", "protocol": "Tcp", "frontendPort": 8000, "backendPort": 8000, "probe": "Jupyterprobe",
       "loadDistribution": "SourceIP", "idleTimeoutInMinutes": 30},
      {"name": "SSH", "protocol": "Tcp", "frontendPort": 22, "backendPort": 22, "probe": "sshprobe",
       "loadDistribution": "SourceIP", "idleTimeoutInMinutes": 30}
    ],
    "probes": [
      {"name": "Jupyterprobe", "protocol": "Tcp", "port": 8000, "intervalInSeconds": 5, "numberOfProbes": 2},
      {"name": "sshprobe", "protocol": "Tcp", "port": 22, "intervalInSeconds": 5, "numberOfProbes": 2}
    ],
    "inboundNatPools": [
      {"name": "sshnat", "protocol": "Tcp", "frontendPortRangeStart": 50000, "frontendPortRangeEnd": 50120, "backendPort": 22}
    ]
  })");
}

TEST(LoadBalancerTest, ParsesTheSampleTemplatesLoadBalancer) {
  auto lb = ParseLoadBalancer(SampleLb(), "loadBalancer");
  ASSERT_TRUE(lb.ok()) << lb.status();
  EXPECT_EQ(lb->frontend_address, "0.0.0.0");
  ASSERT_EQ(lb->rules.size(), 2u);
  EXPECT_EQ(lb->rules[1].distribution, Distribution::kSourceIP);
  EXPECT_EQ(lb->probes[0].interval_seconds, 5);
  EXPECT_EQ(lb->nat_pools[0].size(), 121);
  EXPECT_EQ(*NatCapacity(*lb), 121);
  auto again = ParseLoadBalancer(LoadBalancerToJson(*lb), "loadBalancer");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *lb);
}

TEST(LoadBalancerTest, Defaults) {
  auto lb = ParseLoadBalancer(Json::parse(R"({"rules": [{"name": "SSH", "frontendPort": 22, "backendPort": 22,
    "probe": "p"}], "probes": [{"name": "p", "protocol": "Tcp", "port": 22}]})"), "loadBalancer");
  ASSERT_TRUE(lb.ok()) << lb.status();
  EXPECT_EQ(lb->rules[0].distribution, Distribution::kDefault);
  EXPECT_EQ(lb->rules[0].idle_timeout_minutes, 30);
  EXPECT_EQ(lb->probes[0].interval_seconds, 15);
  EXPECT_EQ(lb->probes[0].number_of_probes, 2);
  EXPECT_FALSE(NatCapacity(*lb).has_value());
}

struct BadLb {
  const char* pointer;
  Json value;
  const char* message;
};

class LoadBalancerErrorTest : public ::testing::TestWithParam<BadLb> {};

TEST_P(LoadBalancerErrorTest, NamesThePath) {
  Json j = SampleLb();
  j[Json::json_pointer(GetParam().pointer)] = GetParam().value;
  auto lb = ParseLoadBalancer(j, "loadBalancer");
  ASSERT_FALSE(lb.ok());
  EXPECT_EQ(lb.status().message().rfind(GetParam().message, 0), 0u) << lb.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, LoadBalancerErrorTest,
    ::testing::Values(
        BadLb{"/frontendAddress", "not-an-ip", "loadBalancer.frontendAddress: 'not-an-ip' is not an IPv4 address"},
        BadLb{"/rules/0/probe", "nope", "loadBalancer.rules[0].probe: no probe is named 'nope'"},
        BadLb{"/rules/1/frontendPort", 8000, "loadBalancer.rules[1] (SSH): frontend port 8000 overlap loadBalancer.rules[0]"},
        BadLb{"/inboundNatPools/0/frontendPortRangeStart", 7990,
              "loadBalancer.inboundNatPools[0] (sshnat): frontend ports 7990-50120 overlap loadBalancer.rules[0]"},
        BadLb{"/rules/0/loadDistribution", "RoundRobin", "loadBalancer.rules[0].loadDistribution: 'RoundRobin'"},
        BadLb{"/rules/0/protocol", "Udp", "loadBalancer.rules[0].protocol: 'Udp' is not supported"},
        BadLb{"/rules/0/idleTimeoutInMinutes", 2, "loadBalancer.rules[0].idleTimeoutInMinutes: must be between 4"},
        BadLb{"/rules/1/name", "Jupyter", "loadBalancer.rules[1].name: 'Jupyter' is empty or used twice"},
        BadLb{"/rules/0/frontendPort", 70000, "loadBalancer.rules[0].frontendPort: must be between 1 and 65535"},
        BadLb{"/probes/0/intervalInSeconds", 1, "loadBalancer.probes[0].intervalInSeconds: must be between 5"},
        BadLb{"/probes/0/protocol", "Http", "loadBalancer.probes[0].requestPath: an Http probe needs a path"},
        BadLb{"/probes/0/colour", "red", "loadBalancer.probes[0].colour: unknown field"},
        BadLb{"/inboundNatPools/0/frontendPortRangeEnd", 49999,
              "loadBalancer.inboundNatPools[0].frontendPortRangeEnd: must be between"},
        BadLb{"/rules", Json::object(), "loadBalancer.rules: expected an array"}));

TEST(LoadBalancerTest, RelayedSessionJsonNamesWhatTheInstanceSees) {
  RelayedSessionInfo info{"team", "team-0-ab", "ssh", "127.0.0.1:40022", 2222, "10.232.5.2:22",
                          "10.232.5.1:51234", false, FromUnixMillis(1'700'000'000'000)};
  EXPECT_EQ(RelayedSessionInfoToJson(info), Json::parse(R"({"kind": "ssh", "pool": "team", "instance": "team-0-ab",
      "client": "127.0.0.1:40022", "frontendPort": 2222, "instanceAddress": "10.232.5.2:22",
      "instanceSees": "10.232.5.1:51234", "transparent": false, "startedAt": "2023-11-14T22:13:20.000Z"})"));
}

TEST(LoadBalancerTest, PoolSpecChecksNatCapacity) {
  Json spec = Json::parse(R"({"name": "team", "instanceCount": 4, "network": {"subnet": "10.231.0.0/24"},
    "share": {"type": "bind", "source": "/srv/s"}, "adminUser": {"name": "a", "passwordHash": "$y$j9T$salt$hash"}})");
  spec["loadBalancer"] = SampleLb();
  spec["loadBalancer"]["inboundNatPools"][0]["frontendPortRangeEnd"] = 50002;
  auto parsed = ParsePoolSpec(spec);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(),
            "instanceCount: 4 instances need more than the 3 ports of loadBalancer.inboundNatPools[0] (sshnat)");
  spec["instanceCount"] = 3;
  parsed = ParsePoolSpec(spec);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(MaxInstanceCount(*parsed), 3);
  auto round = ParsePoolSpec(PoolSpecToJson(*parsed, Secrets::kInclude));
  ASSERT_TRUE(round.ok()) << round.status();
  EXPECT_EQ(round->load_balancer, parsed->load_balancer);
}

}  // namespace
}  // namespace dspool
