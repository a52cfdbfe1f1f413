#include "store/memory/memory_store.h"

#include <algorithm>

#include "base/overloaded.h"

namespace dspool {
namespace {

template <typename Map, typename Key>
auto Find(Map& map, const Key& key, const char* what) -> Result<typename Map::mapped_type> {
  auto it = map.find(key);
  if (it == map.end()) return NotFound(std::string(what) + " '" + key.value() + "' does not exist");
  return it->second;
}

}  // namespace

Result<Pool> MemoryStore::GetPool(const PoolName& name) {
  std::lock_guard lock(mu_);
  return Find(tables_.pools, name, "pool");
}

Result<std::vector<Pool>> MemoryStore::ListPools() {
  std::lock_guard lock(mu_);
  std::vector<Pool> out;
  for (const auto& [_, p] : tables_.pools) out.push_back(p);
  return out;
}

Result<Instance> MemoryStore::GetInstance(const InstanceId& id) {
  std::lock_guard lock(mu_);
  return Find(tables_.instances, id, "instance");
}

Result<std::vector<Instance>> MemoryStore::ListInstances(const std::optional<PoolName>& pool) {
  std::lock_guard lock(mu_);
  std::vector<Instance> out;
  for (const auto& [_, i] : tables_.instances) {
    if (!pool || i.pool == *pool) out.push_back(i);
  }
  std::sort(out.begin(), out.end(), [](const Instance& a, const Instance& b) {
    return std::tie(a.pool, a.index, a.id) < std::tie(b.pool, b.index, b.id);
  });
  return out;
}

Result<User> MemoryStore::GetUser(const UserName& name) {
  std::lock_guard lock(mu_);
  return Find(tables_.users, name, "user");
}

Result<std::vector<User>> MemoryStore::ListUsers() {
  std::lock_guard lock(mu_);
  std::vector<User> out;
  for (const auto& [_, u] : tables_.users) out.push_back(u);
  std::sort(out.begin(), out.end(), [](const User& a, const User& b) { return a.uid < b.uid; });
  return out;
}

Result<std::vector<Event>> MemoryStore::ListEvents(int64_t after_seq, size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<Event> out;
  for (const Event& e : tables_.events) {
    if (e.seq > after_seq && out.size() < limit) out.push_back(e);
  }
  return out;
}

Result<std::vector<Event>> MemoryStore::TailEvents(size_t limit) {
  std::lock_guard lock(mu_);
  size_t n = std::min(limit, tables_.events.size());
  return std::vector<Event>(tables_.events.end() - static_cast<ptrdiff_t>(n), tables_.events.end());
}

Result<std::string> MemoryStore::GetMeta(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = tables_.meta.find(key);
  if (it == tables_.meta.end()) return NotFound("meta key '" + key + "' does not exist");
  return it->second;
}

Result<ResourceGroup> MemoryStore::GetResourceGroup(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = tables_.groups.find(StoreKey(name));
  if (it == tables_.groups.end()) return NotFound("resource group '" + name + "' does not exist");
  return it->second;
}

Result<std::vector<ResourceGroup>> MemoryStore::ListResourceGroups() {
  std::lock_guard lock(mu_);
  std::vector<ResourceGroup> out;
  for (const auto& [_, g] : tables_.groups) out.push_back(g);
  return out;
}

Result<Deployment> MemoryStore::GetDeployment(const std::string& group, const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = tables_.deployments.find({StoreKey(group), StoreKey(name)});
  if (it == tables_.deployments.end()) {
    return NotFound("deployment '" + name + "' does not exist in resource group '" + group + "'");
  }
  return it->second;
}

Result<std::vector<Deployment>> MemoryStore::ListDeployments(const std::string& group) {
  std::lock_guard lock(mu_);
  return GroupDeployments(tables_, StoreKey(group));
}

Result<ArmResource> MemoryStore::GetResource(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = tables_.resources.find(StoreKey(id));
  if (it == tables_.resources.end()) return NotFound("resource '" + id + "' does not exist");
  return it->second;
}

Result<std::vector<ArmResource>> MemoryStore::ListResources(const std::optional<std::string>& group) {
  std::lock_guard lock(mu_);
  std::vector<ArmResource> out;
  for (const auto& [_, r] : tables_.resources) {
    if (!group || StoreKey(r.group) == StoreKey(*group)) out.push_back(r);
  }
  return out;
}

Result<StorageAccount> MemoryStore::GetStorageAccount(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = tables_.accounts.find(StoreKey(name));
  if (it == tables_.accounts.end()) return NotFound("storage account '" + name + "' does not exist");
  return it->second;
}

Result<std::vector<StorageAccount>> MemoryStore::ListStorageAccounts(const std::optional<std::string>& group) {
  std::lock_guard lock(mu_);
  std::vector<StorageAccount> out;
  for (const auto& [_, a] : tables_.accounts) {
    if (!group || StoreKey(a.group) == StoreKey(*group)) out.push_back(a);
  }
  return out;
}

Result<FileShare> MemoryStore::GetShare(const std::string& account, const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = tables_.shares.find({StoreKey(account), StoreKey(key)});
  if (it == tables_.shares.end()) {
    return NotFound("share '" + key + "' does not exist in storage account '" + account + "'");
  }
  return it->second;
}

Result<std::vector<FileShare>> MemoryStore::ListShares(const std::optional<std::string>& account) {
  std::lock_guard lock(mu_);
  std::vector<FileShare> out;
  for (const auto& [key, s] : tables_.shares) {
    if (!account || key.first == StoreKey(*account)) out.push_back(s);
  }
  return out;
}

std::vector<Deployment> MemoryStore::GroupDeployments(const Tables& t, const std::string& group_key) {
  std::vector<Deployment> out;
  for (auto it = t.deployments.lower_bound({group_key, ""}); it != t.deployments.end() && it->first.first == group_key;
       ++it) {
    out.push_back(it->second);
  }
  std::stable_sort(out.begin(), out.end(), [](const Deployment& a, const Deployment& b) {
    return a.timestamp != b.timestamp ? a.timestamp < b.timestamp : StoreKey(a.name) < StoreKey(b.name);
  });
  return out;
}

Status MemoryStore::Write(const WriteBatch& batch) {
  std::lock_guard lock(mu_);
  Tables copy = tables_;
  for (const auto& op : batch.ops()) DSP_RETURN_IF_ERROR(Apply(op, copy));
  tables_ = std::move(copy);
  return Status::Ok();
}

Status MemoryStore::Apply(const WriteBatch::Op& op, Tables& t) {
  return std::visit(
      Overloaded{
          [&](const WriteBatch::CreatePool& o) -> Status {
            if (t.pools.count(o.pool.name())) return AlreadyExists("pool '" + o.pool.name().value() + "' already exists");
            t.pools[o.pool.name()] = o.pool;
            return Status::Ok();
          },
          [&](const WriteBatch::UpdatePool& o) -> Status {
            auto it = t.pools.find(o.pool.name());
            if (it == t.pools.end()) return NotFound("pool '" + o.pool.name().value() + "' does not exist");
            if (it->second.generation != o.expected_generation) {
              return Aborted("pool '" + o.pool.name().value() + "' was changed concurrently; retry");
            }
            it->second = o.pool;
            return Status::Ok();
          },
          [&](const WriteBatch::DeletePool& o) -> Status {
            if (!t.pools.erase(o.name)) return NotFound("pool '" + o.name.value() + "' does not exist");
            return Status::Ok();
          },
          [&](const WriteBatch::PutInstance& o) -> Status {
            t.instances[o.instance.id] = o.instance;
            return Status::Ok();
          },
          [&](const WriteBatch::UpdateInstance& o) -> Status {
            const std::string& id = o.instance.id.value();
            auto it = t.instances.find(o.instance.id);
            if (it == t.instances.end()) return NotFound("instance '" + id + "' does not exist");
            if (!(it->second == o.expected)) return Aborted("instance '" + id + "' was changed concurrently; retry");
            it->second = o.instance;
            return Status::Ok();
          },
          [&](const WriteBatch::DeleteInstance& o) -> Status {
            if (!t.instances.erase(o.id)) return NotFound("instance '" + o.id.value() + "' does not exist");
            return Status::Ok();
          },
          [&](const WriteBatch::CreateUser& o) -> Status {
            if (t.users.count(o.user.name)) return AlreadyExists("user '" + o.user.name.value() + "' already exists");
            for (const auto& [_, u] : t.users) {
              if (u.uid == o.user.uid) return AlreadyExists("uid " + std::to_string(o.user.uid) + " is taken");
            }
            t.users[o.user.name] = o.user;
            return Status::Ok();
          },
          [&](const WriteBatch::UpdateUser& o) -> Status {
            auto it = t.users.find(o.user.name);
            if (it == t.users.end()) return NotFound("user '" + o.user.name.value() + "' does not exist");
            if (it->second.uid != o.user.uid) return InvalidArgument("a user's uid never changes");
            it->second = o.user;
            return Status::Ok();
          },
          [&](const WriteBatch::DeleteUser& o) -> Status {
            if (!t.users.erase(o.name)) return NotFound("user '" + o.name.value() + "' does not exist");
            return Status::Ok();
          },
          [&](const WriteBatch::PutMeta& o) -> Status {
            t.meta[o.key] = o.value;
            return Status::Ok();
          },
          [&](const WriteBatch::AppendEvent& o) -> Status {
            Event e = o.event;
            e.seq = t.events.empty() ? 1 : t.events.back().seq + 1;
            t.events.push_back(std::move(e));
            return Status::Ok();
          },
          [&](const WriteBatch::PutResourceGroup& o) -> Status {
            t.groups[StoreKey(o.group.name)] = o.group;
            return Status::Ok();
          },
          [&](const WriteBatch::DeleteResourceGroup& o) -> Status {
            const std::string key = StoreKey(o.name);
            if (!t.groups.count(key)) return NotFound("resource group '" + o.name + "' does not exist");
            size_t held = 0;
            for (const auto& [_, r] : t.resources) held += StoreKey(r.group) == key;
            for (const auto& [_, a] : t.accounts) held += StoreKey(a.group) == key;
            if (held) {
              return FailedPrecondition("resource group '" + o.name + "' still holds " + std::to_string(held) +
                                        " resources");
            }
            std::erase_if(t.deployments, [&](const auto& entry) { return entry.first.first == key; });
            t.groups.erase(key);
            return Status::Ok();
          },
          [&](const WriteBatch::PutDeployment& o) -> Status {
            const std::string group = StoreKey(o.deployment.group);
            if (!t.groups.count(group)) return NotFound("resource group '" + o.deployment.group + "' does not exist");
            const auto key = std::make_pair(group, StoreKey(o.deployment.name));
            const bool is_new = !t.deployments.count(key);
            t.deployments[key] = o.deployment;
            if (is_new) {
              std::vector<Deployment> all = GroupDeployments(t, group);
              size_t excess = all.size() > kMaxDeploymentsPerGroup ? all.size() - kMaxDeploymentsPerGroup : 0;
              for (size_t i = 0; i < all.size() && excess > 0; ++i) {
                if (StoreKey(all[i].name) == key.second) continue;
                t.deployments.erase({group, StoreKey(all[i].name)});
                --excess;
              }
            }
            return Status::Ok();
          },
          [&](const WriteBatch::DeleteDeployment& o) -> Status {
            if (!t.deployments.erase({StoreKey(o.group), StoreKey(o.name)})) {
              return NotFound("deployment '" + o.name + "' does not exist in resource group '" + o.group + "'");
            }
            return Status::Ok();
          },
          [&](const WriteBatch::PutResource& o) -> Status {
            if (!t.groups.count(StoreKey(o.resource.group))) {
              return NotFound("resource group '" + o.resource.group + "' does not exist");
            }
            t.resources[StoreKey(o.resource.id)] = o.resource;
            return Status::Ok();
          },
          [&](const WriteBatch::DeleteResource& o) -> Status {
            if (!t.resources.erase(StoreKey(o.id))) return NotFound("resource '" + o.id + "' does not exist");
            return Status::Ok();
          },
          [&](const WriteBatch::PutStorageAccount& o) -> Status {
            if (!t.groups.count(StoreKey(o.account.group))) {
              return NotFound("resource group '" + o.account.group + "' does not exist");
            }
            t.accounts[StoreKey(o.account.name)] = o.account;
            return Status::Ok();
          },
          [&](const WriteBatch::DeleteStorageAccount& o) -> Status {
            if (!t.accounts.erase(StoreKey(o.name))) return NotFound("storage account '" + o.name + "' does not exist");
            return Status::Ok();
          },
          [&](const WriteBatch::PutShare& o) -> Status {
            const std::string account = StoreKey(o.share.account);
            if (!o.share.deleted() && !t.accounts.count(account)) {
              return NotFound("storage account '" + o.share.account + "' does not exist");
            }
            t.shares[{account, StoreKey(ShareKey(o.share))}] = o.share;
            return Status::Ok();
          },
          [&](const WriteBatch::DeleteShare& o) -> Status {
            if (!t.shares.erase({StoreKey(o.account), StoreKey(o.key)})) {
              return NotFound("share '" + o.key + "' does not exist in storage account '" + o.account + "'");
            }
            return Status::Ok();
          },
      },
      op);
}

}  // namespace dspool
