#include "provider/lxc/bridge_filter.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

Json Rule(const std::string& name, int64_t priority, const std::string& direction, const std::string& access,
          const std::string& protocol, const std::string& ports, const std::string& source = "*") {
  return {{"name", name},
          {"properties",
           {{"protocol", protocol},
            {"sourceAddressPrefix", source},
            {"sourcePortRange", "*"},
            {"destinationAddressPrefix", "*"},
            {"destinationPortRange", ports},
            {"access", access},
            {"priority", priority},
            {"direction", direction}}}};
}

PoolSpec Spec(Json subnet_group) {
  Json j = {{"name", "team"},
            {"instanceCount", 1},
            {"network", {{"subnet", "10.9.0.0/24"}, {"subnetSecurityGroup", subnet_group}}},
            {"share", {{"type", "none"}}},
            {"adminUser", {{"name", "admin"}, {"sshPublicKey", "ssh-ed25519 AAAA"}}}};
  auto spec = ParsePoolSpec(j);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : PoolSpec{};
}

TEST(BridgeFilterTest, WithoutGroupsTheTableIsRemoved) {
  PoolSpec spec = Spec(nullptr);
  EXPECT_EQ(BridgeFilterScript(PoolNetworkOf(spec)), "table inet dspool_team {}\ndelete table inet dspool_team\n");
}

TEST(BridgeFilterTest, RulesBecomeOneChainPerLayerInPriorityOrder) {
  PoolSpec spec = Spec({{"name", "nsg"},
                        {"securityRules",
                         {Rule("web", 200, "Inbound", "Allow", "Tcp", "8000-8010"),
                          Rule("no-ssh", 100, "Inbound", "Deny", "Tcp", "22"),
                          Rule("from-outside", 150, "Inbound", "Deny", "*", "*", "Internet"),
                          Rule("dns", 100, "Outbound", "Deny", "*", "53")}}});
  const std::string script = BridgeFilterScript(PoolNetworkOf(spec));
  // Replaced in one transaction; only this bridge's frames, IPv4 within the subnet.
  EXPECT_EQ(script.rfind("table inet dspool_team {}\ndelete table inet dspool_team\ntable inet dspool_team {\n", 0),
            0u)
      << script;
  EXPECT_NE(script.find("oifname != \"dsp-team\" accept"), std::string::npos);
  EXPECT_NE(script.find("ip saddr != 10.9.0.0/24 counter drop"), std::string::npos);
  EXPECT_NE(script.find("ct state established,related accept"), std::string::npos);
  // Outbound first (the sender's), then inbound (the receiver's).
  const std::string outbound =
      "  chain layer0 {\n"
      "    # Outbound rules of network security group nsg\n"
      "    meta l4proto { tcp, udp } th dport 53 counter drop comment \"dns\"\n"
      "    return comment \"AllowVnetOutBound\"\n"
      "  }\n";
  EXPECT_NE(script.find(outbound), std::string::npos) << script;
  // "from-outside" names the Internet: never an instance; left out.
  const std::string inbound =
      "  chain layer1 {\n"
      "    # Inbound rules of network security group nsg\n"
      "    meta l4proto tcp th dport 22 counter drop comment \"no-ssh\"\n"
      "    meta l4proto tcp th dport 8000-8010 return comment \"web\"\n"
      "    return comment \"AllowVnetInBound\"\n"
      "  }\n";
  EXPECT_NE(script.find(inbound), std::string::npos) << script;
  EXPECT_NE(script.find("    jump layer0\n    jump layer1\n    accept\n"), std::string::npos);
}

TEST(BridgeFilterTest, AGroupThatDeniesTheNetworkEndsInItsDenyAll) {
  Json deny_vnet = Rule("no-vnet", 4000, "Inbound", "Deny", "*", "*", "VirtualNetwork");
  PoolSpec spec = Spec({{"name", "nsg"},
                        {"securityRules", {Rule("ping", 300, "Inbound", "Allow", "Icmp", "*"), deny_vnet}}});
  const std::string script = BridgeFilterScript(PoolNetworkOf(spec));
  EXPECT_NE(script.find("    meta l4proto icmp return comment \"ping\"\n"
                        "    counter drop comment \"no-vnet\"\n"
                        "  }\n"),
            std::string::npos)
      << script;
  EXPECT_EQ(script.find("AllowVnetInBound"), std::string::npos);
}

}  // namespace
}  // namespace dspool
