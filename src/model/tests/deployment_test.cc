#include "model/deployment.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

TEST(ResourceGroupTest, NamesAsAzAllowsThem) {
  EXPECT_TRUE(ValidateResourceGroupName("dsvm-pool_1.(test)").ok());
  EXPECT_TRUE(ValidateResourceGroupName(std::string(90, 'a')).ok());
  auto long_name = ValidateResourceGroupName(std::string(91, 'a'));
  EXPECT_NE(long_name.message().find("1 to 90 characters"), std::string::npos);
  auto dot = ValidateResourceGroupName("rg.");
  EXPECT_NE(dot.message().find("may not end in '.'"), std::string::npos);
  auto slash = ValidateResourceGroupName("a/b");
  EXPECT_NE(slash.message().find("only letters, digits"), std::string::npos);
  EXPECT_FALSE(ValidateLocation("west europe").ok());
  EXPECT_TRUE(ValidateLocation("local").ok());
}

TEST(ResourceGroupTest, StoredAndShownAsAzShowsIt) {
  ResourceGroup g{"rg1", "local", {{"team", "ds"}, {"cost", "42"}}, FromUnixMillis(1'765'000'000'000)};
  auto back = ResourceGroupFromJson(ResourceGroupToJson(g));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, g);
  OrderedJson az = ResourceGroupToAzJson(g, "sub");
  EXPECT_EQ(az.dump(),
            R"({"id":"/subscriptions/sub/resourceGroups/rg1","location":"local","managedBy":null,"name":"rg1",)"
            R"("properties":{"provisioningState":"Succeeded"},"tags":{"team":"ds","cost":"42"},"type":"Microsoft.Resources/resourceGroups"})");
}

TEST(DeploymentTest, NamesAsAzureAllowsThem) {
  EXPECT_TRUE(ValidateDeploymentName("dsvm-vmss-cluster").ok());
  EXPECT_TRUE(ValidateDeploymentName("a_b.c(1)").ok());
  EXPECT_NE(ValidateDeploymentName(std::string(65, 'a')).message().find("DeploymentNameLengthLimitExceeded"), std::string::npos);
  EXPECT_NE(ValidateDeploymentName("a b").message().find("DeploymentNameInvalidCharacters"), std::string::npos);
  EXPECT_NE(ValidateDeploymentName("").message().find("DeploymentNameInvalidCharacters"), std::string::npos);
}

TEST(DeploymentTest, DurationsAreIso8601) {
  EXPECT_EQ(IsoDuration(0), "PT0S");
  EXPECT_EQ(IsoDuration(42), "PT0.042S");
  EXPECT_EQ(IsoDuration(26'209), "PT26.209S");
  EXPECT_EQ(IsoDuration(65'500), "PT1M5.5S");
  EXPECT_EQ(IsoDuration(3'600'000), "PT1H0M0S");
}

Deployment Sample() {
  Deployment d;
  d.group = "rg1";
  d.name = "dsvm";
  d.state = ProvisioningState::kFailed;
  d.timestamp = FromUnixMillis(1'765'000'000'000);
  d.duration_ms = 26'209;
  d.correlation_id = "c0ffee00-0000-4000-8000-000000000000";
  d.template_hash = "123";
  d.parameters = OrderedJson::parse(R"({"vmssName": {"type": "String", "value": "pool1"}, "adminPassword": {"type": "SecureString"}})");
  d.outputs = OrderedJson::parse(R"({"z": {"type": "String", "value": "last"}, "a": {"type": "Int", "value": 1}})");
  d.output_resources = {"/subscriptions/sub/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/v"};
  d.error = OrderedJson{{"code", "DeploymentFailed"}, {"message", "At least one resource deployment operation failed."}};
  DeploymentOperation op;
  op.operation_id = "08584600000000000001";
  op.state = ProvisioningState::kFailed;
  op.timestamp = d.timestamp;
  op.duration_ms = 1500;
  op.resource_id = d.output_resources[0];
  op.resource_type = "Microsoft.Network/virtualNetworks";
  op.resource_name = "v";
  op.status_code = "BadRequest";
  op.error = OrderedJson{{"code", "InvalidParameter"}, {"message", "the subnet overlaps pool 'demo'"}};
  d.operations.push_back(op);
  return d;
}

TEST(DeploymentTest, StoredWithItsOrderAndOperations) {
  Deployment d = Sample();
  auto back = DeploymentFromJson(OrderedJson::parse(DeploymentToJson(d).dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, d);
  EXPECT_EQ(back->outputs.begin().key(), "z");  // template order, not sorted
}

TEST(DeploymentTest, AzShapes) {
  Deployment d = Sample();
  OrderedJson az = DeploymentToAzJson(d, "sub");
  EXPECT_EQ(az["id"], "/subscriptions/sub/resourceGroups/rg1/providers/Microsoft.Resources/deployments/dsvm");
  EXPECT_EQ(az["type"], "Microsoft.Resources/deployments");
  EXPECT_EQ(az["properties"]["provisioningState"], "Failed");
  EXPECT_EQ(az["properties"]["duration"], "PT26.209S");
  EXPECT_EQ(az["properties"]["timestamp"], "2025-12-06T05:46:40.000Z");
  EXPECT_FALSE(az["properties"]["parameters"]["adminPassword"].contains("value"));
  EXPECT_EQ(az["properties"]["outputResources"][0]["resourceGroup"], "rg1");
  EXPECT_EQ(az["properties"]["error"]["code"], "DeploymentFailed");
  EXPECT_TRUE(az["properties"]["templateLink"].is_null());
  OrderedJson ops = OperationsToAzJson(d, "sub");
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0]["id"], "/subscriptions/sub/resourceGroups/rg1/providers/Microsoft.Resources/deployments/dsvm/operations/08584600000000000001");
  EXPECT_EQ(ops[0]["properties"]["statusMessage"]["error"]["code"], "InvalidParameter");
  EXPECT_EQ(ops[0]["properties"]["targetResource"]["resourceName"], "v");
}

TEST(DeploymentTest, ABrokenRecordIsAnErrorNotACrash) {
  auto bad = DeploymentFromJson(OrderedJson::parse(R"({"group": "rg1"})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("deployment record"), std::string::npos);
  OrderedJson wrong_state = DeploymentToJson(Sample());
  wrong_state["state"] = "Sleeping";
  auto state = DeploymentFromJson(wrong_state);
  ASSERT_FALSE(state.ok());
  EXPECT_NE(state.status().message().find("'Sleeping' is not a provisioning state"), std::string::npos);
}

TEST(ArmResourceTest, StoredWithItsBody) {
  ArmResource r{"/subscriptions/s/resourceGroups/RG/providers/Microsoft.Network/loadBalancers/lb", "RG",
                "Microsoft.Network/loadBalancers", "lb", "2017-06-01", "local",
                OrderedJson::parse(R"({"properties": {"z": 1, "a": [2]}})"), "dep1", FromUnixMillis(1'765'000'000'123)};
  auto back = ArmResourceFromJson(ArmResourceToJson(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(back->body["properties"].begin().key(), "z");  // order kept
  auto bad = ArmResourceFromJson(OrderedJson::parse(R"({"id": 1})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("resource record"), std::string::npos);
}

TEST(ArmResourceTest, KeysIgnoreCaseAsAzureDoes) {
  EXPECT_EQ(StoreKey("/subscriptions/S/resourceGroups/My-RG"), "/subscriptions/s/resourcegroups/my-rg");
  EXPECT_EQ(StoreKey("rg"), StoreKey("RG"));
}

}  // namespace
}  // namespace dspool
