#include "os/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace dspool {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// True once `pid` is gone or a zombie waiting for a reaper that is not us.
bool ProcessGone(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    size_t paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

void ExpectNoChildren() {
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD) << "a child is left unreaped";
}

TEST(RunProcessTest, ExitCodes) {
  auto ok = RunProcess({"true"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->exit_code, 0);
  EXPECT_EQ(ok->term_signal, 0);
  EXPECT_TRUE(ok->Succeeded());

  auto fail = RunProcess({"false"});
  ASSERT_TRUE(fail.ok()) << fail.status();
  EXPECT_EQ(fail->exit_code, 1);
  EXPECT_FALSE(fail->Succeeded());

  auto code = RunProcess({"sh", "-c", "exit 42"});
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(code->exit_code, 42);
  ExpectNoChildren();
}

TEST(RunProcessTest, KilledBySignal) {
  auto r = RunProcess({"sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, -1);
  EXPECT_EQ(r->term_signal, SIGTERM);
  EXPECT_FALSE(r->Succeeded());
}

TEST(RunProcessTest, CapturesStdoutAndStderrSeparately) {
  auto r = RunProcess({"sh", "-c", "echo out; echo err >&2"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "out\n");
  EXPECT_EQ(r->stderr_text, "err\n");
}

TEST(RunProcessTest, ArgumentsAreNotShellInterpreted) {
  auto r = RunProcess({"printf", "%s|", "a b", "$HOME", ";", "`id`", "*", "'q'", "x\ny"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "a b|$HOME|;|`id`|*|'q'|x\ny|");
}

TEST(RunProcessTest, StdinIsPassed) {
  RunOptions opts;
  opts.stdin_text = "secret\nline two";
  auto r = RunProcess({"cat"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "secret\nline two");
}

TEST(RunProcessTest, StdinIsDevNullByDefault) {
  auto r = RunProcess({"cat"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "");
  EXPECT_EQ(r->exit_code, 0);
}

TEST(RunProcessTest, LargeStdinLargerThanThePipe) {
  RunOptions opts;
  opts.stdin_text = std::string(5 << 20, 'x');
  auto r = RunProcess({"wc", "-c"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, std::to_string(5 << 20) + "\n");
}

TEST(RunProcessTest, ChildThatIgnoresStdinDoesNotKillUs) {
  RunOptions opts;
  opts.stdin_text = std::string(4 << 20, 'x');  // the write hits EPIPE once `true` exits
  auto r = RunProcess({"true"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  sigset_t pending;
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0) << "a SIGPIPE was left pending";
}

TEST(RunProcessTest, OutputIsCapped) {
  auto r = RunProcess({"head", "-c", "3000000", "/dev/zero"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << "the child must not block on a full pipe";
  EXPECT_EQ(r->stdout_text.size(), size_t{1} << 20);
  EXPECT_TRUE(r->stdout_truncated);
  EXPECT_FALSE(r->stderr_truncated);

  RunOptions small;
  small.max_output_bytes = 10;
  auto s = RunProcess({"sh", "-c", "echo 0123456789abcdef; echo 0123456789abcdef >&2"}, small);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stdout_text, "0123456789");
  EXPECT_EQ(s->stderr_text, "0123456789");
  EXPECT_TRUE(s->stdout_truncated);
  EXPECT_TRUE(s->stderr_truncated);
}

TEST(RunProcessTest, TimeoutKillsTheWholeProcessGroup) {
  char dir_template[] = "/tmp/dspool-process-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  std::string pid_file = std::string(dir_template) + "/pid";

  RunOptions opts;
  opts.timeout = milliseconds(300);
  auto start = steady_clock::now();
  auto r = RunProcess({"sh", "-c", "sleep 30 & echo $! > " + pid_file + "; wait"}, opts);
  auto elapsed = steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_GE(elapsed, opts.timeout) << "killed before the timeout";
  EXPECT_LT(elapsed, std::chrono::seconds(5));

  std::ifstream in(pid_file);
  pid_t grandchild = 0;
  in >> grandchild;
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(ProcessGone(grandchild)) << "the background sleep survived the timeout";
  std::remove(pid_file.c_str());
  ::rmdir(dir_template);
  ExpectNoChildren();
}

TEST(RunProcessTest, ReturnsWhenTheChildExitsEvenIfADescendantHoldsTheOutput) {
  auto start = steady_clock::now();
  auto r = RunProcess({"sh", "-c", "sleep 30 & echo $!"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  pid_t background = std::atoi(r->stdout_text.c_str());
  ASSERT_GT(background, 0);
  ::kill(background, SIGKILL);
}

TEST(RunProcessTest, EnvironmentIsExactlyWhatIsGiven) {
  ::setenv("DSPOOL_TEST_LEAK", "1", 1);
  auto r = RunProcess({"env"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, std::string(kDefaultChildPath) + "\n");

  RunOptions opts;
  opts.env = {"PATH=/usr/bin:/bin", "LANG=C"};
  auto e = RunProcess({"env"}, opts);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->stdout_text, "PATH=/usr/bin:/bin\nLANG=C\n");
  ::unsetenv("DSPOOL_TEST_LEAK");
}

TEST(RunProcessTest, LooksUpTheProgramInTheChildsPath) {
  RunOptions opts;
  opts.env = {"PATH=/nonexistent"};
  auto r = RunProcess({"true"}, opts);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status();
  auto absolute = RunProcess({"/bin/true"}, opts);
  EXPECT_TRUE(absolute.ok()) << absolute.status();
}

TEST(RunProcessTest, BadCommands) {
  EXPECT_EQ(RunProcess({}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RunProcess({""}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RunProcess({"dspool-no-such-command"}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(RunProcess({"/nonexistent/bin/x"}).status().code(), StatusCode::kNotFound);
  char not_executable[] = "/tmp/dspool-process-test-XXXXXX";
  int fd = ::mkstemp(not_executable);  // mode 0600: no execute bit, even for root
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_EQ(RunProcess({not_executable}).status().code(), StatusCode::kPermissionDenied);
  ::unlink(not_executable);
  EXPECT_EQ(RunProcess({"echo", std::string("a\0b", 3)}).status().code(), StatusCode::kInvalidArgument);
  ExpectNoChildren();
}

TEST(RunProcessTest, DescriptorsDoNotLeakIntoTheChild) {
  int fd = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(fd, 0);
  int high = ::dup2(fd, 200);
  ASSERT_EQ(high, 200);
  auto r = RunProcess({"ls", "/proc/self/fd"});
  ::close(fd);
  ::close(high);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text.find("200"), std::string::npos) << r->stdout_text;
}

TEST(RunCheckedTest, SuccessAndFailure) {
  EXPECT_TRUE(RunChecked({"true"}).ok());

  Status s = RunChecked({"sh", "-c", "echo; echo '  first problem  ' >&2; echo second >&2; exit 3", "secret-arg"});
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "sh: exit 3: first problem");

  Status quiet = RunChecked({"false"});
  EXPECT_EQ(quiet.message(), "false: exit 1");

  Status killed = RunChecked({"sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(killed.code(), StatusCode::kInternal);
  EXPECT_EQ(killed.message(), "sh: killed by signal 9 (SIGKILL)");

  EXPECT_EQ(RunChecked({"dspool-no-such-command"}).code(), StatusCode::kNotFound);
}

// The signal is raised at this thread, as a write(2) into a reset socket
// does: held while the block lasts, then discarded, and the old mask back.
TEST(ProcessTest, ScopedSigpipeBlockHoldsThenDiscardsSigpipe) {
  sigset_t pipe_only, runner_mask;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &pipe_only, &runner_mask), 0);  // whatever the runner did
  {
    ScopedSigpipeBlock block;
    ASSERT_EQ(pthread_kill(pthread_self(), SIGPIPE), 0);  // would end the process unblocked
    sigset_t pending;
    ASSERT_EQ(sigpending(&pending), 0);
    EXPECT_TRUE(sigismember(&pending, SIGPIPE));
    ScopedSigpipeBlock::Drain();
    ASSERT_EQ(sigpending(&pending), 0);
    EXPECT_FALSE(sigismember(&pending, SIGPIPE)) << "Drain discards it";
    ASSERT_EQ(pthread_kill(pthread_self(), SIGPIPE), 0);  // left for the destructor
  }
  sigset_t after, pending;
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &after), 0);
  EXPECT_FALSE(sigismember(&after, SIGPIPE)) << "the old mask is back";
  ASSERT_EQ(sigpending(&pending), 0);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
  pthread_sigmask(SIG_SETMASK, &runner_mask, nullptr);
}

}  // namespace

}  // namespace dspool

namespace dspool {
namespace {

TEST(ReleaseFreeHeapTest, GivesBackWhatWasFreedBelowALiveBlock) {
  // 32 MiB in 64 KiB blocks (below glibc's mmap threshold: on the heap),
  // then a block that stays, so the heap cannot shrink from its top.
  std::vector<std::unique_ptr<char[]>> blocks;
  for (int i = 0; i < 512; ++i) {
    blocks.emplace_back(new char[64 * 1024]);
    std::memset(blocks.back().get(), 1, 64 * 1024);  // touched: resident
  }
  auto pin = std::make_unique<char[]>(64);
  blocks.clear();
  EXPECT_TRUE(ReleaseFreeHeap());
}

}  // namespace
}  // namespace dspool
