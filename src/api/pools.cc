#include "api/api.h"

#include <algorithm>

#include "api/api_internal.h"
#include "identity/password.h"
#include "reconcile/planner.h"

namespace dspool {

using namespace api_internal;

Json Api::InstanceJson(const Instance& i, const Pool* pool) {
  Json j = InstanceToJson(i);
  j["hostname"] = InstanceHostname(i.pool, i.index);
  j["createdAt"] = FormatTime(i.created_at);
  j["phaseSince"] = FormatTime(i.phase_since);
  auto report = hooks_.LastReport(i.id);
  if (report) {
    Json rj = InstanceReportToJson(*report);
    rj["receivedAt"] = FormatTime(report->received_at);
    j["report"] = rj;
  } else {
    j["report"] = nullptr;
  }
  if (auto health = hooks_.InstanceHealth(i.id)) j["health"] = InstanceHealthToJson(*health);
  if (i.phase == InstancePhase::kReady) {
    auto open = hooks_.OpenSessions({i.id});
    if (auto it = open.find(i.id); it != open.end()) j["openSessions"] = it->second;
  }
  if (pool && pool->spec.load_balancer) {
    // Port start+k of a NAT pool reaches the instance with index k; a
    // standby's slot, once a scale-out takes it.
    Json ports = Json::array();
    for (const NatPool& nat : pool->spec.load_balancer->nat_pools) {
      if (i.index >= 0 && i.index < nat.size() && !i.standby) {
        ports.push_back({{"natPool", nat.name}, {"port", nat.frontend_port_start + i.index}});
      }
    }
    j["natPorts"] = ports;
  }
  return j;
}

Result<Json> Api::PoolJson(const Pool& p) {
  DSP_ASSIGN_OR_RETURN(auto instances, store_.ListInstances(p.name()));
  Json list = Json::array();
  for (const Instance& i : instances) list.push_back(InstanceJson(i, &p));
  Json j = {{"name", p.name().value()},
           {"state", PoolStateName(p.state)},
           {"instanceCount", p.spec.instance_count},
           {"generation", p.generation},
           {"idBase", p.id_base},
           {"createdAt", FormatTime(p.created_at)},
           {"updatedAt", FormatTime(p.updated_at)},
           {"spec", PoolSpecToJson(p.spec, Secrets::kRedact)},
           {"bridge", BridgeName(p.name())},
           {"gateway", FormatIpv4(GatewayAddress(p.spec.network))},
           {"instances", list}};
  Json frontends = Json::array();
  const std::string address = p.spec.load_balancer ? p.spec.load_balancer->frontend_address : "0.0.0.0";
  if (const auto& lb = p.spec.load_balancer) {
    for (const LbRule& rule : lb->rules) {
      frontends.push_back({{"rule", rule.name},
                           {"address", address},
                           {"port", rule.frontend_port},
                           {"backendPort", rule.backend_port}});
    }
  }
  // The gateway's own HTTPS entry: it routes each user to their server.
  if (const auto& jupyter = p.spec.jupyter) {
    frontends.push_back({{"rule", "Jupyter"}, {"address", address}, {"port", jupyter->frontend_port}, {"https", true}});
  }
  if (!frontends.empty()) j["frontends"] = frontends;
  return j;
}

Result<Response> Api::ListPools() {
  DSP_ASSIGN_OR_RETURN(auto pools, store_.ListPools());
  Json list = Json::array();
  for (const Pool& p : pools) {
    DSP_ASSIGN_OR_RETURN(Json j, PoolJson(p));
    list.push_back(std::move(j));
  }
  return JsonOk(200, {{"pools", list}});
}

Result<Response> Api::GetPool(const PoolName& name) {
  DSP_ASSIGN_OR_RETURN(Pool pool, store_.GetPool(name));
  DSP_ASSIGN_OR_RETURN(Json j, PoolJson(pool));
  return JsonOk(200, j);
}

Result<Response> Api::CreatePool(const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  DSP_ASSIGN_OR_RETURN(PoolSpec spec, ReadPoolSpec(body));
  if (spec.autoscale) {
    return InvalidArgument(
        "autoscale: a pool's autoscale setting is kept but not executed yet (issue 16); today it comes from a "
        "template's Microsoft.Insights/autoscaleSettings, with a warning saying so");
  }
  DSP_RETURN_IF_ERROR(HashAdminPassword(spec.admin));
  DSP_ASSIGN_OR_RETURN(Pool created, CreatePoolFromSpec(spec, actor));
  DSP_ASSIGN_OR_RETURN(Json j, PoolJson(created));
  return JsonOk(201, j);
}

Result<PoolSpec> Api::ReadPoolSpec(const Json& json) {
  DSP_ASSIGN_OR_RETURN(PoolSpec spec, ParsePoolSpec(json));
  AdminUserSpec& admin = spec.admin;
  DSP_RETURN_IF_ERROR(ValidateUserName(admin.name).WithPrefix("adminUser.name"));
  if (!admin.ssh_public_key.empty()) {
    auto key = NormalizeSshPublicKey(admin.ssh_public_key);
    if (!key.ok()) return key.status().WithPrefix("adminUser.sshPublicKey");
    admin.ssh_public_key = *key;
  }
  if (!admin.password.empty()) {
    DSP_RETURN_IF_ERROR(ValidatePassword(admin.password).WithPrefix("adminUser.password"));
  } else if (!admin.password_hash.empty()) {
    DSP_RETURN_IF_ERROR(ValidatePasswordHash(admin.password_hash).WithPrefix("adminUser.passwordHash"));
  }
  return spec;
}

Status Api::HashAdminPassword(AdminUserSpec& admin) {
  if (admin.password.empty()) return Status::Ok();
  auto hash = HashPassword(admin.password);
  admin.password.assign(admin.password.size(), '\0');
  admin.password.clear();
  if (!hash.ok()) return hash.status();
  admin.password_hash = *hash;
  return Status::Ok();
}

Result<Pool> Api::CreatePoolFromSpec(const PoolSpec& spec, const std::string& actor,
                                     const ExtensionArtifacts& artifacts) {
  const AdminUserSpec& admin = spec.admin;
  // Before the lock: fetching may take a while, and writes nothing.
  DSP_ASSIGN_OR_RETURN(auto files, hooks_.FetchExtensionFiles(spec.extensions, artifacts));
  std::lock_guard lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(auto pools, store_.ListPools());
  for (const Pool& p : pools) {
    if (p.name() == spec.name) return AlreadyExists("pool '" + spec.name.value() + "' already exists");
  }
  DSP_RETURN_IF_ERROR(hooks_.CheckPoolHost(spec, pools));

  WriteBatch batch;
  Pool pool;
  pool.spec = spec;
  pool.created_at = pool.updated_at = clock_.Now();
  DSP_ASSIGN_OR_RETURN(pool.id_base, AllocateIdBase(pools));
  batch.Add(WriteBatch::CreatePool{pool});
  batch.Add(WriteBatch::AppendEvent{MakeEvent(
      actor, "pool.create", "pool/" + spec.name.value(),
      std::to_string(spec.instance_count) + " instances of " + std::to_string(spec.size.vcpus) + " vCPU, " +
          std::to_string(spec.size.memory_mib) + " MiB on " + spec.network.subnet.ToString())});

  // The admin user: created, or given the spec's key and password.
  auto existing = store_.GetUser(UserName(admin.name));
  if (existing.ok()) {
    User u = *existing;
    if (!admin.ssh_public_key.empty() &&
        std::find(u.ssh_keys.begin(), u.ssh_keys.end(), admin.ssh_public_key) == u.ssh_keys.end()) {
      u.ssh_keys.push_back(admin.ssh_public_key);
    }
    if (!admin.password_hash.empty()) u.password_hash = admin.password_hash;
    u.admin = true;
    if (!(u == *existing)) {
      batch.Add(WriteBatch::UpdateUser{u});
      batch.Add(WriteBatch::AppendEvent{
          MakeEvent(actor, "user.update", "user/" + admin.name, "admin of pool " + spec.name.value())});
      DSP_RETURN_IF_ERROR(BumpUsersVersion(batch).status());
    }
  } else if (existing.status().code() == StatusCode::kNotFound) {
    DSP_ASSIGN_OR_RETURN(std::vector<DeletedUser> deleted, ReadDeletedUsers(store_));
    for (const DeletedUser& d : deleted) {
      if (d.name.value() == admin.name) return ReAddRefused(d, "adminUser.name");
    }
    DSP_ASSIGN_OR_RETURN(auto users, store_.ListUsers());
    int64_t hwm = 0;
    if (auto h = store_.GetMeta(kUidHighWater); h.ok()) hwm = std::stoll(*h);
    DSP_ASSIGN_OR_RETURN(int64_t uid, AllocateUid(users, options_.uid_range, hwm));
    User u;
    u.name = UserName(admin.name);
    u.uid = uid;
    if (!admin.ssh_public_key.empty()) u.ssh_keys.push_back(admin.ssh_public_key);
    u.password_hash = admin.password_hash;
    u.admin = true;
    u.created_at = clock_.Now();
    batch.Add(WriteBatch::CreateUser{u});
    batch.Add(WriteBatch::PutMeta{kUidHighWater, std::to_string(uid)});
    batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "user.create", "user/" + admin.name,
                                                "uid " + std::to_string(uid) + ", admin of pool " + spec.name.value())});
    DSP_RETURN_IF_ERROR(BumpUsersVersion(batch).status());
  } else {
    return existing.status();
  }

  DSP_RETURN_IF_ERROR(hooks_.PreparePool(spec, files));
  DSP_RETURN_IF_ERROR(store_.Write(batch));
  hooks_.PoolsChanged();
  return store_.GetPool(spec.name);
}

Result<Response> Api::ScalePool(const PoolName& name, const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  const bool has_count = reader.Has("instanceCount"), has_standby = reader.Has("standbyCount");
  int64_t count = 0, standby = 0;
  bool force = false;
  reader.Optional("instanceCount", &count);
  reader.Optional("standbyCount", &standby);
  reader.Optional("force", &force);
  DSP_RETURN_IF_ERROR(reader.Finish());
  if (!has_count && !has_standby) return InvalidArgument("give instanceCount, standbyCount or both");
  DSP_ASSIGN_OR_RETURN(Pool scaled, ScalePoolTo(name, has_count ? std::optional(count) : std::nullopt,
                                                has_standby ? std::optional(standby) : std::nullopt, force, actor));
  DSP_ASSIGN_OR_RETURN(Json j, PoolJson(scaled));
  return JsonOk(200, j);
}

Result<Pool> Api::ScalePoolTo(const PoolName& name, std::optional<int64_t> new_count,
                              std::optional<int64_t> new_standby, bool force, const std::string& actor) {
  const bool has_count = new_count.has_value();
  if (new_standby && (*new_standby < 0 || *new_standby > kMaxInstancesPerPool)) {
    return InvalidArgument("standbyCount: must be between 0 and " + std::to_string(kMaxInstancesPerPool));
  }
  std::lock_guard lock(write_mu_);
  for (int attempt = 1;; ++attempt) {
    DSP_ASSIGN_OR_RETURN(Pool pool, store_.GetPool(name));
    if (pool.state == PoolState::kDeleting) return FailedPrecondition("pool '" + name.value() + "' is being deleted");
    const int64_t count = new_count.value_or(pool.spec.instance_count);
    const int64_t standby = new_standby.value_or(pool.spec.standby_count);
    int64_t max = MaxInstanceCount(pool.spec);
    if (count < 0 || count > max) {
      return InvalidArgument("instanceCount: must be between 0 and " + std::to_string(max) + " for pool '" +
                             name.value() + "'");
    }
    Pool next = pool;
    next.spec.instance_count = count;
    next.spec.standby_count = standby;
    next.generation++;
    next.updated_at = clock_.Now();
    // "2 → 3", "standbys 0 → 1", or both.
    std::string detail;
    if (has_count || standby == pool.spec.standby_count) {
      detail = std::to_string(pool.spec.instance_count) + " → " + std::to_string(count);
    }
    if (standby != pool.spec.standby_count) {
      detail += (detail.empty() ? "" : ", ") + std::string("standbys ") + std::to_string(pool.spec.standby_count) +
                " → " + std::to_string(standby);
    }
    WriteBatch batch;
    batch.Add(WriteBatch::UpdatePool{next, pool.generation});
    if (force) {
      // Force: what scale-in takes goes at once, sessions or not.
      DSP_ASSIGN_OR_RETURN(std::vector<Instance> instances, store_.ListInstances(name));
      std::vector<InstanceId> forced = ForcedScaleIn(instances, count);
      for (const InstanceId& id : forced) {
        auto it = std::find_if(instances.begin(), instances.end(), [&](const Instance& i) { return i.id == id; });
        Instance marked = *it;
        marked.scale_in = ScaleIn::kNow;
        batch.Add(WriteBatch::UpdateInstance{marked, *it});
      }
      detail += ", forced: " + (forced.empty() ? std::string("no instance to remove")
                                               : std::to_string(forced.size()) + " removed at once");
    }
    batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "pool.scale", "pool/" + name.value(), detail)});
    Status s = store_.Write(batch);
    if (s.ok()) {
      hooks_.PoolsChanged();
      return next;
    }
    // The reconcile loop moved a record meanwhile: read again.
    if (s.code() != StatusCode::kAborted || attempt == kMaxRecordUpdateAttempts) return s;
  }
}

Result<Pool> Api::ApplyAutoscale(const PoolName& name, int64_t seen, int64_t target,
                                 std::optional<TimePoint> last_action, int64_t cooldown_seconds,
                                 const std::string& summary) {
  std::lock_guard lock(write_mu_);
  for (int attempt = 1;; ++attempt) {
    DSP_ASSIGN_OR_RETURN(Pool pool, store_.GetPool(name));
    if (pool.state == PoolState::kDeleting) return FailedPrecondition("pool '" + name.value() + "' is being deleted");
    if (!pool.spec.autoscale) return FailedPrecondition("pool '" + name.value() + "' has no autoscale setting now");
    if (pool.spec.instance_count != seen) {
      return Aborted("pool '" + name.value() + "' was scaled to " + std::to_string(pool.spec.instance_count) +
                     " meanwhile");
    }
    if (target < 0 || target > MaxInstanceCount(pool.spec)) {
      return InvalidArgument("instanceCount " + std::to_string(target) + " is beyond pool '" + name.value() + "'");
    }
    Pool next = pool;
    next.spec.instance_count = target;
    if (target != seen) next.generation++;
    next.updated_at = clock_.Now();
    next.autoscale_last_action = last_action;
    next.autoscale_cooldown_seconds = cooldown_seconds;
    WriteBatch batch;
    batch.Add(WriteBatch::UpdatePool{next, pool.generation});
    batch.Add(WriteBatch::AppendEvent{MakeEvent("autoscale", "autoscale.scale", "pool/" + name.value(), summary)});
    Status s = store_.Write(batch);
    if (s.ok()) {
      hooks_.PoolsChanged();
      return next;
    }
    if (s.code() != StatusCode::kAborted || attempt == kMaxRecordUpdateAttempts) return s;
  }
}

Result<Pool> Api::UpdatePoolSpec(const PoolName& name, const std::string& kind,
                                 const std::function<std::string(PoolSpec&)>& change, const std::string& actor) {
  std::lock_guard lock(write_mu_);
  for (int attempt = 1;; ++attempt) {
    DSP_ASSIGN_OR_RETURN(Pool pool, store_.GetPool(name));
    if (pool.state == PoolState::kDeleting) return FailedPrecondition("pool '" + name.value() + "' is being deleted");
    Pool next = pool;
    const std::string detail = change(next.spec);
    if (next.spec == pool.spec) return pool;
    next.generation++;
    next.updated_at = clock_.Now();
    WriteBatch batch;
    batch.Add(WriteBatch::UpdatePool{next, pool.generation});
    batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, kind, "pool/" + name.value(), detail)});
    Status s = store_.Write(batch);
    if (s.ok()) {
      hooks_.PoolsChanged();
      return next;
    }
    // The reconcile loop moved a record meanwhile: read again.
    if (s.code() != StatusCode::kAborted || attempt == kMaxRecordUpdateAttempts) return s;
  }
}

Result<Pool> Api::SetPoolSecurity(const PoolName& name, const NetworkSecurity& security,
                                  const std::vector<Ipv4Subnet>& address_space, const std::string& actor) {
  auto describe = [](const std::optional<SecurityGroup>& g) {
    return g ? "'" + g->name + "' (" + std::to_string(g->rules.size()) + " rules)" : std::string("none");
  };
  return UpdatePoolSpec(name, "pool.security", [&](PoolSpec& spec) {
    spec.network.security = security;
    spec.network.address_space = address_space;
    return "subnet group " + describe(security.subnet) + ", NIC group " + describe(security.nic);
  }, actor);
}

Result<Pool> Api::SetPoolAutoscale(const PoolName& name, const std::optional<AutoscaleSetting>& setting,
                                   const std::string& actor) {
  return UpdatePoolSpec(name, "pool.autoscale", [&](PoolSpec& spec) {
    spec.autoscale = setting;
    if (!setting) return std::string("removed");
    return "'" + setting->name + "', " + std::to_string(setting->profiles.size()) + " profiles" +
           (setting->enabled ? "" : ", disabled") + "; kept, not executed yet";
  }, actor);
}

std::vector<InstanceId> Api::ForcedScaleIn(const std::vector<Instance>& instances, int64_t count) {
  std::vector<const Instance*> live;
  std::vector<InstanceId> out;
  for (const Instance& i : instances) {
    if (!IsLive(i.phase) || i.standby) continue;
    if (i.scale_in == ScaleIn::kNo) {
      live.push_back(&i);
    } else if (i.scale_in == ScaleIn::kDrain) {
      out.push_back(i.id);  // scale-in was waiting for its sessions
    }
  }
  std::vector<InstanceId> ids;
  for (const Instance* i : live) ids.push_back(i->id);
  std::vector<const Instance*> order = ScaleInOrder(live, hooks_.OpenSessions(ids));
  for (int64_t k = 0; k < static_cast<int64_t>(order.size()) - count; ++k) out.push_back(order[k]->id);
  return out;
}

Result<Response> Api::DeletePool(const PoolName& name, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Pool pool, MarkPoolDeleting(name, actor));
  DSP_ASSIGN_OR_RETURN(Json j, PoolJson(pool));
  return JsonOk(202, j);
}

Result<Pool> Api::MarkPoolDeleting(const PoolName& name, const std::string& actor) {
  std::lock_guard lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(Pool pool, store_.GetPool(name));
  if (pool.state != PoolState::kDeleting) {
    int64_t generation = pool.generation;
    pool.state = PoolState::kDeleting;
    pool.generation++;
    pool.updated_at = clock_.Now();
    WriteBatch batch;
    batch.Add(WriteBatch::UpdatePool{pool, generation});
    batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "pool.delete", "pool/" + name.value(), "")});
    DSP_RETURN_IF_ERROR(store_.Write(batch));
    hooks_.PoolsChanged();
  }
  return pool;
}

Result<Response> Api::ListInstances(const Request& r) {
  std::optional<PoolName> pool;
  if (r.query.count("pool")) {
    pool = PoolName(r.query.at("pool"));
    DSP_RETURN_IF_ERROR(store_.GetPool(*pool).status());
  }
  DSP_ASSIGN_OR_RETURN(auto instances, store_.ListInstances(pool));
  DSP_ASSIGN_OR_RETURN(auto pools, store_.ListPools());
  std::map<PoolName, const Pool*> by_name;
  for (const Pool& p : pools) by_name[p.name()] = &p;
  Json list = Json::array();
  for (const Instance& i : instances) {
    auto it = by_name.find(i.pool);
    list.push_back(InstanceJson(i, it == by_name.end() ? nullptr : it->second));
  }
  return JsonOk(200, {{"instances", list}});
}

Result<Response> Api::SetDraining(const InstanceId& id, bool draining, const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  DSP_RETURN_IF_ERROR(JsonReader(body, "").Finish());  // takes no fields
  std::lock_guard lock(write_mu_);
  for (int attempt = 1;; ++attempt) {
    DSP_ASSIGN_OR_RETURN(Instance read, store_.GetInstance(id));
    if (read.phase == InstancePhase::kDeleting) {
      return FailedPrecondition("instance '" + id.value() + "' of pool '" + read.pool.value() +
                                "' is being deleted" + (read.reason.empty() ? "" : " (" + read.reason + ")") +
                                "; it cannot be " + (draining ? "drained" : "put back in rotation"));
    }
    if (draining && read.standby) {
      return FailedPrecondition("instance '" + id.value() + "' is a standby of pool '" + read.pool.value() +
                                "': it gets no connection until a scale-out takes it; lower the pool's "
                                "standbyCount to remove it");
    }
    if (read.draining == draining) break;
    Instance next = read;
    next.draining = draining;
    WriteBatch batch;
    batch.Add(WriteBatch::UpdateInstance{next, read});
    batch.Add(WriteBatch::AppendEvent{
        MakeEvent(actor, draining ? "instance.drain" : "instance.undrain", "instance/" + id.value(),
                  draining ? "no new connections; open ones go on" : "back in rotation")});
    Status s = store_.Write(batch);
    if (s.ok()) {
      hooks_.PoolsChanged();
      break;
    }
    if (s.code() != StatusCode::kAborted || attempt == kMaxRecordUpdateAttempts) return s;
  }
  DSP_ASSIGN_OR_RETURN(Instance instance, store_.GetInstance(id));
  auto pool = store_.GetPool(instance.pool);
  return JsonOk(200, InstanceJson(instance, pool.ok() ? &*pool : nullptr));
}

}  // namespace dspool
