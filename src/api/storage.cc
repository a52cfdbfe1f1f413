#include "api/storage.h"

#include <cinttypes>
#include <cstdio>

#include "api/api_internal.h"
#include "base/log.h"
#include "identity/account_key.h"
#include "identity/secret_equals.h"

namespace dspool {

using namespace api_internal;

namespace {

constexpr std::string_view kLog = "storage";

Response OrderedOk(int status, const OrderedJson& body) { return JsonResponse(status, body.dump()); }

std::string AccountType() { return "Microsoft.Storage/storageAccounts"; }

Status AccountNotFound(const std::string& group, const std::string& name) {
  return NotFound("ResourceNotFound: The Resource '" + AccountType() + "/" + name + "' under resource group '" +
                  group + "' was not found.");
}

// Azure's share versions are the deletion time as a Windows FILETIME (100 ns
// ticks since 1601) in 16 hex digits.
std::string FileTimeVersion(TimePoint t, int64_t bump) {
  constexpr int64_t kUnixEpochTicks = 116444736000000000;
  const int64_t ticks = ToUnixMillis(t) * 10000 + kUnixEpochTicks + bump;
  char out[17];
  std::snprintf(out, sizeof out, "%016" PRIX64, static_cast<uint64_t>(ticks));
  return out;
}

// shareDeleteRetentionPolicy.days: 1 to 365. dspool keeps every deleted
// share for a day at least: a policy that is off would destroy files.
// Whether `key` is one of the account's keys (SecretEquals: no timing
// oracle; each key is compared).
bool IsAccountKey(const StorageAccount& account, std::string_view key) {
  bool match = false;
  for (const StorageKey& k : account.keys) match |= SecretEquals(key, k.value);
  return match;
}

}  // namespace

Storage::Storage(Api& api, StateStore& store, const Clock& clock, ApiHooks& hooks,
                 std::function<Result<std::string>()> subscription_id)
    : api_(api), store_(store), clock_(clock), hooks_(hooks), subscription_id_(std::move(subscription_id)) {}

Result<OrderedJson> Storage::AccountJson(const StorageAccount& a) {
  DSP_ASSIGN_OR_RETURN(std::string subscription, subscription_id_());
  return StorageAccountToAzJson(a, subscription);
}

Result<OrderedJson> Storage::ShareJson(const FileShare& s, const StorageAccount& a) {
  DSP_ASSIGN_OR_RETURN(std::string subscription, subscription_id_());
  return FileShareToAzJson(s, a, subscription, clock_.Now());
}

Result<StorageAccount> Storage::GroupAccount(const std::string& group, const std::string& name) {
  auto g = store_.GetResourceGroup(group);
  if (g.status().code() == StatusCode::kNotFound) {
    return NotFound("ResourceGroupNotFound: Resource group '" + group + "' could not be found.");
  }
  DSP_RETURN_IF_ERROR(g.status());
  auto a = store_.GetStorageAccount(name);
  if (a.status().code() == StatusCode::kNotFound) return AccountNotFound(group, name);
  DSP_RETURN_IF_ERROR(a.status());
  if (StoreKey(a->group) != StoreKey(group)) return AccountNotFound(group, name);
  return *a;
}

Result<FileShare> Storage::FindLiveShare(const StorageAccount& account, const std::string& share) {
  auto s = store_.GetShare(account.name, share);
  if (s.status().code() == StatusCode::kNotFound) {
    return NotFound("ShareNotFound: The specified share '" + share + "' does not exist in storage account '" +
                    account.name + "'.");
  }
  return s;
}

// ------------------------------------------------------------------ accounts

Result<Response> Storage::PutAccount(const std::string& group, const std::string& name, const Request& r,
                                     const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  DSP_ASSIGN_OR_RETURN(auto saved, SaveAccount(group, name, body, nullptr, actor));
  DSP_ASSIGN_OR_RETURN(OrderedJson out, AccountJson(saved.second));
  return OrderedOk(saved.first, out);
}

Result<std::pair<int, StorageAccount>> Storage::SaveAccount(const std::string& group, const std::string& name,
                                                            const Json& body, const std::array<std::string, 2>* keys,
                                                            const std::string& actor) {
  DSP_RETURN_IF_ERROR(ValidateStorageAccountName(name));
  JsonReader reader(body, "");
  StorageAccount a;
  a.name = name;
  reader.Optional("location", &a.location);
  reader.Optional("kind", &a.kind);
  JsonReader sku = reader.Object("sku");
  sku.Optional("name", &a.sku);
  JsonReader properties = reader.Object("properties");
  JsonReader policy = properties.Object("shareDeleteRetentionPolicy");
  bool policy_enabled = true;
  policy.Optional("enabled", &policy_enabled);
  const bool days_given = policy.Has("days");
  policy.Optional("days", &a.share_retention_days);
  const Json* tags = reader.Raw("tags");
  DSP_RETURN_IF_ERROR(reader.Finish());
  DSP_RETURN_IF_ERROR(ValidateShareRetention(policy_enabled, a.share_retention_days)
                          .WithPrefix("properties.shareDeleteRetentionPolicy"));
  DSP_RETURN_IF_ERROR(ValidateStorageSku(a.sku).WithPrefix("sku.name"));
  DSP_RETURN_IF_ERROR(ValidateStorageKind(a.kind).WithPrefix("kind"));
  DSP_ASSIGN_OR_RETURN(a.tags, ReadTags(tags));

  std::lock_guard lock(mu_);
  auto g = store_.GetResourceGroup(group);
  if (g.status().code() == StatusCode::kNotFound) {
    return NotFound("ResourceGroupNotFound: Resource group '" + group + "' could not be found.");
  }
  DSP_RETURN_IF_ERROR(g.status());
  a.group = g->name;
  if (a.location.empty()) a.location = g->location;
  DSP_RETURN_IF_ERROR(ValidateLocation(a.location));
  auto existing = store_.GetStorageAccount(name);
  int status = 201;
  if (existing.ok()) {
    if (StoreKey(existing->group) != StoreKey(group)) {
      return AlreadyExists("StorageAccountAlreadyTaken: The storage account named " + name +
                           " is already taken.");
    }
    if (existing->kind != a.kind) {
      return InvalidArgument("kind: an account's kind cannot change (it is " + existing->kind + ")");
    }
    a.keys = existing->keys;
    a.created_at = existing->created_at;
    if (!days_given) a.share_retention_days = existing->share_retention_days;
    if (!tags) a.tags = existing->tags;
    status = 200;
  } else if (existing.status().code() != StatusCode::kNotFound) {
    return existing.status();
  } else {
    a.created_at = clock_.Now();
    for (size_t i = 0; i < a.keys.size(); ++i) {
      a.keys[i] = StorageKey{keys ? (*keys)[i] : NewAccountKey(), a.created_at};
    }
  }
  DSP_RETURN_IF_ERROR(store_.Write(WriteBatch()
                                       .Add(WriteBatch::PutStorageAccount{a})
                                       .Add(WriteBatch::AppendEvent{api_.MakeEvent(
                                           actor, status == 201 ? "storage.account.create" : "storage.account.update",
                                           "storageAccount/" + name, "in group " + a.group)})));
  return std::make_pair(status, a);
}

Result<Response> Storage::GetAccount(const std::string& group, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(StorageAccount a, GroupAccount(group, name));
  DSP_ASSIGN_OR_RETURN(OrderedJson out, AccountJson(a));
  return OrderedOk(200, out);
}

Result<Response> Storage::ListAccounts(const std::optional<std::string>& group) {
  if (group) {
    auto g = store_.GetResourceGroup(*group);
    if (g.status().code() == StatusCode::kNotFound) {
      return NotFound("ResourceGroupNotFound: Resource group '" + *group + "' could not be found.");
    }
    DSP_RETURN_IF_ERROR(g.status());
  }
  DSP_ASSIGN_OR_RETURN(std::vector<StorageAccount> accounts, store_.ListStorageAccounts(group));
  OrderedJson out = OrderedJson::array();
  for (const StorageAccount& a : accounts) {
    DSP_ASSIGN_OR_RETURN(OrderedJson j, AccountJson(a));
    out.push_back(std::move(j));
  }
  return OrderedOk(200, OrderedJson{{"value", out}});
}

Result<Response> Storage::DeleteAccount(const std::string& group, const std::string& name, const std::string& actor) {
  std::lock_guard lock(mu_);
  DSP_ASSIGN_OR_RETURN(StorageAccount a, GroupAccount(group, name));
  DSP_ASSIGN_OR_RETURN(std::vector<FileShare> shares, store_.ListShares(a.name));
  for (const FileShare& s : shares) {
    if (!s.deleted()) DSP_RETURN_IF_ERROR(SoftDelete(a, s, actor));
  }
  DSP_RETURN_IF_ERROR(store_.Write(
      WriteBatch()
          .Add(WriteBatch::DeleteStorageAccount{a.name})
          .Add(WriteBatch::AppendEvent{api_.MakeEvent(actor, "storage.account.delete", "storageAccount/" + a.name,
                                                      "in group " + a.group)})));
  return JsonOk(200, Json::object());
}

Result<size_t> Storage::DeleteAccountsOf(const std::string& group, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(std::vector<StorageAccount> accounts, store_.ListStorageAccounts(group));
  for (const StorageAccount& a : accounts) DSP_RETURN_IF_ERROR(DeleteAccount(group, a.name, actor).status());
  return accounts.size();
}

Result<Response> Storage::ListKeys(const std::string& group, const std::string& name, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(StorageAccount a, GroupAccount(group, name));
  // Who read the keys, in the audit log; never the keys.
  DSP_RETURN_IF_ERROR(store_.Write(WriteBatch().Add(WriteBatch::AppendEvent{
      api_.MakeEvent(actor, "storage.keys.list", "storageAccount/" + a.name, "key1, key2")})));
  return OrderedOk(200, StorageKeysToAzJson(a));
}

Result<Response> Storage::RegenerateKey(const std::string& group, const std::string& name, const Request& r,
                                        const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  std::string key_name;
  reader.Required("keyName", &key_name);
  DSP_RETURN_IF_ERROR(reader.Finish());
  size_t index;
  if (EqualsIgnoreCase(key_name, "key1")) index = 0;
  else if (EqualsIgnoreCase(key_name, "key2")) index = 1;
  else return InvalidArgument("keyName: '" + key_name + "' is not key1 or key2");
  std::lock_guard lock(mu_);
  DSP_ASSIGN_OR_RETURN(StorageAccount a, GroupAccount(group, name));
  a.keys[index] = StorageKey{NewAccountKey(), clock_.Now()};
  DSP_RETURN_IF_ERROR(store_.Write(
      WriteBatch()
          .Add(WriteBatch::PutStorageAccount{a})
          .Add(WriteBatch::AppendEvent{api_.MakeEvent(actor, "storage.keys.renew", "storageAccount/" + a.name,
                                                      "key" + std::to_string(index + 1))})));
  return OrderedOk(200, StorageKeysToAzJson(a));
}

Result<Response> Storage::CheckKey(const std::string& group, const std::string& name, const Request& r) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  std::string key;
  reader.Required("key", &key);
  DSP_RETURN_IF_ERROR(reader.Finish());
  DSP_ASSIGN_OR_RETURN(StorageAccount a, GroupAccount(group, name));
  if (!IsAccountKey(a, key)) {
    return PermissionDenied("AuthenticationFailed: the key given is not a key of storage account '" + a.name + "'");
  }
  Response resp;
  resp.status = 204;
  resp.content_type.clear();
  return resp;
}

Status Storage::CheckNfsReach(const InstanceId& id, const StorageAccount& account) {
  DSP_ASSIGN_OR_RETURN(Instance instance, store_.GetInstance(id));
  DSP_ASSIGN_OR_RETURN(std::vector<ArmResource> resources, store_.ListResources(account.group));
  for (const ArmResource& r : resources) {
    if (EqualsIgnoreCase(r.type, "Microsoft.Compute/virtualMachineScaleSets") &&
        StoreKey(r.name) == StoreKey(instance.pool.value())) {
      return Status::Ok();
    }
  }
  return PermissionDenied("access denied: an NFS share is reached only from the pools deployed in its account's "
                          "resource group ('" + account.group + "'), as Azure reaches one only from the virtual "
                          "networks it allows; pool '" + instance.pool.value() + "' is not one");
}

Result<Response> Storage::MountForInstance(const InstanceId& id, const Request& r) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  DSP_ASSIGN_OR_RETURN(ShareMountRequest m, ParseShareMountRequest(body));
  auto a = store_.GetStorageAccount(m.account);
  if (a.status().code() == StatusCode::kNotFound) {
    return NotFound("No such file or directory: there is no storage account '" + m.account + "'");
  }
  DSP_RETURN_IF_ERROR(a.status());
  if (m.protocol == "SMB" && !IsAccountKey(*a, m.key)) {
    return PermissionDenied("Permission denied: the password is not a key of storage account '" + m.account + "'");
  }
  auto s = store_.GetShare(a->name, m.share);
  if (s.status().code() == StatusCode::kNotFound) {
    return NotFound("No such file or directory: storage account '" + a->name + "' has no share '" + m.share + "'");
  }
  DSP_RETURN_IF_ERROR(s.status());
  if (s->enabled_protocols != m.protocol) {
    return PermissionDenied("share '" + m.share + "' serves " + s->enabled_protocols + ": mount it with -t " +
                            (s->enabled_protocols == "NFS" ? "nfs" : "cifs and one of the account's keys"));
  }
  if (m.protocol == "NFS") DSP_RETURN_IF_ERROR(CheckNfsReach(id, *a));
  DSP_RETURN_IF_ERROR(hooks_.AttachShare(id, a->name, m.share, m.target, m.read_only));
  DSP_RETURN_IF_ERROR(store_.Write(WriteBatch().Add(WriteBatch::AppendEvent{api_.MakeEvent(
      id.value(), "storage.share.mount", "storageAccount/" + a->name + "/share/" + m.share,
      "at " + m.target + (m.read_only ? " (read-only)" : ""))})));
  return JsonOk(200, Json::object());
}

// -------------------------------------------------------------------- shares

Result<Response> Storage::PutShare(const std::string& group, const std::string& account, const std::string& share,
                                   const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  DSP_ASSIGN_OR_RETURN(auto saved, SaveShare(group, account, share, body, actor));
  DSP_ASSIGN_OR_RETURN(StorageAccount a, GroupAccount(group, account));
  DSP_ASSIGN_OR_RETURN(OrderedJson out, ShareJson(saved.second, a));
  return OrderedOk(saved.first, out);
}

Result<std::pair<int, FileShare>> Storage::SaveShare(const std::string& group, const std::string& account,
                                                     const std::string& share, const Json& body,
                                                     const std::string& actor) {
  DSP_RETURN_IF_ERROR(ValidateShareName(share));
  JsonReader reader(body, "");
  JsonReader properties = reader.Object("properties");
  std::optional<int64_t> quota;
  if (properties.Has("shareQuota")) {
    int64_t q = 0;
    properties.Optional("shareQuota", &q);
    quota = q;
  }
  std::string protocols, tier;
  properties.Optional("enabledProtocols", &protocols);
  properties.Optional("accessTier", &tier);
  const Json* metadata = properties.Raw("metadata");
  DSP_RETURN_IF_ERROR(reader.Finish());
  if (quota) DSP_RETURN_IF_ERROR(ValidateShareQuota(*quota).WithPrefix("properties.shareQuota"));
  if (!protocols.empty() && protocols != "SMB" && protocols != "NFS") {
    return InvalidArgument("properties.enabledProtocols: '" + protocols + "' is not SMB or NFS");
  }
  if (!tier.empty() && tier != "TransactionOptimized" && tier != "Hot" && tier != "Cool" && tier != "Premium") {
    return InvalidArgument("properties.accessTier: '" + tier + "' is not TransactionOptimized, Hot, Cool or Premium");
  }
  DSP_ASSIGN_OR_RETURN(auto meta, ReadTags(metadata, "properties.metadata"));

  std::lock_guard lock(mu_);
  DSP_ASSIGN_OR_RETURN(StorageAccount a, GroupAccount(group, account));
  auto existing = store_.GetShare(a.name, share);
  FileShare s;
  int status = 201;
  if (existing.ok()) {
    s = *existing;
    if (!protocols.empty() && protocols != s.enabled_protocols) {
      return InvalidArgument("properties.enabledProtocols: a share's protocol cannot change (it is " +
                             s.enabled_protocols + ")");
    }
    status = 200;
  } else if (existing.status().code() != StatusCode::kNotFound) {
    return existing.status();
  } else {
    s.account = a.name;
    s.name = share;
    s.created_at = clock_.Now();
    if (a.kind == "FileStorage" || a.sku.rfind("Premium", 0) == 0) s.access_tier = "Premium";
    if (!protocols.empty()) s.enabled_protocols = protocols;
  }
  if (quota) s.quota_gib = *quota;
  if (!tier.empty()) s.access_tier = tier;
  if (metadata) s.metadata = meta;
  if (status == 201) DSP_RETURN_IF_ERROR(hooks_.MakeShareData(a.name, share));
  Status written = store_.Write(WriteBatch().Add(WriteBatch::PutShare{s}).Add(WriteBatch::AppendEvent{
      api_.MakeEvent(actor, status == 201 ? "storage.share.create" : "storage.share.update",
                     "storageAccount/" + a.name + "/share/" + share, "quota " + std::to_string(s.quota_gib) + " GiB")}));
  if (!written.ok()) {
    // A new, empty directory: nothing of anyone's is in it yet.
    if (status == 201) hooks_.RemoveShareData(a.name, share).IgnoreError();
    return written;
  }
  return std::make_pair(status, s);
}

Result<Response> Storage::GetShare(const std::string& group, const std::string& account, const std::string& share) {
  DSP_ASSIGN_OR_RETURN(StorageAccount a, GroupAccount(group, account));
  DSP_ASSIGN_OR_RETURN(FileShare s, FindLiveShare(a, share));
  DSP_ASSIGN_OR_RETURN(OrderedJson out, ShareJson(s, a));
  return OrderedOk(200, out);
}

Result<Response> Storage::ListShares(const std::string& group, const std::string& account, const Request& r) {
  auto include = r.query.find("includeDeleted");
  const bool deleted_too = include != r.query.end() && EqualsIgnoreCase(include->second, "true");
  DSP_ASSIGN_OR_RETURN(StorageAccount a, GroupAccount(group, account));
  DSP_ASSIGN_OR_RETURN(std::vector<FileShare> shares, store_.ListShares(a.name));
  OrderedJson out = OrderedJson::array();
  for (const FileShare& s : shares) {
    if (s.deleted() && !deleted_too) continue;
    DSP_ASSIGN_OR_RETURN(OrderedJson j, ShareJson(s, a));
    out.push_back(std::move(j));
  }
  return OrderedOk(200, OrderedJson{{"value", out}});
}

Status Storage::SoftDelete(const StorageAccount& account, const FileShare& share, const std::string& actor) {
  FileShare deleted = share;
  deleted.deleted_at = clock_.Now();
  deleted.purge_at = deleted.deleted_at + std::chrono::hours(24) * account.share_retention_days;
  // Two deletions of one name within a tick still get versions of their own.
  for (int64_t bump = 0;; ++bump) {
    deleted.deleted_version = FileTimeVersion(deleted.deleted_at, bump);
    auto taken = store_.GetShare(share.account, ShareKey(deleted));
    if (taken.status().code() == StatusCode::kNotFound) break;
    DSP_RETURN_IF_ERROR(taken.status());
  }
  DSP_RETURN_IF_ERROR(hooks_.MoveShareData(share.account, share.name, ShareKey(deleted)));
  Status written = store_.Write(
      WriteBatch()
          .Add(WriteBatch::DeleteShare{share.account, share.name})
          .Add(WriteBatch::PutShare{deleted})
          .Add(WriteBatch::AppendEvent{api_.MakeEvent(
              actor, "storage.share.delete", "storageAccount/" + share.account + "/share/" + share.name,
              "kept as version " + deleted.deleted_version + " until " + FormatTime(deleted.purge_at))}));
  if (!written.ok()) {
    if (Status back = hooks_.MoveShareData(share.account, ShareKey(deleted), share.name); !back.ok()) {
      DSP_LOG(kError, kLog) << "share " << share.account << "/" << share.name << " stays at "
                            << ShareKey(deleted) << ": " << back;
    }
  }
  return written;
}

Result<Response> Storage::DeleteShare(const std::string& group, const std::string& account, const std::string& share,
                                      const std::string& actor) {
  std::lock_guard lock(mu_);
  DSP_ASSIGN_OR_RETURN(StorageAccount a, GroupAccount(group, account));
  DSP_ASSIGN_OR_RETURN(FileShare s, FindLiveShare(a, share));
  DSP_RETURN_IF_ERROR(SoftDelete(a, s, actor));
  return JsonOk(200, Json::object());
}

Result<Response> Storage::RestoreShare(const std::string& group, const std::string& account, const std::string& share,
                                       const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  std::string version;
  reader.Required("deletedVersion", &version);
  DSP_RETURN_IF_ERROR(reader.Finish());
  std::lock_guard lock(mu_);
  DSP_ASSIGN_OR_RETURN(StorageAccount a, GroupAccount(group, account));
  auto deleted = store_.GetShare(a.name, share + "/" + version);
  if (deleted.status().code() == StatusCode::kNotFound) {
    return NotFound("DeletedShareNotFound: no deleted share '" + share + "' of version '" + version +
                    "' in storage account '" + a.name + "' (`storage share-rm list --include-deleted` lists them)");
  }
  DSP_RETURN_IF_ERROR(deleted.status());
  auto live = store_.GetShare(a.name, share);
  if (live.ok()) {
    return AlreadyExists("ShareAlreadyExists: a share '" + share + "' exists in storage account '" + a.name +
                         "'; delete it (or restore under another account) first");
  }
  if (live.status().code() != StatusCode::kNotFound) return live.status();
  FileShare restored = *deleted;
  restored.account = a.name;
  restored.deleted_version.clear();
  restored.deleted_at = {};
  restored.purge_at = {};
  DSP_RETURN_IF_ERROR(hooks_.MoveShareData(a.name, ShareKey(*deleted), share));
  Status written = store_.Write(WriteBatch()
                                    .Add(WriteBatch::DeleteShare{a.name, ShareKey(*deleted)})
                                    .Add(WriteBatch::PutShare{restored})
                                    .Add(WriteBatch::AppendEvent{api_.MakeEvent(
                                        actor, "storage.share.restore",
                                        "storageAccount/" + a.name + "/share/" + share, "version " + version)}));
  if (!written.ok()) {
    hooks_.MoveShareData(a.name, share, ShareKey(*deleted)).IgnoreError();
    return written;
  }
  DSP_ASSIGN_OR_RETURN(OrderedJson out, ShareJson(restored, a));
  return OrderedOk(200, out);
}

std::vector<Status> Storage::PurgeExpired(TimePoint now) {
  std::lock_guard lock(mu_);
  auto shares = store_.ListShares();
  if (!shares.ok()) return {shares.status().WithPrefix("purging deleted shares")};
  std::vector<Status> errors;
  for (const FileShare& s : *shares) {
    if (!s.deleted() || s.purge_at > now) continue;
    const std::string what = "deleted share " + s.account + "/" + ShareKey(s);
    Status removed = hooks_.RemoveShareData(s.account, ShareKey(s));
    if (!removed.ok() && removed.code() != StatusCode::kNotFound) {
      errors.push_back(removed.WithPrefix(what));
      continue;
    }
    Status written = store_.Write(
        WriteBatch()
            .Add(WriteBatch::DeleteShare{s.account, ShareKey(s)})
            .Add(WriteBatch::AppendEvent{api_.MakeEvent("server", "storage.share.purge",
                                                        "storageAccount/" + s.account + "/share/" + s.name,
                                                        "version " + s.deleted_version + ": retention ended")}));
    if (!written.ok()) errors.push_back(written.WithPrefix(what));
  }
  return errors;
}

// ------------------------------------------------- deploy::StorageControl

Result<std::optional<StorageAccount>> Storage::FindAccount(const std::string& group, const std::string& name) {
  auto a = store_.GetStorageAccount(name);
  if (a.status().code() == StatusCode::kNotFound) return std::optional<StorageAccount>();
  DSP_RETURN_IF_ERROR(a.status());
  if (StoreKey(a->group) != StoreKey(group)) {
    return FailedPrecondition("StorageAccountAlreadyTaken: The storage account named " + name + " is already taken.");
  }
  return std::optional<StorageAccount>(std::move(*a));
}

std::array<std::string, 2> Storage::NewKeys() { return {NewAccountKey(), NewAccountKey()}; }

Result<std::string> Storage::ApplyStorage(const std::string& group, const deploy::StorageOp& op,
                                          const std::string& actor) {
  int status = 200;
  switch (op.kind) {
    case deploy::StorageOp::Kind::kAccount: {
      DSP_ASSIGN_OR_RETURN(auto saved, SaveAccount(group, op.account, op.body, &op.keys, actor));
      status = saved.first;
      break;
    }
    case deploy::StorageOp::Kind::kFileService: {
      // The account's retention is all a file service holds here.
      DSP_ASSIGN_OR_RETURN(StorageAccount a, GroupAccount(group, op.account));
      Json body = {{"kind", a.kind}, {"sku", {{"name", a.sku}}}, {"location", a.location}};
      if (op.body.contains("properties")) body["properties"] = op.body["properties"];
      DSP_ASSIGN_OR_RETURN(auto saved, SaveAccount(group, op.account, body, nullptr, actor));
      status = saved.first;
      break;
    }
    case deploy::StorageOp::Kind::kShare: {
      DSP_ASSIGN_OR_RETURN(auto saved, SaveShare(group, op.account, op.share, op.body, actor));
      status = saved.first;
      break;
    }
  }
  return std::string(status == 201 ? "Created" : "OK");
}

Status Storage::DeleteStorage(const std::string& group, const std::string& type, const std::string& name,
                              const std::string& actor) {
  if (EqualsIgnoreCase(type, "Microsoft.Storage/storageAccounts")) return DeleteAccount(group, name, actor).status();
  // "account/default/share"
  const size_t first = name.find('/'), last = name.rfind('/');
  if (first == std::string::npos || first == last) return InvalidArgument("share resource name '" + name + "'");
  return DeleteShare(group, name.substr(0, first), name.substr(last + 1), actor).status();
}

}  // namespace dspool
