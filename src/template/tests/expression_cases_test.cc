// Runs the data-driven expression cases: every file in tests/expressions/
// holds {"cases": [{"expr", "value" | "error"}]}; adding a case is adding
// a line to a file.
#include <gtest/gtest.h>

#include "template/evaluate.h"
#include "template/tests/case_files.h"

namespace dspool::arm {
namespace {

TEST(ExpressionCasesTest, EveryCaseGivesItsValueOrError) {
  auto cases = LoadCases("expressions");
  ASSERT_TRUE(cases.ok()) << cases.status();
  EXPECT_GT(cases->size(), 200u);
  for (const TestCase& tc : *cases) {
    const Value& c = tc.value;
    const std::string expr = c.at("expr").get<std::string>();
    SCOPED_TRACE(tc.where + ": " + expr);
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
  }
}

}  // namespace
}  // namespace dspool::arm
