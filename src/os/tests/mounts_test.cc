#include "os/mounts.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "base/testing/cannot_run.h"
#include "base/testing/temp_dir.h"
#include "os/fs.h"

namespace dspool {
namespace {

// Runs `body` in a child process with its own mount namespace (so nothing
// it mounts reaches the host) and returns the child's complaint, "" if none.
std::string InPrivateMountNamespace(const std::function<std::string()>& body) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    std::string err;
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      err = "SKIP";
    } else {
      err = body();
    }
    (void)!write(pipefd[1], err.data(), err.size());
    _exit(0);
  }
  close(pipefd[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "child crashed";
  return out;
}

#define CHECK_OR_RETURN(cond) \
  if (!(cond)) return std::string("failed: ") + #cond

uid_t OwnerOf(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
}

class MountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) DSP_CANNOT_RUN_HERE("mount tests need root");
    ASSERT_FALSE(tmp_.path().empty());
  }
  void Check(const std::function<std::string()>& body) {
    std::string err = InPrivateMountNamespace(body);
    if (err == "SKIP") DSP_CANNOT_RUN_HERE("no private mount namespace here");
    EXPECT_EQ(err, "");
  }
  TempDir tmp_{"dspool-mounts"};
};

TEST_F(MountsTest, IdmappedMountTranslatesMappedOwnersAndHidesOthers) {
  std::string src = tmp_ / "src", view = tmp_ / "view";
  ASSERT_TRUE(MakeDirs(src, 0755).ok());
  ASSERT_TRUE(MakeDirs(view, 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(src + "/by-root", "x", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(src + "/by-5000", "y", 0644, FileOwner{5000, 5000}).ok());
  Check([&]() -> std::string {
    auto ns = MakeUserNamespace({{0, 1000000, 1000}});
    CHECK_OR_RETURN(ns.ok());
    Status s = MountIdmapped(src, view, ns->get(), /*read_only=*/true);
    if (!s.ok()) return s.ToString();
    CHECK_OR_RETURN(OwnerOf(view + "/by-root") == 1000000);
    CHECK_OR_RETURN(OwnerOf(view + "/by-5000") == 65534);
    CHECK_OR_RETURN(OwnerOf(src + "/by-root") == 0);
    CHECK_OR_RETURN(!WriteFileAtomic(view + "/new", "z", 0644).ok());  // read-only
    CHECK_OR_RETURN(*IsMountPoint(view));
    CHECK_OR_RETURN(Unmount(view, false).ok());
    CHECK_OR_RETURN(!*IsMountPoint(view));
    CHECK_OR_RETURN(Unmount(view, false).code() == StatusCode::kNotFound);
    return "";
  });
}

TEST_F(MountsTest, OverlayOnIdmappedLowerWithWhiteoutsAndOpaqueDirs) {
  std::string src = tmp_ / "src", lower = tmp_ / "lower", upper = tmp_ / "upper", work = tmp_ / "work",
              merged = tmp_ / "merged";
  for (const std::string& d : {src + "/secret", lower, upper, work, merged}) ASSERT_TRUE(MakeDirs(d, 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(src + "/secret/key", "k", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(src + "/public", "p", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(src + "/host_key", "h", 0600).ok());
  Check([&]() -> std::string {
    auto ns = MakeUserNamespace({{0, 1000000, 65536}});
    CHECK_OR_RETURN(ns.ok());
    CHECK_OR_RETURN(MountIdmapped(src, lower, ns->get(), true).ok());
    CHECK_OR_RETURN(MakeWhiteout(upper + "/host_key").ok());
    CHECK_OR_RETURN(MakeWhiteout(upper + "/host_key").ok());  // idempotent
    CHECK_OR_RETURN(MakeOpaqueDir(upper + "/secret", 01777, 1000000, 1000000).ok());
    Status s = MountOverlay(lower, upper, work, merged);
    if (!s.ok()) return s.ToString();
    // With an idmapped lower layer, this kernel still lists a whiteout's
    // name in readdir, but nothing can open or stat it.
    CHECK_OR_RETURN(!*PathExists(merged + "/host_key"));
    CHECK_OR_RETURN(!ReadFile(merged + "/host_key").ok());
    CHECK_OR_RETURN(*PathExists(merged + "/secret"));
    if (!ListDir(merged + "/secret")->empty()) return "not empty: " + ListDir(merged + "/secret")->front();
    CHECK_OR_RETURN(OwnerOf(merged + "/secret") == 1000000);
    CHECK_OR_RETURN(*ReadFile(merged + "/public") == "p");
    CHECK_OR_RETURN(OwnerOf(merged + "/public") == 1000000);
    auto mounts = MountsUnder(tmp_.path());
    CHECK_OR_RETURN(mounts.ok() && mounts->size() == 2);
    CHECK_OR_RETURN(mounts->at(0) == merged || mounts->at(0) == lower);
    CHECK_OR_RETURN(Unmount(merged, true).ok());
    CHECK_OR_RETURN(Unmount(lower, true).ok());
    CHECK_OR_RETURN(MountsUnder(tmp_.path())->empty());
    return "";
  });
  // Nothing reached the host's mount table.
  EXPECT_TRUE(MountsUnder(tmp_.path())->empty());
}

TEST_F(MountsTest, BadInput) {
  EXPECT_EQ(MakeUserNamespace({}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MountOverlay("/a,b", "/u", "/w", "/m").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeWhiteout("relative").code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dspool
