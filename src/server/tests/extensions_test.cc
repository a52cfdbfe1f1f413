#include "server/extensions.h"

#include <gtest/gtest.h>

#include "os/fs.h"

namespace dspool {
namespace {

ExtensionSpec WithFiles(std::vector<std::string> uris, std::vector<std::string> protected_uris = {}) {
  ExtensionSpec e;
  e.name = "files";
  e.settings.file_uris = std::move(uris);
  e.protected_settings.file_uris = std::move(protected_uris);
  return e;
}

TEST(MirrorTest, ParsesPrefixAndTargetAndSaysWhatIsWrong) {
  auto m = ParseMirror("https://raw.githubusercontent.com/Azure/=/srv/mirror");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->prefix, "https://raw.githubusercontent.com/Azure/");
  EXPECT_EQ(m->target, "/srv/mirror/");
  EXPECT_EQ(ParseMirror("https://a/").status().message(), "--mirror 'https://a/': expected PREFIX=TARGET");
  EXPECT_EQ(ParseMirror("ftp://a/=http://b/").status().message(),
            "--mirror 'ftp://a/=http://b/': PREFIX must be an http or https URL");
  EXPECT_EQ(ParseMirror("https://a/=mirror").status().message(),
            "--mirror 'https://a/=mirror': TARGET must be an http or https URL or an absolute directory");
  EXPECT_EQ(ParseMirror("https://a/x=/srv").status().message(),
            "--mirror 'https://a/x=/srv': a directory mirrors a PREFIX that ends in '/'");
}

class FetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/dspool-mirror-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    root_ = dir;
    ASSERT_TRUE(MakeDirs(root_ + "/mirror/General", 0755).ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/mirror/General/mount.sh", "echo mount\n", 0644).ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/secret", "not for instances", 0600).ok());
    auto m = ParseMirror("https://github.example/Azure/=" + root_ + "/mirror");
    ASSERT_TRUE(m.ok()) << m.status();
    mirrors_ = {*m};
  }
  void TearDown() override { RemoveTree(root_).IgnoreError(); }

  std::string root_;
  std::vector<Mirror> mirrors_;
};

TEST_F(FetchTest, ADirectoryMirrorServesTheLongestPrefixAndNothingOutsideIt) {
  auto files = FetchExtensionFiles(mirrors_, {WithFiles({"https://github.example/Azure/General/mount.sh?token=1"})},
                                   {}, std::chrono::seconds(5));
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0], std::vector<ExtensionFile>({{"mount.sh", "echo mount\n"}}));

  // A longer prefix wins.
  mirrors_.push_back(*ParseMirror("https://github.example/Azure/General/other/=" + root_ + "/elsewhere"));
  auto longer = FetchExtensionFiles(mirrors_, {WithFiles({"https://github.example/Azure/General/other/x.sh"})},
                                    {}, std::chrono::seconds(5));
  EXPECT_NE(longer.status().message().find("mirrored to " + root_ + "/elsewhere/x.sh"), std::string::npos)
      << longer.status();

  auto escape = FetchExtensionFiles(mirrors_, {WithFiles({"https://github.example/Azure/../../secret"})},
                                    {}, std::chrono::seconds(5));
  EXPECT_EQ(escape.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(escape.status().message().find("is not a clean relative path under the mirror"), std::string::npos);

  auto missing = FetchExtensionFiles(mirrors_, {WithFiles({"https://github.example/Azure/General/none.sh"})},
                                     {}, std::chrono::seconds(5));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(
                "extension 'files': https://github.example/Azure/General/none.sh: mirrored to " + root_),
            std::string::npos)
      << missing.status();
}

TEST_F(FetchTest, AProtectedUriIsNamedByItsFileOnly) {
  auto missing = FetchExtensionFiles(
      mirrors_, {WithFiles({}, {"https://github.example/Azure/General/none.sh?sig=SECRET-TOKEN"})},
      {}, std::chrono::seconds(5));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "extension 'files': protected fileUri for 'none.sh': could not be fetched");
}

TEST_F(FetchTest, ARelativeUriIsTheFileSentWithTheDeploymentAndNothingElse) {
  const ExtensionArtifacts sent = {{"scripts/mount.sh", "echo sent\n"}};
  auto files = FetchExtensionFiles(mirrors_, {WithFiles({"scripts/mount.sh"})}, sent, std::chrono::seconds(5));
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ((*files)[0], std::vector<ExtensionFile>({{"mount.sh", "echo sent\n"}}));

  // Not sent: never read from anywhere else (the mirror has General/mount.sh).
  auto missing = FetchExtensionFiles(mirrors_, {WithFiles({"General/mount.sh"})}, sent, std::chrono::seconds(5));
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(),
            "extension 'files': General/mount.sh: a path relative to a template, which only a deployment of the "
            "template resolves (its file sent along, as the CLI does)");
}

TEST_F(FetchTest, KeptFilesAreRootsAloneAndReadBack) {
  ExtensionSpec e = WithFiles({"https://github.example/Azure/General/mount.sh"});
  const std::string dir = root_ + "/pool/extensions";
  ASSERT_TRUE(MakeDirs(root_ + "/pool", 0700).ok());
  ASSERT_TRUE(WriteExtensionFiles(dir, {e}, {{{"mount.sh", "echo mount\n"}}}).ok());
  auto back = ReadExtensionFiles(dir, e);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, std::vector<ExtensionFile>({{"mount.sh", "echo mount\n"}}));
  // ReadPrivateFile's rule: a file others may read is refused.
  ASSERT_TRUE(WriteFileAtomic(dir + "/files/mount.sh", "swapped", 0644).ok());
  EXPECT_FALSE(ReadExtensionFiles(dir, e).ok());
}

}  // namespace
}  // namespace dspool
