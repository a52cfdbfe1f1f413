#include "deploy/deployer.h"

#include <algorithm>
#include <set>

#include "base/log.h"
#include "model/event.h"

namespace dspool::deploy {
namespace {

using arm::ArmError;
using arm::Value;

// The account's name when `id` is a storage account's resource ID
// (".../providers/Microsoft.Storage/storageAccounts/NAME", without case).
std::optional<std::string> StorageAccountName(const std::string& id) {
  const std::string marker = "/providers/microsoft.storage/storageaccounts/";
  const std::string lower = ToLowerAscii(id);
  const size_t at = lower.find(marker);
  if (at == std::string::npos) return std::nullopt;
  const std::string name = lower.substr(at + marker.size());
  if (name.empty() || name.find('/') != std::string::npos) return std::nullopt;
  return name;
}

// The resource group a resource ID names ("/subscriptions/S/resourceGroups/G/...").
std::string GroupOfId(const std::string& id) {
  const std::string marker = "/resourcegroups/";
  const size_t at = ToLowerAscii(id).find(marker);
  if (at == std::string::npos) return "";
  const size_t start = at + marker.size();
  return id.substr(start, id.find('/', start) - start);
}

Value KeysValue(const StorageAccount& a) { return Value::parse(StorageKeysToAzJson(a).dump()); }

// reference() and list*() on the group's resources as the deployment has
// them so far.
class DeployedReader final : public arm::ResourceReader {
 public:
  // `list_keys` answers listKeys() on a storage account's ID.
  DeployedReader(const Deployed& deployed, std::function<Result<Value>(const std::string& id)> list_keys)
      : deployed_(deployed), list_keys_(std::move(list_keys)) {}
  Result<Value> Reference(const std::string& id, bool full) override {
    auto it = deployed_.find(StoreKey(id));
    if (it == deployed_.end()) {
      return NotFound("ResourceNotFound: the resource '" + id + "' was not found in the resource group");
    }
    if (full) return it->second;
    const Value* props = arm::FindMember(it->second, "properties");
    return props ? *props : Value::object();
  }
  Result<Value> List(const std::string& function, const std::string& id, const Value&) override {
    if (function == "listkeys" && StorageAccountName(id)) return list_keys_(id);
    return InvalidArgument(function + "('" + id + "'): this resource type has no " + function + " action on this host");
  }

 private:
  const Deployed& deployed_;
  std::function<Result<Value>(const std::string& id)> list_keys_;
};

ArmError ErrorOf(const Status& s, const std::string& code, const arm::ExpandedResource* at = nullptr) {
  ArmError e;
  e.code = code;
  e.message = s.message();
  if (at) {
    e.target = at->id;
    e.path = at->path;
    e.at = at->at;
  }
  return e;
}

// az's top-level error of a failed deployment.
OrderedJson DeploymentFailed(const std::vector<OrderedJson>& details) {
  OrderedJson d = OrderedJson::array();
  for (const OrderedJson& e : details) d.push_back(e);
  return OrderedJson{{"code", "DeploymentFailed"},
                     {"message",
                      "At least one resource deployment operation failed. Please list deployment operations for "
                      "details."},
                     {"details", d}};
}

// Every non-empty string in `v` (a template's Value or a pool spec's Json).
template <typename J>
void CollectStrings(const J& v, std::vector<std::string>* out) {
  if (v.is_string()) {
    if (!v.template get_ref<const std::string&>().empty()) out->push_back(v.template get<std::string>());
  } else if (v.is_structured()) {
    for (const J& child : v) CollectStrings(child, out);
  }
}

bool HoldsSecret(const Json& v, const std::vector<std::string>& secrets) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    return std::any_of(secrets.begin(), secrets.end(), [&](const std::string& x) { return s.find(x) != s.npos; });
  }
  return v.is_structured() && std::any_of(v.begin(), v.end(), [&](const Json& c) { return HoldsSecret(c, secrets); });
}

// A scale set's customData and extensions (its pool spec's,
// model/extension.h). A public setting that holds a secret (the sample's
// commandToExecute, which carries the storage key) becomes a protected one,
// so the pool never shows it; and customData and every protected setting
// are secrets of the plan, so no record, output or what-if shows them.
void ProtectExtensionSecrets(Json& spec, std::vector<std::string>* secrets) {
  if (spec.contains("customData")) CollectStrings(spec["customData"], secrets);  // Azure never shows it either
  if (!spec.contains("extensions")) return;
  for (Json& e : spec["extensions"]) {
    Json& props = e["properties"];
    Json& settings = props["settings"];
    Json moved = props.value("protectedSettings", Json::object());
    for (const char* key : {"commandToExecute", "script", "fileUris"}) {
      if (!settings.contains(key) || !HoldsSecret(settings[key], *secrets) || moved.contains(key)) continue;
      moved[key] = settings[key];
      settings.erase(key);
    }
    if (!moved.empty()) props["protectedSettings"] = moved;
    CollectStrings(moved, secrets);
  }
}

// A template from an http(s) URL: its scale set's relative fileUris become
// URLs next to it. (A local template's are read from the files sent with
// it, when the pool is made.)
void ResolveNextToTemplate(Json& spec, const std::string& template_link) {
  if (template_link.rfind("http://", 0) != 0 && template_link.rfind("https://", 0) != 0) return;
  if (!spec.contains("extensions")) return;
  for (Json& e : spec["extensions"]) {
    Json& props = e["properties"];
    for (const char* settings : {"settings", "protectedSettings"}) {
      if (!props.contains(settings) || !props[settings].contains("fileUris")) continue;
      for (Json& uri : props[settings]["fileUris"]) {
        if (uri.is_string() && IsRelativeFileUri(uri.get<std::string>())) {
          uri = ResolveNextTo(template_link, uri.get<std::string>());
        }
      }
    }
  }
}

// A scale set whose relative fileUris were not sent: az's error with one
// detail per file (the path its target), so a client can send them and
// try again (dspool's CLI does, for a local template).
ArmError MissingArtifactsError(const Status& s, const std::vector<std::string>& missing,
                               const arm::ExpandedResource& r) {
  ArmError e = ErrorOf(s, "MissingTemplateArtifacts", &r);
  for (const std::string& path : missing) {
    ArmError d;
    d.code = "MissingTemplateArtifact";
    d.target = path;
    d.message = "the fileUri '" + path + "' is relative to the template, and no file was sent for it";
    e.details.push_back(std::move(d));
  }
  return e;
}

int64_t MillisBetween(TimePoint from, TimePoint to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

// The StoreKeys of the resources the template has: those it deploys and
// those it only reads ("existing"), which Complete mode keeps.
std::set<std::string> TemplateIds(const Plan& plan) {
  std::set<std::string> ids;
  for (const PlannedResource& p : plan.resources) ids.insert(StoreKey(p.resource.id));
  for (const arm::ExpandedResource& r : plan.tmpl->resources()) {
    if (r.existing) ids.insert(StoreKey(r.id));
  }
  return ids;
}

}  // namespace

namespace {

// `secrets` longest first.
Value RedactSorted(const Value& v, const std::vector<std::string>& secrets) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    for (const std::string& secret : secrets) {
      for (size_t at = s.find(secret); at != std::string::npos; at = s.find(secret, at + 8)) {
        s.replace(at, secret.size(), "[secure]");
      }
    }
    return s;
  }
  if (v.is_object()) {
    Value out = Value::object();
    for (const auto& [k, child] : v.items()) out[k] = RedactSorted(child, secrets);
    return out;
  }
  if (v.is_array()) {
    Value out = Value::array();
    for (const Value& child : v) out.push_back(RedactSorted(child, secrets));
    return out;
  }
  return v;
}

}  // namespace

Value Redact(const Value& v, const std::vector<std::string>& secrets) {
  // The longest first: a secret that holds another (a protected command
  // with the storage key in it) is hidden whole.
  std::vector<std::string> longest_first = secrets;
  std::stable_sort(longest_first.begin(), longest_first.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return RedactSorted(v, longest_first);
}

namespace {

// The pool an autoscale setting resource targets (the last segment of its
// targetResourceUri, as its pool is named).
std::string AutoscaleTarget(const ArmResource& r) {
  std::string uri;
  if (r.body.contains("properties") && r.body["properties"].is_object()) {
    for (const auto& [key, value] : r.body["properties"].items()) {
      if (EqualsIgnoreCase(key, "targetResourceUri") && value.is_string()) uri = value.get<std::string>();
    }
  }
  return ToLowerAscii(uri.substr(uri.rfind('/') + 1));
}

}  // namespace

arm::Value SecureParameterValues(const DeployRequest& request, const Plan& plan) {
  const std::set<std::string> secure = plan.tmpl->SecureParameters();
  arm::Value out = arm::Value::object();
  for (const auto& [name, value] : request.parameters.items()) {
    for (const std::string& s : secure) {
      if (EqualsIgnoreCase(s, name)) out[name] = value;
    }
  }
  return out;
}

Deployer::Deployer(StateStore& store, const Clock& clock, PoolControl& pools, StorageControl& storage,
                   const Catalog& catalog, DeployerOptions options, std::function<std::string()> new_guid)
    : store_(store), clock_(clock), pools_(pools), storage_(storage), catalog_(catalog), options_(std::move(options)),
      new_guid_(std::move(new_guid)) {}

Status Deployer::PlanAccount(const DeployRequest& request, StorageOp& op, Plan* plan) {
  DSP_ASSIGN_OR_RETURN(std::optional<StorageAccount> existing, storage_.FindAccount(request.group, op.account));
  StorageAccount account;
  if (existing) {
    account = *existing;
  } else {
    account.group = request.group;
    account.name = op.account;
    account.created_at = clock_.Now();
    op.keys = storage_.NewKeys();
    for (size_t i = 0; i < op.keys.size(); ++i) account.keys[i] = StorageKey{op.keys[i], account.created_at};
  }
  for (const StorageKey& k : account.keys) plan->secrets.push_back(k.value);
  plan->accounts[StoreKey(op.account)] = std::move(account);
  return Status::Ok();
}

arm::DeploymentContext Deployer::ContextFor(const ResourceGroup& group, const DeployRequest& request) const {
  arm::DeploymentContext ctx;
  ctx.subscription_id = options_.subscription_id;
  ctx.tenant_id = options_.tenant_id;
  ctx.resource_group = group.name;
  ctx.location = group.location;
  Value tags = Value::object();
  for (const auto& [k, v] : group.tags) tags[k] = v;
  ctx.resource_group_tags = tags;
  ctx.deployment_name = request.name;
  ctx.mode = request.mode;
  if (!request.template_link.empty()) ctx.template_uri = request.template_link;
  ctx.now_unix_seconds = ToUnixMillis(clock_.Now()) / 1000;
  ctx.new_guid = new_guid_;
  return ctx;
}

Result<Deployed> Deployer::StoredResources(const std::string& group) {
  DSP_ASSIGN_OR_RETURN(std::vector<ArmResource> stored, store_.ListResources(group));
  Deployed out;
  for (const ArmResource& r : stored) {
    Value state = r.body;
    state["apiVersion"] = r.api_version;
    state["location"] = r.location;
    out[StoreKey(r.id)] = std::move(state);
  }
  return out;
}

Result<Value> Deployer::ListKeys(const std::string& id, Plan* plan) {
  const std::string name = *StorageAccountName(id);
  if (auto it = plan->accounts.find(StoreKey(name)); it != plan->accounts.end()) return KeysValue(it->second);
  const std::string group = GroupOfId(id);
  DSP_ASSIGN_OR_RETURN(std::optional<StorageAccount> found, storage_.FindAccount(group, name));
  if (!found) return NotFound("ResourceNotFound: the storage account '" + name + "' was not found in resource group '" + group + "'");
  for (const StorageKey& k : found->keys) plan->secrets.push_back(k.value);
  Value keys = KeysValue(*found);
  plan->accounts[StoreKey(name)] = std::move(*found);
  return keys;
}

Result<Plan> Deployer::Validate(const DeployRequest& request, ArmError* error) {
  auto fail = [&](ArmError e) -> Status {
    *error = e;
    return InvalidArgument(e.code + ": " + e.message);
  };
  auto group = store_.GetResourceGroup(request.group);
  if (!group.ok()) {
    if (group.status().code() != StatusCode::kNotFound) return group.status();
    ArmError e;
    e.code = "ResourceGroupNotFound";
    e.message = "Resource group '" + request.group + "' could not be found.";
    *error = e;
    return NotFound(e.code + ": " + e.message);
  }
  if (Status s = ValidateDeploymentName(request.name); !s.ok()) return fail(ErrorOf(s, "InvalidDeploymentName"));
  if (request.mode != "Incremental" && request.mode != "Complete") {
    return fail(ErrorOf(InvalidArgument("the mode '" + request.mode + "' is not Incremental or Complete"),
                        "InvalidDeploymentMode"));
  }

  Plan plan;
  plan.context = ContextFor(*group, request);
  arm::TemplateLoad load;
  load.text = request.template_text;
  load.source = request.template_source;
  load.parameters = request.parameters;
  load.context = plan.context;
  DSP_ASSIGN_OR_RETURN(plan.tmpl, arm::Template::Load(load, error));
  for (const std::string& name : plan.tmpl->SecureParameters()) CollectStrings(plan.tmpl->Parameter(name), &plan.secrets);

  DSP_ASSIGN_OR_RETURN(Deployed deployed, StoredResources(request.group));
  // Types first: a template with one resource this host cannot make fails
  // before anything is evaluated.
  for (size_t i : plan.tmpl->DeployOrder()) {
    const arm::ExpandedResource& r = plan.tmpl->resources()[i];
    if (!r.existing && !IsSupportedType(r.type)) {
      return fail(ErrorOf(InvalidArgument("the resource type '" + r.type +
                                          "' is not supported on this host (docs/templates.md lists the types)"),
                          "NoRegisteredProviderFound", &r));
    }
  }
  DeployedReader reader(deployed, [&](const std::string& id) { return ListKeys(id, &plan); });
  for (size_t i : plan.tmpl->DeployOrder()) {
    const arm::ExpandedResource& r = plan.tmpl->resources()[i];
    if (r.existing) {
      if (!deployed.count(StoreKey(r.id))) {
        return fail(ErrorOf(NotFound("the resource '" + r.id + "' marked existing was not found"), "ResourceNotFound", &r));
      }
      continue;
    }
    DSP_ASSIGN_OR_RETURN(Value body, plan.tmpl->ResourceBody(i, reader, error));
    auto realized = Realize(r, body, deployed, options_.host, catalog_);
    if (!realized.ok()) return fail(ErrorOf(realized.status(), "InvalidTemplateDeployment", &r));
    if (realized->pool_spec) {
      ResolveNextToTemplate(*realized->pool_spec, request.template_link);
      ProtectExtensionSecrets(*realized->pool_spec, &plan.secrets);
      std::vector<std::string> missing;
      auto checked = pools_.CheckPool(*realized->pool_spec, r.id, request.artifacts, &missing);
      if (!checked.ok() && !missing.empty()) return fail(MissingArtifactsError(checked.status(), missing, r));
      if (!checked.ok()) return fail(ErrorOf(checked.status(), "InvalidTemplateDeployment", &r));
      realized->pool_spec = std::move(*checked);
    }
    if (realized->autoscale) {
      const Json* planned = nullptr;
      for (const PlannedResource& p : plan.resources) {
        if (p.realized.pool_spec && (*p.realized.pool_spec)["name"] == realized->autoscale->pool) {
          planned = &*p.realized.pool_spec;
        }
      }
      Status s = pools_.CheckAutoscale(realized->autoscale->pool, realized->autoscale->setting, planned);
      if (!s.ok()) return fail(ErrorOf(s, "InvalidTemplateDeployment", &r));
    }
    if (realized->storage) {
      StorageOp& op = *realized->storage;
      Status s;
      if (op.kind == StorageOp::Kind::kAccount) {
        s = PlanAccount(request, op, &plan);
      } else if (!plan.accounts.count(StoreKey(op.account))) {
        // A share of an account the group has from before.
        StorageAccount in_group{.group = request.group, .name = op.account};
        s = ListKeys(StorageAccountId(options_.subscription_id, in_group), &plan).status();
      }
      if (!s.ok()) return fail(ErrorOf(s, "InvalidTemplateDeployment", &r));
    }
    deployed[StoreKey(r.id)] = realized->state;
    plan.warnings.insert(plan.warnings.end(), realized->warnings.begin(), realized->warnings.end());
    plan.resources.push_back(PlannedResource{r, std::move(body), std::move(*realized)});
  }
  return plan;
}

Result<std::vector<arm::ResourceChange>> Deployer::WhatIf(const DeployRequest& request, ArmError* error) {
  DSP_ASSIGN_OR_RETURN(Plan plan, Validate(request, error));
  DSP_ASSIGN_OR_RETURN(std::vector<ArmResource> stored, store_.ListResources(request.group));
  std::map<std::string, const ArmResource*> by_id;
  for (const ArmResource& r : stored) by_id[StoreKey(r.id)] = &r;
  std::vector<arm::ResourceChange> changes;
  const std::set<std::string> planned = TemplateIds(plan);
  for (const PlannedResource& p : plan.resources) {
    auto it = by_id.find(StoreKey(p.resource.id));
    const Value after = ToStored(request, p, plan.secrets).body;
    changes.push_back(arm::Compare(p.resource.id, p.resource.api_version,
                                   it == by_id.end() ? Value() : Value(it->second->body), after));
  }
  for (const ArmResource& r : stored) {
    if (planned.count(StoreKey(r.id))) continue;
    arm::ResourceChange c;
    c.resource_id = r.id;
    c.api_version = r.api_version;
    c.before = r.body;
    c.type = request.mode == "Complete" ? arm::ChangeType::kDelete : arm::ChangeType::kIgnore;
    changes.push_back(std::move(c));
  }
  return changes;
}

ArmResource Deployer::ToStored(const DeployRequest& request, const PlannedResource& p,
                               const std::vector<std::string>& secrets) const {
  ArmResource r;
  r.id = p.resource.id;
  r.group = request.group;
  r.type = p.resource.type;
  r.name = p.resource.name;
  r.api_version = p.resource.api_version;
  // The state reference() answers (runtime fields included), without the
  // members the envelope already holds.
  r.body = Redact(p.realized.state, secrets);
  for (const char* key : {"apiVersion", "location", "type", "name", "id"}) r.body.erase(key);
  if (const Value* location = arm::FindMember(p.body, "location"); location && location->is_string()) {
    r.location = location->get<std::string>();
  }
  r.deployment = request.name;
  r.changed_at = clock_.Now();
  return r;
}

void Deployer::Save(const Deployment& record, const std::optional<Event>& event) {
  WriteBatch batch;
  batch.Add(WriteBatch::PutDeployment{record});
  if (event) batch.Add(WriteBatch::AppendEvent{*event});
  // The deployment goes on: its resources are what matters, and the next
  // write of the record brings it up to date.
  if (Status s = store_.Write(batch); !s.ok()) {
    DSP_LOG(kError, "deploy") << "cannot record deployment '" << record.name << "' of group '" << record.group
                              << "': " << s;
  }
}

Deployment Deployer::NewRecord(const DeployRequest& request, const Plan& plan, ProvisioningState state) const {
  Deployment d;
  d.group = request.group;
  d.name = request.name;
  d.state = state;
  d.mode = request.mode;
  d.timestamp = clock_.Now();
  d.correlation_id = new_guid_();
  d.template_hash = plan.tmpl->TemplateHash();
  d.template_link = request.template_link;
  d.parameters = plan.tmpl->ParametersRecord();
  d.on_error = request.on_error;
  const arm::Value secure = SecureParameterValues(request, plan);
  OrderedJson kept = OrderedJson::object(), secure_names = OrderedJson::array();
  for (const auto& [name, value] : request.parameters.items()) {
    if (secure.contains(name)) secure_names.push_back(name);
    else kept[name] = OrderedJson::parse(value.dump());
  }
  d.source = OrderedJson{{"template", request.template_text}, {"parameters", kept}, {"secureParameters", secure_names}};
  return d;
}

Result<Deployment> Deployer::Start(const DeployRequest& request, const Plan& plan) {
  Deployment d = NewRecord(request, plan, ProvisioningState::kRunning);
  for (const PlannedResource& p : plan.resources) {
    std::string op_id;
    for (char c : new_guid_()) {
      if (c != '-' && op_id.size() < 16) op_id += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    d.operations.push_back(DeploymentOperation{.operation_id = op_id,
                                               .state = ProvisioningState::kAccepted,
                                               .timestamp = d.timestamp,
                                               .resource_id = p.resource.id,
                                               .resource_type = p.resource.type,
                                               .resource_name = p.resource.name});
  }
  Event e{.time = d.timestamp,
          .actor = request.actor,
          .action = "deployment.start",
          .subject = "group/" + request.group + "/deployment/" + request.name,
          .detail = std::to_string(plan.resources.size()) + " resources, " + request.mode + " mode, from " +
                    request.template_source};
  DSP_RETURN_IF_ERROR(store_.Write(WriteBatch().Add(WriteBatch::PutDeployment{d}).Add(WriteBatch::AppendEvent{e})));
  return d;
}

Deployment Deployer::Run(const DeployRequest& request, Plan plan, Deployment d, const std::atomic<bool>& cancelled) {
  const TimePoint started = d.timestamp;
  std::vector<OrderedJson> failures;
  auto finish = [&](ProvisioningState state) {
    d.state = state;
    d.timestamp = clock_.Now();
    d.duration_ms = MillisBetween(started, d.timestamp);
    if (state == ProvisioningState::kFailed) d.error = DeploymentFailed(failures);
    Event e{.time = d.timestamp,
            .actor = request.actor,
            .action = "deployment." + ToLowerAscii(std::string(ProvisioningStateName(state))),
            .subject = "group/" + request.group + "/deployment/" + request.name,
            .detail = failures.empty() ? "" : failures.front().value("message", "")};
    Save(d, e);
    return d;
  };

  for (size_t k = 0; k < plan.resources.size(); ++k) {
    if (cancelled.load()) {
      for (size_t j = k; j < d.operations.size(); ++j) d.operations[j].state = ProvisioningState::kCanceled;
      return finish(ProvisioningState::kCanceled);
    }
    const PlannedResource& p = plan.resources[k];
    DeploymentOperation& op = d.operations[k];
    const TimePoint op_start = clock_.Now();
    op.state = ProvisioningState::kRunning;
    op.timestamp = op_start;
    // Only a resource that takes time shows Running; the others go from
    // Accepted to their end in one write (each write is an fsync).
    if (p.realized.pool_spec) Save(d);

    Status s;
    std::string status_code = store_.GetResource(p.resource.id).ok() ? "OK" : "Created";
    if (p.realized.pool_spec) {
      auto applied = pools_.ApplyPool(*p.realized.pool_spec, p.resource.id, request.actor, request.artifacts);
      s = applied.status();
      if (s.ok()) {
        status_code = *applied;
        s = pools_.WaitReady((*p.realized.pool_spec)["name"].get<std::string>(),
                             (*p.realized.pool_spec)["instanceCount"].get<int64_t>(), options_.ready_timeout, cancelled);
      }
    } else if (p.realized.autoscale) {
      s = pools_.SetAutoscale(p.realized.autoscale->pool, p.realized.autoscale->setting, request.actor);
    } else if (p.realized.storage) {
      auto applied = storage_.ApplyStorage(request.group, *p.realized.storage, request.actor);
      s = applied.status();
      if (s.ok()) status_code = *applied;
    }
    op.timestamp = clock_.Now();
    op.duration_ms = MillisBetween(op_start, op.timestamp);
    if (s.ok()) {
      // The resource and its operation's end, in one write.
      Deployment next = d;
      next.operations[k].state = ProvisioningState::kSucceeded;
      next.operations[k].status_code = status_code;
      next.output_resources.push_back(p.resource.id);
      s = store_.Write(WriteBatch()
                           .Add(WriteBatch::PutResource{ToStored(request, p, plan.secrets)})
                           .Add(WriteBatch::PutDeployment{next}));
      if (s.ok()) {
        d = std::move(next);  // `op` refers into the old record: not used again
        continue;
      }
    }
    op.state = s.code() == StatusCode::kAborted ? ProvisioningState::kCanceled : ProvisioningState::kFailed;
    op.status_code = s.code() == StatusCode::kAlreadyExists || s.code() == StatusCode::kFailedPrecondition
                         ? "Conflict"
                         : "BadRequest";
    op.error = OrderedJson{{"code", s.code() == StatusCode::kDeadlineExceeded ? "ResourceDeploymentTimeout"
                                                                               : "ResourceDeploymentFailure"},
                           {"message", s.message()}};
    failures.push_back(op.error);
    for (size_t j = k + 1; j < d.operations.size(); ++j) d.operations[j].state = ProvisioningState::kCanceled;
    return finish(op.state == ProvisioningState::kCanceled ? ProvisioningState::kCanceled : ProvisioningState::kFailed);
  }

  // Complete mode: what the group holds and the template no longer has.
  if (request.mode == "Complete") {
    const std::set<std::string> planned = TemplateIds(plan);
    auto stored = store_.ListResources(request.group);
    for (const ArmResource& r : stored.value_or({})) {
      if (planned.count(StoreKey(r.id))) continue;
      DeploymentOperation op{.provisioning_operation = "Delete",
                             .state = ProvisioningState::kSucceeded,
                             .timestamp = clock_.Now(),
                             .resource_id = r.id,
                             .resource_type = r.type,
                             .resource_name = r.name,
                             .status_code = "OK"};
      Status s;
      if (EqualsIgnoreCase(r.type, "Microsoft.Compute/virtualMachineScaleSets")) {
        s = pools_.DeletePool(ToLowerAscii(r.name), request.actor);
      } else if (EqualsIgnoreCase(r.type, "Microsoft.Insights/autoscaleSettings")) {
        s = pools_.SetAutoscale(AutoscaleTarget(r), std::nullopt, request.actor);
      } else if (EqualsIgnoreCase(r.type, "Microsoft.Storage/storageAccounts") ||
                 EqualsIgnoreCase(r.type, "Microsoft.Storage/storageAccounts/fileServices/shares")) {
        s = storage_.DeleteStorage(request.group, r.type, r.name, request.actor);
      }
      if (s.code() == StatusCode::kNotFound) s = Status::Ok();
      if (s.ok()) s = store_.Write(WriteBatch().Add(WriteBatch::DeleteResource{r.id}));
      if (!s.ok()) {
        op.state = ProvisioningState::kFailed;
        op.status_code = "BadRequest";
        op.error = OrderedJson{{"code", "ResourceDeletionFailure"}, {"message", s.message()}};
        failures.push_back(op.error);
      }
      d.operations.push_back(std::move(op));
    }
    if (!failures.empty()) return finish(ProvisioningState::kFailed);
  }

  Deployed deployed;
  for (const PlannedResource& p : plan.resources) deployed[StoreKey(p.resource.id)] = p.realized.state;
  if (auto stored = StoredResources(request.group); stored.ok()) deployed.insert(stored->begin(), stored->end());
  DeployedReader reader(deployed, [&](const std::string& id) { return ListKeys(id, &plan); });
  ArmError error;
  auto outputs = plan.tmpl->Outputs(reader, &error);
  if (!outputs.ok()) {
    failures.push_back(error.empty() ? ErrorOf(outputs.status(), "InvalidTemplate").ToJson() : error.ToJson());
    return finish(ProvisioningState::kFailed);
  }
  d.outputs = OrderedJson::object();
  // An account's key in an output is shown as az would not: "[secure]".
  for (const auto& [name, out] : *outputs) {
    d.outputs[name] = OrderedJson{{"type", out.type}, {"value", Redact(out.value, plan.secrets)}};
  }
  return finish(ProvisioningState::kSucceeded);
}

}  // namespace dspool::deploy
