#include "deploy/deployer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "base/clock.h"
#include "base/strings.h"
#include "store/memory/memory_store.h"

namespace dspool::deploy {
namespace {

using arm::Value;

class FakePools final : public PoolControl {
 public:
  Result<Json> CheckPool(const Json& spec, const std::string&, const ExtensionArtifacts& artifacts,
                         std::vector<std::string>* missing) override {
    checked.push_back(spec);
    if (!check_error.ok()) return check_error;
    if (spec.contains("extensions") && !pools.count(spec["name"])) {
      auto extensions = ParseExtensions(spec["extensions"], "extensions");
      if (!extensions.ok()) return extensions.status();
      *missing = MissingArtifacts(*extensions, artifacts);
      if (!missing->empty()) return NotFound("files not sent");
    }
    return spec;
  }
  Result<std::string> ApplyPool(const Json& spec, const std::string&, const std::string&,
                                const ExtensionArtifacts& artifacts) override {
    applied_artifacts.push_back(artifacts);
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
  Status CheckAutoscale(const std::string& pool, const Json&, const Json* planned) override {
    return planned || pools.count(pool) ? Status::Ok() : NotFound("pool '" + pool + "' does not exist");
  }
  Status SetAutoscale(const std::string& pool, const std::optional<Json>& setting, const std::string&) override {
    autoscale[pool] = setting;
    return Status::Ok();
  }

  std::map<std::string, Json> pools;
  std::map<std::string, std::optional<Json>> autoscale;  // by pool: the last SetAutoscale
  std::vector<Json> checked, applied;
  std::vector<ExtensionArtifacts> applied_artifacts;
  std::vector<std::pair<std::string, int64_t>> waited;
  std::vector<std::string> deleted;
  Status check_error, ready_error;
};

// Accounts by name: the group each is in, and what was put.
class FakeStorage final : public StorageControl {
 public:
  Result<std::optional<StorageAccount>> FindAccount(const std::string& group, const std::string& name) override {
    auto it = accounts.find(name);
    if (it == accounts.end()) return std::optional<StorageAccount>();
    if (it->second.group != group) {
      return FailedPrecondition("StorageAccountAlreadyTaken: The storage account named " + name + " is already taken.");
    }
    return std::optional<StorageAccount>(it->second);
  }
  std::array<std::string, 2> NewKeys() override {
    ++made_keys;
    return {"NEWKEY1-" + std::to_string(made_keys), "NEWKEY2-" + std::to_string(made_keys)};
  }
  Result<std::string> ApplyStorage(const std::string& group, const StorageOp& op, const std::string&) override {
    applied.push_back(op);
    if (op.kind == StorageOp::Kind::kAccount && !accounts.count(op.account)) {
      StorageAccount a;
      a.group = group;
      a.name = op.account;
      a.keys = {StorageKey{op.keys[0], {}}, StorageKey{op.keys[1], {}}};
      accounts[op.account] = a;
      return std::string("Created");
    }
    return std::string("OK");
  }
  Status DeleteStorage(const std::string&, const std::string& type, const std::string& name, const std::string&) override {
    deleted.push_back(type + " " + name);
    return Status::Ok();
  }

  std::map<std::string, StorageAccount> accounts;
  std::vector<StorageOp> applied;
  std::vector<std::string> deleted;
  int made_keys = 0;
};

std::string ReadSample(const std::string& name) {
  std::ifstream in(std::string(DSPOOL_SAMPLES) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The reference's sample, as it is.
std::string Sample() { return ReadSample("dsvm-vmss-cluster.json"); }

Value SampleParameters() {
  return Value::parse(R"({"adminUsername": {"value": "dsvmuser"}, "adminPassword": {"value": "Pa55-word-xyz"},
      "vmssName": {"value": "pool1"}, "storageAccountKey": {"value": "KEY-abc"},
      "storageAccountName": {"value": "acct"}, "instanceCount": {"value": 2}})");
}

class DeployerTest : public ::testing::Test {
 protected:
  DeployerTest()
      : deployer_(store_, clock_, pools_, storage_, catalog_,
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
  FakeStorage storage_;
  Catalog catalog_;
  unsigned guids_ = 0;
  Deployer deployer_;
};

TEST_F(DeployerTest, TheSampleDeploysAPoolAndKeepsItsRecord) {
  arm::ArmError error;
  auto d = Deploy(Request(Sample()), &error);
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
  auto d = Deploy(Request(Sample(), params), &error);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(error.code, "InvalidTemplate") << d.status();
  EXPECT_NE(error.message.find("vmssName"), std::string::npos) << error.message;
  EXPECT_TRUE(store_.ListDeployments("rg").value_or({Deployment{}}).empty());
  EXPECT_TRUE(store_.ListResources(std::nullopt).value_or({ArmResource{}}).empty());
  EXPECT_TRUE(pools_.applied.empty());
}

TEST_F(DeployerTest, TheSamplesExtensionKeepsTheKeyItsCommandCarriesOutOfEverythingShown) {
  arm::ArmError error;
  auto d = Deploy(Request(Sample()), &error);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(pools_.applied.size(), 1u);
  const Json& ext = pools_.applied[0]["extensions"][0];
  EXPECT_EQ(ext["name"], "filesextension");
  // The command holds the secure storageAccountKey: it becomes a protected setting.
  EXPECT_FALSE(ext["properties"]["settings"].contains("commandToExecute"));
  EXPECT_EQ(ext["properties"]["protectedSettings"]["commandToExecute"],
            "bash mountazurefiles.sh acct KEY-abc dsvmshare /datamnt/dsvmshare dsvmuser");
  EXPECT_EQ(ext["properties"]["settings"]["fileUris"][0],
            "https://raw.githubusercontent.com/Azure/DataScienceVM/master/Extensions/General/mountazurefiles.sh");
  for (const ArmResource& r : store_.ListResources(std::nullopt).value_or({})) {
    EXPECT_EQ(r.body.dump().find("KEY-abc"), std::string::npos) << r.body.dump();
    EXPECT_EQ(r.body.dump().find("bash mountazurefiles.sh"), std::string::npos) << "a protected setting is shown";
  }
}

// The sample with its extension's fileUris relative to the template.
std::string SampleWithRelativeFileUris() {
  Json t = Json::parse(Sample());
  Json& ext = t["resources"][3]["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"][0];
  ext["properties"]["settings"]["fileUris"] = Json::array({"scripts/mountazurefiles.sh"});
  return t.dump();
}

TEST_F(DeployerTest, RelativeFileUrisResolveNextToATemplatesUrlWithItsQuery) {
  DeployRequest request = Request(SampleWithRelativeFileUris());
  request.template_link = "https://templates.example/dsvm/azuredeploy.json?sv=2024&sig=abc#top";
  arm::ArmError error;
  auto d = Deploy(request, &error);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(pools_.applied.size(), 1u);
  EXPECT_EQ(pools_.applied[0]["extensions"][0]["properties"]["settings"]["fileUris"],
            Json::array({"https://templates.example/dsvm/scripts/mountazurefiles.sh?sv=2024&sig=abc"}));
  EXPECT_TRUE(pools_.applied_artifacts[0].empty());
}

TEST_F(DeployerTest, ALocalTemplatesRelativeFileUrisAreTheFilesSentWithIt) {
  DeployRequest request = Request(SampleWithRelativeFileUris());
  arm::ArmError error;
  auto refused = Deploy(request, &error);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(error.code, "MissingTemplateArtifacts") << error.message;
  ASSERT_EQ(error.details.size(), 1u);
  EXPECT_EQ(error.details[0].code, "MissingTemplateArtifact");
  EXPECT_EQ(error.details[0].target, "scripts/mountazurefiles.sh");
  EXPECT_TRUE(pools_.applied.empty());
  EXPECT_TRUE(store_.ListDeployments("rg").value_or({Deployment{}}).empty());

  request.artifacts = {{"scripts/mountazurefiles.sh", "#!/bin/sh\nmount\n"}};
  auto d = Deploy(request, &error);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->state, ProvisioningState::kSucceeded) << d->error.dump();
  ASSERT_EQ(pools_.applied.size(), 1u);
  EXPECT_EQ(pools_.applied[0]["extensions"][0]["properties"]["settings"]["fileUris"],
            Json::array({"scripts/mountazurefiles.sh"}));
  EXPECT_EQ(pools_.applied_artifacts[0], request.artifacts);
}

TEST_F(DeployerTest, CustomDataRunsAsAShellScriptAndIsShownNowhere) {
  Json t = Json::parse(Sample());
  Json& os = t["resources"][3]["properties"]["virtualMachineProfile"]["osProfile"];
  os["customData"] = "[base64('#!/bin/sh\necho made-by-custom-data > /etc/motd\n')]";
  arm::ArmError error;
  auto d = Deploy(Request(t.dump()), &error);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(pools_.applied.size(), 1u);
  EXPECT_EQ(pools_.applied[0]["customData"], Base64Encode("#!/bin/sh\necho made-by-custom-data > /etc/motd\n"));
  for (const ArmResource& r : store_.ListResources(std::nullopt).value_or({})) {
    EXPECT_EQ(r.body.dump().find(Base64Encode("#!/bin/sh")), std::string::npos) << r.body.dump();
  }

  os["customData"] = "[base64('#cloud-config\npackages: [git]\n')]";
  auto refused = Deploy(Request(t.dump()), &error);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(error.message.find("properties.virtualMachineProfile.osProfile.customData: #cloud-config is not run here"),
            std::string::npos)
      << error.message;
}

TEST_F(DeployerTest, TheLowPrioritySampleDeploysToo) {
  arm::ArmError error;
  Value params = Value::parse(R"({"adminUsername": {"value": "dsvmuser"}, "adminPassword": {"value": "Pa55-word-xyz"},
      "vmssName": {"value": "lowpri"}})");
  auto d = Deploy(Request(ReadSample("dsvm-vmss-lowpri.json"), params), &error);
  ASSERT_TRUE(d.ok()) << d.status() << " " << error.message;
  ASSERT_EQ(pools_.applied.size(), 1u);
  EXPECT_EQ(pools_.applied[0]["instanceCount"], 1);
  EXPECT_FALSE(pools_.applied[0].contains("extensions"));
}

TEST_F(DeployerTest, AMissingGroupIsAzsError) {
  DeployRequest r = Request(Sample());
  r.group = "nope";
  arm::ArmError error;
  auto d = Deploy(r, &error);
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(error.code, "ResourceGroupNotFound");
  EXPECT_EQ(error.message, "Resource group 'nope' could not be found.");
}

TEST_F(DeployerTest, RedeployingChangesNothingAndCapacityScales) {
  arm::ArmError error;
  ASSERT_TRUE(Deploy(Request(Sample()), &error).ok());
  auto before = store_.ListResources("rg").value_or({});
  auto again = Deploy(Request(Sample()), &error);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->operations[3].status_code, "OK");
  auto after = store_.ListResources("rg").value_or({});
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].body, before[i].body) << after[i].id;

  Value params = SampleParameters();
  params["instanceCount"]["value"] = 3;
  auto changes = deployer_.WhatIf(Request(Sample(), params), &error);
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->size(), 4u);
  EXPECT_EQ((*changes)[0].type, arm::ChangeType::kNoChange);
  EXPECT_EQ((*changes)[3].type, arm::ChangeType::kModify);
  ASSERT_TRUE(Deploy(Request(Sample(), params), &error).ok());
  EXPECT_EQ(pools_.pools["pool1"]["instanceCount"], 3);
}

TEST_F(DeployerTest, CompleteModeDeletesWhatTheTemplateNoLongerHas) {
  arm::ArmError error;
  ASSERT_TRUE(Deploy(Request(Sample()), &error).ok());
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
  auto d = Deploy(Request(Sample()), &error);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state, ProvisioningState::kFailed);
  EXPECT_EQ(d->error["code"], "DeploymentFailed");
  EXPECT_EQ(d->error["details"][0]["message"], "instance pool1-0-ab12 failed: container exited");
  EXPECT_EQ(d->operations[3].state, ProvisioningState::kFailed);
  EXPECT_EQ(store_.ListResources("rg").value_or({}).size(), 3u);  // the scale set is not recorded as deployed
}

constexpr const char* kStorageTemplate = R"({
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {"account": {"type": "string"}},
  "variables": {"accountId": "[resourceId('Microsoft.Storage/storageAccounts', parameters('account'))]"},
  "resources": [
    {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2022-09-01", "name": "[parameters('account')]",
     "location": "local", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2",
     "properties": {"minimumTlsVersion": "TLS1_2"}},
    {"type": "Microsoft.Storage/storageAccounts/fileServices", "apiVersion": "2022-09-01",
     "name": "[concat(parameters('account'), '/default')]", "dependsOn": ["[variables('accountId')]"],
     "properties": {"shareDeleteRetentionPolicy": {"enabled": true, "days": 14}}},
    {"type": "Microsoft.Storage/storageAccounts/fileServices/shares", "apiVersion": "2022-09-01",
     "name": "[concat(parameters('account'), '/default/work')]",
     "dependsOn": ["[resourceId('Microsoft.Storage/storageAccounts/fileServices', parameters('account'), 'default')]"],
     "properties": {"shareQuota": 100}}
  ],
  "outputs": {
    "endpoint": {"type": "string", "value": "[reference(variables('accountId')).primaryEndpoints.file]"},
    "keyName": {"type": "string", "value": "[listKeys(variables('accountId'), '2022-09-01').keys[0].keyName]"},
    "key": {"type": "string", "value": "[listKeys(variables('accountId'), '2022-09-01').keys[0].value]"}
  }
})";

TEST_F(DeployerTest, AStorageAccountItsRetentionAndAShare) {
  arm::ArmError error;
  auto d = Deploy(Request(kStorageTemplate, Value::parse(R"({"account": {"value": "dspoolfiles"}})")), &error);
  ASSERT_TRUE(d.ok()) << d.status() << " " << error.message;
  EXPECT_EQ(d->state, ProvisioningState::kSucceeded) << d->error.dump();
  ASSERT_EQ(storage_.applied.size(), 3u);
  EXPECT_EQ(storage_.applied[0].kind, StorageOp::Kind::kAccount);
  EXPECT_EQ(storage_.applied[0].body, Json::parse(R"({"sku": {"name": "Standard_LRS"}, "kind": "StorageV2",
                                                      "tags": {}, "location": "local"})"));
  EXPECT_EQ(storage_.applied[0].keys[0], "NEWKEY1-1");
  EXPECT_EQ(storage_.applied[1].kind, StorageOp::Kind::kFileService);
  EXPECT_EQ(storage_.applied[1].body, Json::parse(R"({"properties": {"shareDeleteRetentionPolicy": {"days": 14}}})"));
  EXPECT_EQ(storage_.applied[2].kind, StorageOp::Kind::kShare);
  EXPECT_EQ(storage_.applied[2].share, "work");
  EXPECT_EQ(storage_.applied[2].body, Json::parse(R"({"properties": {"shareQuota": 100}})"));
  // reference() and listKeys() answer; a key in an output is not shown.
  EXPECT_EQ(d->outputs["endpoint"]["value"], "https://dspoolfiles.file.core.windows.net/");
  EXPECT_EQ(d->outputs["keyName"]["value"], "key1");
  EXPECT_EQ(d->outputs["key"]["value"], "[secure]");
  for (const ArmResource& r : *store_.ListResources("rg")) EXPECT_EQ(r.body.dump().find("NEWKEY"), std::string::npos);

  // Again: the account exists and keeps its keys.
  d = Deploy(Request(kStorageTemplate, Value::parse(R"({"account": {"value": "dspoolfiles"}})")), &error);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(storage_.made_keys, 1);
  EXPECT_EQ(d->operations[0].status_code, "OK");

  // Complete mode without them: the account goes (its shares soft-deleted).
  DeployRequest empty = Request(R"({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0", "resources": []})", Value::object());
  empty.mode = "Complete";
  empty.name = "dep2";
  d = Deploy(empty, &error);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(storage_.deleted, (std::vector<std::string>{"Microsoft.Storage/storageAccounts dspoolfiles",
                                                        "Microsoft.Storage/storageAccounts/fileServices/shares "
                                                        "dspoolfiles/default/work"}));
}

TEST_F(DeployerTest, StorageErrorsAreNamedBeforeAnythingIsMade) {
  storage_.accounts["taken"] = StorageAccount{.group = "other", .name = "taken"};
  struct Case {
    std::string account;
    std::string edit_from, edit_to;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"taken", "", "", "StorageAccountAlreadyTaken"},
           {"Bad_Name", "", "", "storage account name 'Bad_Name'"},
           {"good", R"("Standard_LRS")", R"("Cheap")", "sku.name: storage sku 'Cheap'"},
           {"good", R"("enabled": true)", R"("enabled": false)", "enabled: false is refused"},
           {"good", R"("days": 14)", R"("days": 400)", "shareDeleteRetentionPolicy: days: 400"},
           {"good", R"("shareQuota": 100)", R"("shareQuota": 0)", "shareQuota: share quota 0 GiB"},
           {"good", R"("minimumTlsVersion": "TLS1_2")", R"("networkAcls": {"defaultAction": "Deny"})",
            "network rules are not enforced"},
       }) {
    std::string text = kStorageTemplate;
    if (!c.edit_from.empty()) text.replace(text.find(c.edit_from), c.edit_from.size(), c.edit_to);
    arm::ArmError error;
    auto d = Deploy(Request(text, Value::parse(R"({"account": {"value": ")" + c.account + R"("}})")), &error);
    ASSERT_FALSE(d.ok()) << c.message;
    EXPECT_NE(error.message.find(c.message), std::string::npos) << error.message;
  }
  EXPECT_TRUE(storage_.applied.empty());
  EXPECT_TRUE(store_.ListDeployments("rg").value_or({Deployment{}}).empty());
}

}  // namespace
}  // namespace dspool::deploy
