// The built-in pure functions (internal to the template module): a table
// by lower-case name, each with its argument count. Lazy functions (if,
// and, or, the lambda functions) are evaluate.cc's.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "template/value.h"

namespace dspool::arm::internal {

using Args = std::vector<Value>;
using BuiltinFn = Result<Value> (*)(const std::string& name, Args& args);

struct Builtin {
  int min_args;
  int max_args;  // -1: any number
  BuiltinFn fn;
};

// nullptr if `lower_name` is no built-in pure function.
const Builtin* FindBuiltin(const std::string& lower_name);

// length(v): a string's UTF-16 code units, an array's elements, an
// object's members; `name` for the error.
Result<Value> LengthOf(const std::string& name, const Value& v);

// "The template function 'f' ..." errors, shared with evaluate.cc.
Status FunctionError(const std::string& name, const std::string& what);
Result<bool> ArgBool(const std::string& name, const Args& args, size_t i);
Result<int64_t> ArgInt(const std::string& name, const Args& args, size_t i);
Result<std::string> ArgString(const std::string& name, const Args& args, size_t i);

// Dates (functions_time.cc).
Result<Value> DateTimeAdd(const std::string& name, Args& args);
Result<Value> DateTimeFromEpoch(const std::string& name, Args& args);
Result<Value> DateTimeToEpoch(const std::string& name, Args& args);
// `utcNow(format)`'s text for a time given as seconds and 100 ns ticks
// since the Unix epoch (the Scope has the clock).
Result<std::string> FormatUtc(int64_t unix_seconds, int64_t ticks, const std::string& format);

}  // namespace dspool::arm::internal
