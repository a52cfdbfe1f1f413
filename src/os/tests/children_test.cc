#include "os/children.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/testing/cannot_run.h"
#include "base/testing/temp_dir.h"
#include "os/fs.h"
#include "os/procfs.h"

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
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.status().code(), StatusCode::kNotFound);
  EXPECT_NE(pid.status().message().find("exec /nonexistent/program"), std::string::npos) << pid.status();
  auto no_dir = SpawnChild({"/bin/true"}, tmp_ / "missing-dir/log");
  EXPECT_EQ(no_dir.status().code(), StatusCode::kNotFound);
  EXPECT_NE(no_dir.status().message().find("open " + tmp_ / "missing-dir/log"), std::string::npos) << no_dir.status();
  // The failed children were reaped.
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1);
}

TEST_F(ChildrenTest, SpawnGivesExactEnvironmentDirectoryAndOnlyStandardDescriptors) {
  int leak = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC: must still not reach the child
  ASSERT_GE(leak, 3);
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "echo \"$GREETING|$HOME|$(pwd)\"; ls /proc/self/fd | sort -n | tr '\\n' ' '"};
  o.env = std::vector<std::string>{"GREETING=hello", "HOME=/nowhere", "PATH=/usr/bin:/bin"};
  o.cwd = tmp_.path();
  o.log_path = tmp_ / "logs/run.log";
  o.log_dir_mode = 0700;
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "old", "", 0600).ok());
  auto pid = Spawn(o);
  ::close(leak);
  ASSERT_TRUE(pid.ok()) << pid.status();
  int status = 0;
  ASSERT_EQ(waitpid(*pid, &status, 0), *pid);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // ls's own directory descriptor is the one above 2.
  EXPECT_EQ(*ReadFile(o.log_path), "hello|/nowhere|" + tmp_.path() + "\n0 1 2 3 ");
  struct stat st;
  ASSERT_EQ(stat((tmp_ / "logs").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(o.log_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Truncating starts the log afresh; the child leads its own process group.
  o.truncate_log = true;
  o.argv = {"/bin/sh", "-c", "ps -o pgid= -p $$ | tr -d ' '; echo $$"};
  pid = Spawn(o);
  ASSERT_TRUE(pid.ok()) << pid.status();
  waitpid(*pid, &status, 0);
  EXPECT_EQ(*ReadFile(o.log_path), std::to_string(*pid) + "\n" + std::to_string(*pid) + "\n");
}

TEST_F(ChildrenTest, SpawnAsAUserMakesTheLogAsThatUser) {
  if (geteuid() != 0) DSP_CANNOT_RUN_HERE("dropping privileges needs root");
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0711), 0);
  ASSERT_TRUE(EnsureDir(tmp_ / "home", 0700, FileOwner{4321, 4321}).ok());
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "id -u; id -g; id -G"};
  o.env = std::vector<std::string>{"PATH=/usr/bin:/bin"};
  o.credentials = SpawnCredentials{4321, 4321, {4321, 4400}};
  o.cwd = tmp_ / "home";
  o.log_path = tmp_ / "home/.dspool/out.log";
  o.log_dir_mode = 0700;
  auto pid = Spawn(o);
  ASSERT_TRUE(pid.ok()) << pid.status();
  int status = 0;
  waitpid(*pid, &status, 0);
  struct stat st;
  ASSERT_EQ(stat(o.log_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4321u);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((tmp_ / "home/.dspool").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4321u);
  auto log = RunAsCapture(4321, 4321, [&] { return ReadFile(o.log_path); });
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(*log, "4321\n4321\n4321 4400\n");
  // The user cannot go where root alone may, and the error says so.
  ASSERT_TRUE(MakeDirs(tmp_ / "root-only", 0700).ok());
  o.cwd = tmp_ / "root-only";
  auto denied = Spawn(o);
  ASSERT_FALSE(denied.ok());
  EXPECT_NE(denied.status().message().find("chdir "), std::string::npos) << denied.status();
  EXPECT_NE(denied.status().message().find("as uid 4321"), std::string::npos) << denied.status();
}

TEST_F(ChildrenTest, SignalProcessGroupReachesTheWholeGroup) {
  // The shell and its sleep share the group Spawn made; both die.
  auto pid = SpawnChild({"/bin/sh", "-c", "sleep 30 & echo $!; wait"}, tmp_ / "log");
  ASSERT_TRUE(pid.ok()) << pid.status();
  std::string log;
  for (int i = 0; i < 200 && log.empty(); ++i) {
    usleep(10000);
    log = ReadFile(tmp_ / "log").value_or("");
  }
  pid_t sleeper = std::stoi(log);
  ASSERT_TRUE(SignalProcessGroup(*pid, SIGTERM).ok());
  int status = 0;
  ASSERT_EQ(waitpid(*pid, &status, 0), *pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  // Dead: gone, or a zombie waiting for whoever inherited it.
  auto alive = [&] {
    auto stat = ReadFile("/proc/" + std::to_string(sleeper) + "/stat");
    return stat.ok() && ParseProcStat(*stat).value_or(ProcStat{}).state != 'Z';
  };
  for (int i = 0; i < 200 && alive(); ++i) usleep(10000);
  EXPECT_FALSE(alive()) << "the group's other member survived";
  EXPECT_TRUE(SignalProcessGroup(*pid, SIGTERM).ok());  // gone: fine
  EXPECT_EQ(SignalProcessGroup(1, SIGTERM).code(), StatusCode::kInvalidArgument);
}

TEST_F(ChildrenTest, ListDirIsSortedWithoutDots) {
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "b", "", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "a", "", 0600).ok());
  ASSERT_TRUE(MakeDirs(tmp_ / "c", 0700).ok());
  EXPECT_EQ(*ListDir(tmp_.path()), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ListDir(tmp_ / "none").status().code(), StatusCode::kNotFound);
}

TEST_F(ChildrenTest, RunAsDropsPrivilegeAndCarriesTheStatus) {
  if (geteuid() != 0) DSP_CANNOT_RUN_HERE("RunAs needs root");
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
  // What the user can read comes back; what it cannot, as the error.
  auto read = RunAsCapture(4321, 4321, [&] { return ReadFile(tmp_ / "mine/f"); });
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "x");
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "secret", "y", 0600).ok());
  read = RunAsCapture(4321, 4321, [&] { return ReadFile(tmp_ / "secret"); });
  EXPECT_EQ(read.status().code(), StatusCode::kPermissionDenied) << read.status();
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
