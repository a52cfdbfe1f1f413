// Resource groups and deployments: what `dspool group ...` and `dspool
// deployment group ...` keep (arm-templates.md §7.5, §8), as the server
// stores them and as az prints them.
//
//   ResourceGroup   a named container of resources, with a location and tags
//   Deployment      one run of a template into a group: its state, mode,
//                   timings, parameters (secure values left out), outputs,
//                   the resources it put, its error, and one operation per
//                   resource (state, timings, error)
//
//   ArmResource     a resource a deployment put into a group, as deployed
//
// Names of groups and deployments, and resource IDs, are case-insensitive
// as on Azure: StoreKey gives the form stores look them up by. Reusing a
// deployment's name replaces its record, as on Azure. Values
// only; the store keeps them (store/state_store.h) and the deployment
// runner writes them.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "model/json_reader.h"

namespace dspool {

// ARM keeps key order where people read it (outputs, parameters).
using OrderedJson = nlohmann::ordered_json;

struct ResourceGroup {
  std::string name;
  std::string location;
  std::vector<std::pair<std::string, std::string>> tags;  // in the order given
  TimePoint created_at;
  friend bool operator==(const ResourceGroup&, const ResourceGroup&) = default;
};

// az's rule: 1 to 90 characters, letters, digits, '.', '_', '-', '(' and
// ')', not ending in '.'.
Status ValidateResourceGroupName(std::string_view name);
// Locations are names such as "local" or "westeurope": 1 to 64 letters,
// digits and '-'.
Status ValidateLocation(std::string_view location);

Json ResourceGroupToJson(const ResourceGroup& g);  // storage form
Result<ResourceGroup> ResourceGroupFromJson(const Json& json);
// az's form: {"id", "location", "managedBy": null, "name", "properties":
// {"provisioningState": "Succeeded"}, "tags", "type"}.
OrderedJson ResourceGroupToAzJson(const ResourceGroup& g, const std::string& subscription_id);

enum class ProvisioningState { kAccepted, kRunning, kSucceeded, kFailed, kCanceled };
std::string_view ProvisioningStateName(ProvisioningState s);  // "Accepted", ...
Result<ProvisioningState> ParseProvisioningState(std::string_view name);
bool IsTerminal(ProvisioningState s);  // Succeeded, Failed or Canceled

// One resource's part of a deployment.
struct DeploymentOperation {
  std::string operation_id;                    // 16 upper-case hex digits, as Azure's
  std::string provisioning_operation = "Create";  // "Create", "Delete"
  ProvisioningState state = ProvisioningState::kAccepted;
  TimePoint timestamp;                         // when it last changed
  int64_t duration_ms = 0;
  std::string resource_id;
  std::string resource_type;
  std::string resource_name;
  std::string status_code;                     // "OK", "Created", "BadRequest", "Conflict"...
  OrderedJson error;                           // {"code", "message"} or null
  friend bool operator==(const DeploymentOperation&, const DeploymentOperation&) = default;
};

struct Deployment {
  std::string group;
  std::string name;
  ProvisioningState state = ProvisioningState::kAccepted;
  std::string mode = "Incremental";  // or "Complete"
  TimePoint timestamp;               // of the last change
  int64_t duration_ms = 0;
  std::string correlation_id;        // a GUID
  std::string template_hash;
  std::string template_link;         // the URI it came from; empty for a file
  OrderedJson parameters = OrderedJson::object();  // {p: {"type", "value"}}, secure ones without a value
  OrderedJson outputs = OrderedJson::object();     // {o: {"type", "value"}}
  std::vector<std::string> output_resources;       // resource IDs
  OrderedJson error;                               // az's error object, or null
  std::vector<DeploymentOperation> operations;
  // --rollback-on-error: {"type": "LastSuccessful" | "SpecificDeployment",
  // "deploymentName": ...}, as ARM's onErrorDeployment; null without.
  OrderedJson on_error;
  // What a rollback deploys again: {"template": text, "parameters": {p:
  // {"value"}} without the secure ones, "secureParameters": [names]}.
  // Secure values are never stored: the server keeps them in memory only
  // (api/deployments.h). Never in az's form or any answer.
  OrderedJson source;
  friend bool operator==(const Deployment&, const Deployment&) = default;
};

// Azure's rule: 1 to 64 characters matching ^[-\w._()]+$.
Status ValidateDeploymentName(std::string_view name);

// Storage form (nlohmann::ordered_json text keeps the order of outputs).
OrderedJson DeploymentToJson(const Deployment& d);
Result<Deployment> DeploymentFromJson(const OrderedJson& json);

// az's forms: the deployment object ({"id", "name", "type":
// "Microsoft.Resources/deployments", "resourceGroup", "properties": {...}})
// and `deployment operation group list`'s entries.
OrderedJson DeploymentToAzJson(const Deployment& d, const std::string& subscription_id);
OrderedJson OperationsToAzJson(const Deployment& d, const std::string& subscription_id);

// A resource of a group, as its last deployment put it. `body` is the
// evaluated resource (sku, kind, plan, tags, properties, ...) without its
// secure values (the deployment runner leaves those out), so a redeploy
// compares against it and what-if shows it.
struct ArmResource {
  std::string id;    // "/subscriptions/S/resourceGroups/G/providers/NS/TYPE/NAME"
  std::string group;
  std::string type;  // "Microsoft.Network/loadBalancers"
  std::string name;  // "lb", or "parent/child" for a child resource
  std::string api_version;
  std::string location;
  OrderedJson body = OrderedJson::object();
  std::string deployment;  // the deployment that last put it
  TimePoint changed_at;
  friend bool operator==(const ArmResource&, const ArmResource&) = default;
};

OrderedJson ArmResourceToJson(const ArmResource& r);  // storage form
Result<ArmResource> ArmResourceFromJson(const OrderedJson& json);

// How stores key names and IDs that Azure compares without case: ASCII
// lower case.
std::string StoreKey(std::string_view name_or_id);

// Azure keeps at most this many deployments in a group's history and
// deletes the oldest to make room for a new one.
inline constexpr size_t kMaxDeploymentsPerGroup = 800;

// "PT26.2091817S" from milliseconds ("PT0.042S", "PT1M5.5S", "PT1H0M0S").
std::string IsoDuration(int64_t ms);

}  // namespace dspool
