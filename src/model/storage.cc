#include "model/storage.h"

#include <algorithm>

namespace dspool {

namespace {

bool IsLowerOrDigit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

constexpr std::array<std::string_view, 8> kSkus = {"Standard_LRS",   "Standard_GRS",   "Standard_RAGRS",
                                                   "Standard_ZRS",   "Premium_LRS",    "Premium_ZRS",
                                                   "Standard_GZRS",  "Standard_RAGZRS"};
constexpr std::array<std::string_view, 5> kKinds = {"StorageV2", "Storage", "BlobStorage", "FileStorage",
                                                    "BlockBlobStorage"};

template <size_t N>
Status OneOf(std::string_view value, const std::array<std::string_view, N>& allowed, const std::string& what) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return Status::Ok();
  std::string list;
  for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  return InvalidArgument(what + " '" + std::string(value) + "' is not one of " + list);
}

Json PairsToJson(const std::vector<std::pair<std::string, std::string>>& pairs) {
  Json out = Json::array();
  for (const auto& [k, v] : pairs) out.push_back(Json::array({k, v}));
  return out;
}

std::vector<std::pair<std::string, std::string>> PairsFromJson(const Json& json) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Json& t : json) out.emplace_back(t.at(0).get<std::string>(), t.at(1).get<std::string>());
  return out;
}

OrderedJson PairsToAzObject(const std::vector<std::pair<std::string, std::string>>& pairs) {
  OrderedJson out = OrderedJson::object();
  for (const auto& [k, v] : pairs) out[k] = v;
  return out;
}

// az prints times as Python's isoformat: "2026-12-07T16:24:58.123000+00:00".
std::string AzTime(TimePoint t) {
  std::string s = FormatTime(t);  // "...T16:24:58.123Z"
  if (!s.empty() && s.back() == 'Z') s.replace(s.size() - 1, 1, "000+00:00");
  return s;
}

std::string_view SkuTier(std::string_view sku) {
  return sku.rfind("Premium", 0) == 0 ? std::string_view("Premium") : std::string_view("Standard");
}

}  // namespace

Status ValidateStorageAccountName(std::string_view name) {
  if (name.size() < 3 || name.size() > 24 || !std::all_of(name.begin(), name.end(), IsLowerOrDigit)) {
    return InvalidArgument("storage account name '" + std::string(name) +
                           "': 3 to 24 characters, lower-case letters and digits only");
  }
  return Status::Ok();
}

Status ValidateShareName(std::string_view name) {
  auto bad = [&](const std::string& rule) { return InvalidArgument("share name '" + std::string(name) + "': " + rule); };
  if (name.size() < 3 || name.size() > 63) return bad("3 to 63 characters");
  for (char c : name) {
    if (!IsLowerOrDigit(c) && c != '-') return bad("lower-case letters, digits and '-' only");
  }
  if (name.front() == '-' || name.back() == '-') return bad("must begin and end with a letter or digit");
  if (name.find("--") != std::string_view::npos) return bad("'-' may not follow '-'");
  return Status::Ok();
}

Status ValidateStorageSku(std::string_view sku) { return OneOf(sku, kSkus, "storage sku"); }
Status ValidateStorageKind(std::string_view kind) { return OneOf(kind, kKinds, "storage kind"); }

Status ValidateShareQuota(int64_t gib) {
  if (gib < 1 || gib > 102400) {
    return InvalidArgument("share quota " + std::to_string(gib) + " GiB: 1 to 102400 (100 TiB)");
  }
  return Status::Ok();
}

Status ValidateShareRetention(bool enabled, int64_t days) {
  const std::string why = "dspool keeps a deleted share 1 to 365 days (a share's files are never destroyed at once)";
  if (!enabled) return InvalidArgument("enabled: false is refused; " + why);
  if (days < 1 || days > kMaxShareRetentionDays) return InvalidArgument("days: " + std::to_string(days) + "; " + why);
  return Status::Ok();
}

std::string ShareKey(const FileShare& share) {
  return share.deleted() ? share.name + "/" + share.deleted_version : share.name;
}

Json StorageAccountToJson(const StorageAccount& a) {
  Json keys = Json::array();
  for (const StorageKey& k : a.keys) keys.push_back({{"value", k.value}, {"createdAt", ToUnixMillis(k.created_at)}});
  return {{"group", a.group},
          {"name", a.name},
          {"location", a.location},
          {"sku", a.sku},
          {"kind", a.kind},
          {"tags", PairsToJson(a.tags)},
          {"keys", keys},
          {"shareRetentionDays", a.share_retention_days},
          {"createdAt", ToUnixMillis(a.created_at)}};
}

Result<StorageAccount> StorageAccountFromJson(const Json& json) {
  try {
    StorageAccount a;
    a.group = json.at("group").get<std::string>();
    a.name = json.at("name").get<std::string>();
    a.location = json.at("location").get<std::string>();
    a.sku = json.at("sku").get<std::string>();
    a.kind = json.at("kind").get<std::string>();
    a.tags = PairsFromJson(json.at("tags"));
    const Json& keys = json.at("keys");
    if (keys.size() != a.keys.size()) return InvalidArgument("storage account record: two keys expected");
    for (size_t i = 0; i < a.keys.size(); ++i) {
      a.keys[i].value = keys[i].at("value").get<std::string>();
      a.keys[i].created_at = FromUnixMillis(keys[i].at("createdAt").get<int64_t>());
    }
    a.share_retention_days = json.at("shareRetentionDays").get<int64_t>();
    a.created_at = FromUnixMillis(json.at("createdAt").get<int64_t>());
    return a;
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("storage account record: ") + e.what());
  }
}

Json FileShareToJson(const FileShare& s) {
  Json out = {{"account", s.account},
              {"name", s.name},
              {"quotaGiB", s.quota_gib},
              {"enabledProtocols", s.enabled_protocols},
              {"accessTier", s.access_tier},
              {"metadata", PairsToJson(s.metadata)},
              {"createdAt", ToUnixMillis(s.created_at)}};
  if (s.deleted()) {
    out["deletedVersion"] = s.deleted_version;
    out["deletedAt"] = ToUnixMillis(s.deleted_at);
    out["purgeAt"] = ToUnixMillis(s.purge_at);
  }
  return out;
}

Result<FileShare> FileShareFromJson(const Json& json) {
  try {
    FileShare s;
    s.account = json.at("account").get<std::string>();
    s.name = json.at("name").get<std::string>();
    s.quota_gib = json.at("quotaGiB").get<int64_t>();
    s.enabled_protocols = json.at("enabledProtocols").get<std::string>();
    s.access_tier = json.at("accessTier").get<std::string>();
    s.metadata = PairsFromJson(json.at("metadata"));
    s.created_at = FromUnixMillis(json.at("createdAt").get<int64_t>());
    if (json.contains("deletedVersion")) {
      s.deleted_version = json.at("deletedVersion").get<std::string>();
      s.deleted_at = FromUnixMillis(json.at("deletedAt").get<int64_t>());
      s.purge_at = FromUnixMillis(json.at("purgeAt").get<int64_t>());
    }
    return s;
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("file share record: ") + e.what());
  }
}

std::string StorageAccountId(const std::string& subscription_id, const StorageAccount& a) {
  return "/subscriptions/" + subscription_id + "/resourceGroups/" + a.group +
         "/providers/Microsoft.Storage/storageAccounts/" + a.name;
}

std::string FileShareId(const std::string& subscription_id, const StorageAccount& a, const std::string& share) {
  return StorageAccountId(subscription_id, a) + "/fileServices/default/shares/" + share;
}

OrderedJson StorageAccountToAzJson(const StorageAccount& a, const std::string& subscription_id) {
  const std::string file_endpoint = "https://" + a.name + ".file." + std::string(kStorageSuffix) + "/";
  return OrderedJson{
      {"accessTier", "Hot"},
      {"creationTime", AzTime(a.created_at)},
      {"enableHttpsTrafficOnly", true},
      {"id", StorageAccountId(subscription_id, a)},
      {"keyCreationTime", {{"key1", AzTime(a.keys[0].created_at)}, {"key2", AzTime(a.keys[1].created_at)}}},
      {"kind", a.kind},
      {"location", a.location},
      {"minimumTlsVersion", "TLS1_2"},
      {"name", a.name},
      {"primaryEndpoints", {{"file", file_endpoint}}},
      {"primaryLocation", a.location},
      {"provisioningState", "Succeeded"},
      {"resourceGroup", a.group},
      {"shareDeleteRetentionPolicy",
       {{"days", a.share_retention_days}, {"enabled", a.share_retention_days > 0}}},
      {"sku", {{"name", a.sku}, {"tier", SkuTier(a.sku)}}},
      {"statusOfPrimary", "available"},
      {"tags", PairsToAzObject(a.tags)},
      {"type", "Microsoft.Storage/storageAccounts"}};
}

OrderedJson FileShareToAzJson(const FileShare& s, const StorageAccount& a, const std::string& subscription_id,
                              TimePoint now) {
  OrderedJson out{{"accessTier", s.access_tier},
                  {"deleted", s.deleted() ? OrderedJson(true) : OrderedJson(nullptr)},
                  {"deletedTime", s.deleted() ? OrderedJson(AzTime(s.deleted_at)) : OrderedJson(nullptr)},
                  {"enabledProtocols", s.enabled_protocols},
                  {"id", FileShareId(subscription_id, a, s.name)},
                  {"lastModifiedTime", AzTime(s.deleted() ? s.deleted_at : s.created_at)},
                  {"metadata", s.metadata.empty() ? OrderedJson(nullptr) : PairsToAzObject(s.metadata)},
                  {"name", s.name},
                  {"remainingRetentionDays", nullptr},
                  {"resourceGroup", a.group},
                  {"shareQuota", s.quota_gib},
                  {"type", "Microsoft.Storage/storageAccounts/fileServices/shares"},
                  {"version", s.deleted() ? OrderedJson(s.deleted_version) : OrderedJson(nullptr)}};
  if (s.deleted()) {
    auto left = std::chrono::duration_cast<std::chrono::hours>(s.purge_at - now).count();
    out["remainingRetentionDays"] = std::max<int64_t>(0, (left + 23) / 24);
  }
  return out;
}

OrderedJson StorageKeysToAzJson(const StorageAccount& a) {
  OrderedJson keys = OrderedJson::array();
  for (size_t i = 0; i < a.keys.size(); ++i) {
    keys.push_back({{"creationTime", AzTime(a.keys[i].created_at)},
                    {"keyName", "key" + std::to_string(i + 1)},
                    {"permissions", "FULL"},
                    {"value", a.keys[i].value}});
  }
  return OrderedJson{{"keys", keys}};
}

Json ShareMountRequestToJson(const ShareMountRequest& r) {
  return {{"account", r.account}, {"share", r.share},         {"key", r.key},
          {"target", r.target},   {"readOnly", r.read_only}, {"protocol", r.protocol}};
}

Result<ShareMountRequest> ParseShareMountRequest(const Json& json) {
  JsonReader reader(json, "");
  ShareMountRequest r;
  reader.Required("account", &r.account);
  reader.Required("share", &r.share);
  reader.Optional("key", &r.key);
  reader.Required("target", &r.target);
  reader.Optional("readOnly", &r.read_only);
  reader.Optional("protocol", &r.protocol);
  DSP_RETURN_IF_ERROR(reader.Finish());
  if (r.protocol != "SMB" && r.protocol != "NFS") return InvalidArgument("protocol: '" + r.protocol + "' is not SMB or NFS");
  if (r.protocol == "SMB" && r.key.empty()) return InvalidArgument("key: an SMB mount needs one of the account's keys");
  DSP_RETURN_IF_ERROR(ValidateStorageAccountName(r.account).WithPrefix("account"));
  DSP_RETURN_IF_ERROR(ValidateShareName(r.share).WithPrefix("share"));
  if (r.target.empty() || r.target[0] != '/' || ("/" + r.target + "/").find("/../") != std::string::npos) {
    return InvalidArgument("target: '" + r.target + "' is not an absolute path");
  }
  return r;
}

}  // namespace dspool
