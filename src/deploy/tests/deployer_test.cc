#include "deploy/deployer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "base/clock.h"
#include "store/memory/memory_store.h"

namespace dspool::deploy {
namespace {

using arm::Value;

class FakePools final : public PoolControl {
 public:
  Result<Json> CheckPool(const Json& spec, const std::string&) override {
    checked.push_back(spec);
    if (!check_error.ok()) return check_error;
    return spec;
  }
  Result<std::string> ApplyPool(const Json& spec, const std::string&, const std::string&) override {
    const std::string name = spec["name"];
    bool existed = pools.count(name) > 0;
    pools[name] = spec;
    applied.push_back(spec);
    return std::string(existed ? "OK" : "Created");
  }
  Status WaitReady(const std::string& pool, int64_t count, std::chrono::milliseconds,
                   const std::atomic<bool>&) override {
    waited.emplace_back(pool, count);
    return ready_error;
  }
  Status DeletePool(const std::string& pool, const std::string&) override {
    deleted.push_back(pool);
    return pools.erase(pool) ? Status::Ok() : NotFound("pool '" + pool + "' does not exist");
  }

  std::map<std::string, Json> pools;
  std::vector<Json> checked, applied;
  std::vector<std::pair<std::string, int64_t>> waited;
  std::vector<std::string> deleted;
  Status check_error, ready_error;
};

std::string ReadSample(const std::string& name) {
  std::ifstream in(std::string(DSPOOL_SAMPLES) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The reference's sample, with its CustomScript extension taken out (this
// host does not run extensions yet).
std::string SampleWithoutExtension() {
  Json t = Json::parse(ReadSample("dsvm-vmss-cluster.json"));
  t["resources"][3]["properties"]["virtualMachineProfile"].erase("extensionProfile");
  return t.dump();
}

Value SampleParameters() {
  return Value::parse(R"({"adminUsername": {"value": "dsvmuser"}, "adminPassword": {"value": "Pa55-word-xyz"},
      "vmssName": {"value": "pool1"}, "storageAccountKey": {"value": "KEY-abc"},
      "storageAccountName": {"value": "acct"}, "instanceCount": {"value": 2}})");
}

class DeployerTest : public ::testing::Test {
 protected:
  DeployerTest()
      : deployer_(store_, clock_, pools_, catalog_,
                  DeployerOptions{.subscription_id = "00000000-0000-0000-0000-000000000001",
                                  .tenant_id = "00000000-0000-0000-0000-000000000002"},
                  [this] {
                    char buf[40];
                    const unsigned n = ++guids_;
                    std::snprintf(buf, sizeof buf, "%08x-0000-4000-8000-%012x", n, n);
                    return std::string(buf);
                  }) {
    EXPECT_EQ(store_.Write(WriteBatch().Add(WriteBatch::PutResourceGroup{ResourceGroup{"RG", "local", {}, clock_.Now()}})),
              Status::Ok());
  }

  DeployRequest Request(std::string text, Value parameters = SampleParameters()) {
    return DeployRequest{.group = "rg", .name = "dep1", .template_text = std::move(text),
                         .parameters = std::move(parameters), .actor = "root"};
  }

  Result<Deployment> Deploy(const DeployRequest& request, arm::ArmError* error) {
    DSP_ASSIGN_OR_RETURN(Plan plan, deployer_.Validate(request, error));
    DSP_ASSIGN_OR_RETURN(Deployment record, deployer_.Start(request, plan));
    std::atomic<bool> cancelled{false};
    return deployer_.Run(request, std::move(plan), std::move(record), cancelled);
  }

  MemoryStore store_;
  SimulatedClock clock_;
  FakePools pools_;
  Catalog catalog_;
  unsigned guids_ = 0;
  Deployer deployer_;
};

TEST_F(DeployerTest, TheSampleDeploysAPoolAndKeepsItsRecord) {
  arm::ArmError error;
  auto d = Deploy(Request(SampleWithoutExtension()), &error);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->state, ProvisioningState::kSucceeded) << d->error.dump();
  ASSERT_EQ(d->operations.size(), 4u);
  for (const DeploymentOperation& op : d->operations) {
    EXPECT_EQ(op.state, ProvisioningState::kSucceeded) << op.resource_name;
    EXPECT_EQ(op.status_code, "Created") << op.resource_name;
  }
  EXPECT_EQ(d->operations[3].resource_type, "Microsoft.Compute/virtualMachineScaleSets");
  ASSERT_EQ(pools_.applied.size(), 1u);
  EXPECT_EQ(pools_.applied[0]["name"], "pool1");
  EXPECT_EQ(pools_.waited, (std::vector<std::pair<std::string, int64_t>>{{"pool1", 2}}));

  auto stored = store_.GetDeployment("RG", "DEP1");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(*stored, *d);
  EXPECT_EQ(stored->parameters["adminPassword"], OrderedJson::parse(R"({"type": "SecureString"})"));
  auto resources = store_.ListResources("rg");
  ASSERT_EQ(resources.value_or({}).size(), 4u);
  // Secure values are not stored anywhere.
  for (const ArmResource& r : *resources) {
    const std::string text = r.body.dump();
    EXPECT_EQ(text.find("Pa55-word-xyz"), std::string::npos) << r.id;
  }
  auto vmss = store_.GetResource(d->operations[3].resource_id);
  ASSERT_TRUE(vmss.ok());
  EXPECT_EQ(vmss->body["properties"]["virtualMachineProfile"]["osProfile"]["adminPassword"], "[secure]");
  auto events = store_.TailEvents(10);
  ASSERT_EQ(events.value_or({}).size(), 2u);
  EXPECT_EQ((*events)[0].action, "deployment.start");
  EXPECT_EQ((*events)[1].action, "deployment.succeeded");
}

TEST_F(DeployerTest, ABadParameterLeavesNothingBehind) {
  Value params = SampleParameters();
  params["vmssName"]["value"] = "much-too-long-name";
  arm::ArmError error;
  auto d = Deploy(Request(SampleWithoutExtension(), params), &error);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(error.code, "InvalidTemplate") << d.status();
  EXPECT_NE(error.message.find("vmssName"), std::string::npos) << error.message;
  EXPECT_TRUE(store_.ListDeployments("rg").value_or({Deployment{}}).empty());
  EXPECT_TRUE(store_.ListResources(std::nullopt).value_or({ArmResource{}}).empty());
  EXPECT_TRUE(pools_.applied.empty());
}

TEST_F(DeployerTest, TheSampleWithItsExtensionIsRefusedByName) {
  arm::ArmError error;
  auto d = Deploy(Request(ReadSample("dsvm-vmss-cluster.json")), &error);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(error.code, "InvalidTemplateDeployment");
  EXPECT_NE(error.message.find("virtualMachineProfile.extensionProfile"), std::string::npos) << error.message;
  EXPECT_EQ(error.path, "resources[3]");
  EXPECT_TRUE(store_.ListResources(std::nullopt).value_or({ArmResource{}}).empty());
}

TEST_F(DeployerTest, AMissingGroupIsAzsError) {
  DeployRequest r = Request(SampleWithoutExtension());
  r.group = "nope";
  arm::ArmError error;
  auto d = Deploy(r, &error);
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(error.code, "ResourceGroupNotFound");
  EXPECT_EQ(error.message, "Resource group 'nope' could not be found.");
}

TEST_F(DeployerTest, RedeployingChangesNothingAndCapacityScales) {
  arm::ArmError error;
  ASSERT_TRUE(Deploy(Request(SampleWithoutExtension()), &error).ok());
  auto before = store_.ListResources("rg").value_or({});
  auto again = Deploy(Request(SampleWithoutExtension()), &error);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->operations[3].status_code, "OK");
  auto after = store_.ListResources("rg").value_or({});
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].body, before[i].body) << after[i].id;

  Value params = SampleParameters();
  params["instanceCount"]["value"] = 3;
  auto changes = deployer_.WhatIf(Request(SampleWithoutExtension(), params), &error);
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->size(), 4u);
  EXPECT_EQ((*changes)[0].type, arm::ChangeType::kNoChange);
  EXPECT_EQ((*changes)[3].type, arm::ChangeType::kModify);
  ASSERT_TRUE(Deploy(Request(SampleWithoutExtension(), params), &error).ok());
  EXPECT_EQ(pools_.pools["pool1"]["instanceCount"], 3);
}

TEST_F(DeployerTest, CompleteModeDeletesWhatTheTemplateNoLongerHas) {
  arm::ArmError error;
  ASSERT_TRUE(Deploy(Request(SampleWithoutExtension()), &error).ok());
  DeployRequest empty = Request(R"({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0", "resources": []})", Value::object());
  empty.mode = "Complete";
  empty.name = "dep2";
  auto d = Deploy(empty, &error);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->state, ProvisioningState::kSucceeded);
  EXPECT_EQ(d->operations.size(), 4u);
  for (const DeploymentOperation& op : d->operations) EXPECT_EQ(op.provisioning_operation, "Delete");
  EXPECT_EQ(pools_.deleted, std::vector<std::string>{"pool1"});
  EXPECT_TRUE(store_.ListResources("rg").value_or({ArmResource{}}).empty());
}

TEST_F(DeployerTest, AFailedPoolFailsTheDeploymentWithAzsShape) {
  pools_.ready_error = Unavailable("instance pool1-0-ab12 failed: container exited");
  arm::ArmError error;
  auto d = Deploy(Request(SampleWithoutExtension()), &error);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state, ProvisioningState::kFailed);
  EXPECT_EQ(d->error["code"], "DeploymentFailed");
  EXPECT_EQ(d->error["details"][0]["message"], "instance pool1-0-ab12 failed: container exited");
  EXPECT_EQ(d->operations[3].state, ProvisioningState::kFailed);
  EXPECT_EQ(store_.ListResources("rg").value_or({}).size(), 3u);  // the scale set is not recorded as deployed
}

}  // namespace
}  // namespace dspool::deploy
