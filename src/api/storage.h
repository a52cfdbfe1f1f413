// Storage accounts and file shares: the routes under
// /v1/groups/{g}/storageAccounts and /v1/storageAccounts (docs/api.md), in
// az's shapes, and what the rest of the API asks of them (a group's
// deletion, a template's resources, an instance's mount). Internal to the
// api module; the Api owns one.
//
// A share's data lives on the host (ApiHooks::MakeShareData...). Deleting
// a share moves its data aside and keeps it, soft-deleted, for the
// account's retention period; `restore` brings it back; PurgeExpired
// removes what has outlived its period. Deleting an account soft-deletes
// its shares first, so a group's deletion destroys no file either: an
// account made again under the same name finds its deleted shares, and
// can restore them.
//
// Thread safety: every method may be called concurrently.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "api/api.h"
#include "deploy/deployer.h"
#include "model/storage.h"

namespace dspool {

class Storage final : public deploy::StorageControl {
 public:
  // `subscription_id` gives the installation's subscription ID (for
  // resource IDs); called on each answer that shows one.
  Storage(Api& api, StateStore& store, const Clock& clock, ApiHooks& hooks,
          std::function<Result<std::string>()> subscription_id);

  // Body: {"location", "sku": {"name"}, "kind", "tags", "properties":
  // {"shareDeleteRetentionPolicy": {"days"}}}; location defaults to the
  // group's. Makes the account with two new keys (201), or updates the
  // tags, sku and retention of the group's existing one (200).
  Result<Response> PutAccount(const std::string& group, const std::string& name, const Request& r,
                              const std::string& actor);
  Result<Response> GetAccount(const std::string& group, const std::string& name);
  // {"value": [...]}: the group's accounts, or all without a group.
  Result<Response> ListAccounts(const std::optional<std::string>& group);
  // Soft-deletes its shares, then deletes it.
  Result<Response> DeleteAccount(const std::string& group, const std::string& name, const std::string& actor);
  // listKeys: the keys, and an event naming who read them.
  Result<Response> ListKeys(const std::string& group, const std::string& name, const std::string& actor);
  // Body {"keyName": "key1" | "key2"}: a new value for that key (the old
  // one mounts nothing from now on); answers as listKeys.
  Result<Response> RegenerateKey(const std::string& group, const std::string& name, const Request& r,
                                 const std::string& actor);
  // Body {"key"}: 204 if it is one of the account's keys, else 403.
  Result<Response> CheckKey(const std::string& group, const std::string& name, const Request& r);

  // Body: {"properties": {"shareQuota", "enabledProtocols", "accessTier",
  // "metadata"}}. 201 made, 200 updated (quota, tier, metadata).
  Result<Response> PutShare(const std::string& group, const std::string& account, const std::string& share,
                            const Request& r, const std::string& actor);
  Result<Response> GetShare(const std::string& group, const std::string& account, const std::string& share);
  // {"value": [...]}; ?includeDeleted=true lists the deleted shares too.
  Result<Response> ListShares(const std::string& group, const std::string& account, const Request& r);
  Result<Response> DeleteShare(const std::string& group, const std::string& account, const std::string& share,
                               const std::string& actor);
  // Body {"deletedVersion"}: the deleted share of that version is the
  // share again. 409 while a live share has the name.
  Result<Response> RestoreShare(const std::string& group, const std::string& account, const std::string& share,
                                const Request& r, const std::string& actor);

  // An instance's agent asks to mount a share (body: ShareMountRequest):
  // the share must be live and serve the protocol asked; SMB needs one of
  // the account's keys (PermissionDenied, "Permission denied", as
  // mount.cifs says it); NFS, an instance of a pool deployed in the
  // account's group (Azure's network rule, in this host's terms). Then the
  // server's hooks attach it (ApiHooks::AttachShare). An event records it
  // (never the key). 200 {}.
  Result<Response> MountForInstance(const InstanceId& id, const Request& r);

  // Deletes every account of `group` as DeleteAccount does; the number.
  Result<size_t> DeleteAccountsOf(const std::string& group, const std::string& actor);
  // Removes the deleted shares whose retention ended by `now`, data first.
  // Returns the errors (each names the share); the next call retries them.
  std::vector<Status> PurgeExpired(TimePoint now);

  // deploy::StorageControl: a template's storage resources, through the
  // same code as the routes above.
  Result<std::optional<StorageAccount>> FindAccount(const std::string& group, const std::string& name) override;
  std::array<std::string, 2> NewKeys() override;
  Result<std::string> ApplyStorage(const std::string& group, const deploy::StorageOp& op,
                                   const std::string& actor) override;
  Status DeleteStorage(const std::string& group, const std::string& type, const std::string& name,
                       const std::string& actor) override;

 private:
  // The group's account `name`: NotFound (ARM's message) when the group or
  // the account is missing, or the account is another group's.
  Result<StorageAccount> GroupAccount(const std::string& group, const std::string& name);
  // PUT of an account (body as PutAccount's; `keys` for a new one, else
  // new keys) or a share: the status (201 made, 200 updated) and the record.
  Result<std::pair<int, StorageAccount>> SaveAccount(const std::string& group, const std::string& name, const Json& body,
                                                     const std::array<std::string, 2>* keys, const std::string& actor);
  Result<std::pair<int, FileShare>> SaveShare(const std::string& group, const std::string& account,
                                              const std::string& share, const Json& body, const std::string& actor);
  Result<FileShare> FindLiveShare(const StorageAccount& account, const std::string& share);
  // Whether instance `id` may mount an NFS share of `account`: its pool was
  // deployed in the account's group (PermissionDenied otherwise).
  Status CheckNfsReach(const InstanceId& id, const StorageAccount& account);
  // Soft-deletes `share`: data moved aside, then the records swapped (the
  // data moved back if that fails). REQUIRES: mu_ held.
  Status SoftDelete(const StorageAccount& account, const FileShare& share, const std::string& actor);
  Result<OrderedJson> AccountJson(const StorageAccount& a);
  Result<OrderedJson> ShareJson(const FileShare& s, const StorageAccount& a);

  Api& api_;
  StateStore& store_;
  const Clock& clock_;
  ApiHooks& hooks_;
  std::function<Result<std::string>()> subscription_id_;
  // Serialises each read-check-write of accounts and shares (and the data
  // moves that go with them).
  std::mutex mu_;
};

}  // namespace dspool
