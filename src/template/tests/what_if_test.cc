#include "template/what_if.h"

#include <gtest/gtest.h>

namespace dspool::arm {
namespace {

const char* kScope = "/subscriptions/s/resourceGroups/rg";

Value Vnet(const std::string& prefix, bool owner) {
  Value v{{"location", "local"},
          {"properties", {{"addressSpace", {{"addressPrefixes", Value::array({prefix})}}},
                          {"subnets", Value::array({Value{{"name", "a"}, {"properties", {{"addressPrefix", "10.0.0.0/24"}}}}})}}}};
  if (owner) v["tags"] = Value{{"Owner", "Team A"}};
  return v;
}

TEST(WhatIfTest, NoChangeWhenTheBodiesAreEqual) {
  ResourceChange c = Compare(std::string(kScope) + "/providers/Microsoft.Network/virtualNetworks/v", "2022-09-01", Vnet("10.0.0.0/16", true), Vnet("10.0.0.0/16", true));
  EXPECT_EQ(c.type, ChangeType::kNoChange);
  EXPECT_TRUE(c.delta.empty());
}

TEST(WhatIfTest, ModifyListsEveryPropertyByPath) {
  ResourceChange c = Compare(std::string(kScope) + "/providers/Microsoft.Network/virtualNetworks/v", "2022-09-01", Vnet("10.0.0.0/16", true), Vnet("10.0.0.0/15", false));
  ASSERT_EQ(c.type, ChangeType::kModify);
  ASSERT_EQ(c.delta.size(), 2u);
  EXPECT_EQ(c.delta[0].path, "properties.addressSpace.addressPrefixes");
  EXPECT_EQ(c.delta[0].type, PropertyChangeType::kArray);
  ASSERT_EQ(c.delta[0].children.size(), 1u);
  EXPECT_EQ(c.delta[0].children[0].path, "0");
  EXPECT_EQ(c.delta[1].path, "tags");
  EXPECT_EQ(c.delta[1].type, PropertyChangeType::kDelete);

  EXPECT_EQ(WhatIfText({c}, kScope),
            "Note: The result may contain false positive predictions (noise).\n"
            "You can help us improve the accuracy of the result by opening an issue here: https://aka.ms/WhatIfIssues\n\n"
            "Resource and property changes are indicated with these symbols:\n"
            "  - Delete\n"
            "  ~ Modify\n\n"
            "The deployment will update the following scope:\n\n"
            "Scope: /subscriptions/s/resourceGroups/rg\n\n"
            "  ~ Microsoft.Network/virtualNetworks/v [2022-09-01]\n\n"
            "    ~ properties.addressSpace.addressPrefixes: [\n"
            "      ~ 0: \"10.0.0.0/16\" => \"10.0.0.0/15\"\n"
            "      ]\n"
            "    - tags: {\"Owner\":\"Team A\"}\n\n"
            "Resource changes: 1 to modify.\n");
}

TEST(WhatIfTest, CreateAndTheJsonShape) {
  ResourceChange c = Compare(std::string(kScope) + "/providers/Microsoft.Storage/storageAccounts/st", "2022-09-01", nullptr, Value{{"sku", {{"name", "Standard_LRS"}}}});
  EXPECT_EQ(c.type, ChangeType::kCreate);
  Value j = WhatIfJson({c});
  EXPECT_EQ(j["status"], "Succeeded");
  EXPECT_EQ(j["changes"][0]["changeType"], "Create");
  EXPECT_TRUE(j["changes"][0]["before"].is_null());
  EXPECT_EQ(j["changes"][0]["after"]["sku"]["name"], "Standard_LRS");
  EXPECT_NE(WhatIfText({c}, kScope).find("Resource changes: 1 to create.\n"), std::string::npos);
}

}  // namespace
}  // namespace dspool::arm
