#include "deploy/catalog.h"

#include <gtest/gtest.h>

namespace dspool::deploy {
namespace {

TEST(CatalogTest, KnowsAzureSizesWithoutCase) {
  Catalog c;
  auto size = c.Size("standard_d2s_V3");
  ASSERT_TRUE(size.has_value());
  EXPECT_EQ(size->vcpus, 2);
  EXPECT_EQ(size->memory_mib, 8192);
  EXPECT_FALSE(c.Size("Standard_Z99").has_value());
}

TEST(CatalogTest, MapsTheReferenceImagesToTheHostImage) {
  Catalog c;
  EXPECT_EQ(c.Image("microsoft-ads", "linux-data-science-vm-ubuntu", "linuxdsvmubuntu"), ImageType::kHost);
  EXPECT_EQ(c.Image("Canonical", "UbuntuServer", "18.04-LTS"), ImageType::kHost);
  EXPECT_FALSE(c.Image("MicrosoftWindowsServer", "WindowsServer", "2019-Datacenter").has_value());
}

TEST(CatalogTest, AnOperatorAddsSizesAndImages) {
  Catalog c;
  ASSERT_EQ(c.AddFromJson(Json::parse(R"({"sizes": {"Custom_8": {"vcpus": 8, "memoryMiB": 32768}},
      "images": [{"publisher": "MyCo", "offer": "ds", "sku": "*", "image": "host"}]})")),
            Status::Ok());
  EXPECT_EQ(c.Size("custom_8")->memory_mib, 32768);
  EXPECT_EQ(c.Image("myco", "DS", "anything"), ImageType::kHost);
}

TEST(CatalogTest, ABadFileNamesThePlaceAndChangesNothing) {
  Catalog c;
  Status s = c.AddFromJson(Json::parse(R"({"sizes": {"A": {"vcpus": 2, "memoryMiB": 4096}, "B": {"vcpus": 0, "memoryMiB": 4096}}})"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("sizes.B"), std::string::npos) << s;
  EXPECT_FALSE(c.Size("A").has_value());
  s = c.AddFromJson(Json::parse(R"({"images": [{"publisher": "p", "offer": "o", "sku": "s", "image": "ubuntu"}]})"));
  EXPECT_NE(s.message().find("images[0].image"), std::string::npos) << s;
  s = c.AddFromJson(Json::parse(R"({"size": {}})"));
  EXPECT_NE(s.message().find("size"), std::string::npos) << s;
}

}  // namespace
}  // namespace dspool::deploy
