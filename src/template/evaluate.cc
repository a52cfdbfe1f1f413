#include "template/evaluate.h"

#include <algorithm>

#include "template/functions.h"

namespace dspool::arm {

using internal::Args;
using internal::FunctionError;

namespace {

std::string Available(const Value& object) {
  std::string names;
  for (const auto& [k, v] : object.items()) {
    if (!names.empty()) names += ", ";
    names += k;
  }
  return names;
}

// The lambda functions' argument counts: the collection (and reduce's
// initial value) come first, then one or two lambdas.
bool IsLambdaFunction(const std::string& name) {
  return name == "filter" || name == "map" || name == "reduce" || name == "sort" || name == "toobject" ||
         name == "mapvalues" || name == "groupby";
}

class Evaluator {
 public:
  explicit Evaluator(Scope& scope) : scope_(scope) {}

  // Every value made counts against a budget (its size: characters,
  // elements), so an expression that multiplies its work (a map over
  // range(0, 10000) whose lambda makes another) ends with an error, not
  // after minutes.
  Result<Value> Eval(const Expr& e) {
    DSP_ASSIGN_OR_RETURN(Value v, EvalNode(e));
    work_ += 1 + (v.is_string() ? v.get_ref<const std::string&>().size() : v.is_structured() ? v.size() : 0);
    if (work_ > kMaxWork) {
      return ResourceExhausted("The language expression does too much work (more than " + std::to_string(kMaxWork) +
                               " characters and elements made); simplify it");
    }
    return v;
  }

 private:
  static constexpr size_t kMaxWork = 2'000'000;

  Result<Value> EvalNode(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kString: return Value(e.text);
      case Expr::Kind::kInteger: return Value(e.integer);
      case Expr::Kind::kMember:
      case Expr::Kind::kIndex: {
        Value holder;
        DSP_ASSIGN_OR_RETURN(const Value* v, EvalRef(e, &holder));
        return v == &holder ? std::move(holder) : *v;
      }
      case Expr::Kind::kCall: return Call(e);
    }
    return Internal("unknown expression kind");
  }

  // `e`'s value where it stands: a variable, or a member or element of
  // one, is borrowed from the scope (reading one element of a large
  // variable copies that element only); anything else is made into
  // *holder. The pointer lives as long as *holder and the scope.
  Result<const Value*> EvalRef(const Expr& e, Value* holder) {
    switch (e.kind) {
      case Expr::Kind::kCall:
        if (e.space.empty() && e.args.size() == 1 && e.args[0]->kind == Expr::Kind::kString &&
            EqualsIgnoreCase(e.text, "variables")) {
          if (const Value* v = scope_.PeekVariable(e.args[0]->text)) return v;
        }
        break;
      case Expr::Kind::kMember: {
        DSP_ASSIGN_OR_RETURN(const Value* base, EvalRef(*e.args[0], holder));
        return Member(*base, e.text);
      }
      case Expr::Kind::kIndex: {
        DSP_ASSIGN_OR_RETURN(const Value* base, EvalRef(*e.args[0], holder));
        DSP_ASSIGN_OR_RETURN(Value key, Eval(*e.args[1]));
        return Element(*base, key);
      }
      default:
        break;
    }
    DSP_ASSIGN_OR_RETURN(*holder, Eval(e));
    return holder;
  }

  static Result<const Value*> Element(const Value& base, const Value& key) {
    if (base.is_array()) {
      if (!IsInteger(key)) {
        return InvalidArgument("The language expression indexes an array with " + TypeName(key) + " " + Quote(key) +
                               "; an array takes an integer index");
      }
      int64_t i = AsInteger(key);
      if (i < 0 || i >= static_cast<int64_t>(base.size())) {
        return InvalidArgument("The language expression index " + std::to_string(i) + " is out of range: the array has " +
                               std::to_string(base.size()) + " elements");
      }
      return &base[static_cast<size_t>(i)];
    }
    if (!key.is_string()) {
      return InvalidArgument("The language expression indexes " + TypeName(base) + " with " + TypeName(key) + " " + Quote(key));
    }
    return Member(base, key.get<std::string>());
  }

  static Result<const Value*> Member(const Value& base, const std::string& name) {
    if (!base.is_object()) {
      return InvalidArgument("The language expression property '" + name + "' cannot be read from " + TypeName(base) +
                             (base.is_null() ? "" : " " + Quote(base)) + ": only objects have properties");
    }
    const Value* v = FindMember(base, name);
    if (v == nullptr) {
      return InvalidArgument("The language expression property '" + name + "' doesn't exist, available properties are '" +
                             Available(base) + "'.");
    }
    return v;
  }

  Result<Args> EvalArgs(const Expr& e) {
    Args args;
    args.reserve(e.args.size());
    for (const auto& a : e.args) {
      DSP_ASSIGN_OR_RETURN(Value v, Eval(*a));
      args.push_back(std::move(v));
    }
    return args;
  }

  static Status CountError(const std::string& name, size_t given, int min, int max) {
    std::string expected = min == max      ? std::to_string(min)
                           : max < 0       ? "at least " + std::to_string(min)
                                           : "from " + std::to_string(min) + " to " + std::to_string(max);
    const bool one = min == 1 && (max == 1 || max < 0);
    return FunctionError(name, "expects " + expected + " argument" + (one ? "" : "s") + "; it was given " +
                                   std::to_string(given));
  }

  Result<Value> Call(const Expr& e) {
    const std::string name = ToLowerAscii(e.text);
    if (!e.space.empty()) {
      DSP_ASSIGN_OR_RETURN(Args args, EvalArgs(e));
      return scope_.Call(ToLowerAscii(e.space), name, args);
    }
    const size_t n = e.args.size();
    if (name == "if") {
      if (n != 3) return CountError(e.text, n, 3, 3);
      DSP_ASSIGN_OR_RETURN(Value c, Eval(*e.args[0]));
      if (!c.is_boolean()) {
        return FunctionError("if", "expects its first argument to be a Bool; it is " + TypeName(c) + " " + Quote(c));
      }
      return Eval(*e.args[c.get<bool>() ? 1 : 2]);
    }
    if (name == "and" || name == "or") {
      if (n < 1) return CountError(e.text, n, 1, -1);
      const bool stop_at = name == "or";
      for (size_t i = 0; i < n; ++i) {
        DSP_ASSIGN_OR_RETURN(Value v, Eval(*e.args[i]));
        if (!v.is_boolean()) {
          return FunctionError(name, "expects Bool arguments; argument " + std::to_string(i + 1) + " is " + TypeName(v) + " " + Quote(v));
        }
        if (v.get<bool>() == stop_at) return Value(stop_at);
      }
      return Value(!stop_at);
    }
    if (name == "lambda") return FunctionError("lambda", "can only be an argument of filter, map, reduce, sort, toObject, mapValues or groupBy");
    if (name == "lambdavariables") {
      if (n != 1) return CountError(e.text, n, 1, 1);
      DSP_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
      if (!v.is_string()) return FunctionError("lambdaVariables", "expects the name of a lambda's parameter");
      for (auto it = lambda_vars_.rbegin(); it != lambda_vars_.rend(); ++it) {
        if (EqualsIgnoreCase(it->first, v.get<std::string>())) return it->second;
      }
      return FunctionError("lambdaVariables", "was given '" + v.get<std::string>() + "', which is no parameter of an enclosing lambda");
    }
    if (IsLambdaFunction(name)) return CallLambdaFunction(e, name);
    if (name == "length" && n == 1) {  // of a variable: without copying it
      Value holder;
      DSP_ASSIGN_OR_RETURN(const Value* v, EvalRef(*e.args[0], &holder));
      return internal::LengthOf(name, *v);
    }
    if (const internal::Builtin* b = internal::FindBuiltin(name)) {
      if (static_cast<int>(n) < b->min_args || (b->max_args >= 0 && static_cast<int>(n) > b->max_args)) {
        return CountError(e.text, n, b->min_args, b->max_args);
      }
      DSP_ASSIGN_OR_RETURN(Args args, EvalArgs(e));
      return b->fn(name, args);
    }
    DSP_ASSIGN_OR_RETURN(Args args, EvalArgs(e));
    Result<Value> r = scope_.Call("", name, args);
    if (!r.ok() && r.status().code() == StatusCode::kNotFound && r.status().message() == name) {
      return InvalidArgument("The template function '" + e.text + "' is not valid. Please see https://aka.ms/arm-functions for usage details.");
    }
    return r;
  }

  // A lambda: lambda('a'[, 'b'], body). Its parameter names are literal.
  struct Lambda {
    std::vector<std::string> params;
    const Expr* body = nullptr;
  };

  Result<Lambda> LambdaOf(const std::string& fn, const Expr& e, size_t params) {
    if (e.kind != Expr::Kind::kCall || !e.space.empty() || ToLowerAscii(e.text) != "lambda") {
      return FunctionError(fn, "expects a lambda(...) as this argument");
    }
    if (e.args.size() != params + 1) {
      return FunctionError(fn, "expects a lambda of " + std::to_string(params) + " parameter" + (params == 1 ? "" : "s"));
    }
    Lambda l;
    for (size_t i = 0; i < params; ++i) {
      if (e.args[i]->kind != Expr::Kind::kString) return FunctionError("lambda", "expects its parameter names as literal strings");
      l.params.push_back(e.args[i]->text);
    }
    l.body = e.args.back().get();
    return l;
  }

  Result<Value> Apply(const Lambda& l, std::vector<Value> values) {
    const size_t depth = lambda_vars_.size();
    for (size_t i = 0; i < l.params.size(); ++i) lambda_vars_.emplace_back(l.params[i], std::move(values[i]));
    Result<Value> r = Eval(*l.body);
    lambda_vars_.resize(depth);
    return r;
  }

  Result<Value> CallLambdaFunction(const Expr& e, const std::string& name) {
    const size_t n = e.args.size();
    const bool reduce = name == "reduce", to_object = name == "toobject";
    const size_t min = reduce ? 3 : 2, max = reduce ? 3 : to_object ? 3 : 2;
    if (n < min || n > max) return CountError(e.text, n, static_cast<int>(min), static_cast<int>(max));
    DSP_ASSIGN_OR_RETURN(Value input, Eval(*e.args[0]));
    if (name == "mapvalues") {
      if (!input.is_object()) return FunctionError(e.text, "expects an Object as its first argument; it is " + TypeName(input));
      DSP_ASSIGN_OR_RETURN(Lambda l, LambdaOf(e.text, *e.args[1], 1));
      Value out = Value::object();
      for (auto& [k, v] : input.items()) {
        DSP_ASSIGN_OR_RETURN(out[k], Apply(l, {v}));
      }
      return out;
    }
    if (!input.is_array()) return FunctionError(e.text, "expects an Array as its first argument; it is " + TypeName(input));
    if (name == "filter" || name == "map" || name == "groupby") {
      DSP_ASSIGN_OR_RETURN(Lambda l, LambdaOf(e.text, *e.args[1], 1));
      Value out = name == "groupby" ? Value::object() : Value::array();
      for (Value& x : input) {
        DSP_ASSIGN_OR_RETURN(Value r, Apply(l, {x}));
        if (name == "map") {
          out.push_back(std::move(r));
        } else if (name == "filter") {
          if (!r.is_boolean()) return FunctionError(e.text, "expects its lambda to give a Bool; it gave " + TypeName(r));
          if (r.get<bool>()) out.push_back(std::move(x));
        } else {
          if (!r.is_string()) return FunctionError(e.text, "expects its lambda to give a String key; it gave " + TypeName(r));
          out[r.get<std::string>()].push_back(std::move(x));
        }
      }
      return out;
    }
    if (reduce) {
      DSP_ASSIGN_OR_RETURN(Value acc, Eval(*e.args[1]));
      DSP_ASSIGN_OR_RETURN(Lambda l, LambdaOf(e.text, *e.args[2], 2));
      for (Value& x : input) {
        DSP_ASSIGN_OR_RETURN(acc, Apply(l, {std::move(acc), std::move(x)}));
      }
      return acc;
    }
    if (name == "sort") {
      DSP_ASSIGN_OR_RETURN(Lambda l, LambdaOf(e.text, *e.args[1], 2));
      std::vector<Value> items(input.begin(), input.end());
      DSP_RETURN_IF_ERROR(MergeSort(items, 0, items.size(), [&](const Value& a, const Value& b) -> Result<bool> {
        DSP_ASSIGN_OR_RETURN(Value before, Apply(l, {a, b}));
        if (!before.is_boolean()) return FunctionError(e.text, "expects its lambda to give a Bool; it gave " + TypeName(before));
        return before.get<bool>();
      }));
      return Value(items);
    }
    // toObject(array, key lambda[, value lambda])
    DSP_ASSIGN_OR_RETURN(Lambda key, LambdaOf(e.text, *e.args[1], 1));
    std::optional<Lambda> value;
    if (n == 3) {
    DSP_ASSIGN_OR_RETURN(value, LambdaOf(e.text, *e.args[2], 1));
  }
    Value out = Value::object();
    for (Value& x : input) {
      DSP_ASSIGN_OR_RETURN(Value k, Apply(key, {x}));
      if (!k.is_string()) return FunctionError(e.text, "expects its key lambda to give a String; it gave " + TypeName(k));
      if (value) {
        DSP_ASSIGN_OR_RETURN(out[k.get<std::string>()], Apply(*value, {x}));
      } else {
        out[k.get<std::string>()] = x;
      }
    }
    return out;
  }

  // A stable merge sort of items[from, to) whose comparison may fail (the
  // lambda is the user's): any order it gives is safe, even one that is
  // not a strict weak order.
  template <typename Before>
  static Status MergeSort(std::vector<Value>& items, size_t from, size_t to, const Before& before) {
    if (to - from < 2) return Status::Ok();
    const size_t mid = from + (to - from) / 2;
    DSP_RETURN_IF_ERROR(MergeSort(items, from, mid, before));
    DSP_RETURN_IF_ERROR(MergeSort(items, mid, to, before));
    std::vector<Value> merged;
    merged.reserve(to - from);
    size_t i = from, j = mid;
    while (i < mid && j < to) {
      DSP_ASSIGN_OR_RETURN(bool right_first, before(items[j], items[i]));
      merged.push_back(std::move(right_first ? items[j++] : items[i++]));
    }
    while (i < mid) merged.push_back(std::move(items[i++]));
    while (j < to) merged.push_back(std::move(items[j++]));
    std::move(merged.begin(), merged.end(), items.begin() + static_cast<std::ptrdiff_t>(from));
    return Status::Ok();
  }

  Scope& scope_;
  std::vector<std::pair<std::string, Value>> lambda_vars_;
  size_t work_ = 0;
};

}  // namespace

Result<Value> Evaluate(const Expr& e, Scope& scope) { return Evaluator(scope).Eval(e); }

Result<Value> EvaluateString(std::string_view s, Scope& scope) {
  switch (ClassifyString(s)) {
    case StringForm::kLiteral: return Value(std::string(s));
    case StringForm::kEscaped: return Value(std::string(s.substr(1)));
    case StringForm::kExpression: break;
  }
  DSP_ASSIGN_OR_RETURN(auto expr, ParseExpression(s.substr(1, s.size() - 2)));
  return Evaluate(*expr, scope);
}

}  // namespace dspool::arm
