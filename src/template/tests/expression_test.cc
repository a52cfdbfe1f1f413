#include "template/expression.h"

#include <gtest/gtest.h>

namespace dspool::arm {
namespace {

TEST(ExpressionTest, ClassifiesStringsAsArmDoes) {
  EXPECT_EQ(ClassifyString("[concat('a')]"), StringForm::kExpression);
  EXPECT_EQ(ClassifyString("[[concat('a')]"), StringForm::kEscaped);
  EXPECT_EQ(ClassifyString("[x] y"), StringForm::kLiteral);
  EXPECT_EQ(ClassifyString("[[no close"), StringForm::kLiteral);
  EXPECT_EQ(ClassifyString("["), StringForm::kLiteral);
  EXPECT_EQ(ClassifyString("plain"), StringForm::kLiteral);
}

TEST(ExpressionTest, BuildsCallsAccessorsAndLiterals) {
  auto e = ParseExpression("reference(parameters('n')).outputs['x'].value");
  ASSERT_TRUE(e.ok()) << e.status();
  const Expr& value = **e;
  ASSERT_EQ(value.kind, Expr::Kind::kMember);
  EXPECT_EQ(value.text, "value");
  const Expr& index = *value.args[0];
  ASSERT_EQ(index.kind, Expr::Kind::kIndex);
  EXPECT_EQ(index.args[1]->text, "x");
  const Expr& outputs = *index.args[0];
  EXPECT_EQ(outputs.text, "outputs");
  const Expr& call = *outputs.args[0];
  ASSERT_EQ(call.kind, Expr::Kind::kCall);
  EXPECT_EQ(call.text, "reference");
  EXPECT_EQ(call.args[0]->args[0]->text, "n");
}

TEST(ExpressionTest, ReadsUserFunctionsWithTheirNamespace) {
  auto e = ParseExpression("contoso.uniqueName( 'a' , -3 )");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->space, "contoso");
  EXPECT_EQ((*e)->text, "uniqueName");
  EXPECT_EQ((*e)->args[1]->integer, -3);
}

TEST(ExpressionTest, ErrorsNameThePosition) {
  auto e = ParseExpression("concat('a' 'b')");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "the expression is not valid at position 12: expected ',' or ')'");
}

TEST(ExpressionTest, RefusesOverlongAndOverdeepExpressions) {
  auto longer = ParseExpression("'" + std::string(kMaxExpressionLength, 'a') + "'");
  ASSERT_FALSE(longer.ok());
  EXPECT_NE(longer.status().message().find("at most 24576"), std::string::npos);
  std::string deep;
  for (int i = 0; i < 500; ++i) deep += "not(";
  deep += "true()";
  deep += std::string(500, ')');
  auto nested = ParseExpression(deep);
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.status().message().find("nested deeper than"), std::string::npos);
}

}  // namespace
}  // namespace dspool::arm
