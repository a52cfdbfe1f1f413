#include "template/parameters.h"

#include <gtest/gtest.h>

#include "template/json_text.h"

namespace dspool::arm {
namespace {

Value Declared() {
  return ParseJsonDocument(R"({
    "name": {"type": "string"},
    "count": {"type": "int"},
    "on": {"type": "bool", "defaultValue": false},
    "tags": {"type": "object", "defaultValue": {}},
    "password": {"type": "securestring"}
  })")->value;
}

TEST(ParametersTest, FileThenInlineThenKeyValueTheLastWinsWhole) {
  std::vector<ParameterToken> tokens{
      {"params.json", R"(// a comment
        {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
         "contentVersion": "1.0.0.0",
         "parameters": {"name": {"value": "from-file"}, "tags": {"value": {"a": 1, "b": 2}}}})"},
      {R"({"tags": {"value": {"c": 3}}})", std::nullopt},
      {"name=[literal]", std::nullopt},
      {"count=3", std::nullopt},
      {"on=True", std::nullopt},
  };
  auto r = AssembleParameters(tokens, Declared());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->values["name"]["value"], "[literal]");  // never an expression
  EXPECT_EQ(r->values["tags"]["value"], Value({{"c", 3}}));
  EXPECT_EQ(r->values["count"]["value"], 3);
  EXPECT_EQ(r->values["on"]["value"], true);
  EXPECT_TRUE(r->warnings.empty());
}

TEST(ParametersTest, ASecureValueOnTheCommandLineWarns) {
  auto r = AssembleParameters({{"password=hunter2", std::nullopt}}, Declared());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("'password'"), std::string::npos);
  EXPECT_EQ(r->warnings[0].find("hunter2"), std::string::npos);
}

TEST(ParametersTest, ErrorsAsAzGivesThem) {
  auto unknown = AssembleParameters({{"Name=x", std::nullopt}}, Declared());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(), "unrecognized template parameter 'Name'. Allowed parameters: name, count, on, tags, password");
  auto junk = AssembleParameters({{"junk", std::nullopt}}, Declared());
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.status().message().find("Unable to parse parameter: junk"), std::string::npos);
  auto bad_int = AssembleParameters({{"count=three", std::nullopt}}, Declared());
  ASSERT_FALSE(bad_int.ok());
  EXPECT_NE(bad_int.status().message().find("must be an integer"), std::string::npos);
  auto bad_file = AssembleParameters({{"p.json", std::string("{oops")}}, Declared());
  ASSERT_FALSE(bad_file.ok());
  EXPECT_NE(bad_file.status().message().find("Failed to parse p.json: line 1"), std::string::npos);
}

TEST(ParametersTest, MissingAreThoseWithoutADefaultInTemplateOrder) {
  Value values{{"count", {{"value", nullptr}}}, {"password", {{"reference", {{"secretName", "s"}}}}}};
  EXPECT_EQ(MissingParameters(values, Declared()), (std::vector<std::string>{"name", "count"}));
}

}  // namespace
}  // namespace dspool::arm
