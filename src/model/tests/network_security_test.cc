#include "model/network_security.h"

#include <gtest/gtest.h>

#include "model/pool.h"

namespace dspool {
namespace {

Json Rule(const std::string& name, int64_t priority, const std::string& direction, const std::string& access,
          Json extra = Json::object()) {
  Json props = {{"protocol", "Tcp"},
                {"sourceAddressPrefix", "*"},
                {"sourcePortRange", "*"},
                {"destinationAddressPrefix", "*"},
                {"destinationPortRange", "22"},
                {"access", access},
                {"priority", priority},
                {"direction", direction}};
  for (auto& [k, v] : extra.items()) {
    if (v.is_null()) props.erase(k);
    else props[k] = v;
  }
  return {{"name", name}, {"properties", props}};
}

SecurityRule ParseRuleOrDie(const Json& j) {
  auto r = ParseSecurityRule(j, "rule");
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : SecurityRule{};
}

std::string RuleError(const Json& j) {
  auto r = ParseSecurityRule(j, "rules[0]");
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

uint32_t Ip(const char* text) { return *ParseIpv4(text); }

// The pool 10.0.0.0/24 in the address space 10.0.0.0/16; the bridge .1.
TagAddresses Tags() { return TagAddresses{{*ParseIpv4Subnet("10.0.0.0/16")}, Ip("10.0.0.1")}; }

Flow Tcp(const char* from, const char* to, int64_t port) {
  return Flow{RuleProtocol::kTcp, Ip(from), 40000, Ip(to), port};
}

TEST(SecurityRuleTest, ParsesAzuresFormAndWritesItBack) {
  Json j = Rule("allow-ssh", 100, "Inbound", "Allow",
                {{"sourceAddressPrefix", "Internet"}, {"description", "ssh from anywhere"}});
  SecurityRule r = ParseRuleOrDie(j);
  EXPECT_EQ(r.name, "allow-ssh");
  EXPECT_EQ(r.protocol, RuleProtocol::kTcp);
  EXPECT_EQ(r.source.kind, AddressMatch::Kind::kInternet);
  EXPECT_EQ(r.destination_ports, (std::vector<PortRange>{{22, 22}}));
  EXPECT_EQ(r.access, RuleAccess::kAllow);
  EXPECT_EQ(r.direction, RuleDirection::kInbound);
  EXPECT_EQ(SecurityRuleToJson(r), j);
}

TEST(SecurityRuleTest, NamesAndValuesAreReadWithoutCase) {
  SecurityRule r = ParseRuleOrDie(Rule("r", 200, "outbound", "deny",
                                       {{"protocol", "UDP"}, {"destinationAddressPrefix", "virtualnetwork"}}));
  EXPECT_EQ(r.protocol, RuleProtocol::kUdp);
  EXPECT_EQ(r.direction, RuleDirection::kOutbound);
  EXPECT_EQ(r.access, RuleAccess::kDeny);
  EXPECT_EQ(r.destination.kind, AddressMatch::Kind::kVirtualNetwork);
  // Azure's legacy spellings of the tags.
  EXPECT_EQ(ParseRuleOrDie(Rule("r", 200, "Inbound", "Allow", {{"sourceAddressPrefix", "AZURE_LOADBALANCER"}}))
                .source.kind,
            AddressMatch::Kind::kAzureLoadBalancer);
}

TEST(SecurityRuleTest, PluralFieldsHoldPrefixesAndRanges) {
  SecurityRule r = ParseRuleOrDie(Rule("r", 300, "Inbound", "Allow",
                                       {{"sourceAddressPrefix", nullptr},
                                        {"sourceAddressPrefixes", {"192.168.1.0/24", "172.16.0.7"}},
                                        {"destinationPortRange", nullptr},
                                        {"destinationPortRanges", {"22", "8000-8010"}}}));
  ASSERT_EQ(r.source.kind, AddressMatch::Kind::kPrefixes);
  EXPECT_EQ(r.source.prefixes, (std::vector<Ipv4Subnet>{{Ip("192.168.1.0"), 24}, {Ip("172.16.0.7"), 32}}));
  EXPECT_EQ(r.destination_ports, (std::vector<PortRange>{{22, 22}, {8000, 8010}}));
  // As Azure's exports write them: the other field empty.
  SecurityRule exported = ParseRuleOrDie(
      Rule("r", 300, "Inbound", "Allow", {{"sourcePortRanges", Json::array()}, {"destinationAddressPrefixes", Json::array()}}));
  EXPECT_TRUE(exported.source_ports[0].Any());
  // Round trip of the plural form.
  EXPECT_EQ(ParseRuleOrDie(SecurityRuleToJson(r)), r);
}

TEST(SecurityRuleTest, EveryBadFieldIsNamed) {
  EXPECT_EQ(RuleError(Rule("r", 99, "Inbound", "Allow")), "rules[0].properties.priority: 99 is outside 100-4096");
  EXPECT_EQ(RuleError(Rule("r", 4097, "Inbound", "Allow")), "rules[0].properties.priority: 4097 is outside 100-4096");
  EXPECT_NE(RuleError(Rule("r", 100, "Sideways", "Allow")).find("properties.direction: 'Sideways' is not Inbound or Outbound"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Maybe")).find("properties.access: 'Maybe' is not Allow or Deny"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow", {{"protocol", "Sctp"}})).find("properties.protocol: 'Sctp'"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("-r", 100, "Inbound", "Allow")).find("rules[0].name: '-r' must be"), std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow", {{"destinationPortRange", "70000"}}))
                .find("properties.destinationPortRange: '70000' is not '*', a port"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow", {{"destinationPortRange", "30-20"}})).find("'30-20'"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow", {{"sourceAddressPrefix", "10.0.0.5/24"}}))
                .find("properties.sourceAddressPrefix: '10.0.0.5/24' has host bits set; did you mean 10.0.0.0/24?"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow", {{"sourceAddressPrefix", "Storage"}}))
                .find("'Storage' is no address here"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow", {{"sourceAddressPrefix", "fd00::/8"}})).find("IPv6"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow", {{"sourceAddressPrefixes", {"10.1.0.0/16"}}}))
                .find("properties.sourceAddressPrefixes: is given with sourceAddressPrefix"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow",
                           {{"sourceAddressPrefix", nullptr}, {"sourceAddressPrefixes", {"Internet"}}}))
                .find("properties.sourceAddressPrefixes[0]: 'Internet': a service tag"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow", {{"destinationPortRange", nullptr}}))
                .find("properties.destinationPortRange: is required (or destinationPortRanges)"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow", {{"protocol", "Icmp"}}))
                .find("properties.protocol: Icmp has no ports"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow", {{"sourceApplicationSecurityGroups", Json::array()}}))
                .find("application security groups"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow", {{"description", std::string(141, 'x')}})).find("description"),
            std::string::npos);
  EXPECT_NE(RuleError(Rule("r", 100, "Inbound", "Allow", {{"sourcePort", "*"}})).find("sourcePort"), std::string::npos);
}

TEST(SecurityGroupTest, NamesAndPrioritiesAreUniquePerDirection) {
  Json group = {{"name", "nsg"},
                {"securityRules", {Rule("a", 100, "Inbound", "Allow"), Rule("b", 100, "Outbound", "Allow")}}};
  ASSERT_TRUE(ParseSecurityGroup(group, "g").ok());
  group["securityRules"].push_back(Rule("c", 100, "Inbound", "Deny"));
  auto dup = ParseSecurityGroup(group, "g");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(),
            "g.securityRules[2].properties.priority: SecurityRuleConflict: rule 'c' and rule 'a' have the same "
            "priority 100 and direction Inbound");
  group["securityRules"][2] = Rule("A", 110, "Inbound", "Deny");
  auto same_name = ParseSecurityGroup(group, "g");
  ASSERT_FALSE(same_name.ok());
  EXPECT_EQ(same_name.status().message(), "g.securityRules[2].name: 'A' is the name of rule 0 too");
}

TEST(SecurityGroupTest, PrefixesInsideThePoolsSubnetAreRefused) {
  Json group = {{"name", "nsg"},
                {"securityRules", {Rule("one", 100, "Inbound", "Deny", {{"destinationAddressPrefix", "10.0.0.7"}})}}};
  auto parsed = ParseSecurityGroup(group, "g");
  ASSERT_TRUE(parsed.ok());
  Status s = CheckPrefixesAgainstSubnet(*parsed, *ParseIpv4Subnet("10.0.0.0/24"), "network.nicSecurityGroup");
  EXPECT_NE(s.message().find("network.nicSecurityGroup.securityRules[0]: rule 'one': 10.0.0.7/32 is part of the "
                             "pool's subnet 10.0.0.0/24"),
            std::string::npos)
      << s;
  // The whole subnet, more than it, or outside it: fine.
  for (const char* ok : {"10.0.0.0/24", "10.0.0.0/16", "10.0.1.0/24", "192.168.0.1"}) {
    group["securityRules"][0]["properties"]["destinationAddressPrefix"] = ok;
    EXPECT_TRUE(CheckPrefixesAgainstSubnet(*ParseSecurityGroup(group, "g"), *ParseIpv4Subnet("10.0.0.0/24"), "g").ok())
        << ok;
  }
}

SecurityGroup Group(const std::string& name, std::vector<Json> rules) {
  auto g = ParseSecurityGroup(Json{{"name", name}, {"securityRules", rules}}, "g");
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? *g : SecurityGroup{};
}

TEST(EvaluateTest, AnEmptyGroupHasAzuresDefaults) {
  SecurityGroup g = Group("nsg", {});
  // Inbound from outside the virtual network: DenyAllInBound.
  SecurityVerdict v = EvaluateGroup(g, RuleDirection::kInbound, Tcp("127.0.0.1", "10.0.0.2", 22), Tags());
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.rule, "DenyAllInBound");
  EXPECT_EQ(v.Explain(), "denied by rule 'DenyAllInBound' of network security group 'nsg'");
  // Within the virtual network, and from the load balancer (probes).
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kInbound, Tcp("10.0.0.3", "10.0.0.2", 22), Tags()).rule, "AllowVnetInBound");
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kInbound, Tcp("10.0.9.3", "10.0.0.2", 22), Tags()).rule, "AllowVnetInBound");
  EXPECT_TRUE(EvaluateGroup(g, RuleDirection::kInbound, Tcp("10.0.0.1", "10.0.0.2", 22), Tags()).allowed);
  // Outbound: to the Internet and within the network, allowed.
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kOutbound, Tcp("10.0.0.2", "8.8.8.8", 53), Tags()).rule,
            "AllowInternetOutBound");
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kOutbound, Tcp("10.0.0.2", "10.0.0.3", 53), Tags()).rule,
            "AllowVnetOutBound");
}

TEST(EvaluateTest, LowestPriorityNumberWinsWhateverTheOrder) {
  SecurityGroup g = Group("nsg", {Rule("allow-ssh", 300, "Inbound", "Allow"),
                                  Rule("deny-one", 200, "Inbound", "Deny", {{"sourceAddressPrefix", "127.0.0.1"}})});
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kInbound, Tcp("127.0.0.1", "10.0.0.2", 22), Tags()).rule, "deny-one");
  SecurityVerdict other = EvaluateGroup(g, RuleDirection::kInbound, Tcp("127.0.0.2", "10.0.0.2", 22), Tags());
  EXPECT_TRUE(other.allowed);
  EXPECT_EQ(other.rule, "allow-ssh");
  // Another port: no user rule matches; the default decides.
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kInbound, Tcp("127.0.0.2", "10.0.0.2", 8000), Tags()).rule,
            "DenyAllInBound");
  // A rule of the other direction never matches.
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kOutbound, Tcp("10.0.0.2", "127.0.0.1", 22), Tags()).rule,
            "AllowInternetOutBound");
}

TEST(EvaluateTest, ProtocolsPortsAndTags) {
  SecurityGroup g = Group(
      "nsg", {Rule("udp-only", 100, "Inbound", "Allow", {{"protocol", "Udp"}, {"destinationPortRange", "*"}}),
              Rule("range", 110, "Inbound", "Allow", {{"destinationPortRange", "50000-50099"}}),
              Rule("src-port", 120, "Inbound", "Allow", {{"sourcePortRange", "1000"}, {"destinationPortRange", "*"}}),
              Rule("icmp", 130, "Inbound", "Allow",
                   {{"protocol", "Icmp"}, {"destinationPortRange", "*"}, {"sourceAddressPrefix", "Internet"}})});
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kInbound, Flow{RuleProtocol::kUdp, Ip("1.2.3.4"), 5, Ip("10.0.0.2"), 9},
                          Tags())
                .rule,
            "udp-only");
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kInbound, Tcp("1.2.3.4", "10.0.0.2", 50099), Tags()).rule, "range");
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kInbound, Tcp("1.2.3.4", "10.0.0.2", 50100), Tags()).rule,
            "DenyAllInBound");
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kInbound, Flow{RuleProtocol::kTcp, Ip("1.2.3.4"), 1000, Ip("10.0.0.2"), 7},
                          Tags())
                .rule,
            "src-port");
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kInbound, Flow{RuleProtocol::kIcmp, Ip("1.2.3.4"), 0, Ip("10.0.0.2"), 0},
                          Tags())
                .rule,
            "icmp");
  // Icmp from inside the network: not Internet; the default allows it.
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kInbound, Flow{RuleProtocol::kIcmp, Ip("10.0.0.3"), 0, Ip("10.0.0.2"), 0},
                          Tags())
                .rule,
            "AllowVnetInBound");
}

TEST(EvaluateTest, PortlessFlowsMatchOnlyRulesWithoutPorts) {
  SecurityGroup g = Group("nsg", {Rule("any-22", 100, "Inbound", "Allow", {{"protocol", "*"}})});
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kInbound, Flow{RuleProtocol::kIcmp, Ip("1.2.3.4"), 0, Ip("10.0.0.2"), 0},
                          Tags())
                .rule,
            "DenyAllInBound");
  EXPECT_EQ(EvaluateGroup(g, RuleDirection::kInbound, Tcp("1.2.3.4", "10.0.0.2", 22), Tags()).rule, "any-22");
}

TEST(EvaluateTest, BothLayersMustAllowInAzuresOrder) {
  NetworkSecurity both;
  both.subnet = Group("subnet-nsg", {Rule("allow-ssh", 100, "Inbound", "Allow"),
                                     Rule("deny-out", 100, "Outbound", "Deny", {{"destinationPortRange", "25"}})});
  both.nic = Group("nic-nsg", {Rule("deny-ssh", 100, "Inbound", "Deny")});
  SecurityVerdict in = Evaluate(both, RuleDirection::kInbound, Tcp("1.2.3.4", "10.0.0.2", 22), Tags());
  EXPECT_FALSE(in.allowed);
  EXPECT_EQ(in.group, "nic-nsg");
  EXPECT_EQ(in.rule, "deny-ssh");
  // Outbound the NIC decides first (its defaults allow), then the subnet.
  SecurityVerdict out = Evaluate(both, RuleDirection::kOutbound, Tcp("10.0.0.2", "1.2.3.4", 25), Tags());
  EXPECT_FALSE(out.allowed);
  EXPECT_EQ(out.group, "subnet-nsg");
  // The subnet's deny decides inbound before the NIC is asked.
  both.subnet->rules[0].access = RuleAccess::kDeny;
  EXPECT_EQ(Evaluate(both, RuleDirection::kInbound, Tcp("1.2.3.4", "10.0.0.2", 22), Tags()).group, "subnet-nsg");
  // No group at all: everything passes.
  EXPECT_TRUE(Evaluate(NetworkSecurity{}, RuleDirection::kInbound, Tcp("1.2.3.4", "10.0.0.2", 22), Tags()).allowed);
  EXPECT_EQ(Evaluate(NetworkSecurity{}, RuleDirection::kInbound, Tcp("1.2.3.4", "10.0.0.2", 22), Tags()).Explain(),
            "allowed: no network security group");
}

TEST(PoolSpecSecurityTest, NetworkCarriesTheGroupsAndTheAddressSpace) {
  Json spec = {{"name", "team"},
               {"instanceCount", 1},
               {"network",
                {{"subnet", "10.0.0.0/24"},
                 {"addressSpace", {"10.0.0.0/16"}},
                 {"subnetSecurityGroup",
                  {{"name", "nsg"}, {"securityRules", {Rule("allow-ssh", 100, "Inbound", "Allow")}}}}}},
               {"share", {{"type", "none"}}},
               {"adminUser", {{"name", "admin"}, {"sshPublicKey", "ssh-ed25519 AAAA"}}}};
  auto parsed = ParsePoolSpec(spec);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(parsed->network.security.subnet.has_value());
  EXPECT_FALSE(parsed->network.security.nic.has_value());
  TagAddresses tags = PoolTagAddresses(parsed->network);
  EXPECT_EQ(tags.virtual_network, (std::vector<Ipv4Subnet>{*ParseIpv4Subnet("10.0.0.0/16")}));
  EXPECT_EQ(tags.load_balancer, Ip("10.0.0.1"));
  auto again = ParsePoolSpec(PoolSpecToJson(*parsed, Secrets::kInclude));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *parsed);

  Json outside = spec;
  outside["network"]["addressSpace"] = {"10.1.0.0/16"};
  EXPECT_EQ(ParsePoolSpec(outside).status().message(), "network.addressSpace: does not hold network.subnet 10.0.0.0/24");
  Json bad_rule = spec;
  bad_rule["network"]["subnetSecurityGroup"]["securityRules"][0]["properties"]["priority"] = 5000;
  EXPECT_EQ(ParsePoolSpec(bad_rule).status().message(),
            "network.subnetSecurityGroup.securityRules[0].properties.priority: 5000 is outside 100-4096");
  Json inside = spec;
  inside["network"]["nicSecurityGroup"] = {
      {"name", "nic"}, {"securityRules", {Rule("one", 100, "Inbound", "Deny", {{"destinationAddressPrefix", "10.0.0.9"}})}}};
  EXPECT_NE(ParsePoolSpec(inside).status().message().find("network.nicSecurityGroup.securityRules[0]: rule 'one'"),
            std::string::npos);
}

}  // namespace
}  // namespace dspool
