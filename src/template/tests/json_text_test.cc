#include "template/json_text.h"

#include <gtest/gtest.h>

namespace dspool::arm {
namespace {

TEST(JsonTextTest, KeepsKeyOrderAndKnowsWhereEveryValueStarts) {
  auto doc = ParseJsonDocument(
      "{\n"
      "  \"b\": 1,\n"
      "  \"a\": [true, {\"x y\": null}],\n"
      "  \"resources\": [ { \"name\": \"n\" } ]\n"
      "}");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->value.dump(), R"({"b":1,"a":[true,{"x y":null}],"resources":[{"name":"n"}]})");
  EXPECT_EQ(doc->PositionOf("b").line, 2);
  EXPECT_EQ(doc->PositionOf("b").column, 8);
  EXPECT_EQ(doc->PositionOf("a[1]['x y']").line, 3);
  EXPECT_EQ(doc->PositionOf("a[1]['x y']").column, 23);
  EXPECT_EQ(doc->PositionOf("resources[0].name").column, 28);
  // An unknown path: its nearest ancestor's.
  EXPECT_EQ(doc->PositionOf("resources[0].properties.x").column, 18);
  EXPECT_EQ(doc->PositionOf("").line, 1);
}

TEST(JsonTextTest, TakesCommentsRawNewlinesAndTrailingCommasAsTheCliDoes) {
  auto doc = ParseJsonDocument(
      "// a template\n"
      "{ /* block\n comment */ \"s\": \"two\nlines\", \"n\": [1, 2,], }");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->value["s"], "two\nlines");
  EXPECT_EQ(doc->value["n"].size(), 2u);
  EXPECT_EQ(doc->PositionOf("n").line, 4);
}

TEST(JsonTextTest, NumbersAreIntegersUnlessTheyHaveAFraction) {
  auto doc = ParseJsonDocument(R"([1, -9223372036854775808, 1.5, 2e3, 99999999999999999999])");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_TRUE(doc->value[0].is_number_integer());
  EXPECT_EQ(doc->value[1].get<int64_t>(), INT64_MIN);
  EXPECT_TRUE(doc->value[2].is_number_float());
  EXPECT_TRUE(doc->value[3].is_number_float());
  EXPECT_TRUE(doc->value[4].is_number_float());
}

TEST(JsonTextTest, DecodesEscapesAndSurrogatePairs) {
  auto doc = ParseJsonDocument(R"(["a\"b\\\/\n\u00e9\ud83d\ude00"])");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->value[0], "a\"b\\/\n\xC3\xA9\xF0\x9F\x98\x80");
}

TEST(JsonTextTest, ErrorsSayWhatAndWhere) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"{\"a\": 1\n \"b\": 2}", "line 2, column 2: expected ',' or '}' after a member"},
      {"{\"a\": 1, \"a\": 2}", "line 1, column 10: the member 'a' is given twice"},
      {"[1, 2", "expected ',' or ']'"},
      {"\"open", "a string that is never closed"},
      {"/* open", "line 1, column 1: a comment that is never closed"},
      {"[tru]", "unexpected character 't'"},
      {"{1: 2}", "expected a member name in double quotes"},
      {"[\"\\x\"]", "an unknown escape '\\x'"},
      {"[\"\\ud800\"]", "unpaired surrogate"},
      {"[1.]", "'1.' is not a number"},
      {"[] []", "unexpected text after the JSON value"},
      {"", "unexpected end of the text"},
  };
  for (const Case& c : cases) {
    auto doc = ParseJsonDocument(c.text);
    ASSERT_FALSE(doc.ok()) << c.text;
    EXPECT_NE(doc.status().message().find(c.error), std::string::npos) << c.text << ": " << doc.status();
  }
}

TEST(JsonTextTest, RefusesNestingDeeperThanTheLimit) {
  std::string deep(kMaxJsonDepth + 5, '[');
  deep += std::string(kMaxJsonDepth + 5, ']');
  auto doc = ParseJsonDocument(deep);
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("nested deeper than"), std::string::npos) << doc.status();
}

TEST(JsonTextTest, PathsAreWrittenAsArmWritesThem) {
  EXPECT_EQ(MemberPath("", "resources"), "resources");
  EXPECT_EQ(MemberPath("resources[0]", "properties"), "resources[0].properties");
  EXPECT_EQ(MemberPath("tags", "a b"), "tags['a b']");
  EXPECT_EQ(ElementPath("resources", 3), "resources[3]");
}

}  // namespace
}  // namespace dspool::arm
