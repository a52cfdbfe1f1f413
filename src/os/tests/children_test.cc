#include "os/children.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/testing/temp_dir.h"
#include "os/fs.h"

namespace dspool {
namespace {

class ChildrenTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(tmp_.path().empty()); }
  TempDir tmp_{"dspool-children"};
};

TEST_F(ChildrenTest, SpawnedChildWritesToLogAndIsReapedByCaller) {
  std::string log = tmp_ / "child.log";
  auto pid = SpawnChild({"/bin/sh", "-c", "echo out; echo err >&2; exit 7"}, log);
  ASSERT_TRUE(pid.ok()) << pid.status();
  int status = 0;
  ASSERT_EQ(waitpid(*pid, &status, 0), *pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
  EXPECT_EQ(*ReadFile(log), "out\nerr\n");
  struct stat st;
  ASSERT_EQ(stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ChildrenTest, SpawnAppendsAndStartsWithDefaultSignals) {
  std::string log = tmp_ / "child.log";
  // A blocked SIGTERM here must not be inherited: the child dies of it.
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, &old);
  auto pid = SpawnChild({"/bin/sh", "-c", "echo one; kill -TERM $$; echo survived"}, log);
  sigprocmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(pid.ok());
  int status = 0;
  ASSERT_EQ(waitpid(*pid, &status, 0), *pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  auto again = SpawnChild({"/bin/echo", "two"}, log);
  ASSERT_TRUE(again.ok());
  waitpid(*again, &status, 0);
  EXPECT_EQ(*ReadFile(log), "one\ntwo\n");
}

TEST_F(ChildrenTest, SpawnRefusesRelativeProgramAndReportsExecFailure) {
  EXPECT_EQ(SpawnChild({"sh"}, tmp_ / "log").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SpawnChild({}, tmp_ / "log").status().code(), StatusCode::kInvalidArgument);
  auto pid = SpawnChild({"/nonexistent/program"}, tmp_ / "log");
  ASSERT_TRUE(pid.ok());
  int status = 0;
  waitpid(*pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 127);
  EXPECT_EQ(SpawnChild({"/bin/true"}, tmp_ / "missing-dir/log").status().code(), StatusCode::kNotFound);
}

TEST_F(ChildrenTest, ListDirIsSortedWithoutDots) {
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "b", "", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "a", "", 0600).ok());
  ASSERT_TRUE(MakeDirs(tmp_ / "c", 0700).ok());
  EXPECT_EQ(*ListDir(tmp_.path()), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ListDir(tmp_ / "none").status().code(), StatusCode::kNotFound);
}

TEST_F(ChildrenTest, RunAsDropsPrivilegeAndCarriesTheStatus) {
  if (geteuid() != 0) GTEST_SKIP() << "RunAs needs root; CI runs this as root";
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0711), 0);
  ASSERT_TRUE(EnsureDir(tmp_ / "mine", 0700, FileOwner{4321, 4321}).ok());
  Status s = RunAs(4321, 4321, [&]() -> Status {
    if (geteuid() != 4321 || getegid() != 4321) return Internal("still privileged");
    return WriteFileAtomic(tmp_ / "mine/f", "x", 0600);
  });
  EXPECT_TRUE(s.ok()) << s;
  struct stat st;
  ASSERT_EQ(stat((tmp_ / "mine/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4321u);
  // The user cannot write where root can, and the error comes back whole.
  s = RunAs(4321, 4321, [&]() { return WriteFileAtomic(tmp_ / "rootfile", "x", 0600); });
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find(tmp_.path()), std::string::npos) << s;
}

TEST_F(ChildrenTest, RedirectStderrAppends) {
  std::string log = tmp_ / "stderr.log";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!RedirectStderr(log).ok()) _exit(1);
    fputs("to the log\n", stderr);
    fflush(stderr);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(*ReadFile(log), "to the log\n");
}

}  // namespace
}  // namespace dspool
