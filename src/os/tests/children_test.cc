#include "os/children.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/fs.h"

namespace dspool {
namespace {

class ChildrenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dspool-children-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(RemoveTree(dir_).ok()); }
  std::string dir_;
};

TEST_F(ChildrenTest, SpawnedChildWritesToLogAndIsReapedByCaller) {
  std::string log = dir_ + "/child.log";
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
  std::string log = dir_ + "/child.log";
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
  EXPECT_EQ(SpawnChild({"sh"}, dir_ + "/log").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SpawnChild({}, dir_ + "/log").status().code(), StatusCode::kInvalidArgument);
  auto pid = SpawnChild({"/nonexistent/program"}, dir_ + "/log");
  ASSERT_TRUE(pid.ok());
  int status = 0;
  waitpid(*pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 127);
  EXPECT_EQ(SpawnChild({"/bin/true"}, dir_ + "/missing-dir/log").status().code(), StatusCode::kNotFound);
}

TEST_F(ChildrenTest, ListDirIsSortedWithoutDots) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/b", "", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/a", "", 0600).ok());
  ASSERT_TRUE(MakeDirs(dir_ + "/c", 0700).ok());
  EXPECT_EQ(*ListDir(dir_), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ListDir(dir_ + "/none").status().code(), StatusCode::kNotFound);
}

TEST_F(ChildrenTest, RunAsDropsPrivilegeAndCarriesTheStatus) {
  if (geteuid() != 0) GTEST_SKIP() << "RunAs needs root; CI runs this as root";
  ASSERT_EQ(chmod(dir_.c_str(), 0711), 0);
  ASSERT_TRUE(EnsureDir(dir_ + "/mine", 0700, FileOwner{4321, 4321}).ok());
  Status s = RunAs(4321, 4321, [&]() -> Status {
    if (geteuid() != 4321 || getegid() != 4321) return Internal("still privileged");
    return WriteFileAtomic(dir_ + "/mine/f", "x", 0600);
  });
  EXPECT_TRUE(s.ok()) << s;
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/mine/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4321u);
  // The user cannot write where root can, and the error comes back whole.
  s = RunAs(4321, 4321, [&]() { return WriteFileAtomic(dir_ + "/rootfile", "x", 0600); });
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find(dir_), std::string::npos) << s;
}

TEST_F(ChildrenTest, RedirectStderrAppends) {
  std::string log = dir_ + "/stderr.log";
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
