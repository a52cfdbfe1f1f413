// StateStore: the server's durable truth — desired state (pools, users),
// recorded observed state (instances), the audit log (events), a few
// server-wide values (meta), and what template deployments keep: resource
// groups, their deployments (with operations) and their resources; storage
// accounts and their file shares.
//
// Reads return copies. Writes go through a WriteBatch, applied atomically: all
// of its operations and events, or none (LevelDB's WriteBatch, with checks).
// Each operation states its precondition (a pool to create must not exist, an
// update must match the expected generation, ...); if any fails, Write returns
// that error and changes nothing. So an API request that records an event
// with its change can never leave one without the other.
//
// Implementations: MemoryStore (unit tests) and SqliteStore (the server).
// Both pass the conformance suite in store/testing/conformance.h.
//
// Thread safety: every method may be called concurrently from any thread.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/result.h"
#include "model/deployment.h"
#include "model/event.h"
#include "model/instance.h"
#include "model/pool.h"
#include "model/storage.h"
#include "model/user.h"

namespace dspool {

class WriteBatch {
 public:
  struct CreatePool { Pool pool; };                        // AlreadyExists if present
  struct UpdatePool { Pool pool; int64_t expected_generation; };  // NotFound; Aborted if generation differs
  struct DeletePool { PoolName name; };                    // NotFound
  struct PutInstance { Instance instance; };               // insert or replace
  // Replaces the record with instance.id only if it still equals `expected`
  // (as read from this store): NotFound; Aborted if it changed since. The
  // API and the reconcile loop both update records (the draining flag,
  // phases): neither overwrites the other's change.
  struct UpdateInstance { Instance instance; Instance expected; };
  struct DeleteInstance { InstanceId id; };                // NotFound
  struct CreateUser { User user; };                        // AlreadyExists (name or uid taken)
  struct UpdateUser { User user; };                        // NotFound; uid must not change
  struct DeleteUser { UserName name; };                    // NotFound
  struct PutMeta { std::string key; std::string value; };  // insert or replace
  struct AppendEvent { Event event; };                     // seq is assigned by the store
  // Groups, deployments and resources are keyed by StoreKey (names and IDs
  // without case, as on Azure); a record keeps the case it was given.
  struct PutResourceGroup { ResourceGroup group; };        // insert or replace
  // NotFound; FailedPrecondition while the group holds resources. Its
  // deployments go with it.
  struct DeleteResourceGroup { std::string name; };
  // Insert or replace; NotFound if the group does not exist. A group keeps
  // at most kMaxDeploymentsPerGroup: a new one beyond that deletes the
  // oldest (by timestamp), as Azure does.
  struct PutDeployment { Deployment deployment; };
  struct DeleteDeployment { std::string group; std::string name; };  // NotFound
  struct PutResource { ArmResource resource; };            // insert or replace; NotFound without its group
  struct DeleteResource { std::string id; };               // NotFound
  // Storage accounts are keyed by name (unique on the host), shares by
  // account and ShareKey. A group with accounts cannot be deleted.
  struct PutStorageAccount { StorageAccount account; };    // insert or replace; NotFound without its group
  struct DeleteStorageAccount { std::string name; };       // NotFound; its shares stay
  // Insert or replace; a live share needs its account (NotFound). Deleted
  // shares outlive their account, until purged.
  struct PutShare { FileShare share; };
  struct DeleteShare { std::string account; std::string key; };  // NotFound
  using Op = std::variant<CreatePool, UpdatePool, DeletePool, PutInstance, UpdateInstance, DeleteInstance,
                          CreateUser, UpdateUser, DeleteUser, PutMeta, AppendEvent, PutResourceGroup,
                          DeleteResourceGroup, PutDeployment, DeleteDeployment, PutResource, DeleteResource,
                          PutStorageAccount, DeleteStorageAccount, PutShare, DeleteShare>;

  WriteBatch& Add(Op op) {
    ops_.push_back(std::move(op));
    return *this;
  }
  const std::vector<Op>& ops() const { return ops_; }
  bool empty() const { return ops_.empty(); }

 private:
  std::vector<Op> ops_;
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  virtual Result<Pool> GetPool(const PoolName& name) = 0;  // NotFound
  virtual Result<std::vector<Pool>> ListPools() = 0;       // by name

  virtual Result<Instance> GetInstance(const InstanceId& id) = 0;  // NotFound
  // All instances, ordered by pool name then index; only `pool`'s if given.
  virtual Result<std::vector<Instance>> ListInstances(const std::optional<PoolName>& pool = {}) = 0;

  virtual Result<User> GetUser(const UserName& name) = 0;  // NotFound
  virtual Result<std::vector<User>> ListUsers() = 0;        // by uid

  // Events with seq > after_seq, oldest first, at most `limit`.
  virtual Result<std::vector<Event>> ListEvents(int64_t after_seq, size_t limit) = 0;
  // The newest `limit` events, oldest first.
  virtual Result<std::vector<Event>> TailEvents(size_t limit) = 0;

  virtual Result<std::string> GetMeta(const std::string& key) = 0;  // NotFound

  // Lookups ignore case (StoreKey). Lists are ordered by key.
  virtual Result<ResourceGroup> GetResourceGroup(const std::string& name) = 0;  // NotFound
  virtual Result<std::vector<ResourceGroup>> ListResourceGroups() = 0;
  virtual Result<Deployment> GetDeployment(const std::string& group, const std::string& name) = 0;  // NotFound
  // A group's deployments, oldest first (by timestamp, then name).
  virtual Result<std::vector<Deployment>> ListDeployments(const std::string& group) = 0;
  virtual Result<ArmResource> GetResource(const std::string& id) = 0;  // NotFound
  // All resources, or only `group`'s.
  virtual Result<std::vector<ArmResource>> ListResources(const std::optional<std::string>& group = {}) = 0;
  virtual Result<StorageAccount> GetStorageAccount(const std::string& name) = 0;  // NotFound
  // All accounts, or only `group`'s; by name.
  virtual Result<std::vector<StorageAccount>> ListStorageAccounts(const std::optional<std::string>& group = {}) = 0;
  virtual Result<FileShare> GetShare(const std::string& account, const std::string& key) = 0;  // NotFound
  // The shares of `account` (all accounts' without one), live and deleted,
  // by account then ShareKey.
  virtual Result<std::vector<FileShare>> ListShares(const std::optional<std::string>& account = {}) = 0;

  // Applies every operation of `batch` atomically, or none. See WriteBatch
  // for each operation's precondition.
  virtual Status Write(const WriteBatch& batch) = 0;
};

}  // namespace dspool
