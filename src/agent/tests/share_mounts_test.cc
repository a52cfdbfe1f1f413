#include "agent/share_mounts.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "os/fs.h"

namespace dspool {
namespace {

using ::testing::HasSubstr;

Result<std::string> NoFiles(const std::string& path) { return NotFound(path + ": no such file"); }
Result<std::string> Credentials(const std::string& path) {
  if (path != "/root/.smb") return NotFound(path + ": no such file");
  return std::string("username=dspoolfiles\r\npassword=FROM-FILE==\ndomain=AZURE\n");
}

TEST(MountHelperArgsTest, TheReferencesMountCommand) {
  // mountazurefiles.sh: mount -t cifs //$1.file.core.windows.net/$3 $4 -o
  // vers=3.0,username=$1,password=$2,dir_mode=0777,file_mode=0777
  auto r = ParseMountHelperArgs("mount.cifs", {"//dspoolfiles.file.core.windows.net/dsvmshare", "/mnt/dsvmshare", "-o",
                                 "vers=3.0,username=dspoolfiles,password=a+b/c==,dir_mode=0777,file_mode=0777"},
                                "", &NoFiles);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mount, (ShareMountRequest{"dspoolfiles", "dsvmshare", "a+b/c==", "/mnt/dsvmshare", false}));
  EXPECT_FALSE(r->fake);
}

TEST(MountHelperArgsTest, CredentialsFromAFileOrTheEnvironment) {
  auto r = ParseMountHelperArgs("mount.cifs", {"//DSPOOLFILES.file.core.windows.net/dsvmshare/", "/mnt/x", "-o",
                                 "credentials=/root/.smb,ro", "-n"},
                                "", &Credentials);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mount, (ShareMountRequest{"dspoolfiles", "dsvmshare", "FROM-FILE==", "/mnt/x", true}));
  r = ParseMountHelperArgs("mount.cifs", {"//dspoolfiles.privatelink.file.core.windows.net/dsvmshare", "/mnt/x", "-o",
                            "username=AZURE\\dspoolfiles", "-f"},
                           "FROM-ENV==", &NoFiles);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mount.key, "FROM-ENV==");
  EXPECT_TRUE(r->fake);
}

TEST(MountHelperArgsTest, BadArgumentsAreNamedAndNeverShowTheKey) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::string ok = "//dspoolfiles.file.core.windows.net/dsvmshare";
  for (const Case& c : std::vector<Case>{
           {{ok}, "usage: mount.cifs"},
           {{"//files.example.com/share", "/mnt"}, "the host must be ACCOUNT.file.core.windows.net"},
           {{"//dspoolfiles.file.core.windows.net/share/sub", "/mnt", "-o", "username=dspoolfiles,password=SECRETKEY"},
            "mounting a directory inside a share is not supported"},
           {{"//dspoolfiles.file.core.windows.net", "/mnt"}, "names no share"},
           {{"//Bad_Acct.file.core.windows.net/share", "/mnt"}, "storage account name 'bad_acct'"},
           {{ok, "/mnt", "-o", "password=SECRETKEY"}, "username=: give the storage account's name (username=dspoolfiles)"},
           {{ok, "/mnt", "-o", "username=other,password=SECRETKEY"}, "username=other: must be the storage account's name"},
           {{ok, "/mnt", "-o", "username=dspoolfiles"}, "password=: give one of the storage account's keys"},
           {{ok, "relative", "-o", "username=dspoolfiles,password=SECRETKEY"}, "mount point 'relative' is not an absolute"},
           {{ok, "/mnt", "-o", "credentials=/nope"}, "credentials=/nope: /nope: no such file"},
           {{ok, "/mnt", "-x"}, "option -x is not known"},
       }) {
    auto r = ParseMountHelperArgs("mount.cifs", c.args, "", &NoFiles);
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_THAT(r.status().message(), HasSubstr(c.message));
    EXPECT_THAT(r.status().message(), ::testing::Not(HasSubstr("SECRETKEY")));
  }
}

TEST(MountHelperArgsTest, TheNfsFormNeedsNoKey) {
  auto r = ParseMountHelperArgs("mount.nfs4",
                                {"dspoolfiles.file.core.windows.net:/dspoolfiles/nfsshare", "/mnt/nfs", "-o",
                                 "vers=4,minorversion=1,sec=sys,nconnect=4"},
                                "", &NoFiles);
  ASSERT_TRUE(r.ok()) << r.status();
  ShareMountRequest want{"dspoolfiles", "nfsshare", "", "/mnt/nfs", false};
  want.protocol = "NFS";
  EXPECT_EQ(r->mount, want);
  for (const auto& [source, message] : std::vector<std::pair<std::string, std::string>>{
           {"server.example:/export", "the host must be ACCOUNT.file.core.windows.net"},
           {"dspoolfiles.file.core.windows.net:/other/share", "the path must begin with the account, /dspoolfiles"},
           {"dspoolfiles.file.core.windows.net:/dspoolfiles", "the path must be /ACCOUNT/SHARE"},
           {"dspoolfiles.file.core.windows.net", "must be ACCOUNT.file.core.windows.net:/ACCOUNT/SHARE"},
       }) {
    auto bad = ParseMountHelperArgs("mount.nfs", {source, "/mnt/nfs"}, "", &NoFiles);
    ASSERT_FALSE(bad.ok()) << source;
    EXPECT_THAT(bad.status().message(), HasSubstr(message));
  }
}

TEST(LinkRemoteNotebooksTest, LinksEachUserWithoutALinkToTheFirstShareThatHasTheirFolder) {
  char dir[] = "/tmp/dspool-link-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string root = dir;
  auto user = [&](const std::string& name) {
    RenderedUser u;
    u.name = name;
    u.uid = ::getuid();
    u.gid = ::getgid();
    u.home = root + "/home/" + name;
    return u;
  };
  for (const char* d : {"home/ann/notebooks", "home/bob/notebooks", "home/cat", "home/dan/notebooks",
                        "share1/notebooks/bob", "share2/notebooks/ann", "share2/notebooks/bob", "elsewhere"}) {
    ASSERT_TRUE(MakeDirs(root + "/" + d, 0755).ok());
  }
  ASSERT_EQ(::symlink("/somewhere/else", (root + "/home/bob/notebooks/remote").c_str()), 0);  // the script's
  // dan's notebooks is a link elsewhere (a user's own doing): nothing is made through it.
  ASSERT_TRUE(RemoveTree(root + "/home/dan/notebooks").ok());
  ASSERT_EQ(::symlink((root + "/elsewhere").c_str(), (root + "/home/dan/notebooks").c_str()), 0);
  ASSERT_TRUE(MakeDirs(root + "/share1/notebooks/dan", 0755).ok());

  const std::vector<std::string> targets{root + "/share1", root + "/share2"};
  auto linked = LinkRemoteNotebooks({user("ann"), user("bob"), user("cat"), user("dan"), user("eve")}, targets);
  EXPECT_EQ(linked, std::vector<std::string>{"ann"});
  char buf[256] = {};
  ASSERT_GT(::readlink((root + "/home/ann/notebooks/remote").c_str(), buf, sizeof buf - 1), 0);
  EXPECT_EQ(std::string(buf), root + "/share2/notebooks/ann");
  EXPECT_FALSE(*PathExists(root + "/elsewhere/remote"));
  EXPECT_TRUE(LinkRemoteNotebooks({user("ann")}, targets).empty()) << "linked once";
  RemoveTree(root).IgnoreError();
}

}  // namespace
}  // namespace dspool
