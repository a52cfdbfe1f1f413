#include "template/parameters.h"

#include "template/json_text.h"

namespace dspool::arm {

namespace {

// The "parameters" member of a parameters file, else the object itself.
Result<Value> Unwrap(const Value& v) {
  if (!v.is_object()) return InvalidArgument("expected a JSON object");
  auto inner = v.find("parameters");
  if (inner != v.end() && inner->is_object()) return *inner;
  return v;
}

std::string DeclaredType(const Value& declared, const std::string& name) {
  if (!declared.is_object()) return "";
  auto p = declared.find(name);
  if (p == declared.end()) return "";
  const Value* type = FindMember(*p, "type");
  return type && type->is_string() ? ToLowerAscii(type->get<std::string>()) : "";
}

std::string Allowed(const Value& declared) {
  std::string out;
  for (const auto& [k, v] : declared.items()) out += (out.empty() ? "" : ", ") + k;
  return out;
}

}  // namespace

Result<Value> ConvertParameterText(const std::string& name, const std::string& text, const Value& declared) {
  const std::string type = DeclaredType(declared, name);
  if (type == "object" || type == "array" || type == "secureobject") {
    auto doc = ParseJsonDocument(text);
    if (!doc.ok()) return InvalidArgument("the value of '" + name + "' is not JSON: " + doc.status().message());
    return std::move(doc->value);
  }
  if (type == "bool") return Value(EqualsIgnoreCase(text, "true"));
  if (type == "int") {
    size_t used = 0;
    try {
      long long n = std::stoll(text, &used, 10);
      if (used == text.size()) return Value(static_cast<int64_t>(n));
    } catch (...) {
    }
    return InvalidArgument("the value of '" + name + "' must be an integer; it is '" + text + "'");
  }
  return Value(text);
}

Result<AssembledParameters> AssembleParameters(const std::vector<ParameterToken>& tokens, const Value& declared) {
  AssembledParameters out;
  auto merge = [&](const Value& object) {
    for (const auto& [k, v] : object.items()) out.values[k] = v;
  };
  for (const ParameterToken& t : tokens) {
    if (t.file_text) {
      auto doc = ParseJsonDocument(*t.file_text);
      if (!doc.ok()) return InvalidArgument("Failed to parse " + t.text + ": " + doc.status().message());
      auto unwrapped = Unwrap(doc->value);
      if (!unwrapped.ok()) return InvalidArgument("Failed to parse " + t.text + ": " + unwrapped.status().message());
      merge(*unwrapped);
      continue;
    }
    const std::string& s = t.text;
    size_t first = s.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && (s[first] == '{' || s[first] == '[')) {
      auto doc = ParseJsonDocument(s);
      if (doc.ok()) {
        auto unwrapped = Unwrap(doc->value);
        if (!unwrapped.ok()) return InvalidArgument("Unable to parse parameter: " + s);
        merge(*unwrapped);
        continue;
      }
    }
    size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("Unable to parse parameter: " + s +
                             " (a parameter is a file, JSON text, or KEY=VALUE)");
    }
    const std::string key = s.substr(0, eq);
    if (!declared.is_object() || declared.find(key) == declared.end()) {
      return InvalidArgument("unrecognized template parameter '" + key + "'. Allowed parameters: " + Allowed(declared));
    }
    DSP_ASSIGN_OR_RETURN(Value v, ConvertParameterText(key, s.substr(eq + 1), declared));
    const std::string type = DeclaredType(declared, key);
    if (type == "securestring" || type == "secureobject") {
      out.warnings.push_back("the value of '" + key +
                             "' was given on the command line, where other users of this machine can read it "
                             "(ps, /proc, shell history); give it in a file (@file) or at the prompt instead");
    }
    out.values[key] = Value{{"value", std::move(v)}};
  }
  return out;
}

std::vector<std::string> MissingParameters(const Value& values, const Value& declared) {
  std::vector<std::string> missing;
  if (!declared.is_object()) return missing;
  for (const auto& [name, decl] : declared.items()) {
    if (FindMember(decl, "defaultValue")) continue;
    auto it = values.find(name);
    if (it == values.end()) {
      missing.push_back(name);
      continue;
    }
    const Value& entry = *it;
    if (entry.is_object() && entry.contains("reference")) continue;
    if (!entry.is_object() || !entry.contains("value") || entry["value"].is_null()) missing.push_back(name);
  }
  return missing;
}

}  // namespace dspool::arm
