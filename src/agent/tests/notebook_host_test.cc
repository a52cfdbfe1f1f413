// SystemNotebookProcesses::Spawn, without a zygote: the server's runtime
// directory is made the user's (0700) under a root-owned parent before the
// server starts, an existing one is fixed, and one that is a symlink is
// refused with nothing started. As root (the agent is root in its instance).
#include "agent/notebook_host.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/testing/cannot_run.h"
#include "base/testing/temp_dir.h"
#include "os/fs.h"

namespace dspool {
namespace {

constexpr uid_t kNobody = 65534;

class NotebookHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) DSP_CANNOT_RUN_HERE("needs root, as the agent has in its instance, to start as another user");
    ASSERT_FALSE(dir_.path().empty());
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
    ASSERT_EQ(mkdir((dir_ / "home").c_str(), 0777), 0);
    ASSERT_EQ(chmod((dir_ / "home").c_str(), 0777), 0);
  }

  NotebookLaunch Launch() {
    NotebookLaunch l;
    l.user = {"nobody", kNobody, kNobody, {kNobody}, dir_ / "home", "/bin/sh"};
    l.argv = {"/bin/sh", "-c", "echo \"$JUPYTER_RUNTIME_DIR\" > \"$JUPYTER_RUNTIME_DIR/ran\""};
    l.runtime_dir = dir_ / "run/jupyter/65534";
    l.env = {"JUPYTER_RUNTIME_DIR=" + l.runtime_dir};
    l.log_path = dir_ / "home/.dspool/jupyter.log";
    return l;
  }

  // Spawns `l` and waits for it: its exit code.
  int Run(const NotebookLaunch& l) {
    auto pid = processes_.Spawn(l);
    EXPECT_TRUE(pid.ok()) << pid.status();
    if (!pid.ok()) return -1;
    int status = 0;
    EXPECT_EQ(waitpid(*pid, &status, 0), *pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  static struct stat Stat(const std::string& path) {
    struct stat st{};
    EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
    return st;
  }

  TempDir dir_{"dspool-notebook-host"};
  SystemNotebookProcesses processes_;
};

TEST_F(NotebookHostTest, TheRuntimeDirectoryIsTheUsersUnderARootParent) {
  NotebookLaunch l = Launch();
  ASSERT_EQ(Run(l), 0);
  struct stat st = Stat(l.runtime_dir);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_gid, kNobody);
  st = Stat(dir_ / "run/jupyter");
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_uid, 0u);
  // The server, as the user, wrote there.
  auto ran = ReadFile(l.runtime_dir + "/ran");
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_EQ(*ran, l.runtime_dir + "\n");
}

TEST_F(NotebookHostTest, AnExistingRuntimeDirectoryGetsTheUserAndMode) {
  NotebookLaunch l = Launch();
  ASSERT_TRUE(MakeDirs(l.runtime_dir, 0777).ok());
  ASSERT_EQ(chmod(l.runtime_dir.c_str(), 0777), 0);  // root's, open to all
  ASSERT_EQ(Run(l), 0);
  struct stat st = Stat(l.runtime_dir);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, kNobody);
}

TEST_F(NotebookHostTest, ARuntimeDirectoryThatIsASymlinkIsRefusedAndNothingStarts) {
  NotebookLaunch l = Launch();
  ASSERT_TRUE(MakeDirs(dir_ / "run/jupyter", 0755).ok());
  ASSERT_TRUE(MakeDirs(dir_ / "elsewhere", 0755).ok());
  ASSERT_EQ(symlink((dir_ / "elsewhere").c_str(), l.runtime_dir.c_str()), 0);
  auto pid = processes_.Spawn(l);
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(pid.status().message(), l.runtime_dir + " is a symlink; refusing to use it as a directory");
  // The link's target kept its owner and mode; no server ran (no log).
  struct stat st = Stat(dir_ / "elsewhere");
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_FALSE(PathExists(l.log_path).value_or(true));
}

}  // namespace
}  // namespace dspool
