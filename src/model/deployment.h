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
// Reusing a deployment's name replaces its record, as on Azure. Values
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

// "PT26.2091817S" from milliseconds ("PT0.042S", "PT1M5.5S", "PT1H0M0S").
std::string IsoDuration(int64_t ms);

}  // namespace dspool
