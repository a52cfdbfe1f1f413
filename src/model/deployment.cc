#include "model/deployment.h"

#include <cctype>
#include <cstdio>

#include "base/strings.h"

namespace dspool {

namespace {

bool IsGroupChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '(' || c == ')';
}

std::string GroupId(const std::string& subscription_id, const std::string& group) {
  return "/subscriptions/" + subscription_id + "/resourceGroups/" + group;
}

}  // namespace

Status ValidateResourceGroupName(std::string_view name) {
  if (name.empty() || name.size() > 90) {
    return InvalidArgument("resource group name '" + std::string(name) + "': 1 to 90 characters");
  }
  for (char c : name) {
    if (!IsGroupChar(c)) {
      return InvalidArgument("resource group name '" + std::string(name) +
                             "': only letters, digits, '.', '_', '-', '(' and ')' are allowed");
    }
  }
  if (name.back() == '.') return InvalidArgument("resource group name '" + std::string(name) + "' may not end in '.'");
  return Status::Ok();
}

Status ValidateLocation(std::string_view location) {
  if (location.empty() || location.size() > 64) return InvalidArgument("location '" + std::string(location) + "': 1 to 64 characters");
  for (char c : location) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return InvalidArgument("location '" + std::string(location) + "': letters, digits and '-' only");
    }
  }
  return Status::Ok();
}

Json ResourceGroupToJson(const ResourceGroup& g) {
  Json tags = Json::array();
  for (const auto& [k, v] : g.tags) tags.push_back(Json::array({k, v}));
  return {{"name", g.name}, {"location", g.location}, {"tags", tags}, {"createdAt", ToUnixMillis(g.created_at)}};
}

Result<ResourceGroup> ResourceGroupFromJson(const Json& json) {
  try {
    ResourceGroup g;
    g.name = json.at("name").get<std::string>();
    g.location = json.at("location").get<std::string>();
    for (const Json& t : json.at("tags")) g.tags.emplace_back(t.at(0).get<std::string>(), t.at(1).get<std::string>());
    g.created_at = FromUnixMillis(json.at("createdAt").get<int64_t>());
    return g;
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("resource group record: ") + e.what());
  }
}

OrderedJson ResourceGroupToAzJson(const ResourceGroup& g, const std::string& subscription_id) {
  OrderedJson tags = OrderedJson::object();
  for (const auto& [k, v] : g.tags) tags[k] = v;
  return OrderedJson{{"id", GroupId(subscription_id, g.name)},
                     {"location", g.location},
                     {"managedBy", nullptr},
                     {"name", g.name},
                     {"properties", {{"provisioningState", "Succeeded"}}},
                     {"tags", tags},
                     {"type", "Microsoft.Resources/resourceGroups"}};
}

std::string_view ProvisioningStateName(ProvisioningState s) {
  switch (s) {
    case ProvisioningState::kAccepted: return "Accepted";
    case ProvisioningState::kRunning: return "Running";
    case ProvisioningState::kSucceeded: return "Succeeded";
    case ProvisioningState::kFailed: return "Failed";
    case ProvisioningState::kCanceled: return "Canceled";
  }
  return "";
}

Result<ProvisioningState> ParseProvisioningState(std::string_view name) {
  for (ProvisioningState s : {ProvisioningState::kAccepted, ProvisioningState::kRunning, ProvisioningState::kSucceeded,
                              ProvisioningState::kFailed, ProvisioningState::kCanceled}) {
    if (ProvisioningStateName(s) == name) return s;
  }
  return InvalidArgument("'" + std::string(name) + "' is not a provisioning state");
}

bool IsTerminal(ProvisioningState s) {
  return s == ProvisioningState::kSucceeded || s == ProvisioningState::kFailed || s == ProvisioningState::kCanceled;
}

Status ValidateDeploymentName(std::string_view name) {
  if (name.empty()) return InvalidArgument("DeploymentNameInvalidCharacters: the deployment name is empty");
  if (name.size() > 64) {
    return InvalidArgument("DeploymentNameLengthLimitExceeded: the deployment name '" + std::string(name) +
                           "' is " + std::to_string(name.size()) + " characters long; at most 64 are allowed");
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' && c != '(' && c != ')') {
      return InvalidArgument("DeploymentNameInvalidCharacters: the deployment name '" + std::string(name) +
                             "' may hold only letters, digits, '-', '_', '.', '(' and ')'");
    }
  }
  return Status::Ok();
}

std::string IsoDuration(int64_t ms) {
  if (ms < 0) ms = 0;
  const int64_t hours = ms / 3'600'000, minutes = ms / 60'000 % 60, seconds = ms / 1000 % 60, millis = ms % 1000;
  std::string out = "PT";
  if (hours) out += std::to_string(hours) + "H";
  if (hours || minutes) out += std::to_string(minutes) + "M";
  out += std::to_string(seconds);
  if (millis) {
    char fraction[8];
    std::snprintf(fraction, sizeof fraction, ".%03d", static_cast<int>(millis));
    std::string f = fraction;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out + "S";
}

OrderedJson DeploymentToJson(const Deployment& d) {
  OrderedJson ops = OrderedJson::array();
  for (const DeploymentOperation& o : d.operations) {
    ops.push_back({{"operationId", o.operation_id},
                   {"provisioningOperation", o.provisioning_operation},
                   {"state", ProvisioningStateName(o.state)},
                   {"timestamp", ToUnixMillis(o.timestamp)},
                   {"durationMs", o.duration_ms},
                   {"resourceId", o.resource_id},
                   {"resourceType", o.resource_type},
                   {"resourceName", o.resource_name},
                   {"statusCode", o.status_code},
                   {"error", o.error}});
  }
  return {{"group", d.group},
          {"name", d.name},
          {"state", ProvisioningStateName(d.state)},
          {"mode", d.mode},
          {"timestamp", ToUnixMillis(d.timestamp)},
          {"durationMs", d.duration_ms},
          {"correlationId", d.correlation_id},
          {"templateHash", d.template_hash},
          {"templateLink", d.template_link},
          {"parameters", d.parameters},
          {"outputs", d.outputs},
          {"outputResources", d.output_resources},
          {"error", d.error},
          {"operations", ops},
          {"onErrorDeployment", d.on_error},
          {"source", d.source}};
}

Result<Deployment> DeploymentFromJson(const OrderedJson& json) {
  try {
    Deployment d;
    d.group = json.at("group").get<std::string>();
    d.name = json.at("name").get<std::string>();
    DSP_ASSIGN_OR_RETURN(d.state, ParseProvisioningState(json.at("state").get<std::string>()));
    d.mode = json.at("mode").get<std::string>();
    d.timestamp = FromUnixMillis(json.at("timestamp").get<int64_t>());
    d.duration_ms = json.at("durationMs").get<int64_t>();
    d.correlation_id = json.at("correlationId").get<std::string>();
    d.template_hash = json.at("templateHash").get<std::string>();
    d.template_link = json.at("templateLink").get<std::string>();
    d.parameters = json.at("parameters");
    d.outputs = json.at("outputs");
    d.output_resources = json.at("outputResources").get<std::vector<std::string>>();
    d.error = json.at("error");
    d.on_error = json.value("onErrorDeployment", OrderedJson());
    d.source = json.value("source", OrderedJson());
    for (const OrderedJson& o : json.at("operations")) {
      DeploymentOperation op;
      op.operation_id = o.at("operationId").get<std::string>();
      op.provisioning_operation = o.at("provisioningOperation").get<std::string>();
      DSP_ASSIGN_OR_RETURN(op.state, ParseProvisioningState(o.at("state").get<std::string>()));
      op.timestamp = FromUnixMillis(o.at("timestamp").get<int64_t>());
      op.duration_ms = o.at("durationMs").get<int64_t>();
      op.resource_id = o.at("resourceId").get<std::string>();
      op.resource_type = o.at("resourceType").get<std::string>();
      op.resource_name = o.at("resourceName").get<std::string>();
      op.status_code = o.at("statusCode").get<std::string>();
      op.error = o.at("error");
      d.operations.push_back(std::move(op));
    }
    return d;
  } catch (const OrderedJson::exception& e) {
    return InvalidArgument(std::string("deployment record: ") + e.what());
  }
}

OrderedJson DeploymentToAzJson(const Deployment& d, const std::string& subscription_id) {
  const std::string id = GroupId(subscription_id, d.group) + "/providers/Microsoft.Resources/deployments/" + d.name;
  OrderedJson resources = OrderedJson::array();
  for (const std::string& r : d.output_resources) resources.push_back({{"id", r}, {"resourceGroup", d.group}});
  OrderedJson props{{"correlationId", d.correlation_id},
                    {"debugSetting", nullptr},
                    {"dependencies", OrderedJson::array()},
                    {"duration", IsoDuration(d.duration_ms)},
                    {"error", d.error},
                    {"mode", d.mode},
                    {"onErrorDeployment", d.on_error},
                    {"outputResources", resources},
                    {"outputs", d.outputs.empty() ? OrderedJson(nullptr) : d.outputs},
                    {"parameters", d.parameters},
                    {"parametersLink", nullptr},
                    {"providers", OrderedJson::array()},
                    {"provisioningState", ProvisioningStateName(d.state)},
                    {"templateHash", d.template_hash},
                    {"templateLink", d.template_link.empty() ? OrderedJson(nullptr) : OrderedJson{{"uri", d.template_link}}},
                    {"timestamp", FormatTime(d.timestamp)},
                    {"validatedResources", nullptr}};
  return OrderedJson{{"id", id}, {"location", nullptr}, {"name", d.name}, {"properties", props},
                     {"resourceGroup", d.group}, {"tags", nullptr}, {"type", "Microsoft.Resources/deployments"}};
}

OrderedJson OperationsToAzJson(const Deployment& d, const std::string& subscription_id) {
  const std::string base = GroupId(subscription_id, d.group) + "/providers/Microsoft.Resources/deployments/" + d.name;
  OrderedJson out = OrderedJson::array();
  for (const DeploymentOperation& o : d.operations) {
    OrderedJson props{{"duration", IsoDuration(o.duration_ms)},
                      {"provisioningOperation", o.provisioning_operation},
                      {"provisioningState", ProvisioningStateName(o.state)},
                      {"statusCode", o.status_code},
                      {"statusMessage", o.error.is_null() ? OrderedJson(nullptr) : OrderedJson{{"error", o.error}}},
                      {"targetResource", {{"id", o.resource_id}, {"resourceType", o.resource_type}, {"resourceName", o.resource_name}}},
                      {"timestamp", FormatTime(o.timestamp)},
                      {"trackingId", d.correlation_id}};
    out.push_back({{"id", base + "/operations/" + o.operation_id}, {"operationId", o.operation_id}, {"properties", props}});
  }
  return out;
}

OrderedJson ArmResourceToJson(const ArmResource& r) {
  return {{"id", r.id},
          {"group", r.group},
          {"type", r.type},
          {"name", r.name},
          {"apiVersion", r.api_version},
          {"location", r.location},
          {"body", r.body},
          {"deployment", r.deployment},
          {"changedAt", ToUnixMillis(r.changed_at)}};
}

Result<ArmResource> ArmResourceFromJson(const OrderedJson& json) {
  try {
    ArmResource r;
    r.id = json.at("id").get<std::string>();
    r.group = json.at("group").get<std::string>();
    r.type = json.at("type").get<std::string>();
    r.name = json.at("name").get<std::string>();
    r.api_version = json.at("apiVersion").get<std::string>();
    r.location = json.at("location").get<std::string>();
    r.body = json.at("body");
    r.deployment = json.at("deployment").get<std::string>();
    r.changed_at = FromUnixMillis(json.at("changedAt").get<int64_t>());
    return r;
  } catch (const OrderedJson::exception& e) {
    return InvalidArgument(std::string("resource record: ") + e.what());
  }
}

std::string StoreKey(std::string_view name_or_id) { return ToLowerAscii(name_or_id); }

}  // namespace dspool
