// The ARM expression language: which strings are expressions, and their
// syntax tree.
//
//   "[concat('vm', copyIndex())]"    an expression (the text between the brackets)
//   "[[literal]"                     the literal "[literal]" (one '[' dropped)
//   "[x] y", "plain"                 literals
//
// Grammar (arm-templates.md §3.2): no operators and no keywords;
//
//   expression = primary { "." name | "[" expression "]" }
//   primary    = name [ "." name ] "(" [ expression { "," expression } ] ")"
//              | "'" { char | "''" } "'" | [ "-" ] digit { digit }
//
// Pure; an Expr is an immutable tree.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace dspool::arm {

// The longest expression ARM accepts, in characters.
inline constexpr size_t kMaxExpressionLength = 24576;

enum class StringForm {
  kLiteral,     // taken as it is
  kEscaped,     // "[[...]": the literal without its first '['
  kExpression,  // "[...]": the text between the brackets is evaluated
};

// How ARM reads a JSON string value.
StringForm ClassifyString(std::string_view s);

struct Expr {
  enum class Kind {
    kString,   // text
    kInteger,  // integer
    kCall,     // name (and space: a user-defined function's namespace), args
    kMember,   // args[0].text
    kIndex,    // args[0][args[1]]
  };
  Kind kind = Kind::kString;
  std::string text;   // the string, the function's name, or the member's name
  std::string space;  // kCall: "ns" of "ns.f(...)"; else empty
  int64_t integer = 0;
  std::vector<std::unique_ptr<Expr>> args;
  size_t offset = 0;  // where it starts in the expression's text (0-based)
};

// Parses the text between an expression's brackets. Errors name the
// character where parsing stopped: "the expression is not valid at
// position 14: expected ',' or ')'".
Result<std::unique_ptr<Expr>> ParseExpression(std::string_view text);

}  // namespace dspool::arm
