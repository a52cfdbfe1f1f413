// MemoryStore: a StateStore held in maps, for unit tests and simulations.
// Same semantics as SqliteStore (both pass store/testing/conformance.h);
// nothing survives the object. Thread-safe (one mutex).
#pragma once

#include <map>
#include <mutex>

#include "store/state_store.h"

namespace dspool {

class MemoryStore final : public StateStore {
 public:
  Result<Pool> GetPool(const PoolName& name) override;
  Result<std::vector<Pool>> ListPools() override;
  Result<Instance> GetInstance(const InstanceId& id) override;
  Result<std::vector<Instance>> ListInstances(const std::optional<PoolName>& pool) override;
  Result<User> GetUser(const UserName& name) override;
  Result<std::vector<User>> ListUsers() override;
  Result<std::vector<Event>> ListEvents(int64_t after_seq, size_t limit) override;
  Result<std::vector<Event>> TailEvents(size_t limit) override;
  Result<std::string> GetMeta(const std::string& key) override;
  Result<ResourceGroup> GetResourceGroup(const std::string& name) override;
  Result<std::vector<ResourceGroup>> ListResourceGroups() override;
  Result<Deployment> GetDeployment(const std::string& group, const std::string& name) override;
  Result<std::vector<Deployment>> ListDeployments(const std::string& group) override;
  Result<ArmResource> GetResource(const std::string& id) override;
  Result<std::vector<ArmResource>> ListResources(const std::optional<std::string>& group) override;
  Result<StorageAccount> GetStorageAccount(const std::string& name) override;
  Result<std::vector<StorageAccount>> ListStorageAccounts(const std::optional<std::string>& group) override;
  Result<FileShare> GetShare(const std::string& account, const std::string& key) override;
  Result<std::vector<FileShare>> ListShares(const std::optional<std::string>& account) override;
  Status Write(const WriteBatch& batch) override;

 private:
  struct Tables {
    std::map<PoolName, Pool> pools;
    std::map<InstanceId, Instance> instances;
    std::map<UserName, User> users;
    std::map<std::string, std::string> meta;
    std::vector<Event> events;
    // By StoreKey: group; (group, deployment); resource ID.
    std::map<std::string, ResourceGroup> groups;
    std::map<std::pair<std::string, std::string>, Deployment> deployments;
    std::map<std::string, ArmResource> resources;
    // By StoreKey: account; (account, ShareKey).
    std::map<std::string, StorageAccount> accounts;
    std::map<std::pair<std::string, std::string>, FileShare> shares;
  };
  // Applies one op to `t`; on error `t` may be partly changed (the caller
  // works on a copy).
  static Status Apply(const WriteBatch::Op& op, Tables& t);
  // The deployments of the group with StoreKey `group_key`, oldest first.
  static std::vector<Deployment> GroupDeployments(const Tables& t, const std::string& group_key);

  std::mutex mu_;
  Tables tables_;
};

}  // namespace dspool
