// The data-driven template cases (tests/templates/*.json: a template, its
// parameters, and the resources, order and outputs it gives, or a part of
// its error and where), and the reference's sample templates as they are.
#include "template/template.h"

#include <gtest/gtest.h>

#include "template/tests/case_files.h"

namespace dspool::arm {
namespace {

DeploymentContext TestContext() {
  DeploymentContext ctx;
  ctx.subscription_id = "00000000-0000-0000-0000-00000000d5d5";
  ctx.tenant_id = "00000000-0000-0000-0000-0000000000aa";
  ctx.resource_group = "rg1";
  ctx.location = "local";
  ctx.deployment_name = "test";
  ctx.now_unix_seconds = 1'796'638'500;  // 2026-12-07T10:15:00Z
  ctx.new_guid = [] { return std::string("00000000-0000-4000-8000-000000000001"); };
  return ctx;
}

// Runtime state as a provider would answer: the body the deployment put,
// with a public IP's address and FQDN, and a storage account's keys.
class FakeReader : public ResourceReader {
 public:
  void Deployed(const ExpandedResource& r, Value body) { bodies_[ToLowerAscii(r.id)] = std::move(body); }

  Result<Value> Reference(const std::string& id, bool full) override {
    auto it = bodies_.find(ToLowerAscii(id));
    if (it == bodies_.end()) return NotFound("not deployed: " + id);
    Value props = it->second.contains("properties") ? it->second["properties"] : Value::object();
    if (EqualsIgnoreCase(it->second["type"].get<std::string>(), "Microsoft.Network/publicIPAddresses")) {
      const std::string name = it->second["name"].get<std::string>();
      props["ipAddress"] = "192.0.2.10";
      props["dnsSettings"]["fqdn"] = name + ".example.test";
    }
    if (!full) return props;
    Value whole = it->second;
    whole["properties"] = props;
    return whole;
  }
  Result<Value> List(const std::string& function, const std::string& id, const Value&) override {
    auto parts = ParseResourceId(id);
    if (!parts || function != "listkeys") return NotFound(function + " " + id);
    return Value{{"keys", Value::array({Value{{"keyName", "key1"}, {"permissions", "Full"}, {"value", "key1-" + parts->name}}})}};
  }

 private:
  std::map<std::string, Value> bodies_;
};

std::string NameOf(const Template& t, size_t i) { return t.resources()[i].name; }

TEST(TemplateCasesTest, EveryCaseGivesItsResourcesAndOutputsOrItsError) {
  auto cases = LoadCases("templates");
  ASSERT_TRUE(cases.ok()) << cases.status();
  EXPECT_GT(cases->size(), 30u);
  for (const TestCase& tc : *cases) {
    const Value& c = tc.value;
    SCOPED_TRACE(tc.where + ": " + c.at("name").get<std::string>());
    TemplateLoad load;
    load.text = c.at("template").dump(2);
    if (c.contains("parameters")) load.parameters = c["parameters"];
    load.context = TestContext();
    ArmError error;
    auto t = Template::Load(load, &error);
    FakeReader reader;
    Status failure = t.ok() ? Status::Ok() : t.status();
    std::map<std::string, Value> bodies;
    std::optional<std::map<std::string, OutputValue>> outputs;  // by name (the order: OutputsKeepTheTemplatesOrder)
    if (t.ok()) {
      for (size_t i : (*t)->DeployOrder()) {
        auto body = (*t)->ResourceBody(i, reader, &error);
        if (!body.ok()) {
          failure = body.status();
          break;
        }
        bodies[NameOf(**t, i)] = *body;
        reader.Deployed((*t)->resources()[i], *body);
      }
      if (failure.ok()) {
        auto out = (*t)->Outputs(reader, &error);
        if (out.ok()) {
          outputs = std::map<std::string, OutputValue>(out->begin(), out->end());
        } else {
          failure = out.status();
        }
      }
    }
    if (c.contains("error")) {
      ASSERT_FALSE(failure.ok()) << "no error";
      EXPECT_NE(failure.message().find(c["error"].get<std::string>()), std::string::npos) << failure;
      EXPECT_EQ(error.code, "InvalidTemplate");
      if (c.contains("errorPath")) {
        EXPECT_EQ(error.path, c["errorPath"].get<std::string>()) << failure;
      }
      if (c.contains("errorLacks")) {
        EXPECT_EQ(failure.message().find(c["errorLacks"].get<std::string>()), std::string::npos);
      }
      continue;
    }
    ASSERT_TRUE(failure.ok()) << failure;
    const Template& tt = **t;
    if (c.contains("resources")) {
      ASSERT_EQ(tt.resources().size(), c["resources"].size());
      for (size_t i = 0; i < tt.resources().size(); ++i) {
        const ExpandedResource& r = tt.resources()[i];
        const Value& want = c["resources"][i];
        EXPECT_EQ(r.type, want.at("type").get<std::string>());
        EXPECT_EQ(r.name, want.at("name").get<std::string>());
        EXPECT_EQ(r.id, ResourceIdOf(load.context, r.type, r.name));
        if (want.contains("condition")) {
          EXPECT_EQ(r.condition, want["condition"].get<bool>()) << r.name;
        }
        if (want.contains("existing")) {
          EXPECT_EQ(r.existing, want["existing"].get<bool>()) << r.name;
        }
        if (want.contains("dependsOn")) {
          std::vector<std::string> got;
          for (size_t d : r.depends_on) got.push_back(NameOf(tt, d));
          std::vector<std::string> expected = want["dependsOn"].get<std::vector<std::string>>();
          std::sort(got.begin(), got.end());
          std::sort(expected.begin(), expected.end());
          EXPECT_EQ(got, expected) << r.name;
        }
        if (want.contains("properties")) {
          ASSERT_TRUE(bodies.count(r.name)) << r.name;
          EXPECT_TRUE(DeepEquals(bodies[r.name]["properties"], want["properties"])) << bodies[r.name].dump();
        }
      }
    }
    if (c.contains("order")) {
      std::vector<std::string> order;
      for (size_t i : tt.DeployOrder()) order.push_back(NameOf(tt, i));
      EXPECT_EQ(order, c["order"].get<std::vector<std::string>>());
    }
    if (c.contains("outputs")) {
      ASSERT_TRUE(outputs);
      EXPECT_EQ(outputs->size(), c["outputs"].size());
      for (const auto& [name, want] : c["outputs"].items()) {
        ASSERT_TRUE(outputs->count(name)) << name;
        EXPECT_TRUE(DeepEquals(outputs->at(name).value, want)) << name << ": " << outputs->at(name).value.dump();
      }
    }
  }
}

// ---- the reference's sample, unchanged ----

TEST(TemplateOutputsTest, OutputsKeepTheTemplatesOrder) {
  TemplateLoad load;
  load.text = R"({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0", "resources": [],
    "outputs": {"zeta": {"type": "int", "value": 1}, "alpha": {"type": "int", "value": 2},
                "mid": {"type": "int", "value": 3, "condition": false}, "beta": {"type": "int", "value": 4}}})";
  load.context = TestContext();
  ArmError error;
  auto t = Template::Load(load, &error);
  ASSERT_TRUE(t.ok()) << t.status();
  FakeReader reader;
  auto out = (*t)->Outputs(reader, &error);
  ASSERT_TRUE(out.ok()) << out.status();
  std::vector<std::string> names;
  for (const auto& [name, _] : *out) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"zeta", "alpha", "beta"}));
}

TEST(SampleTemplateTest, TheClusterTemplateLoadsWithItsParametersFile) {
  TemplateLoad load;
  load.text = ReadTestFile(SampleTemplates() / "dsvm-vmss-cluster.json");
  auto params = ParseJsonDocument(ReadTestFile(SampleTemplates() / "dsvm-vmss-cluster.parameters.json"));
  ASSERT_TRUE(params.ok()) << params.status();
  load.parameters = params->value["parameters"];
  load.parameters["vmssName"]["value"] = "pool1";  // the placeholder GEN-UNIQUE-8 is 12 characters: over maxLength 9
  load.context = TestContext();
  ArmError error;
  auto t = Template::Load(load, &error);
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<std::string> types;
  for (const ExpandedResource& r : (*t)->resources()) types.push_back(r.type);
  EXPECT_EQ(types, (std::vector<std::string>{"Microsoft.Network/virtualNetworks", "Microsoft.Network/publicIPAddresses",
                                             "Microsoft.Network/loadBalancers", "Microsoft.Compute/virtualMachineScaleSets"}));
  FakeReader reader;
  for (size_t i : (*t)->DeployOrder()) {
    auto body = (*t)->ResourceBody(i, reader, &error);
    ASSERT_TRUE(body.ok()) << body.status();
    reader.Deployed((*t)->resources()[i], *body);
  }
  // The secure parameters never reach the record.
  Value record = (*t)->ParametersRecord();
  EXPECT_FALSE(record["adminPassword"].contains("value"));
  EXPECT_EQ(record["adminPassword"]["type"], "SecureString");
  EXPECT_EQ(record["instanceCount"]["value"], 2);
  EXPECT_EQ((*t)->SecureParameters(), (std::set<std::string>{"adminPassword", "storageAccountKey"}));
}

TEST(SampleTemplateTest, ThePlaceholderNameIsTooLongForTheTemplatesOwnLimit) {
  TemplateLoad load;
  load.text = ReadTestFile(SampleTemplates() / "dsvm-vmss-cluster.json");
  auto params = ParseJsonDocument(ReadTestFile(SampleTemplates() / "dsvm-vmss-cluster.parameters.json"));
  ASSERT_TRUE(params.ok());
  load.parameters = params->value["parameters"];
  load.context = TestContext();
  ArmError error;
  auto t = Template::Load(load, &error);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("'vmssName'"), std::string::npos) << t.status();
  EXPECT_NE(t.status().message().find("less than or equal to '9'"), std::string::npos) << t.status();
  EXPECT_EQ(error.path, "parameters.vmssName");
  EXPECT_GT(error.at.line, 0);
}

TEST(SampleTemplateTest, TheLowPriorityVariantLoads) {
  TemplateLoad load;
  load.text = ReadTestFile(SampleTemplates() / "dsvm-vmss-lowpri.json");
  // It declares no share parameters.
  load.parameters = Value{{"vmssName", {{"value", "pool1"}}}, {"instanceCount", {{"value", 2}}},
                          {"adminUsername", {{"value", "dsvmuser"}}}, {"adminPassword", {{"value", "a-Passw0rd-here"}}}};
  load.context = TestContext();
  ArmError error;
  auto t = Template::Load(load, &error);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE((*t)->resources().empty());
}

}  // namespace
}  // namespace dspool::arm
