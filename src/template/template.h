// A template, loaded: parameters bound, variables and functions ready,
// resources expanded (copy loops, nested children, conditions), names and
// IDs made, dependencies resolved. What Azure's preflight validation does
// (arm-templates.md §7.1), as a value; the deployment then asks each
// resource's body (its properties may call reference() and list*() on
// resources deployed before it) and, at the end, the outputs.
//
//   TemplateLoad load;  load.text = ...;  load.parameters = ...;  load.context = ...;
//   ArmError error;
//   auto t = Template::Load(load, &error);        // InvalidTemplate... in `error`
//   for (size_t i : t->DeployOrder())  { t->ResourceBody(i, reader, &error); ... }
//   t->Outputs(reader, &error);
//
// Pure: the clock (utcNow) and randomness (newGuid) are the caller's, in
// DeploymentContext; reference() and list*() go to a ResourceReader.
// A Template is not thread-safe (variables are evaluated lazily, once).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "template/json_text.h"
#include "template/value.h"

namespace dspool::arm {

// An error as ARM answers one: {"code", "message", "target", "details",
// "additionalInfo": [{"type": "TemplateViolation", "info": {lineNumber,
// linePosition, path}}]}.
struct ArmError {
  std::string code;     // "InvalidTemplate", "DeploymentFailed", ...
  std::string message;
  std::string target;
  std::string path;     // where in the template ("resources[2].properties.x"); empty if none
  SourcePosition at;    // its line and column in the template file
  std::vector<ArmError> details;

  Value ToJson() const;
  bool empty() const { return code.empty(); }
};

// Who deploys where: the identity constants that resourceGroup(),
// subscription(), resourceId() and so uniqueString() see (stable per
// installation and group), and the caller's clock and GUIDs.
struct DeploymentContext {
  std::string subscription_id;  // a GUID
  std::string tenant_id;        // a GUID
  std::string subscription_name = "dspool";
  std::string resource_group;
  std::string location;         // the group's
  Value resource_group_tags = Value::object();
  std::string deployment_name;
  std::string mode = "Incremental";
  std::optional<std::string> template_uri;  // deployment().properties.templateLink.uri
  Value environment = Value::object();      // environment(); local suffixes
  int64_t now_unix_seconds = 0;             // utcNow()
  std::function<std::string()> new_guid;    // newGuid(); required if a default uses it
};

struct TemplateLoad {
  std::string text;             // the template file
  std::string source = "template";  // its name for messages
  // The parameters as az assembled them (arm-templates.md §2.2): name →
  // {"value": v} (a Key Vault reference is resolved before this).
  Value parameters = Value::object();
  DeploymentContext context;
};

// reference() and list*() on resources deployed before the one asking.
class ResourceReader {
 public:
  virtual ~ResourceReader() = default;
  // The resource's runtime state: its properties (or with `full`, the
  // whole resource: apiVersion, location, sku, tags, properties...).
  virtual Result<Value> Reference(const std::string& id, bool full) = 0;
  // A list* action (listKeys...) on the resource; `function` is lower case.
  virtual Result<Value> List(const std::string& function, const std::string& id, const Value& arguments) = 0;
};

struct ExpandedResource {
  std::string symbolic_name;  // languageVersion 2.0's key; else empty
  std::string type;           // "Microsoft.Network/virtualNetworks/subnets"
  std::string api_version;
  std::string name;           // "vnet/subnet"
  std::string id;             // "/subscriptions/.../providers/Microsoft.Network/virtualNetworks/vnet/subnets/subnet"
  bool condition = true;      // false: skipped (Complete mode deletes it)
  bool existing = false;      // a read-only handle (2.0 "existing": true)
  std::string copy_name;      // its copy loop, if any
  int64_t copy_index = -1;
  std::vector<size_t> depends_on;  // indices into resources(); only resources whose condition holds
  std::string path;           // "resources[2]", "resources[2].resources[0]", or "resources.name" (2.0)
  SourcePosition at;
};

struct OutputValue {
  std::string type;  // "String", "Int", "Bool", "Array", "Object", "SecureString", "SecureObject"
  Value value;       // null for secure outputs
};

using NamedOutputs = std::vector<std::pair<std::string, OutputValue>>;

class Template {
 public:
  // Preflight: parses, binds the parameters (given, else default, else an
  // error naming every missing one), checks their types and constraints,
  // expands the resources and checks their names, segments and
  // dependencies (cycles). On failure: a Status with az's message, and
  // the structured error in *error.
  static Result<std::unique_ptr<Template>> Load(const TemplateLoad& load, ArmError* error);

  ~Template();

  const std::vector<ExpandedResource>& resources() const;
  // The resources whose condition holds, each after those it depends on;
  // among independent ones, in template order.
  std::vector<size_t> DeployOrder() const;

  // The resource's body as ARM would PUT it: every member but the
  // template's own (condition, copy, dependsOn, comments, resources,
  // apiVersion, existing) evaluated, with properties. reference() and
  // list*() go to `reader`.
  Result<Value> ResourceBody(size_t index, ResourceReader& reader, ArmError* error);

  // The outputs whose condition holds, by name, in template order (as
  // ARM shows them).
  Result<NamedOutputs> Outputs(ResourceReader& reader, ArmError* error);

  // properties.parameters of the deployment record: {p: {"type", "value"}},
  // secure ones with their type and no value.
  Value ParametersRecord() const;
  // Parameter names whose type is securestring or secureObject.
  std::set<std::string> SecureParameters() const;
  // The bound value of a parameter (secure ones included, for the
  // deployment to use in memory only); null if none.
  Value Parameter(const std::string& name) const;

  // The template as deployment().properties.template gives it.
  const Value& document() const;
  // A stable 64-bit hash of the template text, in decimal (templateHash).
  std::string TemplateHash() const;

  class Impl;

 private:
  explicit Template(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A resource ID's parts: "/subscriptions/S/resourceGroups/G/providers/NS/t1/n1/t2/n2".
struct ResourceIdParts {
  std::string subscription;
  std::string resource_group;
  std::string type;  // "NS/t1/t2"
  std::string name;  // "n1/n2"
};
// Parses a resource ID, case-insensitively (the sample builds IDs by hand
// with inconsistent case). nullopt if it is not one.
std::optional<ResourceIdParts> ParseResourceId(const std::string& id);
// The ID of resource `type` named `name` ("vnet/subnet") in `ctx`'s group.
std::string ResourceIdOf(const DeploymentContext& ctx, const std::string& type, const std::string& name);

}  // namespace dspool::arm
