// SqliteStore: the StateStore the server uses, one SQLite file on local disk.
//
// Same semantics as MemoryStore (both pass store/testing/conformance.h), plus
// durability: a Write that returned OK survives a crash of the process, of the
// machine, and a power loss (WAL journal, synchronous=FULL). The schema and the
// reasons for it are in store/README.md.
//
// The file holds password hashes, so Open creates it with mode 0600 and
// narrows an existing file's mode to 0600. SQLite gives its -wal and -shm
// files the mode of the database file.
//
// Differences from MemoryStore that callers can observe:
//   - Times are stored as Unix milliseconds; sub-millisecond parts are lost.
//   - Pool specs are stored in their documented JSON form (PoolSpecToJson):
//     AdminUserSpec::password is never stored, and CreatePool/UpdatePool with
//     a spec that ParsePoolSpec would reject fail with InvalidArgument, so a
//     stored pool can always be read back.
//   - Strings inside pools, instances and users must be UTF-8 (they are kept
//     as JSON); otherwise Write fails with InvalidArgument.
//
// Several SqliteStore objects, in one process or several, may open the same
// file; writers then wait for each other (up to kBusyTimeout, then Write
// returns Unavailable).
//
// Thread safety: every method may be called concurrently from any thread; the
// connection is guarded by one mutex, so calls run one at a time.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "store/state_store.h"

namespace dspool {

class SqliteStore final : public StateStore {
 public:
  // The schema this build writes. Open refuses a file with a newer one.
  static constexpr int kSchemaVersion = 3;
  // How long a call waits for another connection's write lock.
  static constexpr std::chrono::milliseconds kBusyTimeout{5000};

  // Opens the store at `path`, creating the file (mode 0600) and the schema
  // if they do not exist. Errors name `path`:
  //   FailedPrecondition: not an SQLite file, an SQLite file that is not a
  //     dspool store, or a schema newer than kSchemaVersion. The file is left
  //     unchanged.
  //   Unavailable: another connection held the write lock past kBusyTimeout.
  //   other codes: the file could not be created or opened (errno mapped).
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path);

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

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
  // One BEGIN IMMEDIATE transaction; rolled back on the first failed op.
  Status Write(const WriteBatch& batch) override;

 private:
  class Connection;  // sqlite3 handle and prepared statements; in the .cc

  explicit SqliteStore(std::unique_ptr<Connection> conn);
  Status Apply(const WriteBatch::Op& op);

  std::mutex mu_;
  std::unique_ptr<Connection> conn_;  // guarded by mu_
};

}  // namespace dspool
