#include "api/api.h"

#include "api/api_internal.h"
#include "api/storage.h"
#include "model/agent_config.h"

namespace dspool {

using namespace api_internal;

Result<Response> Api::RouteAgent(const Request& r, const InstanceId& id) {
  using C = const Call&;
  static const ApiRoute kRoutes[] = {
      {"GET", "/v1/agent/config", [](Api& a, C c) { return a.AgentConfigFor(InstanceId(c.actor)); }},
      {"POST", "/v1/agent/report", [](Api& a, C c) { return a.AgentReport(InstanceId(c.actor), c.request); }},
      {"GET", "/v1/agent/keys/{}", [](Api& a, C c) { return a.AgentKeys(UserName(c.args[0])); }},
      {"GET", "/v1/agent/extensions", [](Api& a, C c) { return a.AgentExtensions(InstanceId(c.actor)); }},
      {"POST", "/v1/agent/mounts",
       [](Api& a, C c) { return a.storage_->MountForInstance(InstanceId(c.actor), c.request); }},
  };
  const std::vector<std::string> p = Split(r.path);
  if (p.size() < 3 || p[0] != "v1" || p[1] != "agent") return NotFound("no agent resource at " + r.path);
  DSP_ASSIGN_OR_RETURN(Instance instance, store_.GetInstance(id));
  DSP_ASSIGN_OR_RETURN(Pool pool, store_.GetPool(instance.pool));
  // The channel's socket belongs to the instance's root, and only it may
  // speak here: not a user of the instance, not another pool's instance.
  if (!r.peer.is_unix || r.peer.uid != static_cast<uid_t>(pool.id_base)) {
    return PermissionDenied("the channel of instance " + id.value() + " serves its root only (host uid " +
                            std::to_string(pool.id_base) + "), not peer uid " + std::to_string(r.peer.uid));
  }
  // The instance is the actor on its own channel.
  return Dispatch(kRoutes, std::size(kRoutes), r, id.value(), "no agent resource at " + r.method + " " + r.path);
}

Result<Response> Api::AgentConfigFor(const InstanceId& id) {
  DSP_ASSIGN_OR_RETURN(Instance instance, store_.GetInstance(id));
  DSP_ASSIGN_OR_RETURN(Pool pool, store_.GetPool(instance.pool));
  DSP_ASSIGN_OR_RETURN(HostKey key, hooks_.ReadHostKey(instance.pool));
  DSP_ASSIGN_OR_RETURN(auto users, store_.ListUsers());
  AgentConfig config;
  config.instance_id = id.value();
  config.pool = pool.name().value();
  config.hostname = InstanceHostname(pool.name(), instance.index);
  config.address = instance.address;
  if (pool.spec.share.type == ShareType::kBind) config.share_mount_path = pool.spec.share.mount_path;
  config.jupyter = pool.spec.jupyter.has_value();
  for (const User& u : users) {
    config.users.push_back({u.name.value(), u.uid, u.admin, u.password_hash, u.ssh_keys});
  }
  config.host_private_key = key.private_key;
  config.host_public_key = key.public_key;
  if (auto v = store_.GetMeta(kUsersVersion); v.ok()) config.config_version = std::stoll(*v);
  return JsonOk(200, AgentConfigToJson(config));
}

// The pool's customData and extensions with their files, protected
// settings included: this channel is the only place they go.
Result<Response> Api::AgentExtensions(const InstanceId& id) {
  DSP_ASSIGN_OR_RETURN(Instance instance, store_.GetInstance(id));
  DSP_ASSIGN_OR_RETURN(Pool pool, store_.GetPool(instance.pool));
  AgentProvisioning provisioning{pool.spec.custom_data, {}};
  for (const ExtensionSpec& e : pool.spec.extensions) {
    DSP_ASSIGN_OR_RETURN(std::vector<ExtensionFile> files, hooks_.ReadExtensionFiles(pool.name(), e));
    provisioning.extensions.push_back({e, std::move(files)});
  }
  return JsonOk(200, AgentProvisioningToJson(provisioning));
}

Result<Response> Api::AgentReport(const InstanceId& id, const Request& r) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  DSP_ASSIGN_OR_RETURN(InstanceReport report, ParseInstanceReport(body));
  report.received_at = clock_.Now();
  hooks_.RecordReport(id, report);
  // An error makes the agent send them again with its next report.
  if (!report.notebook_exits.empty()) DSP_RETURN_IF_ERROR(RecordNotebookExits(id, report));
  int64_t version = 0;
  if (auto v = store_.GetMeta(kUsersVersion); v.ok()) version = std::stoll(*v);
  return JsonOk(200, {{"configVersion", version}});
}

Status Api::RecordNotebookExits(const InstanceId& id, const InstanceReport& report) {
  DSP_ASSIGN_OR_RETURN(Instance instance, store_.GetInstance(id));
  WriteBatch batch;
  std::vector<std::string> descriptions;
  for (size_t i = 0; i < report.notebook_exits.size(); ++i) {
    const NotebookExit& e = report.notebook_exits[i];
    if (!store_.GetUser(UserName(e.user)).ok()) {
      return InvalidArgument("report.notebookExits[" + std::to_string(i) + "].user: '" + e.user +
                             "' is not a pool user");
    }
    descriptions.push_back(DescribeNotebookExit(e, report.memory_limit_bytes));
    batch.Add(WriteBatch::AppendEvent{
        Event{0, clock_.Now(), "agent:" + id.value(), e.out_of_memory() ? "notebook.oom" : "notebook.exit",
              "user/" + e.user,
              "the notebook server of " + e.user + " in pool " + instance.pool.value() + " on instance " + id.value() +
                  " (pid " + std::to_string(e.pid) + ", port " + std::to_string(e.port) + ") " + descriptions.back()}});
  }
  DSP_RETURN_IF_ERROR(store_.Write(batch));
  for (size_t i = 0; i < report.notebook_exits.size(); ++i) {
    hooks_.NotebookExited(instance.pool, id, report.notebook_exits[i], descriptions[i]);
  }
  return Status::Ok();
}

Result<Response> Api::AgentKeys(const UserName& user) {
  DSP_ASSIGN_OR_RETURN(User u, store_.GetUser(user));
  return JsonOk(200, {{"keys", u.ssh_keys}});
}

}  // namespace dspool
