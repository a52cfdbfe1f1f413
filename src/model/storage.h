// Storage accounts and their file shares: what `dspool storage ...` and a
// template's Microsoft.Storage resources keep, as the server stores them
// and as az prints them (docs/storage.md).
//
//   StorageAccount  a named account in a resource group, with two keys.
//                   Its name is unique on the host (on Azure, in the
//                   world): it is the host name of its shares'
//                   addresses, //<account>.file.core.windows.net/<share>.
//   FileShare       a directory tree of an account, mounted in instances;
//                   deleting one keeps it, soft-deleted, for the account's
//                   retention period, as Azure Files does, and it can be
//                   restored until then.
//
// Keys are secrets: the storage form holds them (the store's file is
// root's alone, docs/security.md); the az forms never do, except
// StorageKeysToAzJson, which is what `keys list` and listKeys() answer.
#pragma once

#include <array>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "model/deployment.h"

namespace dspool {

struct StorageKey {
  std::string value;  // 64 random bytes in base64 (88 characters); secret
  TimePoint created_at;
  friend bool operator==(const StorageKey&, const StorageKey&) = default;
};

struct StorageAccount {
  std::string group;
  std::string name;
  std::string location;
  std::string sku = "Standard_LRS";
  std::string kind = "StorageV2";
  std::vector<std::pair<std::string, std::string>> tags;  // in the order given
  std::array<StorageKey, 2> keys;                         // key1, key2
  // fileServices/default's shareDeleteRetentionPolicy: deleted shares are
  // kept this many days (0: the policy is off; a deleted share is gone).
  int64_t share_retention_days = 7;
  TimePoint created_at;
  friend bool operator==(const StorageAccount&, const StorageAccount&) = default;
};

struct FileShare {
  std::string account;
  std::string name;
  int64_t quota_gib = 5120;
  std::string enabled_protocols = "SMB";  // or "NFS"
  std::string access_tier = "TransactionOptimized";
  std::vector<std::pair<std::string, std::string>> metadata;
  TimePoint created_at;
  // A soft-deleted share: when, and the version that names it among the
  // deleted shares of that name (16 upper-case hex digits). Empty: live.
  std::string deleted_version;
  TimePoint deleted_at;
  TimePoint purge_at;  // when its data goes for good

  bool deleted() const { return !deleted_version.empty(); }
  friend bool operator==(const FileShare&, const FileShare&) = default;
};

// Azure's rules: an account name is 3 to 24 lower-case letters and digits;
// a share name 3 to 63 lower-case letters, digits and '-', beginning and
// ending with a letter or digit, without "--". InvalidArgument naming the
// name and the rule.
Status ValidateStorageAccountName(std::string_view name);
Status ValidateShareName(std::string_view name);
// Storage SKUs (Standard_LRS, Premium_LRS, ...) and kinds (StorageV2,
// FileStorage, ...), as Azure has them; the host keeps data in one place
// whichever is named.
Status ValidateStorageSku(std::string_view sku);
Status ValidateStorageKind(std::string_view kind);
// A share quota in GiB: 1 to 102400 (Azure's largest share, 100 TiB).
Status ValidateShareQuota(int64_t gib);

inline constexpr int64_t kMaxShareRetentionDays = 365;
// shareDeleteRetentionPolicy: `enabled` false is refused (dspool keeps every
// deleted share a day at least: a policy that is off would destroy files),
// and `days` must be 1 to 365. InvalidArgument naming the member
// ("enabled: ...", "days: ...").
Status ValidateShareRetention(bool enabled, int64_t days);

// The share's key among the shares of its account: "<name>" for a live one,
// "<name>/<version>" for a deleted one.
std::string ShareKey(const FileShare& share);

Json StorageAccountToJson(const StorageAccount& a);  // storage form (with the keys)
Result<StorageAccount> StorageAccountFromJson(const Json& json);
Json FileShareToJson(const FileShare& s);
Result<FileShare> FileShareFromJson(const Json& json);

// The resource IDs Azure gives them.
std::string StorageAccountId(const std::string& subscription_id, const StorageAccount& a);
std::string FileShareId(const std::string& subscription_id, const StorageAccount& a, const std::string& share);

// az's forms. An account: {"id", "kind", "location", "name",
// "primaryEndpoints": {"file": "https://<name>.file.<suffix>/"},
// "provisioningState", "resourceGroup", "sku": {"name", "tier"},
// "tags", "type", ...}, no keys. A share (share-rm's form): {"id",
// "name", "shareQuota", "enabledProtocols", "deleted", "version",
// "deletedTime", "remainingRetentionDays", ...}.
OrderedJson StorageAccountToAzJson(const StorageAccount& a, const std::string& subscription_id);
OrderedJson FileShareToAzJson(const FileShare& s, const StorageAccount& a, const std::string& subscription_id,
                              TimePoint now);
// listKeys(): {"keys": [{"creationTime", "keyName": "key1", "permissions":
// "FULL", "value"}, {... "key2" ...}]}.
OrderedJson StorageKeysToAzJson(const StorageAccount& a);

// An instance's request to mount a share (the mount helper → its agent →
// the server's POST /v1/agent/mounts; docs/storage.md). `key` is secret:
// never in an error, a log or an answer.
struct ShareMountRequest {
  std::string account;
  std::string share;
  std::string key;     // SMB; none for NFS (allowed by where the instance is)
  std::string target;  // the directory in the instance
  bool read_only = false;
  std::string protocol = "SMB";  // or "NFS"
  friend bool operator==(const ShareMountRequest&, const ShareMountRequest&) = default;
};
Json ShareMountRequestToJson(const ShareMountRequest& r);
// InvalidArgument naming the field (account and share names as Azure's
// rules have them; target absolute, without "..").
Result<ShareMountRequest> ParseShareMountRequest(const Json& json);

// The DNS suffix of file endpoints, as environment().suffixes.storage.
inline constexpr std::string_view kStorageSuffix = "core.windows.net";

}  // namespace dspool
