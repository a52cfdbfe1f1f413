// ForwardingStore: a StateStore that hands every call to another one, for
// wrappers that change one behaviour and keep the rest: the server's store
// that reports committed writes, and test stores that fail a write or let
// another writer in first.
//
// Thread safety: as the inner store's.
#pragma once

#include "store/state_store.h"

namespace dspool {

class ForwardingStore : public StateStore {
 public:
  // `inner` must outlive this store.
  explicit ForwardingStore(StateStore& inner) : inner_(inner) {}

  Result<Pool> GetPool(const PoolName& name) override { return inner_.GetPool(name); }
  Result<std::vector<Pool>> ListPools() override { return inner_.ListPools(); }
  Result<Instance> GetInstance(const InstanceId& id) override { return inner_.GetInstance(id); }
  Result<std::vector<Instance>> ListInstances(const std::optional<PoolName>& pool) override {
    return inner_.ListInstances(pool);
  }
  Result<User> GetUser(const UserName& name) override { return inner_.GetUser(name); }
  Result<std::vector<User>> ListUsers() override { return inner_.ListUsers(); }
  Result<std::vector<Event>> ListEvents(int64_t after_seq, size_t limit) override {
    return inner_.ListEvents(after_seq, limit);
  }
  Result<std::vector<Event>> TailEvents(size_t limit) override { return inner_.TailEvents(limit); }
  Result<std::string> GetMeta(const std::string& key) override { return inner_.GetMeta(key); }
  Result<ResourceGroup> GetResourceGroup(const std::string& name) override { return inner_.GetResourceGroup(name); }
  Result<std::vector<ResourceGroup>> ListResourceGroups() override { return inner_.ListResourceGroups(); }
  Result<Deployment> GetDeployment(const std::string& group, const std::string& name) override {
    return inner_.GetDeployment(group, name);
  }
  Result<std::vector<Deployment>> ListDeployments(const std::string& group) override {
    return inner_.ListDeployments(group);
  }
  Result<ArmResource> GetResource(const std::string& id) override { return inner_.GetResource(id); }
  Result<std::vector<ArmResource>> ListResources(const std::optional<std::string>& group) override {
    return inner_.ListResources(group);
  }
  Result<StorageAccount> GetStorageAccount(const std::string& name) override { return inner_.GetStorageAccount(name); }
  Result<std::vector<StorageAccount>> ListStorageAccounts(const std::optional<std::string>& group) override {
    return inner_.ListStorageAccounts(group);
  }
  Result<FileShare> GetShare(const std::string& account, const std::string& key) override {
    return inner_.GetShare(account, key);
  }
  Result<std::vector<FileShare>> ListShares(const std::optional<std::string>& account) override {
    return inner_.ListShares(account);
  }
  Status Write(const WriteBatch& batch) override { return inner_.Write(batch); }

 private:
  StateStore& inner_;
};

}  // namespace dspool
