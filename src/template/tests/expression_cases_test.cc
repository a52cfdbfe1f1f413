// Runs the data-driven expression cases: every file in tests/expressions/
// holds {"cases": [{"expr", "value" | "error"}]}; adding a case is adding
// a line to a file.
#include <gtest/gtest.h>

#include "template/evaluate.h"
#include "template/json_text.h"
#include "template/tests/case_files.h"

namespace dspool::arm {
namespace {

TEST(ExpressionCasesTest, EveryCaseGivesItsValueOrError) {
  const std::filesystem::path dir = TestData() / "expressions";
  int cases = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    auto doc = ParseJsonDocument(ReadTestFile(entry.path()));
    ASSERT_TRUE(doc.ok()) << entry.path() << ": " << doc.status();
    const Value& list = doc->value.at("cases");
    for (size_t i = 0; i < list.size(); ++i) {
      const Value& c = list[i];
      const std::string expr = c.at("expr").get<std::string>();
      SCOPED_TRACE(entry.path().filename().string() + " case " + std::to_string(i) + ": " + expr);
      PureScope scope;
      Result<Value> got = EvaluateString(expr, scope);
      if (c.contains("error")) {
        ASSERT_FALSE(got.ok()) << "gave " << got->dump();
        EXPECT_NE(got.status().message().find(c["error"].get<std::string>()), std::string::npos) << got.status();
      } else {
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_TRUE(DeepEquals(*got, c.at("value"))) << "gave " << got->dump() << ", expected " << c["value"].dump();
        EXPECT_EQ(got->type() == Value::value_t::number_float, c["value"].is_number_float()) << got->dump();
      }
      ++cases;
    }
  }
  EXPECT_GT(cases, 200);
}

}  // namespace
}  // namespace dspool::arm
