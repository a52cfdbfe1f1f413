#include "deploy/realize.h"

#include <gtest/gtest.h>

#include "model/deployment.h"
#include "model/pool.h"

namespace dspool::deploy {
namespace {

using arm::Value;

arm::ExpandedResource Resource(const std::string& type, const std::string& name) {
  arm::ExpandedResource r;
  r.type = type;
  r.name = name;
  // A child's ID interleaves its types and names ("…/networkSecurityGroups/nsg/securityRules/r").
  std::vector<std::string> types, names;
  for (size_t start = 0, slash = 0; slash != std::string::npos; start = slash + 1) {
    slash = type.find('/', start);
    types.push_back(type.substr(start, slash - start));
  }
  for (size_t start = 0, slash = 0; slash != std::string::npos; start = slash + 1) {
    slash = name.find('/', start);
    names.push_back(name.substr(start, slash - start));
  }
  r.id = "/subscriptions/s/resourceGroups/rg/providers/" + types[0];
  for (size_t i = 1; i < types.size(); ++i) r.id += "/" + types[i] + "/" + (i - 1 < names.size() ? names[i - 1] : "");
  return r;
}

class RealizeTest : public ::testing::Test {
 protected:
  Result<Realized> Run(const std::string& type, const std::string& name, const std::string& body) {
    auto result = Realize(Resource(type, name), Value::parse(body), deployed_, host_, catalog_);
    if (result.ok()) deployed_[StoreKey(Resource(type, name).id)] = result->state;
    return result;
  }
  Deployed deployed_;
  HostSettings host_{.front_address = "192.0.2.10", .dns_domain = "pool.example"};
  Catalog catalog_;
};

TEST_F(RealizeTest, APublicIpIsTheHostsFrontAddress) {
  auto r = Run("Microsoft.Network/publicIPAddresses", "pip",
               R"({"properties": {"publicIPAllocationMethod": "Dynamic", "dnsSettings": {"domainNameLabel": "team"}},
                   "sku": {"name": "Basic"}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state["properties"]["ipAddress"], "192.0.2.10");
  EXPECT_EQ(r->state["properties"]["dnsSettings"]["fqdn"], "team.pool.example");
  EXPECT_EQ(r->state["properties"]["provisioningState"], "Succeeded");
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("sku"), std::string::npos);
}

TEST_F(RealizeTest, ASubnetOutsideItsNetworkIsRefused) {
  auto r = Run("Microsoft.Network/virtualNetworks", "vnet",
               R"({"properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                   "subnets": [{"name": "s", "properties": {"addressPrefix": "10.1.0.0/24"}}]}})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("properties.subnets[0].properties.addressPrefix: NetcfgSubnetRangeOutsideVnet"),
            std::string::npos)
      << r.status();
}

TEST_F(RealizeTest, AnUnknownTypeOrAMatteringFieldIsRefused) {
  auto r = Run("Microsoft.Sql/servers", "db", "{}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not supported on this host"), std::string::npos);
  r = Run("Microsoft.Network/virtualNetworks", "vnet",
          R"({"properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
              "subnets": [{"name": "s", "properties": {"addressPrefix": "10.0.0.0/24",
                                                        "networkSecurityGroup": {"id": "x"}}}]}})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("subnets[0].properties.networkSecurityGroup"), std::string::npos) << r.status();
}

// Groups on the subnet (with a child rule resource) and on the NIC reach
// the pool spec, their rules read without case; a bad rule names its path.
TEST_F(RealizeTest, NetworkSecurityGroupsReachThePoolSpec) {
  const std::string nsgs = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/";
  auto subnet_nsg = Run("Microsoft.Network/networkSecurityGroups", "subnet-nsg", R"({"properties": {"securityRules": [
      {"name": "allow-ssh", "properties": {"Protocol": "Tcp", "sourceAddressPrefix": "Internet", "sourcePortRange": "*",
        "destinationAddressPrefix": "*", "destinationPortRange": "22", "access": "Allow", "priority": 100,
        "direction": "Inbound"}}]}})");
  ASSERT_TRUE(subnet_nsg.ok()) << subnet_nsg.status();
  auto child = Run("Microsoft.Network/networkSecurityGroups/securityRules", "subnet-nsg/allow-web",
                   R"({"properties": {"protocol": "Tcp", "sourceAddressPrefixes": ["192.168.0.0/16", "172.16.0.1"],
                       "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRanges": ["8000", "50000-50099"],
                       "access": "Allow", "priority": 110, "direction": "Inbound"}})");
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(Run("Microsoft.Network/networkSecurityGroups", "nic-nsg", R"({"properties": {}})").ok());
  ASSERT_TRUE(Run("Microsoft.Network/virtualNetworks", "vnet",
                  R"({"properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                      "subnets": [{"name": "sub", "properties": {"addressPrefix": "10.0.0.0/24",
                        "networkSecurityGroup": {"id": ")" + nsgs + R"(subnet-nsg"}}}]}})")
                  .ok());
  auto vmss = Run("Microsoft.Compute/virtualMachineScaleSets", "guarded", R"({
      "sku": {"name": "Standard_D2s_v3", "capacity": 1},
      "properties": {"virtualMachineProfile": {
          "storageProfile": {"imageReference": {"publisher": "microsoft-ads", "offer": "linux-data-science-vm-ubuntu", "sku": "linuxdsvmubuntu"}},
          "osProfile": {"adminUsername": "dsvmuser", "adminPassword": "Secret-123"},
          "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
            "networkSecurityGroup": {"id": ")" + nsgs + R"(nic-nsg"},
            "ipConfigurations": [{"name": "ip", "properties": {
              "subnet": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/sub"}}}]}}]}}}})");
  ASSERT_TRUE(vmss.ok()) << vmss.status();
  const Json& net = (*vmss->pool_spec)["network"];
  EXPECT_EQ(net["addressSpace"], Json::parse(R"(["10.0.0.0/16"])"));
  EXPECT_EQ(net["nicSecurityGroup"], Json::parse(R"({"name": "nic-nsg", "securityRules": []})"));
  ASSERT_EQ(net["subnetSecurityGroup"]["name"], "subnet-nsg");
  ASSERT_EQ(net["subnetSecurityGroup"]["securityRules"].size(), 2u);
  EXPECT_EQ(net["subnetSecurityGroup"]["securityRules"][1]["name"], "allow-web");
  // The pool's own parser takes what Realize wrote.
  Json spec = *vmss->pool_spec;
  spec["adminUser"].erase("password");
  spec["adminUser"]["sshPublicKey"] = "ssh-ed25519 AAAA";
  auto parsed = ParsePoolSpec(spec);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->network.security.subnet->rules[0].protocol, RuleProtocol::kTcp);

  auto bad = Run("Microsoft.Network/networkSecurityGroups", "bad", R"({"properties": {"securityRules": [
      {"name": "r", "properties": {"protocol": "Tcp", "sourceAddressPrefix": "Storage", "sourcePortRange": "*",
        "destinationAddressPrefix": "*", "destinationPortRange": "22", "access": "Allow", "priority": 100,
        "direction": "Inbound"}}]}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("Microsoft.Network/networkSecurityGroups 'bad': properties.securityRules[0]"
                                         ".properties.sourceAddressPrefix: 'Storage' is no address here",
                                         0),
            0u)
      << bad.status();
  auto asg = Run("Microsoft.Network/networkSecurityGroups/securityRules", "nic-nsg/asg",
                 R"({"properties": {"destinationApplicationSecurityGroups": [{"id": "x"}]}})");
  ASSERT_FALSE(asg.ok());
  EXPECT_NE(asg.status().message().find("properties.destinationApplicationSecurityGroups: application security groups"),
            std::string::npos)
      << asg.status();
  auto orphan = Run("Microsoft.Network/networkSecurityGroups/securityRules", "absent/r", "{}");
  ASSERT_FALSE(orphan.ok());
  EXPECT_NE(orphan.status().message().find("its network security group is not deployed before it"), std::string::npos);
}

// An autoscale setting is checked and kept for the pool of its target,
// its members read without case; it must target a scale set deployed
// before it, and its rules the same scale set's metrics.
TEST_F(RealizeTest, AnAutoscaleSettingIsKeptForItsScaleSetsPool) {
  const std::string vmss = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/Pool1";
  deployed_[StoreKey(vmss)] = Value::parse(R"({"properties": {"provisioningState": "Succeeded"}})");
  const std::string body = R"({"location": "westeurope", "properties": {
      "Enabled": true, "targetResourceUri": ")" + vmss + R"(",
      "profiles": [{"name": "cpu", "Capacity": {"minimum": "1", "maximum": "4", "default": "1"},
        "rules": [{"metricTrigger": {"metricName": "Percentage CPU", "metricResourceUri": ")" + vmss + R"(",
                    "timeGrain": "PT1M", "statistic": "Average", "timeWindow": "PT5M", "timeAggregation": "Average",
                    "operator": "GreaterThan", "threshold": 75},
                   "scaleAction": {"direction": "Increase", "type": "ChangeCount", "value": "1", "cooldown": "PT5M"}}]}],
      "notifications": [{"operation": "Scale", "webhooks": [{"serviceUri": "https://h.example/x", "properties": {"Team": "ds"}}]}]}})";
  auto r = Run("Microsoft.Insights/autoscaleSettings", "cpu-scale", body);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->autoscale.has_value());
  EXPECT_EQ(r->autoscale->pool, "pool1");
  const Json& setting = r->autoscale->setting;
  EXPECT_EQ(setting["name"], "cpu-scale");
  EXPECT_TRUE(setting["enabled"].get<bool>());
  EXPECT_EQ(setting["profiles"][0]["capacity"]["maximum"], "4");
  EXPECT_EQ(setting["notifications"][0]["webhooks"][0]["properties"]["Team"], "ds");  // the user's own key
  EXPECT_FALSE(setting.contains("targetResourceUri"));
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("kept with pool 'pool1'; not executed yet"), std::string::npos) << r->warnings[0];

  std::string elsewhere = body;
  elsewhere.replace(elsewhere.find("Pool1\",\n"), 5, "Other");
  auto untargeted = Run("Microsoft.Insights/autoscaleSettings", "x", elsewhere);
  ASSERT_FALSE(untargeted.ok());
  EXPECT_NE(untargeted.status().message().find("properties.targetResourceUri: '"), std::string::npos) << untargeted.status();
  EXPECT_NE(untargeted.status().message().find("is not a scale set deployed before this setting"), std::string::npos);

  std::string bad = body;
  bad.replace(bad.find("\"maximum\": \"4\""), 14, "\"maximum\": \"0\"");
  auto bounds = Run("Microsoft.Insights/autoscaleSettings", "x", bad);
  ASSERT_FALSE(bounds.ok());
  EXPECT_EQ(bounds.status().message(),
            "Microsoft.Insights/autoscaleSettings 'x': properties.profiles[0].capacity.minimum: is greater than maximum");
}

// The sample's network, load balancer and scale set (without its
// extension), as the sample writes them.
TEST_F(RealizeTest, AScaleSetBecomesAPoolSpec) {
  const std::string lb = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb";
  ASSERT_TRUE(Run("Microsoft.Network/virtualNetworks", "vnet",
                  R"({"properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                      "subnets": [{"name": "sub", "properties": {"addressPrefix": "10.0.0.0/24"}}]}})")
                  .ok());
  ASSERT_TRUE(Run("Microsoft.Network/publicIPAddresses", "pip", R"({"properties": {}})").ok());
  auto lb_result = Run("Microsoft.Network/loadBalancers", "lb", R"({"properties": {
      "frontendIPConfigurations": [{"name": "fe", "properties": {"publicIPAddress": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/pip"}}}],
      "backendAddressPools": [{"name": "be"}],
      "loadBalancingRules": [
        {"name": "Jupyter", "properties": {"frontendIPConfiguration": {"id": ")" + lb + R"(/frontendIPConfigurations/fe"},
          "backendAddressPool": {"id": ")" + lb + R"(/backendAddressPools/be"}, "protocol": "Tcp", "frontendPort": 8000,
          "backendPort": 8000, "probe": {"id": ")" + lb + R"(/probes/jp"}}},
        {"name": "SSH", "properties": {"frontendIPConfiguration": {"id": ")" + lb + R"(/frontendIPConfigurations/fe"},
          "backendAddressPool": {"id": ")" + lb + R"(/backendAddressPools/be"}, "protocol": "Tcp", "frontendPort": 22,
          "backendPort": 22, "loadDistribution": "SourceIP", "idleTimeoutInMinutes": 30, "probe": {"id": ")" + lb + R"(/probes/ssh"}}}],
      "probes": [{"name": "jp", "properties": {"protocol": "Tcp", "port": 8000}},
                 {"name": "ssh", "properties": {"protocol": "Tcp", "port": 22, "intervalInSeconds": 5, "numberOfProbes": 2}}],
      "inboundNatPools": [{"name": "nat", "properties": {"frontendIPConfiguration": {"id": ")" + lb + R"(/frontendIPConfigurations/fe"},
          "protocol": "Tcp", "frontendPortRangeStart": 50000, "frontendPortRangeEnd": 50099, "backendPort": 22}}]}})");
  ASSERT_TRUE(lb_result.ok()) << lb_result.status();
  auto vmss = Run("Microsoft.Compute/virtualMachineScaleSets", "Pool1", R"({
      "sku": {"name": "Standard_D2s_v3", "tier": "Standard", "capacity": 2},
      "properties": {"overprovision": false, "upgradePolicy": {"mode": "Manual"},
        "virtualMachineProfile": {
          "storageProfile": {"osDisk": {"createOption": "FromImage"},
            "imageReference": {"publisher": "microsoft-ads", "offer": "linux-data-science-vm-ubuntu", "sku": "linuxdsvmubuntu", "version": "latest"}},
          "osProfile": {"computerNamePrefix": "pool1", "adminUsername": "dsvmuser", "adminPassword": "Secret-123"},
          "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {"primary": true,
            "ipConfigurations": [{"name": "ip", "properties": {
              "subnet": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/sub"},
              "loadBalancerBackendAddressPools": [{"id": ")" + lb + R"(/backendAddressPools/be"}],
              "loadBalancerInboundNatPools": [{"id": ")" + lb + R"(/inboundNatPools/nat"}]}}]}}]}}}})");
  ASSERT_TRUE(vmss.ok()) << vmss.status();
  ASSERT_TRUE(vmss->pool_spec.has_value());
  const Json& spec = *vmss->pool_spec;
  EXPECT_EQ(spec["name"], "pool1");
  EXPECT_EQ(spec["instanceCount"], 2);
  EXPECT_EQ(spec["size"]["memoryMiB"], 8192);
  EXPECT_EQ(spec["network"]["subnet"], "10.0.0.0/24");
  EXPECT_EQ(spec["share"], Json::parse(R"({"type": "none"})"));
  EXPECT_EQ(spec["adminUser"], Json::parse(R"({"name": "dsvmuser", "password": "Secret-123"})"));
  EXPECT_EQ(spec["jupyter"]["frontendPort"], 8000);  // the Jupyter rule is the pool's Jupyter frontend
  const Json& lb_spec = spec["loadBalancer"];
  EXPECT_EQ(lb_spec["frontendAddress"], "192.0.2.10");
  ASSERT_EQ(lb_spec["rules"].size(), 1u);
  EXPECT_EQ(lb_spec["rules"][0]["name"], "SSH");
  EXPECT_EQ(lb_spec["rules"][0]["probe"], "ssh");
  ASSERT_EQ(lb_spec["probes"].size(), 1u);
  EXPECT_EQ(lb_spec["probes"][0]["intervalInSeconds"], 5);
  ASSERT_EQ(lb_spec["inboundNatPools"].size(), 1u);
  EXPECT_EQ(lb_spec["inboundNatPools"][0]["frontendPortRangeEnd"], 50099);
  ASSERT_EQ(vmss->warnings.size(), 2u);
  EXPECT_NE(vmss->warnings[0].find("sku.tier: sizes are looked up by name"), std::string::npos) << vmss->warnings[0];
  EXPECT_NE(vmss->warnings[1].find("storageProfile.osDisk"), std::string::npos) << vmss->warnings[1];
}

TEST_F(RealizeTest, AScaleSetNeedsItsSubnetDeployedFirst) {
  auto r = Run("Microsoft.Compute/virtualMachineScaleSets", "pool1", R"({
      "sku": {"name": "Standard_B2s", "capacity": 1},
      "properties": {"virtualMachineProfile": {
          "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "UbuntuServer", "sku": "18.04-LTS"}},
          "osProfile": {"adminUsername": "u", "linuxConfiguration": {"disablePasswordAuthentication": true}},
          "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
            "ipConfigurations": [{"name": "ip", "properties": {"subnet": {"id": "/x/virtualNetworks/v/subnets/s"}}}]}}]}}}})");
  ASSERT_FALSE(r.ok());
  // The first error: no key although passwords are off.
  EXPECT_NE(r.status().message().find("ssh.publicKeys: a key is required"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace dspool::deploy
