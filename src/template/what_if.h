// What-if: what a deployment would change, resource by resource and
// property by property, in az's shapes (arm-templates.md §7.4): the JSON
// of `what-if --no-pretty-print` and the text az prints.
//
//   ~ Microsoft.Network/virtualNetworks/vnet1 [2022-09-01]
//     ~ properties.subnets[0].properties.addressPrefix: "10.0.0.0/24" => "10.0.0.0/23"
//     - tags.owner: "a"
//
// Pure: the caller gives each resource's state before (null if it does
// not exist) and after (the body the template would put).
#pragma once

#include <string>
#include <vector>

#include "template/value.h"

namespace dspool::arm {

enum class ChangeType { kCreate, kDelete, kModify, kNoChange, kIgnore, kDeploy, kNoEffect, kUnsupported };
enum class PropertyChangeType { kCreate, kDelete, kModify, kArray, kNoEffect };

std::string ChangeTypeName(ChangeType t);                  // "Create", ...
std::string PropertyChangeTypeName(PropertyChangeType t);  // "Create", ..., "Array"

struct PropertyChange {
  std::string path;  // "properties.sku.name", "tags.owner", or "0" inside an array
  PropertyChangeType type = PropertyChangeType::kModify;
  Value before;
  Value after;
  std::vector<PropertyChange> children;  // kArray: the changes by index
};

struct ResourceChange {
  std::string resource_id;
  std::string api_version;
  ChangeType type = ChangeType::kNoChange;
  Value before;  // null for kCreate
  Value after;   // null for kDelete
  std::vector<PropertyChange> delta;
  std::string unsupported_reason;
};

// The property changes from `before` to `after` (objects are walked member
// by member and named by their dotted path; arrays that differ are one
// kArray change with a child per index).
std::vector<PropertyChange> DiffProperties(const Value& before, const Value& after);

// Create if there is no before, else Modify or NoChange by the delta.
ResourceChange Compare(const std::string& id, const std::string& api_version, const Value& before, const Value& after);

// {"status": "Succeeded", "error": null, "changes": [...]}.
Value WhatIfJson(const std::vector<ResourceChange>& changes);

// az's text: the notice, the legend of the symbols used, the scope, a
// block per resource, and "Resource changes: 1 to create, 2 to modify.".
// `scope` is "/subscriptions/S/resourceGroups/G". Resources are named by
// their ID relative to it.
std::string WhatIfText(const std::vector<ResourceChange>& changes, const std::string& scope);

}  // namespace dspool::arm
