#include "api/deployments.h"

#include <cstdio>

#include "api/api_internal.h"
#include "api/storage.h"
#include "base/log.h"

namespace dspool {

using namespace api_internal;

namespace {

constexpr const char* kTenantId = "tenant_id";
constexpr std::string_view kLog = "deploy";

Response OrderedOk(int status, const OrderedJson& body) { return JsonResponse(status, body.dump()); }

// A failed validation: the ARM error as az prints it ({"error": {code,
// message, details, ...}}), or the Status when there is none (the store
// failed).
Result<Response> ArmFailure(const Status& s, const arm::ArmError& e) {
  if (e.empty()) return s;
  return JsonResponse(HttpStatusFor(s.code()), OrderedJson{{"error", e.ToJson()}}.dump());
}

// A deployment's `artifacts` (docs/api.md): {"relative/path": "base64"},
// the files of a local template's relative fileUris. Errors land in `reader`.
void ReadArtifacts(JsonReader& reader, deploy::DeployRequest* request) {
  const Json* artifacts = reader.Raw("artifacts");
  if (!artifacts) return;
  if (!artifacts->is_object()) return reader.Fail("artifacts", "must be an object of {\"relative/path\": \"base64\"}");
  if (request->template_link.rfind("http://", 0) == 0 || request->template_link.rfind("https://", 0) == 0) {
    return reader.Fail("artifacts", "a template from an http(s) URL has its relative fileUris next to it; send no files");
  }
  size_t total = 0;
  for (const auto& [path, text] : artifacts->items()) {
    const std::string file = "'" + path + "': ";
    std::optional<std::string> data = text.is_string() ? Base64Decode(text.get<std::string>()) : std::nullopt;
    if (!IsRelativeFileUri(path)) {
      return reader.Fail("artifacts", file + "is not a path relative to the template (segments of letters, digits, "
                                             "'-', '_' and '.'; no '..')");
    }
    if (!data) return reader.Fail("artifacts", file + "must be the file's contents in base64");
    if ((total += data->size()) > kMaxArtifactBytes) {
      return reader.Fail("artifacts", file + "the files sent pass " + std::to_string(kMaxArtifactBytes >> 20) +
                                          " MiB in all; put larger ones at a URL");
    }
    request->artifacts[path] = std::move(*data);
  }
}

Status GroupNotFound(const std::string& group) {
  return NotFound("ResourceGroupNotFound: Resource group '" + group + "' could not be found.");
}

// The pool spec without what a redeploy may change (the size, the network
// security groups and the address space their tags read) or may not see
// (the admin's password, hashed).
Json Comparable(const PoolSpec& spec) {
  Json j = PoolSpecToJson(spec, Secrets::kInclude);
  j.erase("instanceCount");
  j.erase("standbyCount");
  j["network"].erase("subnetSecurityGroup");
  j["network"].erase("nicSecurityGroup");
  j["network"].erase("addressSpace");
  j.erase("autoscale");  // the setting's own resource keeps it
  if (j.contains("adminUser")) {
    j["adminUser"].erase("passwordHash");
    j["adminUser"].erase("password");
  }
  return j;
}

}  // namespace

Deployments::Deployments(Api& api, StateStore& store, const Clock& clock, const DeploymentOptions& options)
    : api_(api), store_(store), clock_(clock), options_(options), random_(std::random_device{}()) {
  FailInterrupted();
}

Deployments::~Deployments() {
  std::lock_guard lock(mu_);
  for (Running& r : running_) r.cancelled = true;
  for (Running& r : running_) {
    if (r.thread.joinable()) r.thread.join();
  }
}

void Deployments::FailInterrupted() {
  auto groups = store_.ListResourceGroups();
  for (const ResourceGroup& g : groups.value_or({})) {
    auto deployments = store_.ListDeployments(g.name);
    for (Deployment d : deployments.value_or({})) {
      if (IsTerminal(d.state)) continue;
      d.state = ProvisioningState::kFailed;
      d.error = OrderedJson{{"code", "DeploymentFailed"},
                            {"message", "The server stopped while the deployment ran; deploy again to finish it."}};
      for (DeploymentOperation& op : d.operations) {
        if (!IsTerminal(op.state)) op.state = ProvisioningState::kCanceled;
      }
      if (Status s = store_.Write(WriteBatch().Add(WriteBatch::PutDeployment{d})); !s.ok()) {
        DSP_LOG(kError, kLog) << "cannot mark deployment " << g.name << "/" << d.name << " failed: " << s;
      }
    }
  }
}

std::string Deployments::NewGuid() {
  uint64_t a, b;
  {
    std::lock_guard lock(random_mu_);
    a = random_();
    b = random_();
  }
  // Version 4, variant 1 (RFC 4122).
  a = (a & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;
  b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;
  char out[37];
  std::snprintf(out, sizeof out, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xFFFF), static_cast<unsigned>(a & 0xFFFF),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFull));
  return out;
}

Result<std::string> Deployments::StableGuid(const std::string& meta_key) {
  auto value = store_.GetMeta(meta_key);
  if (value.ok()) return *value;
  if (value.status().code() != StatusCode::kNotFound) return value.status();
  std::string guid = NewGuid();
  DSP_RETURN_IF_ERROR(store_.Write(WriteBatch().Add(WriteBatch::PutMeta{meta_key, guid})));
  return guid;
}

Result<deploy::Deployer*> Deployments::GetDeployer() {
  {
    std::lock_guard lock(mu_);
    if (deployer_) return deployer_.get();
  }
  DSP_ASSIGN_OR_RETURN(std::string subscription, SubscriptionId());
  DSP_ASSIGN_OR_RETURN(std::string tenant, StableGuid(kTenantId));
  deploy::DeployerOptions opts{.subscription_id = subscription,
                               .tenant_id = tenant,
                               .host = options_.host,
                               .ready_timeout = options_.ready_timeout};
  std::lock_guard lock(mu_);
  if (!deployer_) {
    deployer_ = std::make_unique<deploy::Deployer>(store_, clock_, static_cast<deploy::PoolControl&>(*this),
                                                   *api_.storage_, options_.catalog, opts,
                                                   [this] { return NewGuid(); });
  }
  return deployer_.get();
}

Deployments::Running* Deployments::FindRunning(const std::string& group, const std::string& name) {
  const std::string key = RunKey(group, name);
  for (Running& r : running_) {
    if (r.key != key || r.done) continue;
    // Its record says it ended: the thread is only returning.
    auto record = store_.GetDeployment(group, name);
    if (record.ok() && IsTerminal(record->state)) {
      r.thread.join();
      r.done = true;
      r.joined = true;
      return nullptr;
    }
    return &r;
  }
  return nullptr;
}

void Deployments::Reap() {
  for (auto it = running_.begin(); it != running_.end();) {
    if (it->done) {
      if (!it->joined) it->thread.join();
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
}

// ---------------------------------------------------------------- groups

Result<Response> Deployments::PutGroup(const std::string& group, const Request& r, const std::string& actor) {
  DSP_RETURN_IF_ERROR(ValidateResourceGroupName(group));
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  std::string location;
  reader.Required("location", &location);
  const Json* tags = reader.Raw("tags");
  DSP_RETURN_IF_ERROR(reader.Finish());
  DSP_RETURN_IF_ERROR(ValidateLocation(location));
  ResourceGroup g{group, location, {}, clock_.Now()};
  DSP_ASSIGN_OR_RETURN(g.tags, ReadTags(tags));
  DSP_ASSIGN_OR_RETURN(std::string subscription, SubscriptionId());
  auto existing = store_.GetResourceGroup(group);
  int status = 201;
  if (existing.ok()) {
    // As Azure: a group stays where it is, and keeps its name's case.
    if (StoreKey(existing->location) != StoreKey(location)) {
      return AlreadyExists("InvalidResourceGroupLocation: Invalid resource group location '" + location +
                           "'. The Resource group already exists in location '" + existing->location + "'.");
    }
    g.name = existing->name;
    g.created_at = existing->created_at;
    if (!tags) g.tags = existing->tags;
    status = 200;
  } else if (existing.status().code() != StatusCode::kNotFound) {
    return existing.status();
  }
  DSP_RETURN_IF_ERROR(store_.Write(WriteBatch()
                                       .Add(WriteBatch::PutResourceGroup{g})
                                       .Add(WriteBatch::AppendEvent{api_.MakeEvent(
                                           actor, status == 201 ? "group.create" : "group.update", "group/" + g.name,
                                           "in " + location)})));
  return OrderedOk(status, ResourceGroupToAzJson(g, subscription));
}

Result<Response> Deployments::GetGroup(const std::string& group) {
  auto g = store_.GetResourceGroup(group);
  if (g.status().code() == StatusCode::kNotFound) return GroupNotFound(group);
  DSP_RETURN_IF_ERROR(g.status());
  DSP_ASSIGN_OR_RETURN(std::string subscription, SubscriptionId());
  return OrderedOk(200, ResourceGroupToAzJson(*g, subscription));
}

Result<Response> Deployments::ListGroups() {
  DSP_ASSIGN_OR_RETURN(std::vector<ResourceGroup> groups, store_.ListResourceGroups());
  DSP_ASSIGN_OR_RETURN(std::string subscription, SubscriptionId());
  OrderedJson list = OrderedJson::array();
  for (const ResourceGroup& g : groups) list.push_back(ResourceGroupToAzJson(g, subscription));
  return OrderedOk(200, OrderedJson{{"value", list}});
}

Result<Response> Deployments::DeleteGroup(const std::string& group, const std::string& actor) {
  auto g = store_.GetResourceGroup(group);
  if (g.status().code() == StatusCode::kNotFound) return GroupNotFound(group);
  DSP_RETURN_IF_ERROR(g.status());
  {
    DSP_ASSIGN_OR_RETURN(std::vector<Deployment> deployments, store_.ListDeployments(group));
    std::lock_guard lock(mu_);
    for (const Deployment& d : deployments) {
      if (FindRunning(group, d.name)) {
        return FailedPrecondition("the deployment '" + d.name + "' of resource group '" + group +
                                  "' is running; cancel it first");
      }
    }
  }
  {
    std::lock_guard lock(secure_mu_);
    const std::string prefix = RunKey(group, "");
    std::erase_if(secure_values_, [&](const auto& kv) { return kv.first.rfind(prefix, 0) == 0; });
  }
  DSP_ASSIGN_OR_RETURN(std::vector<ArmResource> resources, store_.ListResources(group));
  WriteBatch batch;
  for (const ArmResource& r : resources) {
    if (EqualsIgnoreCase(r.type, "Microsoft.Compute/virtualMachineScaleSets")) {
      DSP_RETURN_IF_ERROR(DeletePool(ToLowerAscii(r.name), actor));
    }
    batch.Add(WriteBatch::DeleteResource{r.id});
  }
  // Their shares are kept, soft-deleted (api/storage.h).
  DSP_ASSIGN_OR_RETURN(size_t accounts, api_.storage_->DeleteAccountsOf(g->name, actor));
  batch.Add(WriteBatch::DeleteResourceGroup{g->name});
  batch.Add(WriteBatch::AppendEvent{
      api_.MakeEvent(actor, "group.delete", "group/" + g->name,
                     std::to_string(resources.size()) + " resources, " + std::to_string(accounts) + " storage accounts")});
  DSP_RETURN_IF_ERROR(store_.Write(batch));
  return JsonOk(200, Json::object());
}

// ---------------------------------------------------------------- deployments

Result<deploy::DeployRequest> Deployments::ReadRequest(const std::string& group, const std::string& name,
                                                       const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  deploy::DeployRequest request;
  request.group = group;
  request.name = name;
  request.actor = actor;
  reader.Optional("mode", &request.mode);
  reader.Optional("templateLink", &request.template_link);
  reader.Optional("source", &request.template_source);
  const Json* tmpl = reader.Raw("template");
  const Json* parameters = reader.Raw("parameters");
  ReadArtifacts(reader, &request);
  JsonReader on_error = reader.Object("onErrorDeployment");
  std::string type, target;
  on_error.Optional("type", &type);
  on_error.Optional("deploymentName", &target);
  if (reader.ok() && reader.Has("onErrorDeployment")) {
    if (type != "LastSuccessful" && type != "SpecificDeployment") {
      on_error.Fail("type", "'" + type + "' is not LastSuccessful or SpecificDeployment");
    } else if ((type == "SpecificDeployment") != !target.empty()) {
      on_error.Fail("deploymentName", type == "SpecificDeployment" ? "is required with SpecificDeployment"
                                                                    : "is given only with SpecificDeployment");
    }
    request.on_error = OrderedJson{{"type", type}};
    if (!target.empty()) request.on_error["deploymentName"] = target;
  }
  DSP_RETURN_IF_ERROR(on_error.Finish());
  DSP_RETURN_IF_ERROR(reader.Finish());
  if (!tmpl) return InvalidArgument("template: is required (the template's text)");
  request.template_text = tmpl->is_string() ? tmpl->get<std::string>() : tmpl->dump();
  if (parameters) {
    if (!parameters->is_object()) return InvalidArgument("parameters: must be an object of {\"value\": ...}");
    request.parameters = arm::Value::parse(parameters->dump());
  }
  return request;
}

Result<Deployment> Deployments::RollbackTarget(const std::string& group, const std::string& name,
                                               const OrderedJson& on_error) {
  const std::string type = on_error.value("type", "");
  std::optional<Deployment> target;
  if (type == "SpecificDeployment") {
    const std::string wanted = on_error.value("deploymentName", "");
    auto d = store_.GetDeployment(group, wanted);
    if (d.status().code() == StatusCode::kNotFound) {
      return NotFound("DeploymentNotFound: the deployment '" + wanted +
                      "' to roll back to was not found in resource group '" + group + "'");
    }
    DSP_RETURN_IF_ERROR(d.status());
    if (EqualsIgnoreCase(d->name, name)) {
      return InvalidArgument("InvalidOnErrorDeployment: a deployment cannot roll back to itself");
    }
    if (d->state != ProvisioningState::kSucceeded) {
      return FailedPrecondition("InvalidOnErrorDeployment: the deployment '" + d->name + "' to roll back to is " +
                                std::string(ProvisioningStateName(d->state)) + ", not Succeeded");
    }
    target = std::move(*d);
  } else {
    DSP_ASSIGN_OR_RETURN(std::vector<Deployment> all, store_.ListDeployments(group));
    for (Deployment& d : all) {
      if (d.state != ProvisioningState::kSucceeded || EqualsIgnoreCase(d.name, name)) continue;
      if (!target || d.timestamp > target->timestamp) target = std::move(d);
    }
    if (!target) {
      return FailedPrecondition("InvalidOnErrorDeployment: resource group '" + group +
                                "' has no successful deployment (other than '" + name + "') to roll back to");
    }
  }
  if (!target->source.is_object() || !target->source.contains("template")) {
    return FailedPrecondition("InvalidOnErrorDeployment: the deployment '" + target->name +
                              "' was made before dspool kept deployments' templates; deploy it again first");
  }
  const OrderedJson secure = target->source.value("secureParameters", OrderedJson::array());
  std::lock_guard lock(secure_mu_);
  if (!secure.empty() && !secure_values_.count(RunKey(group, target->name))) {
    std::string names;
    for (const OrderedJson& n : secure) names += (names.empty() ? "" : ", ") + n.get<std::string>();
    return FailedPrecondition("InvalidOnErrorDeployment: the deployment '" + target->name +
                              "' has secure parameters (" + names +
                              "), which are never stored: the server keeps them in memory, and it has restarted "
                              "since that deployment ran; deploy it again first");
  }
  return *target;
}

void Deployments::RollBack(deploy::Deployer& deployer, const deploy::DeployRequest& failed,
                           const std::atomic<bool>& cancelled) {
  const std::string what = "rollback of " + failed.group + "/" + failed.name;
  auto target = RollbackTarget(failed.group, failed.name, failed.on_error);
  if (!target.ok()) {
    DSP_LOG(kError, kLog) << what << ": " << target.status();
    return;
  }
  deploy::DeployRequest again;
  again.group = failed.group;
  again.name = target->name;
  again.mode = target->mode;
  again.template_text = target->source["template"].get<std::string>();
  again.template_source = "the deployment '" + target->name + "' (rollback of '" + failed.name + "')";
  again.template_link = target->template_link;
  again.parameters = arm::Value::parse(target->source.value("parameters", OrderedJson::object()).dump());
  {
    std::lock_guard lock(secure_mu_);
    auto secure = secure_values_.find(RunKey(again.group, again.name));
    if (secure != secure_values_.end()) again.parameters.update(secure->second);
  }
  again.actor = failed.actor;
  arm::ArmError error;
  auto plan = deployer.Validate(again, &error);
  if (!plan.ok()) {
    DSP_LOG(kError, kLog) << what << " to '" << again.name << "': " << plan.status();
    return;
  }
  auto record = deployer.Start(again, *plan);
  if (!record.ok()) {
    DSP_LOG(kError, kLog) << what << " to '" << again.name << "': " << record.status();
    return;
  }
  Deployment final = deployer.Run(again, std::move(*plan), std::move(*record), cancelled);
  DSP_LOG(kInfo, kLog) << what << ": deployment " << final.group << "/" << final.name << " "
                       << ProvisioningStateName(final.state);
}

std::string Deployments::RunKey(const std::string& group, const std::string& name) {
  return StoreKey(group) + "/" + StoreKey(name);
}

Result<Response> Deployments::PutDeployment(const std::string& group, const std::string& name, const Request& r,
                                             const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(deploy::DeployRequest request, ReadRequest(group, name, r, actor));
  DSP_ASSIGN_OR_RETURN(deploy::Deployer * deployer, GetDeployer());
  {
    std::lock_guard lock(mu_);
    Reap();
    if (FindRunning(group, name)) {
      return FailedPrecondition("DeploymentActive: the deployment '" + name + "' is running; wait for it or cancel it");
    }
  }
  if (!request.on_error.is_null()) DSP_RETURN_IF_ERROR(RollbackTarget(group, name, request.on_error).status());
  arm::ArmError error;
  auto plan = deployer->Validate(request, &error);
  if (!plan.ok()) return ArmFailure(plan.status(), error);
  const std::vector<std::string> warnings = plan->warnings;
  DSP_ASSIGN_OR_RETURN(std::string subscription, SubscriptionId());
  Deployment record;
  {
    std::lock_guard lock(mu_);
    if (FindRunning(group, name)) {
      return FailedPrecondition("DeploymentActive: the deployment '" + name + "' is running; wait for it or cancel it");
    }
    DSP_ASSIGN_OR_RETURN(record, deployer->Start(request, *plan));
    {
      std::lock_guard secure_lock(secure_mu_);
      secure_values_[RunKey(group, name)] = deploy::SecureParameterValues(request, *plan);
    }
    Running& run = running_.emplace_back();
    run.key = RunKey(group, name);
    run.thread = std::thread([this, deployer, &run, request = std::move(request), plan = std::move(*plan),
                              record]() mutable {
      Deployment final = deployer->Run(request, std::move(plan), std::move(record), run.cancelled);
      DSP_LOG(kInfo, kLog) << "deployment " << final.group << "/" << final.name << ": "
                           << ProvisioningStateName(final.state);
      if (final.state == ProvisioningState::kFailed && !request.on_error.is_null()) {
        RollBack(*deployer, request, run.cancelled);
      }
      run.done = true;
    });
  }
  OrderedJson out = DeploymentToAzJson(record, subscription);
  out["warnings"] = warnings;
  return OrderedOk(201, out);
}

Result<Response> Deployments::Validate(const std::string& group, const std::string& name, const Request& r,
                                       const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(deploy::DeployRequest request, ReadRequest(group, name, r, actor));
  DSP_ASSIGN_OR_RETURN(deploy::Deployer * deployer, GetDeployer());
  arm::ArmError error;
  auto plan = deployer->Validate(request, &error);
  if (!plan.ok()) return ArmFailure(plan.status(), error);
  DSP_ASSIGN_OR_RETURN(std::string subscription, SubscriptionId());
  // az's answer: the deployment as it would start, with the resources it
  // validated.
  OrderedJson out =
      DeploymentToAzJson(deployer->NewRecord(request, *plan, ProvisioningState::kSucceeded), subscription);
  OrderedJson validated = OrderedJson::array();
  for (const deploy::PlannedResource& p : plan->resources) validated.push_back({{"id", p.resource.id}});
  out["properties"]["validatedResources"] = validated;
  out["warnings"] = plan->warnings;
  return OrderedOk(200, out);
}

Result<Response> Deployments::WhatIf(const std::string& group, const std::string& name, const Request& r,
                                     const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(deploy::DeployRequest request, ReadRequest(group, name, r, actor));
  DSP_ASSIGN_OR_RETURN(deploy::Deployer * deployer, GetDeployer());
  arm::ArmError error;
  auto changes = deployer->WhatIf(request, &error);
  if (!changes.ok()) return ArmFailure(changes.status(), error);
  DSP_ASSIGN_OR_RETURN(std::string subscription, SubscriptionId());
  auto g = store_.GetResourceGroup(group);
  OrderedJson out = arm::WhatIfJson(*changes);
  out["text"] = arm::WhatIfText(*changes, "/subscriptions/" + subscription + "/resourceGroups/" +
                                              (g.ok() ? g->name : group));
  return OrderedOk(200, out);
}

Result<Response> Deployments::GetDeployment(const std::string& group, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(Deployment d, store_.GetDeployment(group, name));
  DSP_ASSIGN_OR_RETURN(std::string subscription, SubscriptionId());
  return OrderedOk(200, DeploymentToAzJson(d, subscription));
}

Result<Response> Deployments::ListDeployments(const std::string& group) {
  DSP_RETURN_IF_ERROR(GetGroup(group).status());
  DSP_ASSIGN_OR_RETURN(std::vector<Deployment> list, store_.ListDeployments(group));
  DSP_ASSIGN_OR_RETURN(std::string subscription, SubscriptionId());
  OrderedJson out = OrderedJson::array();
  for (const Deployment& d : list) out.push_back(DeploymentToAzJson(d, subscription));
  return OrderedOk(200, OrderedJson{{"value", out}});
}

Result<Response> Deployments::ListOperations(const std::string& group, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(Deployment d, store_.GetDeployment(group, name));
  DSP_ASSIGN_OR_RETURN(std::string subscription, SubscriptionId());
  return OrderedOk(200, OrderedJson{{"value", OperationsToAzJson(d, subscription)}});
}

Result<Response> Deployments::DeleteDeployment(const std::string& group, const std::string& name) {
  {
    std::lock_guard lock(mu_);
    if (FindRunning(group, name)) {
      return FailedPrecondition("DeploymentActive: the deployment '" + name + "' is running; cancel it first");
    }
  }
  // Only the record goes; its resources stay (as on Azure).
  DSP_RETURN_IF_ERROR(store_.Write(WriteBatch().Add(WriteBatch::DeleteDeployment{group, name})));
  std::lock_guard lock(secure_mu_);
  secure_values_.erase(RunKey(group, name));
  return JsonOk(200, Json::object());
}

Result<Response> Deployments::Cancel(const std::string& group, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(Deployment d, store_.GetDeployment(group, name));
  std::lock_guard lock(mu_);
  if (Running* run = FindRunning(group, name)) {
    run->cancelled = true;
    return JsonOk(200, Json::object());
  }
  return FailedPrecondition("DeploymentCannotBeCancelled: the deployment '" + d.name + "' is " +
                            std::string(ProvisioningStateName(d.state)) + ", not running");
}

// ---------------------------------------------------------------- pools

Result<std::optional<Pool>> Deployments::OwnedPool(const PoolSpec& spec, const std::string& owner,
                                                   std::optional<int64_t>* scale) {
  auto existing = store_.GetPool(spec.name);
  if (existing.status().code() == StatusCode::kNotFound) return std::optional<Pool>();
  DSP_RETURN_IF_ERROR(existing.status());
  if (!store_.GetResource(owner).ok()) {
    return AlreadyExists("pool '" + spec.name.value() + "' already exists and was not made by this scale set");
  }
  if (existing->state == PoolState::kDeleting) {
    return FailedPrecondition("pool '" + spec.name.value() + "' is being deleted; deploy again when it is gone");
  }
  const Json before = Comparable(existing->spec), after = Comparable(spec);
  for (const auto& [key, value] : after.items()) {
    if (!before.contains(key) || before[key] != value) {
      return FailedPrecondition("pool '" + spec.name.value() + "': changing " + key +
                                " of an existing scale set is not supported; delete the group's pool and deploy again");
    }
  }
  for (const auto& [key, _] : before.items()) {
    if (!after.contains(key)) {
      return FailedPrecondition("pool '" + spec.name.value() + "': removing " + key +
                                " of an existing scale set is not supported; delete the group's pool and deploy again");
    }
  }
  if (existing->spec.instance_count != spec.instance_count) *scale = spec.instance_count;
  return std::optional<Pool>(*existing);
}

Result<Json> Deployments::CheckPool(const Json& json, const std::string& owner, const ExtensionArtifacts& artifacts,
                                    std::vector<std::string>* missing) {
  DSP_ASSIGN_OR_RETURN(PoolSpec spec, api_.ReadPoolSpec(json));
  std::optional<int64_t> scale;
  DSP_ASSIGN_OR_RETURN(std::optional<Pool> existing, OwnedPool(spec, owner, &scale));
  // The spec as it will be stored, the password hashed: what the host's
  // checks see (the gateway's reads it back) and what ApplyPool gets. An
  // existing pool keeps its admin's password: not hashed again.
  if (existing) {
    spec.admin.password.clear();
    spec.admin.password_hash = existing->spec.admin.password_hash;
    return PoolSpecToJson(spec, Secrets::kInclude);
  }
  DSP_RETURN_IF_ERROR(Api::HashAdminPassword(spec.admin));
  DSP_ASSIGN_OR_RETURN(std::vector<Pool> pools, store_.ListPools());
  DSP_RETURN_IF_ERROR(api_.hooks_.CheckPoolHost(spec, pools));
  // The extensions' files are fetched now too (and again when the pool is
  // made), so a URL that fails, fails the deployment before anything is.
  // (An existing pool has its files: it needs none sent.)
  *missing = MissingArtifacts(spec.extensions, artifacts);
  if (!missing->empty()) {
    std::string list;
    for (const std::string& path : *missing) list += (list.empty() ? "" : ", ") + path;
    return NotFound("pool '" + spec.name.value() + "': its fileUris " + list +
                    " are relative to the template, and the request sent no files for them: give the template as "
                    "an http(s) URL, or send them in `artifacts` (dspool's CLI does for a local template)");
  }
  DSP_RETURN_IF_ERROR(api_.hooks_.FetchExtensionFiles(spec.extensions, artifacts).status());
  return PoolSpecToJson(spec, Secrets::kInclude);
}

Result<std::string> Deployments::ApplyPool(const Json& json, const std::string& owner, const std::string& actor,
                                           const ExtensionArtifacts& artifacts) {
  DSP_ASSIGN_OR_RETURN(PoolSpec spec, api_.ReadPoolSpec(json));
  std::optional<int64_t> scale;
  DSP_ASSIGN_OR_RETURN(std::optional<Pool> existing, OwnedPool(spec, owner, &scale));
  if (existing) {
    if (existing->spec.network.security != spec.network.security ||
        existing->spec.network.address_space != spec.network.address_space) {
      DSP_RETURN_IF_ERROR(
          api_.SetPoolSecurity(spec.name, spec.network.security, spec.network.address_space, actor).status());
    }
    if (scale) DSP_RETURN_IF_ERROR(api_.ScalePoolTo(spec.name, scale, std::nullopt, false, actor).status());
    return std::string("OK");
  }
  DSP_RETURN_IF_ERROR(Api::HashAdminPassword(spec.admin));  // CheckPool's spec has the hash: nothing to do
  DSP_RETURN_IF_ERROR(api_.CreatePoolFromSpec(spec, actor, artifacts).status());
  return std::string("Created");
}

Status Deployments::WaitReady(const std::string& pool, int64_t count, std::chrono::milliseconds timeout,
                              const std::atomic<bool>& cancelled) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    DSP_ASSIGN_OR_RETURN(std::vector<Instance> instances, store_.ListInstances(PoolName(pool)));
    int64_t ready = 0;
    for (const Instance& i : instances) {
      if (i.standby) continue;
      // One beyond the count (a scale-in, a rollback's) is on its way out.
      if (i.phase == InstancePhase::kFailed && i.index < count) {
        return Unavailable("instance " + i.id.value() + " of pool '" + pool + "' failed: " + i.reason);
      }
      ready += i.phase == InstancePhase::kReady;
    }
    if (ready >= count) return Status::Ok();
    if (cancelled) return Aborted("the deployment was cancelled");
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceeded("pool '" + pool + "' has " + std::to_string(ready) + " of " + std::to_string(count) +
                              " instances Ready after " + std::to_string(timeout.count() / 1000) + " s");
    }
    std::this_thread::sleep_for(options_.ready_poll);
  }
}

Status Deployments::CheckAutoscale(const std::string& pool, const Json& setting, const Json* planned) {
  PoolSpec spec;
  if (planned) {
    DSP_ASSIGN_OR_RETURN(spec, ParsePoolSpec(*planned));
  } else {
    auto existing = store_.GetPool(PoolName(pool));
    if (existing.status().code() == StatusCode::kNotFound) {
      return NotFound("ResourceNotFound: the autoscale setting's target, pool '" + pool + "', does not exist");
    }
    DSP_RETURN_IF_ERROR(existing.status());
    spec = existing->spec;
  }
  return ParseAutoscaleSetting(setting, "properties", MaxInstanceCount(spec)).status();
}

Status Deployments::SetAutoscale(const std::string& pool, const std::optional<Json>& setting, const std::string& actor) {
  std::optional<AutoscaleSetting> parsed;
  if (setting) {
    auto existing = store_.GetPool(PoolName(pool));
    DSP_RETURN_IF_ERROR(existing.status());
    DSP_ASSIGN_OR_RETURN(parsed, ParseAutoscaleSetting(*setting, "properties", MaxInstanceCount(existing->spec)));
  }
  auto set = api_.SetPoolAutoscale(PoolName(pool), parsed, actor);
  // Removing the setting of a pool that is gone: nothing to do.
  if (!setting && set.status().code() == StatusCode::kNotFound) return Status::Ok();
  return set.status();
}

Status Deployments::DeletePool(const std::string& pool, const std::string& actor) {
  auto deleted = api_.MarkPoolDeleting(PoolName(pool), actor);
  return deleted.status().code() == StatusCode::kNotFound ? Status::Ok() : deleted.status();
}

}  // namespace dspool
