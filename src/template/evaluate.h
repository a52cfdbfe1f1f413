// Evaluating ARM expressions.
//
// The language's pure functions (strings, arrays and objects, comparison,
// logic, numbers, dates, CIDR, lambdas, uniqueString and guid) are built
// in. Whatever depends on where the expression stands (parameters(),
// variables(), copyIndex(), deployment(), resourceGroup(), resourceId(),
// reference(), list*(), utcNow(), user-defined functions) is asked of a
// Scope, which the template evaluator provides and which decides what is
// allowed at that place (arm-templates.md §3.4).
//
//   Result<Value> v = EvaluateString("[concat('vm', copyIndex())]", scope);
//
// Function names are case-insensitive. `if()` evaluates only the branch it
// takes; `and()` and `or()` stop at the first false (true) argument.
// Pure: no clock, no randomness, no I/O of its own (a Scope's utcNow() and
// newGuid() are the caller's).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "template/expression.h"
#include "template/value.h"

namespace dspool::arm {

class Scope {
 public:
  virtual ~Scope() = default;

  // Calls `name` (lower case; `space` is the namespace of a user-defined
  // function, else empty) with its evaluated arguments. NotFound if this
  // scope has no such function: the caller reports it as unknown.
  virtual Result<Value> Call(const std::string& space, const std::string& name, std::vector<Value>& args) = 0;
  // The value of variables(`name`), lent without a copy, so that reading
  // one element or the length of a large variable does not copy it all;
  // nullptr if the scope keeps none by that name or it cannot be read here
  // (the evaluator then calls variables() and reports its error).
  virtual const Value* PeekVariable(const std::string& /*name*/) { return nullptr; }
};

// A scope with no functions of its own: pure expressions only.
class PureScope : public Scope {
 public:
  Result<Value> Call(const std::string&, const std::string& name, std::vector<Value>&) override {
    return NotFound(name);
  }
};

Result<Value> Evaluate(const Expr& e, Scope& scope);

// A JSON string value as ARM reads it: a literal as it is, "[[x]" as "[x]",
// an expression evaluated.
Result<Value> EvaluateString(std::string_view s, Scope& scope);

}  // namespace dspool::arm
