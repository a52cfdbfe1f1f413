// storage account create|list|show|delete, storage account keys list|renew,
// storage share create|list|show|exists|delete (az's data-plane verbs,
// with --account-name) and storage share-rm create|list|show|delete|restore
// (its management verbs, with --storage-account and -g): az's verbs on
// /v1/groups/{g}/storageAccounts (docs/api.md), with az's output.
#include "cli/az_output.h"
#include "cli/commands.h"
#include "http/message.h"

namespace dspool {
namespace {

using az::AsJson;
using az::PrintRows;

std::string AccountPath(const std::string& group, const std::string& account) {
  return "/v1/groups/" + PercentEncode(group) + "/storageAccounts/" + PercentEncode(account);
}
std::string SharePath(const std::string& group, const std::string& account, const std::string& share) {
  return AccountPath(group, account) + "/shares/" + PercentEncode(share);
}

// The account's group: the one given, or the one the server has it in
// (account names are unique on the host, as az's data-plane verbs assume).
Result<std::string> AccountGroup(const CommandContext& ctx, const std::string& account, const std::string& group) {
  if (!group.empty()) return group;
  DSP_ASSIGN_OR_RETURN(Json list, ctx.api.Get("/v1/storageAccounts"));
  for (const Json& a : JsonArray(list, "value")) {
    if (JsonString(a, "name") == account) return JsonString(a, "resourceGroup");
  }
  return NotFound("ResourceNotFound: the storage account '" + account + "' was not found");
}

// --account-key, when given, must be one of the account's keys (as the
// data plane checks it on Azure); the API token authorises the rest.
Result<std::string> CheckedAccountGroup(const CommandContext& ctx, const StorageArgs& args) {
  DSP_ASSIGN_OR_RETURN(std::string group, AccountGroup(ctx, args.account, args.group));
  if (!args.account_key.empty()) {
    Json body = {{"key", args.account_key}};
    DSP_RETURN_IF_ERROR(ctx.api.Call("POST", AccountPath(group, args.account) + "/checkKey", &body).status());
  }
  return group;
}

void PrintAccounts(const CommandContext& ctx, const Json& accounts) {
  if (AsJson(ctx)) return PrintJson(ctx.out, accounts);
  std::vector<std::vector<std::string>> rows;
  for (const Json& a : accounts) {
    rows.push_back({JsonString(a, "name"), JsonString(a, "resourceGroup"), JsonString(a, "location"),
                    JsonString(a, "kind"), JsonString(JsonField(a, "sku"), "name"),
                    JsonString(a, "provisioningState")});
  }
  PrintRows(ctx, {"Name", "ResourceGroup", "Location", "Kind", "Sku", "ProvisioningState"}, rows);
}

void PrintShares(const CommandContext& ctx, const Json& shares) {
  if (AsJson(ctx)) return PrintJson(ctx.out, shares);
  std::vector<std::vector<std::string>> rows;
  for (const Json& s : shares) {
    const Json& quota = JsonField(s, "shareQuota");
    const Json& days = JsonField(s, "remainingRetentionDays");
    rows.push_back({JsonString(s, "name"), quota.is_number() ? std::to_string(quota.get<int64_t>()) : "",
                    JsonString(s, "enabledProtocols"), JsonField(s, "deleted").is_boolean() ? "yes" : "",
                    JsonString(s, "version"), days.is_number() ? std::to_string(days.get<int64_t>()) : ""});
  }
  PrintRows(ctx, {"Name", "QuotaGiB", "Protocols", "Deleted", "Version", "RetentionDaysLeft"}, rows);
}

// One account or share: az's object, or a table of one row.
void PrintAccount(const CommandContext& ctx, const Json& a) {
  AsJson(ctx) ? PrintJson(ctx.out, a) : PrintAccounts(ctx, Json::array({a}));
}
void PrintShare(const CommandContext& ctx, const Json& s) {
  AsJson(ctx) ? PrintJson(ctx.out, s) : PrintShares(ctx, Json::array({s}));
}

// az's data-plane verbs answer {"created": true} and the like.
void PrintFlag(const CommandContext& ctx, const std::string& key, bool value) {
  if (AsJson(ctx)) return PrintJson(ctx.out, Json{{key, value}});
  PrintRows(ctx, {key}, {{value ? "True" : "False"}});
}

Json ShareBody(const StorageArgs& args) {
  Json properties = Json::object();
  if (args.quota) properties["shareQuota"] = *args.quota;
  if (!args.protocol.empty()) properties["enabledProtocols"] = args.protocol;
  if (!args.metadata.empty()) properties["metadata"] = az::TagsJson(args.metadata);
  return Json{{"properties", properties}};
}

}  // namespace

// ---------------------------------------------------------------- accounts

Status StorageAccountCreate(const CommandContext& ctx, const StorageArgs& args) {
  Json body = {{"sku", {{"name", args.sku}}}, {"kind", args.kind}};
  if (!args.location.empty()) body["location"] = args.location;
  if (!args.tags.empty()) body["tags"] = az::TagsJson(args.tags);
  DSP_ASSIGN_OR_RETURN(Json a, ctx.api.Call("PUT", AccountPath(args.group, args.account), &body));
  PrintAccount(ctx, a);
  return Status::Ok();
}

Status StorageAccountList(const CommandContext& ctx, const StorageArgs& args) {
  const std::string path =
      args.group.empty() ? "/v1/storageAccounts" : "/v1/groups/" + PercentEncode(args.group) + "/storageAccounts";
  DSP_ASSIGN_OR_RETURN(Json list, ctx.api.Get(path));
  PrintAccounts(ctx, JsonArray(list, "value"));
  return Status::Ok();
}

Status StorageAccountShow(const CommandContext& ctx, const StorageArgs& args) {
  DSP_ASSIGN_OR_RETURN(std::string group, AccountGroup(ctx, args.account, args.group));
  DSP_ASSIGN_OR_RETURN(Json a, ctx.api.Get(AccountPath(group, args.account)));
  PrintAccount(ctx, a);
  return Status::Ok();
}

Status StorageAccountDelete(const CommandContext& ctx, const StorageArgs& args) {
  DSP_ASSIGN_OR_RETURN(std::string group, AccountGroup(ctx, args.account, args.group));
  if (!args.yes) {
    DSP_RETURN_IF_ERROR(az::Confirm(ctx,
                                    "The storage account '" + args.account +
                                        "' will be deleted; its shares are kept, deleted, for its retention period. "
                                        "Are you sure you want to perform this operation?",
                                    "--yes"));
  }
  return ctx.api.Call("DELETE", AccountPath(group, args.account)).status();
}

Status StorageAccountKeysList(const CommandContext& ctx, const StorageArgs& args) {
  DSP_ASSIGN_OR_RETURN(std::string group, AccountGroup(ctx, args.account, args.group));
  DSP_ASSIGN_OR_RETURN(Json keys, ctx.api.Call("POST", AccountPath(group, args.account) + "/listKeys"));
  const Json& list = JsonArray(keys, "keys");
  if (AsJson(ctx)) {
    PrintJson(ctx.out, list);
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  for (const Json& k : list) {
    rows.push_back({JsonString(k, "keyName"), JsonString(k, "permissions"), JsonString(k, "value"),
                    JsonString(k, "creationTime")});
  }
  PrintRows(ctx, {"KeyName", "Permissions", "Value", "CreationTime"}, rows);
  return Status::Ok();
}

Status StorageAccountKeysRenew(const CommandContext& ctx, const StorageArgs& args) {
  std::string key_name;
  if (args.key == "primary" || args.key == "key1") key_name = "key1";
  else if (args.key == "secondary" || args.key == "key2") key_name = "key2";
  else return InvalidArgument("--key: '" + args.key + "' is not primary or secondary (key1 or key2)");
  DSP_ASSIGN_OR_RETURN(std::string group, AccountGroup(ctx, args.account, args.group));
  Json body = {{"keyName", key_name}};
  DSP_ASSIGN_OR_RETURN(Json keys, ctx.api.Call("POST", AccountPath(group, args.account) + "/regenerateKey", &body));
  PrintJson(ctx.out, JsonArray(keys, "keys"));
  return Status::Ok();
}

// ---------------------------------------------------------------- shares

Status StorageShareCreate(const CommandContext& ctx, const StorageArgs& args, bool management) {
  DSP_ASSIGN_OR_RETURN(std::string group, CheckedAccountGroup(ctx, args));
  if (!management && !args.fail_on_exist) {
    // az's data plane: creating a share that exists answers created: false.
    auto existing = ctx.api.Get(SharePath(group, args.account, args.share));
    if (existing.ok()) {
      PrintFlag(ctx, "created", false);
      return Status::Ok();
    }
  }
  Json body = ShareBody(args);
  DSP_ASSIGN_OR_RETURN(Json s, ctx.api.Call("PUT", SharePath(group, args.account, args.share), &body));
  if (management) PrintShare(ctx, s);
  else PrintFlag(ctx, "created", true);
  return Status::Ok();
}

Status StorageShareList(const CommandContext& ctx, const StorageArgs& args) {
  DSP_ASSIGN_OR_RETURN(std::string group, CheckedAccountGroup(ctx, args));
  const std::string query = args.include_deleted ? "?includeDeleted=true" : "";
  DSP_ASSIGN_OR_RETURN(Json list, ctx.api.Get(AccountPath(group, args.account) + "/shares" + query));
  PrintShares(ctx, JsonArray(list, "value"));
  return Status::Ok();
}

Status StorageShareShow(const CommandContext& ctx, const StorageArgs& args) {
  DSP_ASSIGN_OR_RETURN(std::string group, CheckedAccountGroup(ctx, args));
  DSP_ASSIGN_OR_RETURN(Json s, ctx.api.Get(SharePath(group, args.account, args.share)));
  PrintShare(ctx, s);
  return Status::Ok();
}

Status StorageShareExists(const CommandContext& ctx, const StorageArgs& args) {
  DSP_ASSIGN_OR_RETURN(std::string group, CheckedAccountGroup(ctx, args));
  auto s = ctx.api.Get(SharePath(group, args.account, args.share));
  if (!s.ok() && s.status().code() != StatusCode::kNotFound) return s.status();
  PrintFlag(ctx, "exists", s.ok());
  return Status::Ok();
}

Status StorageShareDelete(const CommandContext& ctx, const StorageArgs& args, bool management) {
  DSP_ASSIGN_OR_RETURN(std::string group, CheckedAccountGroup(ctx, args));
  if (management && !args.yes) {
    DSP_RETURN_IF_ERROR(az::Confirm(ctx, "Are you sure you want to perform this operation?", "--yes"));
  }
  auto deleted = ctx.api.Call("DELETE", SharePath(group, args.account, args.share));
  if (!management) {
    if (!deleted.ok() && (deleted.status().code() != StatusCode::kNotFound || args.fail_not_exist)) {
      return deleted.status();
    }
    PrintFlag(ctx, "deleted", deleted.ok());
    return Status::Ok();
  }
  DSP_RETURN_IF_ERROR(deleted.status());
  ctx.err << "The share's files are kept for the account's retention period: `dspool storage share-rm list "
             "--storage-account "
          << args.account << " --include-deleted` shows its version, `share-rm restore` brings it back.\n";
  return Status::Ok();
}

Status StorageShareRestore(const CommandContext& ctx, const StorageArgs& args) {
  DSP_ASSIGN_OR_RETURN(std::string group, AccountGroup(ctx, args.account, args.group));
  Json body = {{"deletedVersion", args.deleted_version}};
  DSP_ASSIGN_OR_RETURN(Json s, ctx.api.Call("POST", SharePath(group, args.account, args.share) + "/restore", &body));
  PrintShare(ctx, s);
  return Status::Ok();
}

}  // namespace dspool
