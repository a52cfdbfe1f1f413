#include "template/what_if.h"

#include <map>

namespace dspool::arm {

std::string ChangeTypeName(ChangeType t) {
  switch (t) {
    case ChangeType::kCreate: return "Create";
    case ChangeType::kDelete: return "Delete";
    case ChangeType::kModify: return "Modify";
    case ChangeType::kNoChange: return "NoChange";
    case ChangeType::kIgnore: return "Ignore";
    case ChangeType::kDeploy: return "Deploy";
    case ChangeType::kNoEffect: return "NoEffect";
    case ChangeType::kUnsupported: return "Unsupported";
  }
  return "";
}

std::string PropertyChangeTypeName(PropertyChangeType t) {
  switch (t) {
    case PropertyChangeType::kCreate: return "Create";
    case PropertyChangeType::kDelete: return "Delete";
    case PropertyChangeType::kModify: return "Modify";
    case PropertyChangeType::kArray: return "Array";
    case PropertyChangeType::kNoEffect: return "NoEffect";
  }
  return "";
}

namespace {

std::string Join(const std::string& prefix, const std::string& key) { return prefix.empty() ? key : prefix + "." + key; }

void Diff(const std::string& path, const Value& before, const Value& after, std::vector<PropertyChange>& out) {
  if (DeepEquals(before, after)) return;
  if (before.is_object() && after.is_object()) {
    for (const auto& [k, v] : before.items()) {
      auto other = after.find(k);
      if (other == after.end()) {
        out.push_back({Join(path, k), PropertyChangeType::kDelete, v, nullptr, {}});
      } else {
        Diff(Join(path, k), v, *other, out);
      }
    }
    for (const auto& [k, v] : after.items()) {
      if (before.find(k) == before.end()) out.push_back({Join(path, k), PropertyChangeType::kCreate, nullptr, v, {}});
    }
    return;
  }
  if (before.is_array() && after.is_array()) {
    PropertyChange array{path, PropertyChangeType::kArray, before, after, {}};
    const size_t n = std::max(before.size(), after.size());
    for (size_t i = 0; i < n; ++i) {
      const std::string index = std::to_string(i);
      if (i >= before.size()) {
        array.children.push_back({index, PropertyChangeType::kCreate, nullptr, after[i], {}});
      } else if (i >= after.size()) {
        array.children.push_back({index, PropertyChangeType::kDelete, before[i], nullptr, {}});
      } else if (!DeepEquals(before[i], after[i])) {
        if (before[i].is_object() && after[i].is_object()) {
          std::vector<PropertyChange> inner;
          Diff("", before[i], after[i], inner);
          PropertyChange element{index, PropertyChangeType::kModify, before[i], after[i], std::move(inner)};
          array.children.push_back(std::move(element));
        } else {
          array.children.push_back({index, PropertyChangeType::kModify, before[i], after[i], {}});
        }
      }
    }
    out.push_back(std::move(array));
    return;
  }
  if (before.is_null()) {
    out.push_back({path, PropertyChangeType::kCreate, nullptr, after, {}});
  } else if (after.is_null()) {
    out.push_back({path, PropertyChangeType::kDelete, before, nullptr, {}});
  } else {
    out.push_back({path, PropertyChangeType::kModify, before, after, {}});
  }
}

Value PropertyJson(const PropertyChange& p) {
  Value out{{"path", p.path}, {"propertyChangeType", PropertyChangeTypeName(p.type)}, {"before", p.before}, {"after", p.after}};
  Value children = Value::array();
  for (const PropertyChange& c : p.children) children.push_back(PropertyJson(c));
  out["children"] = p.children.empty() ? Value(nullptr) : children;
  return out;
}

char Symbol(ChangeType t) {
  switch (t) {
    case ChangeType::kCreate: return '+';
    case ChangeType::kDelete: return '-';
    case ChangeType::kModify: return '~';
    case ChangeType::kNoChange: return '=';
    case ChangeType::kIgnore: return '*';
    case ChangeType::kDeploy: return '!';
    default: return 'x';
  }
}

char Symbol(PropertyChangeType t) {
  switch (t) {
    case PropertyChangeType::kCreate: return '+';
    case PropertyChangeType::kDelete: return '-';
    case PropertyChangeType::kModify:
    case PropertyChangeType::kArray: return '~';
    default: return 'x';
  }
}

// A value as az prints it: strings quoted, objects and arrays as JSON.
std::string Show(const Value& v) { return v.dump(); }

void PrintProperty(std::string& out, const PropertyChange& p, int indent) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  out += pad + Symbol(p.type) + " " + p.path + ":";
  switch (p.type) {
    case PropertyChangeType::kCreate: out += " " + Show(p.after) + "\n"; return;
    case PropertyChangeType::kDelete: out += " " + Show(p.before) + "\n"; return;
    case PropertyChangeType::kModify:
      if (p.children.empty()) {
        out += " " + Show(p.before) + " => " + Show(p.after) + "\n";
      } else {
        out += "\n\n";
        for (const PropertyChange& c : p.children) PrintProperty(out, c, indent + 2);
        out += "\n";
      }
      return;
    case PropertyChangeType::kArray:
      out += " [\n";
      for (const PropertyChange& c : p.children) PrintProperty(out, c, indent + 2);
      out += pad + "  ]\n";
      return;
    default: out += "\n"; return;
  }
}

}  // namespace

std::vector<PropertyChange> DiffProperties(const Value& before, const Value& after) {
  std::vector<PropertyChange> out;
  Diff("", before, after, out);
  return out;
}

ResourceChange Compare(const std::string& id, const std::string& api_version, const Value& before, const Value& after) {
  ResourceChange c;
  c.resource_id = id;
  c.api_version = api_version;
  c.before = before;
  c.after = after;
  if (before.is_null()) {
    c.type = ChangeType::kCreate;
    return c;
  }
  c.delta = DiffProperties(before, after);
  c.type = c.delta.empty() ? ChangeType::kNoChange : ChangeType::kModify;
  return c;
}

Value WhatIfJson(const std::vector<ResourceChange>& changes) {
  Value list = Value::array();
  for (const ResourceChange& c : changes) {
    Value delta = Value::array();
    for (const PropertyChange& p : c.delta) delta.push_back(PropertyJson(p));
    Value entry{{"resourceId", c.resource_id},
                {"changeType", ChangeTypeName(c.type)},
                {"before", c.before},
                {"after", c.after},
                {"delta", c.delta.empty() ? Value(nullptr) : delta},
                {"unsupportedReason", c.unsupported_reason.empty() ? Value(nullptr) : Value(c.unsupported_reason)}};
    list.push_back(std::move(entry));
  }
  return Value{{"status", "Succeeded"}, {"error", nullptr}, {"changes", list}};
}

std::string WhatIfText(const std::vector<ResourceChange>& changes, const std::string& scope) {
  std::string out =
      "Note: The result may contain false positive predictions (noise).\n"
      "You can help us improve the accuracy of the result by opening an issue here: https://aka.ms/WhatIfIssues\n\n"
      "Resource and property changes are indicated with these symbols:\n";
  // The legend: the symbols used, in az's order.
  const std::vector<std::pair<ChangeType, std::string>> legend = {
      {ChangeType::kDelete, "Delete"}, {ChangeType::kCreate, "Create"},   {ChangeType::kModify, "Modify"},
      {ChangeType::kDeploy, "Deploy"}, {ChangeType::kNoChange, "NoChange"}, {ChangeType::kIgnore, "Ignore"}};
  std::map<char, bool> used;
  for (const ResourceChange& c : changes) {
    used[Symbol(c.type)] = true;
    for (const PropertyChange& p : c.delta) {
      used[Symbol(p.type)] = true;
      for (const PropertyChange& child : p.children) used[Symbol(child.type)] = true;
    }
  }
  for (const auto& [type, name] : legend) {
    if (used.count(Symbol(type))) out += std::string("  ") + Symbol(type) + " " + name + "\n";
  }
  out += "\nThe deployment will update the following scope:\n\nScope: " + scope + "\n\n";
  std::map<ChangeType, int> counts;
  for (const ResourceChange& c : changes) {
    ++counts[c.type];
    std::string relative = c.resource_id;
    const std::string prefix = scope + "/providers/";
    if (relative.compare(0, prefix.size(), prefix) == 0) relative = relative.substr(prefix.size());
    out += std::string("  ") + Symbol(c.type) + " " + relative + (c.api_version.empty() ? "" : " [" + c.api_version + "]") + "\n";
    if (!c.delta.empty()) {
      out += "\n";
      for (const PropertyChange& p : c.delta) PrintProperty(out, p, 4);
    }
    out += "\n";
  }
  std::string summary;
  const std::vector<std::pair<ChangeType, std::string>> verbs = {
      {ChangeType::kCreate, "to create"},  {ChangeType::kDelete, "to delete"}, {ChangeType::kModify, "to modify"},
      {ChangeType::kDeploy, "to deploy"},  {ChangeType::kNoChange, "no change"}, {ChangeType::kIgnore, "to ignore"}};
  for (const auto& [type, verb] : verbs) {
    if (!counts.count(type)) continue;
    summary += (summary.empty() ? "" : ", ") + std::to_string(counts[type]) + " " + verb;
  }
  out += "Resource changes: " + (summary.empty() ? std::string("no change") : summary) + ".\n";
  return out;
}

}  // namespace dspool::arm
