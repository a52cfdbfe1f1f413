#include "model/storage.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

TEST(StorageNamesTest, AccountNamesAreAzures) {
  EXPECT_TRUE(ValidateStorageAccountName("abc").ok());
  EXPECT_TRUE(ValidateStorageAccountName("dspoolfiles2026").ok());
  EXPECT_TRUE(ValidateStorageAccountName(std::string(24, 'a')).ok());
  for (const char* bad : {"ab", "Upper", "with-dash", "with_underscore", "aaaaaaaaaaaaaaaaaaaaaaaaa", ""}) {
    Status s = ValidateStorageAccountName(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("3 to 24 characters, lower-case letters and digits only"), std::string::npos) << s;
  }
}

TEST(StorageNamesTest, ShareNamesAreAzures) {
  EXPECT_TRUE(ValidateShareName("dsvmshare").ok());
  EXPECT_TRUE(ValidateShareName("a-b-c").ok());
  EXPECT_TRUE(ValidateShareName(std::string(63, 'x')).ok());
  EXPECT_NE(ValidateShareName("ab").message().find("3 to 63 characters"), std::string::npos);
  EXPECT_NE(ValidateShareName("Share").message().find("lower-case letters, digits and '-' only"), std::string::npos);
  EXPECT_NE(ValidateShareName("-abc").message().find("begin and end with a letter or digit"), std::string::npos);
  EXPECT_NE(ValidateShareName("abc-").message().find("begin and end with a letter or digit"), std::string::npos);
  EXPECT_NE(ValidateShareName("a--b").message().find("'-' may not follow '-'"), std::string::npos);
  EXPECT_NE(ValidateShareName("a/b").message().find("share name 'a/b'"), std::string::npos);
}

TEST(StorageNamesTest, SkusKindsAndQuotas) {
  EXPECT_TRUE(ValidateStorageSku("Standard_LRS").ok());
  EXPECT_TRUE(ValidateStorageSku("Premium_LRS").ok());
  Status s = ValidateStorageSku("standard_lrs");
  EXPECT_NE(s.message().find("storage sku 'standard_lrs' is not one of Standard_LRS, "), std::string::npos) << s;
  EXPECT_TRUE(ValidateStorageKind("FileStorage").ok());
  EXPECT_EQ(ValidateStorageKind("Disk").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateShareQuota(1).ok());
  EXPECT_TRUE(ValidateShareQuota(102400).ok());
  EXPECT_NE(ValidateShareQuota(0).message().find("share quota 0 GiB: 1 to 102400"), std::string::npos);
  EXPECT_EQ(ValidateShareQuota(102401).code(), StatusCode::kInvalidArgument);
}

StorageAccount Account() {
  StorageAccount a;
  a.group = "RG";
  a.name = "dspoolfiles";
  a.location = "local";
  a.tags = {{"team", "ds"}};
  a.keys = {StorageKey{"key-one", FromUnixMillis(1000)}, StorageKey{"key-two", FromUnixMillis(2000)}};
  a.created_at = FromUnixMillis(500);
  return a;
}

TEST(StorageRecordsTest, AccountRoundTripsWithItsKeys) {
  StorageAccount a = Account();
  auto back = StorageAccountFromJson(StorageAccountToJson(a));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, a);
  Json broken = StorageAccountToJson(a);
  broken["keys"].erase(1);
  EXPECT_NE(StorageAccountFromJson(broken).status().message().find("two keys expected"), std::string::npos);
}

TEST(StorageRecordsTest, SharesRoundTripLiveAndDeleted) {
  FileShare s{"dspoolfiles", "dsvmshare", 100, "SMB", "Hot", {{"k", "v"}}, FromUnixMillis(7)};
  auto live = FileShareFromJson(FileShareToJson(s));
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(*live, s);
  EXPECT_EQ(ShareKey(s), "dsvmshare");
  s.deleted_version = "01DA2B3C4D5E6F70";
  s.deleted_at = FromUnixMillis(9);
  s.purge_at = FromUnixMillis(10);
  auto deleted = FileShareFromJson(FileShareToJson(s));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, s);
  EXPECT_EQ(ShareKey(s), "dsvmshare/01DA2B3C4D5E6F70");
}

TEST(StorageAzFormsTest, AccountShowsNoKey) {
  OrderedJson j = StorageAccountToAzJson(Account(), "sub");
  EXPECT_EQ(j["id"], "/subscriptions/sub/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/dspoolfiles");
  EXPECT_EQ(j["primaryEndpoints"]["file"], "https://dspoolfiles.file.core.windows.net/");
  EXPECT_EQ(j["sku"]["tier"], "Standard");
  EXPECT_EQ(j["tags"]["team"], "ds");
  EXPECT_EQ(j["keyCreationTime"]["key2"], "1970-01-01T00:00:02.000000+00:00");
  EXPECT_EQ(j.dump().find("key-one"), std::string::npos);
  EXPECT_EQ(j.dump().find("key-two"), std::string::npos);
}

TEST(StorageAzFormsTest, KeysAsListKeysAnswers) {
  OrderedJson j = StorageKeysToAzJson(Account());
  ASSERT_EQ(j["keys"].size(), 2u);
  EXPECT_EQ(j["keys"][0]["keyName"], "key1");
  EXPECT_EQ(j["keys"][0]["value"], "key-one");
  EXPECT_EQ(j["keys"][1]["keyName"], "key2");
  EXPECT_EQ(j["keys"][1]["permissions"], "FULL");
}

TEST(StorageAzFormsTest, DeletedShareCountsItsRemainingDays) {
  FileShare s{"dspoolfiles", "dsvmshare"};
  OrderedJson live = FileShareToAzJson(s, Account(), "sub", FromUnixMillis(0));
  EXPECT_TRUE(live["deleted"].is_null());
  EXPECT_EQ(live["id"],
            "/subscriptions/sub/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/dspoolfiles/"
            "fileServices/default/shares/dsvmshare");
  s.deleted_version = "0000000000000001";
  s.deleted_at = FromUnixMillis(0);
  s.purge_at = s.deleted_at + std::chrono::hours(24 * 7);
  OrderedJson deleted = FileShareToAzJson(s, Account(), "sub", s.deleted_at + std::chrono::hours(30));
  EXPECT_EQ(deleted["deleted"], true);
  EXPECT_EQ(deleted["version"], "0000000000000001");
  EXPECT_EQ(deleted["remainingRetentionDays"], 6);  // 138 hours left: day 6 has begun
  OrderedJson expired = FileShareToAzJson(s, Account(), "sub", s.purge_at + std::chrono::hours(1));
  EXPECT_EQ(expired["remainingRetentionDays"], 0);
}

}  // namespace
}  // namespace dspool
