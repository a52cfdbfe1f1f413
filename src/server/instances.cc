#include "server/pool_server.h"

#include <sys/stat.h>

#include <future>
#include <utility>

#include "base/log.h"
#include "model/agent_config.h"
#include "os/children.h"
#include "os/fs.h"

namespace dspool {
namespace {

constexpr const char* kLog = "server";

}  // namespace

Result<uid_t> PoolServer::InstanceRoot(const InstanceId& id) {
  DSP_ASSIGN_OR_RETURN(Instance instance, store_->GetInstance(id));
  DSP_ASSIGN_OR_RETURN(Pool pool, store_->GetPool(instance.pool));
  if (pool.id_base < kFirstIdBase) return FailedPrecondition("pool '" + pool.name().value() + "' has no id block");
  return static_cast<uid_t>(pool.id_base);
}

std::map<InstanceId, int64_t> PoolServer::OpenSessions(const std::vector<InstanceId>& ids) {
  // Without the gateway's lists nothing is known: nothing is removed.
  auto listed = gateway_->Notebooks();
  if (!listed.ok()) return {};
  std::map<InstanceId, int64_t> notebooks;
  for (const auto& n : *listed) {
    if (n.session.state != NotebookSession::State::kFailed) ++notebooks[n.session.instance];
  }
  std::map<InstanceId, int64_t> out;
  for (const InstanceId& id : ids) {
    auto report = reconciler_.LastReport(id);
    if (!report) continue;
    auto health = gateway_->Health(id);
    out[id] = std::max(report->ssh_sessions, health ? health->connections : 0) +
              std::max(report->notebook_servers, notebooks[id]);
  }
  return out;
}

Status PoolServer::EnsureUserFolders(const std::string& parent, const std::vector<User>& users) {
  // Root's, so that the names made in it below cannot be swapped.
  DSP_RETURN_IF_ERROR(EnsureDir(parent, 0755, FileOwner{0, 0}));
  for (const User& u : users) {
    const std::string dir = parent + "/" + u.name.value();
    DSP_ASSIGN_OR_RETURN(bool exists, PathExists(dir));
    auto id = static_cast<uid_t>(u.uid);
    if (!exists) DSP_RETURN_IF_ERROR(EnsureDir(dir, 0700, FileOwner{id, id}));
  }
  return Status::Ok();
}

Status PoolServer::EnsureShareLayout(const Pool& pool, const std::vector<User>& users) {
  if (pool.spec.share.type == ShareType::kNone) return Status::Ok();
  const std::string& share = pool.spec.share.source;
  DSP_RETURN_IF_ERROR(EnsureUserFolders(share + "/home", users));
  DSP_RETURN_IF_ERROR(EnsureUserFolders(share + "/notebooks", users));
  for (const User& u : users) {
    auto id = static_cast<uid_t>(u.uid);
    const std::string name = u.name.value();
    std::string home = share + "/home/" + name;
    std::string link_target = pool.spec.share.mount_path + "/notebooks/" + name;
    // The user's home is the instance's to change (~/notebooks may be a
    // symlink): root looks without following links, and makes what is
    // missing as the user. Looking forks nothing: this runs at every sweep,
    // and a fork of the server stalls its gateway threads (it doubled the
    // web proxy's p99, docs/benchmarks.md).
    DSP_ASSIGN_OR_RETURN(bool linked, ExistsBeneath(home, "notebooks/remote"));
    if (linked) continue;
    DSP_RETURN_IF_ERROR(RunAs(id, id, [&]() -> Status {
      DSP_RETURN_IF_ERROR(MakeDirs(home + "/notebooks", 0755));
      return Symlink(link_target, home + "/notebooks/remote");
    }));
  }
  return Status::Ok();
}

std::vector<Status> PoolServer::EnsureShares(const std::vector<Pool>& pools) {
  auto users = store_->ListUsers();
  if (!users.ok()) return {users.status().WithPrefix("shares")};
  std::vector<Status> errors;
  for (const Pool& p : pools) {
    if (p.state != PoolState::kActive) continue;
    Status s = EnsureShareLayout(p, *users);
    if (!s.ok()) errors.push_back(s.WithPrefix("share of pool " + p.name().value()));
  }
  // Storage shares an instance has mounted (they have notebooks/): a user
  // added since finds their folder there too.
  auto shares = store_->ListShares();
  if (!shares.ok()) return errors;
  for (const FileShare& share : *shares) {
    if (share.deleted()) continue;
    const std::string notebooks = ShareDataPath(share.account, share.name) + "/notebooks";
    auto mounted = PathExists(notebooks);
    if (!mounted.ok() || !*mounted) continue;
    if (Status s = EnsureUserFolders(notebooks, *users); !s.ok()) {
      errors.push_back(s.WithPrefix("share " + share.account + "/" + share.name));
    }
  }
  return errors;
}

std::vector<std::string> PoolServer::PushUsersChange(int64_t version) {
  std::vector<std::string> not_applied;
  auto pools = store_->ListPools();
  if (!pools.ok()) return {"all instances: " + pools.status().message()};
  // A new user's home and notebooks directories first (the sweep would
  // make them within seconds; the first login must find them).
  for (const Status& s : EnsureShares(*pools)) not_applied.push_back(s.message());
  // Every Ready instance at once: each call waits for that agent's fetch.
  // One still booting fetches its configuration when it starts, and checks
  // the version at each report.
  std::vector<std::pair<InstanceId, std::future<Status>>> calls;
  const std::string body = Json{{"version", version}}.dump();
  for (const Pool& pool : *pools) {
    auto instances = store_->ListInstances(pool.name());
    if (!instances.ok()) {
      not_applied.push_back("pool " + pool.name().value() + ": " + instances.status().message());
      continue;
    }
    for (const Instance& i : *instances) {
      // A standby's agent is frozen: it checks the version at its first
      // report after the thaw, at once.
      if (i.phase != InstancePhase::kReady || i.standby) continue;
      const auto owner = static_cast<uid_t>(pool.id_base);
      calls.emplace_back(i.id, std::async(std::launch::async, [this, id = i.id, owner, &body, version]() -> Status {
        // The agent answers within kConfigRefreshTimeout; the rest is the
        // call's own margin.
        DSP_ASSIGN_OR_RETURN(Json answer, channels_.Call(id, owner, "POST", kConfigRefreshPath, body,
                                                        kConfigRefreshTimeout + std::chrono::seconds(2)));
        int64_t applied = answer.is_object() ? answer.value("configVersion", int64_t{-1}) : -1;
        if (applied < version) {
          return Unavailable("instance " + id.value() + ": applied version " + std::to_string(applied) + ", not " +
                             std::to_string(version));
        }
        return Status::Ok();
      }));
    }
  }
  for (auto& call : calls) {
    Status s = call.second.get();
    if (s.ok()) continue;
    // The message names the instance (AgentChannels::Call's do).
    DSP_LOG(kWarning, kLog) << "users version " << version << " not confirmed: " << s;
    not_applied.push_back(s.message());
  }
  return not_applied;
}

std::vector<std::string> PoolServer::MaskedPaths() {
  std::vector<std::string> paths = {options_.data_dir, "/var/lib/dspool", "/root", "/home", "/tmp", "/var/tmp",
                                    "/var/log", "/var/lib/lxc",
                                    "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-",
                                    "/etc/subuid", "/etc/subgid"};
  if (auto ssh = ListDir("/etc/ssh"); ssh.ok()) {
    for (const std::string& f : *ssh) {
      if (f.rfind("ssh_host_", 0) == 0) paths.push_back("/etc/ssh/" + f);
    }
  }
  if (auto pools = store_->ListPools(); pools.ok()) {
    for (const Pool& p : *pools) {
      if (p.spec.share.type == ShareType::kBind) paths.push_back(p.spec.share.source);
    }
  }
  return paths;
}

Result<InstanceRequest> PoolServer::BuildRequest(const Pool& pool, const Instance& instance) {
  if (pool.id_base < kFirstIdBase) return FailedPrecondition("pool '" + pool.name().value() + "' has no id block");
  DSP_RETURN_IF_ERROR(channels_.Open(instance.id, static_cast<uid_t>(pool.id_base)));
  DSP_ASSIGN_OR_RETURN(auto users, store_->ListUsers());
  DSP_RETURN_IF_ERROR(EnsureShareLayout(pool, users).WithPrefix("share of pool " + pool.name().value()));
  InstanceRequest req;
  req.id = instance.id;
  req.pool = pool.name();
  req.index = instance.index;
  req.hostname = InstanceHostname(pool.name(), instance.index);
  req.size = pool.spec.size;
  req.network = PoolNetworkOf(pool.spec);
  req.address = InstanceAddress(pool.spec.network, instance.index);
  // sshd runs the binary as AuthorizedKeysCommand: it must belong to root.
  req.mounts = {{self_binary_, kInstanceBinary, true, MountIds::kImage}};
  if (pool.spec.share.type == ShareType::kBind) {
    req.mounts.push_back({pool.spec.share.source, pool.spec.share.mount_path, false, MountIds::kUsers});
  }
  for (BindMount& m : channels_.Mounts(instance.id)) req.mounts.push_back(std::move(m));
  req.init_command = {kInstanceBinary, "agent"};
  req.root_host_id = pool.id_base;
  req.user_id_first = options_.uid_first;
  req.user_id_last = options_.uid_last;
  req.masked_paths = MaskedPaths();
  return req;
}

void PoolServer::SweepChannels() {
  // What is open now, before the records are read: a channel opened after
  // this point (for a record written meanwhile) is never taken for a
  // leftover.
  const std::set<InstanceId> channels_before = channels_.OpenChannels();
  auto pool_dirs = ListDir(options_.data_dir + "/pools");
  auto records = store_->ListInstances({});
  auto pools = store_->ListPools();
  if (!records.ok() || !pools.ok()) return;
  std::map<PoolName, const Pool*> by_name;
  for (const Pool& p : *pools) by_name[p.name()] = &p;
  std::set<InstanceId> live;
  for (const Instance& r : *records) {
    live.insert(r.id);
    auto pool = by_name.find(r.pool);
    if (r.phase != InstancePhase::kDeleting && pool != by_name.end()) {
      if (Status s = channels_.Open(r.id, static_cast<uid_t>(pool->second->id_base)); !s.ok()) {
        DSP_LOG(kWarning, kLog) << "channel of " << r.id << ": " << s;
      }
    }
  }
  // Users added since an instance started get their directories here.
  for (const Status& s : EnsureShares(*pools)) DSP_LOG(kWarning, kLog) << s;
  channels_.Sweep(channels_before, live);
  // A pool's key directory is made just before its record is written, so
  // one without a record is a leftover only once sweeps have found it so
  // for a minute (monotonic: a step of the wall clock removes nothing).
  if (pool_dirs.ok()) {
    const MonoTime now = clock_.Monotonic();
    std::map<std::string, MonoTime> unknown;
    for (const std::string& e : *pool_dirs) {
      bool known = std::any_of(pools->begin(), pools->end(), [&](const Pool& p) { return p.name().value() == e; });
      if (known) continue;
      auto seen = unknown_pool_dirs_.find(e);
      unknown[e] = seen == unknown_pool_dirs_.end() ? now : seen->second;
      if (now - unknown[e] > std::chrono::minutes(1)) {
        RemoveTree(options_.data_dir + "/pools/" + e).IgnoreError();
        unknown.erase(e);
      }
    }
    unknown_pool_dirs_ = std::move(unknown);
  }
}

}  // namespace dspool
