#include "template/template.h"

#include <algorithm>
#include <functional>

#include "template/evaluate.h"
#include "template/expression.h"
#include "template/functions.h"

namespace dspool::arm {

namespace {

constexpr int64_t kMaxCopyCount = 800;
constexpr size_t kMaxResources = 800;
constexpr size_t kMaxParameters = 256;
constexpr size_t kMaxVariables = 512;
constexpr size_t kMaxOutputs = 64;
constexpr size_t kMaxTemplateBytes = 4 << 20;

const std::set<std::string> kTopLevel = {"$schema",   "contentversion", "languageversion", "apiprofile",
                                         "parameters", "variables",      "functions",       "resources",
                                         "outputs",    "definitions",    "metadata"};
const std::set<std::string> kParameterTypes = {"string", "securestring", "int", "bool", "object", "secureobject", "array"};
// Resource members that are the template's, not the resource's body.
const std::set<std::string> kTemplateMembers = {"condition", "copy",     "dependson", "comments",
                                                "resources", "existing", "metadata",  "apiversion"};

std::string StripPeriod(std::string s) {
  while (!s.empty() && (s.back() == '.' || s.back() == ' ')) s.pop_back();
  return s;
}

// The deferred marker: reference() and list*() during preflight, before
// anything is deployed.
constexpr const char* kDeferred = "dspool.deferred-until-deployment";

class DeferredReader : public ResourceReader {
 public:
  Result<Value> Reference(const std::string&, bool) override { return Unavailable(kDeferred); }
  Result<Value> List(const std::string&, const std::string&, const Value&) override { return Unavailable(kDeferred); }
};

bool IsDeferred(const Status& s) { return s.code() == StatusCode::kUnavailable && s.message().find(kDeferred) != std::string::npos; }

std::vector<std::string> SplitSegments(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    if (slash == std::string::npos) slash = s.size();
    if (slash > start) out.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

std::string JoinSegments(const std::vector<std::string>& parts, size_t from = 0) {
  std::string out;
  for (size_t i = from; i < parts.size(); ++i) {
    if (!out.empty()) out += '/';
    out += parts[i];
  }
  return out;
}

// "NS/t1/t2" and "n1/n2" → "NS/t1/n1/t2/n2".
std::string Interleave(const std::vector<std::string>& types, const std::vector<std::string>& names) {
  std::string out = types.empty() ? "" : types[0];
  for (size_t i = 1; i < types.size(); ++i) {
    out += "/" + types[i];
    if (i - 1 < names.size()) out += "/" + names[i - 1];
  }
  return out;
}

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string OutputTypeName(const std::string& lower) {
  static const std::map<std::string, std::string> kNames = {
      {"string", "String"}, {"securestring", "SecureString"}, {"int", "Int"},       {"bool", "Bool"},
      {"object", "Object"}, {"secureobject", "SecureObject"}, {"array", "Array"}};
  auto it = kNames.find(lower);
  return it == kNames.end() ? lower : it->second;
}

bool MatchesType(const std::string& lower_type, const Value& v) {
  if (lower_type == "string" || lower_type == "securestring") return v.is_string();
  if (lower_type == "int") return IsInteger(v);
  if (lower_type == "bool") return v.is_boolean();
  if (lower_type == "object" || lower_type == "secureobject") return v.is_object();
  if (lower_type == "array") return v.is_array();
  return true;
}

std::string JTokenName(const std::string& lower_type) {
  if (lower_type == "int") return "Integer";
  if (lower_type == "bool") return "Boolean";
  if (lower_type == "object" || lower_type == "secureobject") return "Object";
  if (lower_type == "array") return "Array";
  return "String";
}

std::string JTokenOf(const Value& v) {
  std::string t = TypeName(v);
  if (t == "Int") return "Integer";
  if (t == "Bool") return "Boolean";
  return t;
}

}  // namespace

Value ArmError::ToJson() const {
  Value out = Value::object();
  out["code"] = code;
  out["message"] = message;
  if (!target.empty()) out["target"] = target;
  if (!details.empty()) {
    out["details"] = Value::array();
    for (const ArmError& d : details) out["details"].push_back(d.ToJson());
  }
  if (at.known() || !path.empty()) {
    out["additionalInfo"] = Value::array(
        {Value{{"type", "TemplateViolation"},
               {"info", Value{{"lineNumber", at.line}, {"linePosition", at.column}, {"path", path}}}}});
  }
  return out;
}

std::optional<ResourceIdParts> ParseResourceId(const std::string& id) {
  std::vector<std::string> s = SplitSegments(id);
  ResourceIdParts parts;
  size_t i = 0;
  if (i + 1 < s.size() && EqualsIgnoreCase(s[i], "subscriptions")) {
    parts.subscription = s[i + 1];
    i += 2;
  }
  if (i + 1 < s.size() && EqualsIgnoreCase(s[i], "resourceGroups")) {
    parts.resource_group = s[i + 1];
    i += 2;
  }
  if (i >= s.size() || !EqualsIgnoreCase(s[i], "providers") || id.empty() || id[0] != '/') return std::nullopt;
  ++i;
  // NS/t1/n1/t2/n2...: a namespace, then type and name pairs.
  if (s.size() - i < 3 || (s.size() - i) % 2 == 0) return std::nullopt;
  std::vector<std::string> types{s[i]}, names;
  for (size_t k = i + 1; k + 1 < s.size(); k += 2) {
    types.push_back(s[k]);
    names.push_back(s[k + 1]);
  }
  parts.type = JoinSegments(types);
  parts.name = JoinSegments(names);
  return parts;
}

std::string ResourceIdOf(const DeploymentContext& ctx, const std::string& type, const std::string& name) {
  return "/subscriptions/" + ctx.subscription_id + "/resourceGroups/" + ctx.resource_group + "/providers/" +
         Interleave(SplitSegments(type), SplitSegments(name));
}

// ---- the loaded template ----

class Template::Impl {
 public:
  enum class Place { kParameterDefault, kVariable, kResource, kProperties, kOutput, kUserFunction };

  struct Parameter {
    std::string name;
    std::string type;  // lower case
    const Value* decl = nullptr;
    std::string path;
    std::optional<Value> value;
    bool evaluating = false;
    bool checked = false;  // against its type and constraints
  };
  struct Variable {
    std::string name;
    const Value* decl = nullptr;  // the value, or the copy loop's spec
    bool copy = false;
    std::string path;
    std::optional<Value> value;
    bool evaluating = false;
  };
  struct UserFunction {
    std::string name;  // "ns.f"
    const Value* decl = nullptr;
    std::string path;
  };
  // Where a resource came from: its declaration.
  struct Source {
    const Value* decl = nullptr;
  };

  // What an expression sees: the place (what is allowed) and the loops.
  class TemplateScope : public Scope {
   public:
    TemplateScope(Impl& t, Place place) : t_(t), place_(place) {}
    Result<Value> Call(const std::string& space, const std::string& name, std::vector<Value>& args) override {
      return t_.CallFunction(*this, space, name, args);
    }
    const Value* PeekVariable(const std::string& name) override { return t_.PeekVariable(*this, name); }
    Impl& t_;
    Place place_;
    ResourceReader* reader_ = nullptr;
    std::optional<int64_t> bare_index_;                       // the resource's or the output's loop
    std::vector<std::pair<std::string, int64_t>> loops_;      // named loops, innermost last
    const std::map<std::string, Value>* function_args_ = nullptr;  // in a user-defined function
  };

  explicit Impl(TemplateLoad load) : load_(std::move(load)), ctx_(load_.context) {}

  // ---- errors ----

  Status Fail(const std::string& kind, const std::string& name, const std::string& path, const std::string& reason,
              std::string code = "InvalidTemplate") {
    SourcePosition at = doc_.PositionOf(path);
    std::string where = "The template " + kind + (name.empty() ? "" : " '" + name + "'");
    if (at.known()) where += " at line '" + std::to_string(at.line) + "' and column '" + std::to_string(at.column) + "'";
    std::string message = "Deployment template validation failed: '" + where + " is not valid: " + StripPeriod(reason) +
                          ". Please see https://aka.ms/arm-functions for usage details.'.";
    if (error_ && error_->empty()) {
      error_->code = code;
      error_->message = message;
      error_->path = path;
      error_->at = at;
    }
    return InvalidArgument(message);
  }

  Status FailPlain(const std::string& code, const std::string& message) {
    if (error_ && error_->empty()) {
      error_->code = code;
      error_->message = message;
    }
    return InvalidArgument(message);
  }

  // ---- loading ----

  Status Load() {
    if (load_.text.size() > kMaxTemplateBytes) {
      return FailPlain("InvalidTemplate", "The template is " + std::to_string(load_.text.size()) +
                                              " bytes long; at most 4 MB are allowed.");
    }
    auto parsed = ParseJsonDocument(load_.text);
    if (!parsed.ok()) {
      return FailPlain("InvalidTemplate", "Deployment template parse failed: '" + load_.source + ": " +
                                              parsed.status().message() + "'.");
    }
    doc_ = std::move(*parsed);
    const Value& root = doc_.value;
    if (!root.is_object()) return Fail("", "", "", "a template is a JSON object");
    for (const auto& [k, v] : root.items()) {
      if (!kTopLevel.count(ToLowerAscii(k))) {
        return Fail("", "", MemberPath("", k), "the member '" + k + "' is not part of a template (allowed: $schema, contentVersion, languageVersion, parameters, variables, functions, resources, outputs, apiProfile, definitions, metadata)");
      }
    }
    const Value* schema = FindMember(root, "$schema");
    if (schema == nullptr || !schema->is_string()) return Fail("", "", "", "the template has no '$schema'");
    const std::string schema_text = ToLowerAscii(schema->get<std::string>());
    if (schema_text.find("deploymenttemplate.json") == std::string::npos) {
      return Fail("", "", "$schema", "'" + schema->get<std::string>() + "' is not a deployment template schema");
    }
    if (schema_text.find("subscriptiondeploymenttemplate") != std::string::npos ||
        schema_text.find("managementgroupdeploymenttemplate") != std::string::npos ||
        schema_text.find("tenantdeploymenttemplate") != std::string::npos) {
      return Fail("", "", "$schema", "this template is for another scope than a resource group; dspool deploys into resource groups");
    }
    const Value* content_version = FindMember(root, "contentVersion");
    if (content_version == nullptr || !content_version->is_string()) {
      return Fail("", "", "", "the template has no 'contentVersion' (for example \"1.0.0.0\")");
    }
    if (const Value* lv = FindMember(root, "languageVersion")) {
      if (!lv->is_string() || (lv->get<std::string>() != "2.0" && lv->get<std::string>() != "1.0")) {
        return Fail("", "", "languageVersion", "languageVersion is \"1.0\" or \"2.0\"");
      }
      v2_ = lv->get<std::string>() == "2.0";
    }
    DSP_RETURN_IF_ERROR(LoadParameters());
    DSP_RETURN_IF_ERROR(LoadVariables());
    DSP_RETURN_IF_ERROR(LoadFunctions());
    DSP_RETURN_IF_ERROR(BindParameters());
    // Every variable, evaluated now: an error in one is a preflight error.
    for (size_t i = 0; i < variables_.size(); ++i) DSP_RETURN_IF_ERROR(VariableValue(i).status());
    DSP_RETURN_IF_ERROR(LoadResources());
    DSP_RETURN_IF_ERROR(ResolveDependencies());
    DSP_RETURN_IF_ERROR(Preflight());
    return Status::Ok();
  }

  Status LoadParameters() {
    const Value* params = FindMember(doc_.value, "parameters");
    if (params == nullptr) return Status::Ok();
    if (!params->is_object()) return Fail("", "", "parameters", "'parameters' is an object of parameter declarations");
    if (params->size() > kMaxParameters) return Fail("", "", "parameters", "a template has at most 256 parameters");
    for (const auto& [name, decl] : params->items()) {
      const std::string path = MemberPath("parameters", name);
      for (const Parameter& p : parameters_) {
        if (EqualsIgnoreCase(p.name, name)) return Fail("parameter", name, path, "the name differs from '" + p.name + "' only by case");
      }
      if (!decl.is_object()) return Fail("parameter", name, path, "a parameter is declared by an object with a 'type'");
      const Value* type = FindMember(decl, "type");
      if (type == nullptr || !type->is_string() || !kParameterTypes.count(ToLowerAscii(type->get<std::string>()))) {
        return Fail("parameter", name, MemberPath(path, "type"),
                    "the type must be one of string, securestring, int, bool, object, secureObject, array");
      }
      for (const char* bound : {"minValue", "maxValue", "minLength", "maxLength"}) {
        if (const Value* b = FindMember(decl, bound); b && !IsInteger(*b)) {
          return Fail("parameter", name, MemberPath(path, bound), std::string(bound) + " must be an integer");
        }
      }
      if (const Value* allowed = FindMember(decl, "allowedValues"); allowed && !allowed->is_array()) {
        return Fail("parameter", name, MemberPath(path, "allowedValues"), "allowedValues must be an array");
      }
      parameters_.push_back(Parameter{name, ToLowerAscii(type->get<std::string>()), &decl, path, std::nullopt, false, false});
    }
    return Status::Ok();
  }

  Status LoadVariables() {
    const Value* vars = FindMember(doc_.value, "variables");
    if (vars == nullptr) return Status::Ok();
    if (!vars->is_object()) return Fail("", "", "variables", "'variables' is an object");
    for (const auto& [name, decl] : vars->items()) {
      const std::string path = MemberPath("variables", name);
      if (EqualsIgnoreCase(name, "copy")) {
        if (!decl.is_array()) return Fail("variable", "copy", path, "a variable copy is an array of {name, count, input}");
        for (size_t i = 0; i < decl.size(); ++i) {
          const Value* loop_name = FindMember(decl[i], "name");
          if (loop_name == nullptr || !loop_name->is_string()) {
            return Fail("variable", "copy", ElementPath(path, i), "a variable copy needs a 'name'");
          }
          DSP_RETURN_IF_ERROR(AddVariable(loop_name->get<std::string>(), &decl[i], true, ElementPath(path, i)));
        }
        continue;
      }
      DSP_RETURN_IF_ERROR(AddVariable(name, &decl, false, path));
    }
    if (variables_.size() > kMaxVariables) return Fail("", "", "variables", "a template has at most 512 variables");
    return Status::Ok();
  }

  Status AddVariable(const std::string& name, const Value* decl, bool copy, const std::string& path) {
    for (const Variable& v : variables_) {
      if (EqualsIgnoreCase(v.name, name)) return Fail("variable", name, path, "the variable '" + v.name + "' is defined twice");
    }
    variables_.push_back(Variable{name, decl, copy, path, std::nullopt, false});
    return Status::Ok();
  }

  Status LoadFunctions() {
    const Value* fns = FindMember(doc_.value, "functions");
    if (fns == nullptr) return Status::Ok();
    if (!fns->is_array()) return Fail("", "", "functions", "'functions' is an array of {namespace, members}");
    for (size_t i = 0; i < fns->size(); ++i) {
      const std::string path = ElementPath("functions", i);
      const Value* space = FindMember((*fns)[i], "namespace");
      const Value* members = FindMember((*fns)[i], "members");
      if (space == nullptr || !space->is_string() || members == nullptr || !members->is_object()) {
        return Fail("function", "", path, "a function namespace has a 'namespace' and 'members'");
      }
      for (const auto& [fname, decl] : members->items()) {
        const std::string fpath = MemberPath(MemberPath(path, "members"), fname);
        const Value* output = FindMember(decl, "output");
        if (output == nullptr || !output->is_object() || FindMember(*output, "value") == nullptr) {
          return Fail("function", space->get<std::string>() + "." + fname, fpath, "a function needs an output with a value");
        }
        std::string key = ToLowerAscii(space->get<std::string>()) + "." + ToLowerAscii(fname);
        functions_[key] = UserFunction{space->get<std::string>() + "." + fname, &decl, fpath};
      }
    }
    return Status::Ok();
  }

  // Given values first, then defaults (which may use other parameters),
  // then the checks; every missing one is reported.
  Status BindParameters() {
    for (const auto& [name, entry] : load_.parameters.items()) {
      Parameter* p = FindParameter(name);
      if (p == nullptr) {
        std::string allowed;
        for (const Parameter& q : parameters_) allowed += (allowed.empty() ? "" : ", ") + q.name;
        return FailPlain("InvalidTemplate", "Deployment template validation failed: 'The template parameter '" + name +
                                                "' is not declared in the template. Parameters it declares: " +
                                                (allowed.empty() ? "none" : allowed) + ".'.");
      }
      if (!entry.is_object() || !entry.contains("value")) {
        return FailPlain("InvalidTemplate", "The parameter '" + name + "' must be given as {\"value\": ...}.");
      }
      if (!entry["value"].is_null()) p->value = entry["value"];
    }
    std::vector<std::string> missing;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      Parameter& p = parameters_[i];
      if (!p.value && FindMember(*p.decl, "defaultValue") == nullptr) missing.push_back(p.name);
    }
    if (!missing.empty()) {
      ArmError e;
      e.code = "InvalidTemplate";
      std::string names;
      for (const std::string& m : missing) {
        names += (names.empty() ? "'" : ", '") + m + "'";
        e.details.push_back(ArmError{"InvalidTemplate",
                                     "The value of deployment parameter '" + m +
                                         "' is null. Please specify the value or use the parameter reference.",
                                     "", "", {}, {}});
      }
      e.message = "Deployment template validation failed: 'The value of deployment parameter" +
                  std::string(missing.size() > 1 ? "s " : " ") + names +
                  (missing.size() > 1 ? " are" : " is") + " null. Please specify the value or use the parameter reference. See https://aka.ms/resource-manager-parameter-files for details.'.";
      if (error_ && error_->empty()) *error_ = e;
      return InvalidArgument(e.message);
    }
    for (size_t i = 0; i < parameters_.size(); ++i) DSP_RETURN_IF_ERROR(ParameterValue(i).status());
    return Status::Ok();
  }

  Parameter* FindParameter(const std::string& name) {
    for (Parameter& p : parameters_) {
      if (EqualsIgnoreCase(p.name, name)) return &p;
    }
    return nullptr;
  }

  // The parameter's value, given or its default (evaluated at the first
  // use, so defaults may use each other), checked against its declaration
  // once.
  Result<Value> ParameterValue(size_t i) {
    Parameter& p = parameters_[i];
    const bool from_default = !p.value;
    if (from_default) {
      if (p.evaluating) return Fail("parameter", p.name, p.path, "its default value depends on itself (a cycle of parameters)");
      p.evaluating = true;
      const std::string path = MemberPath(p.path, "defaultValue");
      TemplateScope scope(*this, Place::kParameterDefault);
      Result<Value> v = EvaluateValue(*FindMember(*p.decl, "defaultValue"), path, scope, "parameter", p.name);
      p.evaluating = false;
      if (!v.ok()) return v.status();
      p.value = std::move(*v);
    }
    if (!p.checked) {
      p.checked = true;
      DSP_RETURN_IF_ERROR(CheckParameter(p, from_default));
    }
    return *p.value;
  }

  Status CheckParameter(const Parameter& p, bool from_default) {
    const Value& v = *p.value;
    if (!MatchesType(p.type, v)) {
      return Fail("parameter", p.name, p.path,
                  std::string(from_default ? "its default value" : "the value given") + " is " + JTokenOf(v) +
                      ": Template parameter JToken type is not valid. Expected '" + JTokenName(p.type) + "'. Actual '" +
                      JTokenOf(v) + "'");
    }
    std::string shown = p.type == "securestring" || p.type == "secureobject" ? "" : Quote(v) + " ";
    if (const Value* allowed = FindMember(*p.decl, "allowedValues")) {
      auto allowed_one = [&](const Value& x) {
        return std::any_of(allowed->begin(), allowed->end(), [&](const Value& a) { return DeepEquals(a, x); });
      };
      bool ok = v.is_array() && !std::any_of(allowed->begin(), allowed->end(), [](const Value& a) { return a.is_array(); })
                    ? std::all_of(v.begin(), v.end(), allowed_one)
                    : allowed_one(v);
      if (!ok) {
        std::string list;
        for (const Value& a : *allowed) list += (list.empty() ? "" : ",") + ToText(a);
        return Fail("parameter", p.name, p.path,
                    "The provided value " + shown + "for the template parameter '" + p.name +
                        "' is not valid. The parameter value is not part of the allowed value(s): '" + list + "'");
      }
    }
    if (IsInteger(v)) {
      const int64_t n = AsInteger(v);
      if (const Value* min = FindMember(*p.decl, "minValue"); min && n < AsInteger(*min)) {
        return Fail("parameter", p.name, p.path, "The provided value " + shown + "for the template parameter '" + p.name +
                                                     "' is not valid. The value must be at least " + ToText(*min));
      }
      if (const Value* max = FindMember(*p.decl, "maxValue"); max && n > AsInteger(*max)) {
        return Fail("parameter", p.name, p.path, "The provided value " + shown + "for the template parameter '" + p.name +
                                                     "' is not valid. The value must be at most " + ToText(*max));
      }
    }
    if (v.is_string() || v.is_array()) {
      const int64_t length = v.is_string() ? static_cast<int64_t>(v.get_ref<const std::string&>().size()) : static_cast<int64_t>(v.size());
      if (const Value* min = FindMember(*p.decl, "minLength"); min && length < AsInteger(*min)) {
        return Fail("parameter", p.name, p.path, "The provided value " + shown + "for the template parameter '" + p.name +
                                                     "' is not valid. Length of the value should be greater than or equal to '" + ToText(*min) + "'");
      }
      if (const Value* max = FindMember(*p.decl, "maxLength"); max && length > AsInteger(*max)) {
        return Fail("parameter", p.name, p.path, "The provided value " + shown + "for the template parameter '" + p.name +
                                                     "' is not valid. Length of the value should be less than or equal to '" + ToText(*max) + "'");
      }
    }
    return Status::Ok();
  }

  // variables(name)'s value where it is kept, evaluated first if need be;
  // nullptr where variables() would fail (the call then says why).
  const Value* PeekVariable(const TemplateScope& scope, const std::string& name) {
    if (scope.place_ == Place::kUserFunction) return nullptr;
    for (size_t i = 0; i < variables_.size(); ++i) {
      if (!EqualsIgnoreCase(variables_[i].name, name)) continue;
      if (!variables_[i].value && !VariableValue(i).ok()) return nullptr;
      return &*variables_[i].value;
    }
    return nullptr;
  }

  Result<Value> VariableValue(size_t i) {
    Variable& v = variables_[i];
    if (v.value) return *v.value;
    if (v.evaluating) return Fail("variable", v.name, v.path, "its value depends on itself (a cycle of variables)");
    v.evaluating = true;
    TemplateScope scope(*this, Place::kVariable);
    Result<Value> r = v.copy ? EvaluateCopyLoop(*v.decl, v.path, scope, "variable", v.name)
                             : EvaluateValue(*v.decl, v.path, scope, "variable", v.name);
    v.evaluating = false;
    if (!r.ok()) return r.status();
    v.value = std::move(*r);
    return *v.value;
  }

  // ---- evaluating JSON values ----

  // A string, array or object from the template, with every expression in
  // it evaluated; property copy loops ("copy": [{name, count, input}])
  // inside objects are expanded. An expression that gives null removes
  // the member it is the value of.
  Result<Value> EvaluateValue(const Value& raw, const std::string& path, TemplateScope& scope, const std::string& kind,
                              const std::string& name) {
    if (raw.is_string()) {
      Result<Value> r = EvaluateString(raw.get_ref<const std::string&>(), scope);
      if (!r.ok()) {
        if (IsDeferred(r.status())) return r.status();
        if (error_ && !error_->empty()) return r.status();  // already located (a variable's own error)
        return Fail(kind, name, path, r.status().message());
      }
      return r;
    }
    if (raw.is_array()) {
      Value out = Value::array();
      for (size_t i = 0; i < raw.size(); ++i) {
        DSP_ASSIGN_OR_RETURN(Value e, EvaluateValue(raw[i], ElementPath(path, i), scope, kind, name));
        out.push_back(std::move(e));
      }
      return out;
    }
    if (raw.is_object()) {
      Value out = Value::object();
      for (const auto& [k, member] : raw.items()) {
        const std::string mpath = MemberPath(path, k);
        if (k == "copy" && member.is_array() && scope.place_ != Place::kResource) {
          for (size_t i = 0; i < member.size(); ++i) {
            const Value* loop_name = FindMember(member[i], "name");
            if (loop_name == nullptr || !loop_name->is_string()) {
              return Fail(kind, name, ElementPath(mpath, i), "a property copy needs a 'name'");
            }
            DSP_ASSIGN_OR_RETURN(Value array, EvaluateCopyLoop(member[i], ElementPath(mpath, i), scope, kind, name));
            out[loop_name->get<std::string>()] = std::move(array);
          }
          continue;
        }
        DSP_ASSIGN_OR_RETURN(Value e, EvaluateValue(member, mpath, scope, kind, name));
        if (e.is_null() && member.is_string() && ClassifyString(member.get_ref<const std::string&>()) == StringForm::kExpression) {
          continue;
        }
        out[k] = std::move(e);
      }
      return out;
    }
    return raw;
  }

  Result<int64_t> CopyCount(const Value& spec, const std::string& path, TemplateScope& scope, const std::string& kind,
                            const std::string& name) {
    const Value* count = FindMember(spec, "count");
    if (count == nullptr) return Fail(kind, name, path, "a copy loop needs a 'count'");
    DSP_ASSIGN_OR_RETURN(Value n, EvaluateValue(*count, MemberPath(path, "count"), scope, kind, name));
    if (!IsInteger(n)) return Fail(kind, name, MemberPath(path, "count"), "the copy count must be an integer; it is " + TypeName(n));
    if (AsInteger(n) < 0 || AsInteger(n) > kMaxCopyCount) {
      return Fail(kind, name, MemberPath(path, "count"), "the copy count must be from 0 to 800; it is " + std::to_string(AsInteger(n)));
    }
    return AsInteger(n);
  }

  // {name, count, input}: an array of `count` inputs, copyIndex('name') = i.
  Result<Value> EvaluateCopyLoop(const Value& spec, const std::string& path, TemplateScope& scope, const std::string& kind,
                                 const std::string& name) {
    DSP_ASSIGN_OR_RETURN(int64_t count, CopyCount(spec, path, scope, kind, name));
    const Value* input = FindMember(spec, "input");
    if (input == nullptr) return Fail(kind, name, path, "a copy loop needs an 'input'");
    const std::string loop = FindMember(spec, "name")->get<std::string>();
    Value out = Value::array();
    for (int64_t i = 0; i < count; ++i) {
      scope.loops_.emplace_back(loop, i);
      Result<Value> v = EvaluateValue(*input, MemberPath(path, "input"), scope, kind, name);
      scope.loops_.pop_back();
      if (!v.ok()) return v.status();
      out.push_back(std::move(*v));
    }
    return out;
  }

  // ---- functions that depend on the place ----

  Status NotHere(const std::string& name) {
    return InvalidArgument("The template function '" + name + "' is not expected at this location.");
  }

  Result<Value> CallFunction(TemplateScope& scope, const std::string& space, const std::string& name, std::vector<Value>& args) {
    if (!space.empty()) return CallUserFunction(scope, space, name, args);
    const Place place = scope.place_;
    auto want = [&](size_t min, size_t max) -> Status {
      if (args.size() < min || args.size() > max) {
        return internal::FunctionError(name, "expects " + (min == max ? std::to_string(min) : "from " + std::to_string(min) + " to " + std::to_string(max)) +
                                                 " arguments; it was given " + std::to_string(args.size()));
      }
      return Status::Ok();
    };
    if (name == "parameters") {
      DSP_RETURN_IF_ERROR(want(1, 1));
      DSP_ASSIGN_OR_RETURN(std::string p, internal::ArgString(name, args, 0));
      if (scope.function_args_) {
        for (const auto& [k, v] : *scope.function_args_) {
          if (EqualsIgnoreCase(k, p)) return v;
        }
        return InvalidArgument("The template function has no parameter '" + p + "'");
      }
      for (size_t i = 0; i < parameters_.size(); ++i) {
        if (EqualsIgnoreCase(parameters_[i].name, p)) return ParameterValue(i);
      }
      return InvalidArgument("The template parameter '" + p + "' is not found. Please see https://aka.ms/arm-syntax-parameters for usage details");
    }
    if (name == "variables") {
      DSP_RETURN_IF_ERROR(want(1, 1));
      if (place == Place::kUserFunction) return NotHere(name);
      DSP_ASSIGN_OR_RETURN(std::string v, internal::ArgString(name, args, 0));
      for (size_t i = 0; i < variables_.size(); ++i) {
        if (EqualsIgnoreCase(variables_[i].name, v)) return VariableValue(i);
      }
      return InvalidArgument("The template variable '" + v + "' is not found. Please see https://aka.ms/arm-syntax-variables for usage details");
    }
    if (name == "copyindex") {
      DSP_RETURN_IF_ERROR(want(0, 2));
      std::optional<std::string> loop;
      int64_t offset = 0;
      if (!args.empty() && args[0].is_string()) {
        loop = args[0].get<std::string>();
        if (args.size() == 2) {
    DSP_ASSIGN_OR_RETURN(offset, internal::ArgInt(name, args, 1));
  }
      } else if (!args.empty()) {
        if (args.size() == 2) return internal::FunctionError("copyIndex", "takes a loop name, then an offset");
        DSP_ASSIGN_OR_RETURN(offset, internal::ArgInt(name, args, 0));
      }
      if (loop) {
        for (auto it = scope.loops_.rbegin(); it != scope.loops_.rend(); ++it) {
          if (EqualsIgnoreCase(it->first, *loop)) return Value(it->second + offset);
        }
        return InvalidArgument("The template function 'copyIndex' is not expected at this location: there is no copy loop named '" + *loop + "' here.");
      }
      if (!scope.bare_index_) {
        return InvalidArgument("The template function 'copyIndex' is not expected at this location: it is outside a copy loop (a property or variable loop needs its name: copyIndex('name')).");
      }
      return Value(*scope.bare_index_ + offset);
    }
    if (name == "utcnow" || name == "newguid") {
      if (place != Place::kParameterDefault) {
        return InvalidArgument("The template function '" + name + "' is not expected at this location. It can only be used in the default value of a parameter.");
      }
      if (name == "newguid") {
        DSP_RETURN_IF_ERROR(want(0, 0));
        if (!ctx_.new_guid) return Internal("newGuid(): no source of GUIDs");
        return Value(ctx_.new_guid());
      }
      DSP_RETURN_IF_ERROR(want(0, 1));
      std::string format = "yyyyMMddTHHmmssZ";
      if (!args.empty()) {
    DSP_ASSIGN_OR_RETURN(format, internal::ArgString(name, args, 0));
  }
      DSP_ASSIGN_OR_RETURN(std::string text, internal::FormatUtc(ctx_.now_unix_seconds, 0, format));
      return Value(text);
    }
    if (place == Place::kUserFunction) {
      // A user-defined function sees only its parameters and pure functions.
      return NotFound(name);
    }
    if (name == "deployment") {
      DSP_RETURN_IF_ERROR(want(0, 0));
      return DeploymentObject();
    }
    if (name == "environment") {
      DSP_RETURN_IF_ERROR(want(0, 0));
      return ctx_.environment;
    }
    if (name == "resourcegroup") {
      DSP_RETURN_IF_ERROR(want(0, 0));
      return Value{{"id", "/subscriptions/" + ctx_.subscription_id + "/resourceGroups/" + ctx_.resource_group},
                   {"name", ctx_.resource_group},
                   {"type", "Microsoft.Resources/resourceGroups"},
                   {"location", ctx_.location},
                   {"tags", ctx_.resource_group_tags},
                   {"properties", Value{{"provisioningState", "Succeeded"}}}};
    }
    if (name == "subscription") {
      DSP_RETURN_IF_ERROR(want(0, 0));
      return Value{{"id", "/subscriptions/" + ctx_.subscription_id},
                   {"subscriptionId", ctx_.subscription_id},
                   {"tenantId", ctx_.tenant_id},
                   {"displayName", ctx_.subscription_name}};
    }
    if (name == "tenant") {
      DSP_RETURN_IF_ERROR(want(0, 0));
      return Value{{"countryCode", ""}, {"displayName", ctx_.subscription_name}, {"id", "/tenants/" + ctx_.tenant_id},
                   {"tenantId", ctx_.tenant_id}};
    }
    if (name == "managementgroup" || name == "managementgroupresourceid") {
      return InvalidArgument("The template function '" + name + "' is not expected at this location: a resource group deployment has no management group.");
    }
    if (name == "resourceid" || name == "subscriptionresourceid" || name == "tenantresourceid" || name == "extensionresourceid") {
      return ResourceIdFunction(name, args);
    }
    if (name == "pickzones") {
      DSP_RETURN_IF_ERROR(want(3, 5));
      return Value::array({"1"});
    }
    if (name == "reference" || name == "references" || name.rfind("list", 0) == 0) {
      if (place != Place::kProperties && place != Place::kOutput) {
        return InvalidArgument("The template function '" + name + "' is not expected at this location. It can only be used in a resource's properties and in outputs.");
      }
      if (scope.reader_ == nullptr) return Internal(name + ": no resource reader");
      if (name == "reference") {
        DSP_RETURN_IF_ERROR(want(1, 3));
        DSP_ASSIGN_OR_RETURN(std::string target, internal::ArgString(name, args, 0));
        bool full = args.size() == 3 && args[2].is_string() && EqualsIgnoreCase(args[2].get<std::string>(), "Full");
        DSP_ASSIGN_OR_RETURN(std::string id, IdOfTarget(target));
        return scope.reader_->Reference(id, full);
      }
      if (name == "references") {
        DSP_RETURN_IF_ERROR(want(1, 2));
        DSP_ASSIGN_OR_RETURN(std::string loop, internal::ArgString(name, args, 0));
        Value out = Value::array();
        bool any = false;
        for (const ExpandedResource& r : resources_) {
          if (!EqualsIgnoreCase(r.copy_name, loop) && !EqualsIgnoreCase(r.symbolic_name, loop)) continue;
          any = true;
          if (!r.condition) continue;
          DSP_ASSIGN_OR_RETURN(Value v, scope.reader_->Reference(r.id, args.size() == 2));
          out.push_back(std::move(v));
        }
        if (!any) return InvalidArgument("The template function 'references' names '" + loop + "', which is no resource loop of the template");
        return out;
      }
      DSP_RETURN_IF_ERROR(want(2, 3));
      DSP_ASSIGN_OR_RETURN(std::string target, internal::ArgString(name, args, 0));
      DSP_ASSIGN_OR_RETURN(std::string id, IdOfTarget(target));
      return scope.reader_->List(name, id, args.size() == 3 ? args[2] : Value(nullptr));
    }
    return NotFound(name);
  }

  // A reference() target: a resource ID as it is; else a resource of the
  // template by name (or symbolic name).
  Result<std::string> IdOfTarget(const std::string& target) {
    if (!target.empty() && target[0] == '/') {
      if (!ParseResourceId(target)) return InvalidArgument("'" + target + "' is not a resource ID");
      return target;
    }
    const ExpandedResource* found = nullptr;
    for (const ExpandedResource& r : resources_) {
      if (EqualsIgnoreCase(r.symbolic_name, target) || EqualsIgnoreCase(r.name, target)) {
        if (found && found->id != r.id) {
          return InvalidArgument("The resource name '" + target + "' is ambiguous: resources of the types '" + found->type + "' and '" + r.type + "' have it; pass a resourceId()");
        }
        found = &r;
      }
    }
    if (found == nullptr) return InvalidArgument("The resource '" + target + "' is not defined in the template.");
    return found->id;
  }

  Result<Value> ResourceIdFunction(const std::string& name, std::vector<Value>& args) {
    std::vector<std::string> s;
    for (size_t i = 0; i < args.size(); ++i) {
      DSP_ASSIGN_OR_RETURN(std::string a, internal::ArgString(name, args, i));
      s.push_back(std::move(a));
    }
    std::string prefix;
    size_t type_at;
    if (name == "extensionresourceid") {
      if (s.size() < 3) return internal::FunctionError(name, "expects a resource ID, a type and names");
      prefix = s[0];
      while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
      type_at = 1;
    } else {
      auto it = std::find_if(s.begin(), s.end(), [](const std::string& a) { return a.find('/') != std::string::npos; });
      if (it == s.end()) return internal::FunctionError(name, "needs a resource type such as 'Microsoft.Network/virtualNetworks'");
      type_at = static_cast<size_t>(it - s.begin());
      std::string sub = ctx_.subscription_id, group = ctx_.resource_group;
      if (name == "resourceid") {
        if (type_at == 1) group = s[0];
        if (type_at == 2) {
          sub = s[0];
          group = s[1];
        }
        if (type_at > 2) return internal::FunctionError(name, "takes at most a subscription and a resource group before the type");
        prefix = "/subscriptions/" + sub + "/resourceGroups/" + group;
      } else if (name == "subscriptionresourceid") {
        if (type_at == 1) sub = s[0];
        if (type_at > 1) return internal::FunctionError(name, "takes at most a subscription before the type");
        prefix = "/subscriptions/" + sub;
      } else if (type_at > 0) {
        return internal::FunctionError(name, "takes the type first");
      }
    }
    std::vector<std::string> types = SplitSegments(s[type_at]);
    std::vector<std::string> names(s.begin() + static_cast<std::ptrdiff_t>(type_at) + 1, s.end());
    if (types.size() < 2 || names.size() != types.size() - 1) {
      return internal::FunctionError(name, "was given the type '" + s[type_at] + "' with " + std::to_string(names.size()) +
                                               " name segment(s); it takes " + std::to_string(types.size() < 2 ? 1 : types.size() - 1) + " (one per type segment after the namespace)");
    }
    return Value(prefix + "/providers/" + Interleave(types, names));
  }

  Value DeploymentObject() {
    Value props = Value::object();
    if (ctx_.template_uri) props["templateLink"] = Value{{"uri", *ctx_.template_uri}};
    props["template"] = doc_.value;
    props["templateHash"] = TemplateHash();
    // As the deployment record keeps them: secure values left out, so an
    // output of deployment() cannot carry one into the history.
    props["parameters"] = ParametersRecord();
    props["mode"] = ctx_.mode;
    props["provisioningState"] = "Accepted";
    return Value{{"name", ctx_.deployment_name}, {"properties", props}};
  }

  std::string TemplateHash() const { return std::to_string(Fnv1a64(load_.text)); }

  Value ParametersRecord() const {
    Value out = Value::object();
    for (const auto& p : parameters_) {
      Value entry{{"type", OutputTypeName(p.type)}};
      if (p.type != "securestring" && p.type != "secureobject" && p.value) entry["value"] = *p.value;
      out[p.name] = entry;
    }
    return out;
  }

  Result<Value> CallUserFunction(TemplateScope& scope, const std::string& space, const std::string& name, std::vector<Value>& args) {
    if (scope.place_ == Place::kUserFunction) {
      return InvalidArgument("A user-defined function may not call another ('" + space + "." + name + "')");
    }
    auto it = functions_.find(space + "." + name);
    if (it == functions_.end()) return InvalidArgument("The template function '" + space + "." + name + "' is not defined in the template's functions");
    const UserFunction& f = it->second;
    std::map<std::string, Value> bound;
    const Value* params = FindMember(*f.decl, "parameters");
    const size_t expected = params && params->is_array() ? params->size() : 0;
    if (args.size() != expected) {
      return InvalidArgument("The template function '" + f.name + "' expects " + std::to_string(expected) + " arguments; it was given " + std::to_string(args.size()));
    }
    for (size_t i = 0; i < expected; ++i) {
      const Value* pname = FindMember((*params)[i], "name");
      const Value* ptype = FindMember((*params)[i], "type");
      if (pname == nullptr || !pname->is_string()) return InvalidArgument("The template function '" + f.name + "' has a parameter without a name");
      if (ptype && ptype->is_string() && !MatchesType(ToLowerAscii(ptype->get<std::string>()), args[i])) {
        return InvalidArgument("The template function '" + f.name + "' expects its parameter '" + pname->get<std::string>() +
                               "' to be " + OutputTypeName(ToLowerAscii(ptype->get<std::string>())) + "; it is " + TypeName(args[i]));
      }
      bound[pname->get<std::string>()] = std::move(args[i]);
    }
    TemplateScope inner(*this, Place::kUserFunction);
    inner.function_args_ = &bound;
    const Value& output = *FindMember(*f.decl, "output");
    DSP_ASSIGN_OR_RETURN(Value v, EvaluateValue(*FindMember(output, "value"), MemberPath(MemberPath(f.path, "output"), "value"), inner, "function", f.name));
    if (const Value* type = FindMember(output, "type"); type && type->is_string() && !MatchesType(ToLowerAscii(type->get<std::string>()), v)) {
      return InvalidArgument("The template function '" + f.name + "' gives " + TypeName(v) + " where its output is declared " + type->get<std::string>());
    }
    return v;
  }

  // ---- resources ----

  struct Pending {
    const Value* decl;
    std::string path;
    std::string parent_type, parent_name;  // for a nested child
    std::string symbolic;
  };

  Status LoadResources() {
    const Value* list = FindMember(doc_.value, "resources");
    if (list == nullptr) return Fail("", "", "", "the template has no 'resources'");
    std::vector<Pending> pending;
    if (v2_) {
      if (!list->is_object()) return Fail("", "", "resources", "with languageVersion 2.0, 'resources' is an object keyed by symbolic name");
      for (const auto& [symbolic, decl] : list->items()) pending.push_back({&decl, MemberPath("resources", symbolic), "", "", symbolic});
    } else {
      if (!list->is_array()) return Fail("", "", "resources", "'resources' is an array (an object needs languageVersion 2.0)");
      for (size_t i = 0; i < list->size(); ++i) pending.push_back({&(*list)[i], ElementPath("resources", i), "", "", ""});
    }
    for (const Pending& p : pending) DSP_RETURN_IF_ERROR(ExpandResource(p, false));
    if (resources_.size() > kMaxResources) {
      return Fail("", "", "resources", "the template has " + std::to_string(resources_.size()) + " resources after its copy loops; at most 800 are allowed");
    }
    return Status::Ok();
  }

  // type, apiVersion and name: strings (expressions are taken in all
  // three, as real templates write "[variables('apiVersion')]").
  Result<std::string> ResourceString(const Value& decl, const char* member, const std::string& path, TemplateScope& scope,
                                     const std::string& display) {
    const Value* raw = FindMember(decl, member);
    if (raw == nullptr) return Fail("resource", display, path, std::string("the resource has no '") + member + "'");
    DSP_ASSIGN_OR_RETURN(Value v, EvaluateValue(*raw, MemberPath(path, member), scope, "resource", display));
    if (!v.is_string() || v.get<std::string>().empty()) {
      return Fail("resource", display, MemberPath(path, member), std::string("'") + member + "' must be a non-empty string");
    }
    return v.get<std::string>();
  }

  Status ExpandResource(const Pending& p, bool nested) {
    const Value& decl = *p.decl;
    const Value* raw_name = FindMember(decl, "name");
    const std::string display = raw_name && raw_name->is_string() ? raw_name->get<std::string>() : p.symbolic;
    if (!decl.is_object()) return Fail("resource", display, p.path, "a resource is a JSON object");
    const Value* copy = FindMember(decl, "copy");
    if (copy && nested) return Fail("resource", display, MemberPath(p.path, "copy"), "a nested child resource cannot have a copy loop");
    int64_t count = 1;
    std::string loop;
    int64_t batch = 0;
    TemplateScope header(*this, Place::kResource);
    if (copy) {
      if (!copy->is_object()) return Fail("resource", display, MemberPath(p.path, "copy"), "a resource copy is an object {name, count, mode, batchSize}");
      const Value* loop_name = FindMember(*copy, "name");
      if (loop_name == nullptr || !loop_name->is_string()) return Fail("resource", display, MemberPath(p.path, "copy"), "a resource copy needs a 'name'");
      loop = loop_name->get<std::string>();
      DSP_ASSIGN_OR_RETURN(count, CopyCount(*copy, MemberPath(p.path, "copy"), header, "resource", display));
      if (const Value* mode = FindMember(*copy, "mode")) {
        if (!mode->is_string() || (!EqualsIgnoreCase(mode->get<std::string>(), "serial") && !EqualsIgnoreCase(mode->get<std::string>(), "parallel"))) {
          return Fail("resource", display, MemberPath(MemberPath(p.path, "copy"), "mode"), "the copy mode is Serial or Parallel");
        }
        if (EqualsIgnoreCase(mode->get<std::string>(), "serial")) {
          batch = 1;
          if (const Value* b = FindMember(*copy, "batchSize")) {
            DSP_ASSIGN_OR_RETURN(Value bv, EvaluateValue(*b, MemberPath(MemberPath(p.path, "copy"), "batchSize"), header, "resource", display));
            if (!IsInteger(bv) || AsInteger(bv) < 1) return Fail("resource", display, MemberPath(MemberPath(p.path, "copy"), "batchSize"), "batchSize is a positive integer");
            batch = AsInteger(bv);
          }
        }
      }
    }
    const size_t first = resources_.size();
    for (int64_t i = 0; i < count; ++i) {
      TemplateScope scope(*this, Place::kResource);
      if (copy) {
        scope.bare_index_ = i;
        scope.loops_.emplace_back(loop, i);
      }
      ExpandedResource r;
      r.symbolic_name = p.symbolic;
      r.path = p.path;
      r.at = doc_.PositionOf(p.path);
      r.copy_name = loop;
      r.copy_index = copy ? i : -1;
      DSP_ASSIGN_OR_RETURN(std::string type, ResourceString(decl, "type", p.path, scope, display));
      if (EqualsIgnoreCase(type, "Microsoft.Resources/deployments")) {
        return Fail("resource", display, MemberPath(p.path, "type"), "nested and linked deployments (Microsoft.Resources/deployments) are not supported yet; deploy the inner template on its own");
      }
      if (const Value* ev = FindMember(decl, "existing")) r.existing = ev->is_boolean() && ev->get<bool>();
      if (!r.existing) {
        DSP_ASSIGN_OR_RETURN(r.api_version, ResourceString(decl, "apiVersion", p.path, scope, display));
      } else if (const Value* av = FindMember(decl, "apiVersion"); av && av->is_string()) {
        r.api_version = av->get<std::string>();
      }
      DSP_ASSIGN_OR_RETURN(std::string name, ResourceString(decl, "name", p.path, scope, display));
      if (nested && type.find('/') == std::string::npos) {
        type = p.parent_type + "/" + type;
        name = p.parent_name + "/" + name;
      } else if (nested && SplitSegments(name).size() == 1) {
        name = p.parent_name + "/" + name;
      }
      std::vector<std::string> types = SplitSegments(type), names = SplitSegments(name);
      if (types.size() < 2 || types[0].find('.') == std::string::npos) {
        return Fail("resource", name, MemberPath(p.path, "type"), "the type '" + type + "' is not Namespace/type (for example Microsoft.Network/virtualNetworks)");
      }
      if (names.size() != types.size() - 1) {
        return Fail("resource", name, MemberPath(p.path, "name"),
                    "The resource '" + name + "' of type '" + type + "' has incorrect segment lengths. A nested resource type must have identical number of segments as its resource name. A root resource type must have segment length one greater than its resource name",
                    "InvalidTemplate");
      }
      r.type = JoinSegments(types);
      r.name = JoinSegments(names);
      r.id = ResourceIdOf(ctx_, r.type, r.name);
      if (const Value* cond = FindMember(decl, "condition")) {
        DSP_ASSIGN_OR_RETURN(Value c, EvaluateValue(*cond, MemberPath(p.path, "condition"), scope, "resource", r.name));
        if (!c.is_boolean()) return Fail("resource", r.name, MemberPath(p.path, "condition"), "the condition must be a Bool; it is " + TypeName(c));
        r.condition = c.get<bool>();
      }
      if (r.condition) {
        auto [it, added] = deployed_ids_.emplace(ToLowerAscii(r.id), resources_.size());
        if (!added) {
          return Fail("resource", r.name, p.path, "the resource '" + r.id + "' is defined more than once in the template (also at " + resources_[it->second].path + ")");
        }
      }
      resources_.push_back(std::move(r));
      sources_.push_back(Source{&decl});
      loop_of_.push_back(copy ? std::optional<std::pair<std::string, int64_t>>({loop, i}) : std::nullopt);
      serial_batch_.push_back(batch);
      loop_first_.push_back(first);
      if (const Value* children = FindMember(decl, "resources")) {
        if (!children->is_array()) return Fail("resource", display, MemberPath(p.path, "resources"), "nested resources are an array");
        const ExpandedResource& parent = resources_.back();
        for (size_t c = 0; c < children->size(); ++c) {
          DSP_RETURN_IF_ERROR(ExpandResource(Pending{&(*children)[c], ElementPath(MemberPath(p.path, "resources"), c), parent.type, parent.name, ""}, true));
        }
      }
      if (resources_.size() > kMaxResources) break;
    }
    return Status::Ok();
  }

  // The scope a resource's expressions are evaluated in.
  TemplateScope ScopeOf(size_t index, Place place) {
    TemplateScope scope(*this, place);
    if (loop_of_[index]) {
      scope.bare_index_ = loop_of_[index]->second;
      scope.loops_.push_back(*loop_of_[index]);
    }
    return scope;
  }

  // dependsOn entries, implicit reference()/list*() dependencies by name,
  // and serial copy batches; then a check for cycles.
  Status ResolveDependencies() {
    deps_.assign(resources_.size(), {});
    for (size_t i = 0; i < resources_.size(); ++i) {
      const Value& decl = *sources_[i].decl;
      const std::string& path = resources_[i].path;
      if (const Value* depends = FindMember(decl, "dependsOn")) {
        if (!depends->is_array()) return Fail("resource", resources_[i].name, MemberPath(path, "dependsOn"), "dependsOn is an array");
        TemplateScope scope = ScopeOf(i, Place::kResource);
        for (size_t k = 0; k < depends->size(); ++k) {
          const std::string dpath = ElementPath(MemberPath(path, "dependsOn"), k);
          DSP_ASSIGN_OR_RETURN(Value entry, EvaluateValue((*depends)[k], dpath, scope, "resource", resources_[i].name));
          if (entry.is_null() || (entry.is_string() && entry.get<std::string>().empty())) continue;
          if (!entry.is_string()) return Fail("resource", resources_[i].name, dpath, "a dependsOn entry is a string; it is " + TypeName(entry));
          std::vector<size_t> targets = MatchDependency(entry.get<std::string>());
          if (targets.empty()) {
            return Fail("resource", resources_[i].name, dpath, "The resource '" + entry.get<std::string>() + "' is not defined in the template");
          }
          for (size_t t : targets) {
            if (t != i) deps_[i].insert(t);
          }
        }
      }
      CollectImplicit(i, decl);
      // Serial copy: each batch waits for the one before it.
      if (serial_batch_[i] > 0 && loop_of_[i]) {
        const int64_t index = loop_of_[i]->second, batch = serial_batch_[i];
        const int64_t previous_start = (index / batch - 1) * batch;
        for (int64_t k = previous_start; k >= 0 && k < previous_start + batch; ++k) {
          // The loop's instances are contiguous from loop_first_, children interleaved: find by loop index.
          for (size_t j = loop_first_[i]; j < resources_.size(); ++j) {
            if (loop_of_[j] && loop_of_[j]->first == loop_of_[i]->first && loop_of_[j]->second == k && resources_[j].path == resources_[i].path) {
              deps_[i].insert(j);
            }
          }
        }
      }
    }
    for (size_t i = 0; i < resources_.size(); ++i) {
      for (size_t t : deps_[i]) {
        if (resources_[t].condition) resources_[i].depends_on.push_back(t);
      }
    }
    // Cycles: a depth-first walk.
    std::vector<int> state(resources_.size(), 0);
    std::function<Status(size_t)> visit = [&](size_t i) -> Status {
      if (state[i] == 2) return Status::Ok();
      if (state[i] == 1) {
        return FailPlain("InvalidTemplate", "Deployment template validation failed: 'Circular dependency detected on resource: '" + resources_[i].id + "'. Please see https://aka.ms/arm-syntax-resources for usage details.'.");
      }
      state[i] = 1;
      for (size_t t : deps_[i]) DSP_RETURN_IF_ERROR(visit(t));
      state[i] = 2;
      return Status::Ok();
    };
    for (size_t i = 0; i < resources_.size(); ++i) DSP_RETURN_IF_ERROR(visit(i));
    return Status::Ok();
  }

  // Which resources a dependsOn entry names: a resource ID, a type/name
  // (in either order of segments), a copy loop, a symbolic name, or a
  // unique bare name; case-insensitive.
  std::vector<size_t> MatchDependency(const std::string& entry) {
    std::vector<size_t> out;
    auto add_if = [&](auto pred) {
      for (size_t i = 0; i < resources_.size(); ++i) {
        if (pred(resources_[i])) out.push_back(i);
      }
    };
    if (auto id = ParseResourceId(entry)) {
      add_if([&](const ExpandedResource& r) { return EqualsIgnoreCase(r.type, id->type) && EqualsIgnoreCase(r.name, id->name); });
      return out;
    }
    const std::string normal = JoinSegments(SplitSegments(entry));
    add_if([&](const ExpandedResource& r) {
      return EqualsIgnoreCase(r.copy_name, normal) || (!r.symbolic_name.empty() && EqualsIgnoreCase(r.symbolic_name, normal));
    });
    if (!out.empty()) return out;
    if (normal.find('/') != std::string::npos) {
      add_if([&](const ExpandedResource& r) {
        return EqualsIgnoreCase(r.type + "/" + r.name, normal) ||
               EqualsIgnoreCase(Interleave(SplitSegments(r.type), SplitSegments(r.name)), normal);
      });
      if (!out.empty()) return out;
    }
    add_if([&](const ExpandedResource& r) { return EqualsIgnoreCase(r.name, normal); });
    if (out.empty()) {
      // The last segment alone, if unique ("subnet" for "vnet/subnet").
      add_if([&](const ExpandedResource& r) {
        auto names = SplitSegments(r.name);
        return !names.empty() && EqualsIgnoreCase(names.back(), normal);
      });
      if (out.size() > 1) out.clear();
    }
    return out;
  }

  // reference('name') and list*('name') in a resource's properties make
  // it wait for that resource (by ID they do not, as on Azure).
  void CollectImplicit(size_t i, const Value& decl) {
    const Value* props = FindMember(decl, "properties");
    if (props == nullptr) return;
    std::function<void(const Value&)> walk = [&](const Value& v) {
      if (v.is_string() && ClassifyString(v.get_ref<const std::string&>()) == StringForm::kExpression) {
        const std::string& s = v.get_ref<const std::string&>();
        auto expr = ParseExpression(std::string_view(s).substr(1, s.size() - 2));
        if (expr.ok()) CollectCalls(i, **expr);
      } else if (v.is_structured()) {
        for (const Value& e : v) walk(e);
      }
    };
    walk(*props);
  }

  void CollectCalls(size_t i, const Expr& e) {
    if (e.kind == Expr::Kind::kCall && e.space.empty() && !e.args.empty()) {
      const std::string n = ToLowerAscii(e.text);
      if (n == "reference" || n == "references" || (n.rfind("list", 0) == 0)) {
        TemplateScope scope = ScopeOf(i, Place::kResource);
        Result<Value> target = Evaluate(*e.args[0], scope);
        if (target.ok() && target->is_string() && !target->get<std::string>().empty() && target->get<std::string>()[0] != '/') {
          for (size_t t : MatchDependency(target->get<std::string>())) {
            if (t != i) deps_[i].insert(t);
          }
        }
      }
    }
    for (const auto& a : e.args) CollectCalls(i, *a);
  }

  // Evaluates what can be before anything is deployed: every resource's
  // body and every output, with reference() and list*() deferred.
  Status Preflight() {
    DeferredReader reader;
    for (size_t i = 0; i < resources_.size(); ++i) {
      if (!resources_[i].condition) continue;
      Result<Value> body = Body(i, reader);
      if (!body.ok() && !IsDeferred(body.status())) return body.status();
    }
    // Each output on its own: one that waits for a deployed resource hides
    // no error of the others.
    Result<NamedOutputs> outputs = EvaluateOutputs(reader, /*skip_deferred=*/true);
    if (!outputs.ok()) return outputs.status();
    if (error_) *error_ = ArmError{};  // a deferred evaluation may have left its trace
    return Status::Ok();
  }

  Result<Value> Body(size_t i, ResourceReader& reader) {
    const ExpandedResource& r = resources_[i];
    const Value& decl = *sources_[i].decl;
    Value body = Value::object();
    body["name"] = r.name;
    body["type"] = r.type;
    body["apiVersion"] = r.api_version;
    for (const auto& [k, raw] : decl.items()) {
      const std::string lower = ToLowerAscii(k);
      if (kTemplateMembers.count(lower) || lower == "name" || lower == "type") continue;
      TemplateScope scope = ScopeOf(i, lower == "properties" ? Place::kProperties : Place::kResource);
      scope.reader_ = &reader;
      DSP_ASSIGN_OR_RETURN(Value v, EvaluateValue(raw, MemberPath(r.path, k), scope, "resource", r.name));
      if (v.is_null() && raw.is_string()) continue;
      body[k] = std::move(v);
    }
    return body;
  }

  // The outputs whose condition holds; with `skip_deferred`, one that
  // waits for a deployed resource is left out (preflight).
  Result<NamedOutputs> EvaluateOutputs(ResourceReader& reader, bool skip_deferred = false) {
    NamedOutputs out;
    const Value* outputs = FindMember(doc_.value, "outputs");
    if (outputs == nullptr) return out;
    if (!outputs->is_object()) return Fail("", "", "outputs", "'outputs' is an object");
    if (outputs->size() > kMaxOutputs) return Fail("", "", "outputs", "a template has at most 64 outputs");
    for (const auto& [name, decl] : outputs->items()) {
      Result<std::optional<OutputValue>> one = EvaluateOutput(name, decl, reader);
      if (!one.ok()) {
        if (skip_deferred && IsDeferred(one.status())) continue;
        return one.status();
      }
      if (*one) out.emplace_back(name, std::move(**one));
    }
    return out;
  }

  // One output; nullopt when its condition is false.
  Result<std::optional<OutputValue>> EvaluateOutput(const std::string& name, const Value& decl, ResourceReader& reader) {
    const std::string path = MemberPath("outputs", name);
    TemplateScope scope(*this, Place::kOutput);
    scope.reader_ = &reader;
    const Value* type = FindMember(decl, "type");
    if (type == nullptr || !type->is_string() || !kParameterTypes.count(ToLowerAscii(type->get<std::string>()))) {
      return Fail("output", name, path, "an output needs a type: string, securestring, int, bool, object, secureObject or array");
    }
    const std::string lower = ToLowerAscii(type->get<std::string>());
    if (const Value* cond = FindMember(decl, "condition")) {
      DSP_ASSIGN_OR_RETURN(Value c, EvaluateValue(*cond, MemberPath(path, "condition"), scope, "output", name));
      if (!c.is_boolean()) return Fail("output", name, MemberPath(path, "condition"), "the condition must be a Bool");
      if (!c.get<bool>()) return std::optional<OutputValue>();
    }
    Value v;
    if (const Value* copy = FindMember(decl, "copy")) {
      DSP_ASSIGN_OR_RETURN(int64_t count, CopyCount(*copy, MemberPath(path, "copy"), scope, "output", name));
      const Value* input = FindMember(*copy, "input");
      if (input == nullptr) return Fail("output", name, MemberPath(path, "copy"), "an output copy needs an 'input'");
      v = Value::array();
      for (int64_t i = 0; i < count; ++i) {
        scope.bare_index_ = i;
        DSP_ASSIGN_OR_RETURN(Value e, EvaluateValue(*input, MemberPath(MemberPath(path, "copy"), "input"), scope, "output", name));
        v.push_back(std::move(e));
      }
    } else {
      const Value* value = FindMember(decl, "value");
      if (value == nullptr) return Fail("output", name, path, "an output needs a 'value' or a 'copy'");
      DSP_ASSIGN_OR_RETURN(v, EvaluateValue(*value, MemberPath(path, "value"), scope, "output", name));
    }
    if (!MatchesType(lower, v)) {
      return Fail("output", name, path, "the output is declared " + type->get<std::string>() + " but its value is " + TypeName(v));
    }
    const bool secure = lower == "securestring" || lower == "secureobject";
    return std::optional<OutputValue>(OutputValue{OutputTypeName(lower), secure ? Value(nullptr) : std::move(v)});
  }

  TemplateLoad load_;
  const DeploymentContext& ctx_;
  JsonDocument doc_;
  bool v2_ = false;
  ArmError* error_ = nullptr;
  std::vector<Parameter> parameters_;
  std::vector<Variable> variables_;
  std::map<std::string, UserFunction> functions_;
  std::vector<ExpandedResource> resources_;
  // StoreKey-style (lower-case) IDs of the resources whose condition holds,
  // to their index: one resource per ID.
  std::unordered_map<std::string, size_t> deployed_ids_;
  std::vector<Source> sources_;
  std::vector<std::optional<std::pair<std::string, int64_t>>> loop_of_;
  std::vector<int64_t> serial_batch_;
  std::vector<size_t> loop_first_;
  std::vector<std::set<size_t>> deps_;
};

// ---- the public face ----

Template::Template(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Template::~Template() = default;

Result<std::unique_ptr<Template>> Template::Load(const TemplateLoad& load, ArmError* error) {
  auto impl = std::make_unique<Impl>(load);
  ArmError scratch;
  impl->error_ = error ? error : &scratch;
  *impl->error_ = ArmError{};
  Status s = impl->Load();
  if (!s.ok()) {
    if (impl->error_->empty()) {
      impl->error_->code = "InvalidTemplate";
      impl->error_->message = s.message();
    }
    return s;
  }
  impl->error_ = nullptr;
  return std::unique_ptr<Template>(new Template(std::move(impl)));
}

const std::vector<ExpandedResource>& Template::resources() const { return impl_->resources_; }

std::vector<size_t> Template::DeployOrder() const {
  const auto& rs = impl_->resources_;
  std::vector<size_t> order;
  std::vector<bool> placed(rs.size(), false);
  // Repeatedly take, in template order, each resource whose dependencies
  // are placed (the graph has no cycles: Load checked).
  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t i = 0; i < rs.size(); ++i) {
      if (placed[i] || !rs[i].condition) continue;
      if (std::all_of(rs[i].depends_on.begin(), rs[i].depends_on.end(), [&](size_t d) { return placed[d]; })) {
        placed[i] = true;
        order.push_back(i);
        progress = true;
      }
    }
  }
  return order;
}

Result<Value> Template::ResourceBody(size_t index, ResourceReader& reader, ArmError* error) {
  ArmError scratch;
  impl_->error_ = error ? error : &scratch;
  *impl_->error_ = ArmError{};
  Result<Value> r = impl_->Body(index, reader);
  impl_->error_ = nullptr;
  return r;
}

Result<NamedOutputs> Template::Outputs(ResourceReader& reader, ArmError* error) {
  ArmError scratch;
  impl_->error_ = error ? error : &scratch;
  *impl_->error_ = ArmError{};
  auto r = impl_->EvaluateOutputs(reader);
  impl_->error_ = nullptr;
  return r;
}

Value Template::ParametersRecord() const { return impl_->ParametersRecord(); }

std::set<std::string> Template::SecureParameters() const {
  std::set<std::string> out;
  for (const auto& p : impl_->parameters_) {
    if (p.type == "securestring" || p.type == "secureobject") out.insert(p.name);
  }
  return out;
}

Value Template::Parameter(const std::string& name) const {
  for (const auto& p : impl_->parameters_) {
    if (EqualsIgnoreCase(p.name, name) && p.value) return *p.value;
  }
  return nullptr;
}

const Value& Template::document() const { return impl_->doc_.value; }
std::string Template::TemplateHash() const { return impl_->TemplateHash(); }

}  // namespace dspool::arm
