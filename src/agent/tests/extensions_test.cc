#include "agent/extensions.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "base/strings.h"
#include "os/fs.h"

namespace dspool {
namespace {

using std::chrono::minutes;

AgentExtension Extension(const std::string& name, const std::string& command,
                         std::vector<ExtensionFile> files = {}) {
  AgentExtension e;
  e.spec.name = name;
  e.spec.publisher = kCustomScriptPublisher;
  e.spec.type = kCustomScriptType;
  e.spec.type_handler_version = "2.1";
  e.spec.protected_settings.command = command;
  for (const ExtensionFile& f : files) e.spec.settings.file_uris.push_back("http://127.0.0.1/" + f.name);
  e.files = std::move(files);
  return e;
}

AgentProvisioning Steps(std::vector<AgentExtension> extensions, std::string custom_data = "") {
  return {std::move(custom_data), std::move(extensions)};
}

class ExtensionRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/dspool-extensions-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    root_ = dir;
  }
  void TearDown() override { RemoveTree(root_).IgnoreError(); }

  // Steps until the script started, then reaps it as the agent's loop does.
  void RunOne(ExtensionRunner& runner, MonoTime now) {
    runner.Step(now);
    ASSERT_TRUE(runner.running());
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    ASSERT_GT(pid, 0);
    EXPECT_TRUE(runner.OnExit(pid, status));
  }

  std::string root_;
  MonoTime t0_{};
};

TEST_F(ExtensionRunnerTest, RunsTheCommandInAzuresDownloadDirectoryWithItsFilesAndKeepsTheOutput) {
  ExtensionRunner runner(root_, minutes(90));
  runner.Load(Steps({Extension("files", "sh mount.sh acct SECRET-KEY",
                         {{"mount.sh", "\xef\xbb\xbf" "echo \"mounted $1 in $(pwd)\"\r\necho warned >&2\r\n"}})}));
  ASSERT_EQ(runner.Statuses().size(), 1u);
  EXPECT_EQ(runner.Statuses()[0].state, ExtensionState::kTransitioning);
  EXPECT_FALSE(runner.Finished());
  RunOne(runner, t0_);
  const std::string dir = root_ + "/waagent/custom-script/download/0";
  EXPECT_EQ(runner.DownloadDir(Extension("x", "").spec), dir);
  const ExtensionStatus s = runner.Statuses()[0];
  EXPECT_EQ(s.state, ExtensionState::kSucceeded) << s.message;
  EXPECT_EQ(s.message, "Enable succeeded\n[stdout]\nmounted acct in " + dir + "\n\n[stderr]\nwarned\n");
  EXPECT_TRUE(runner.Finished());
  // dos2unix'd, root's only; the command in a root-only file, not an argument.
  EXPECT_EQ(*ReadFile(dir + "/mount.sh"), "echo \"mounted $1 in $(pwd)\"\necho warned >&2\n");
  struct stat st{};
  ASSERT_EQ(::stat((root_ + "/waagent/dspool/files.command").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  // The instance starts again: what succeeded is not run again.
  ExtensionRunner again(root_, minutes(90));
  again.Load(Steps({Extension("files", "sh mount.sh acct SECRET-KEY", {{"mount.sh", "exit 1"}})}));
  EXPECT_EQ(again.Statuses()[0].state, ExtensionState::kSucceeded);
  again.Step(t0_);
  EXPECT_FALSE(again.running());
  EXPECT_TRUE(again.Finished());
}

TEST_F(ExtensionRunnerTest, AFailedScriptFailsWithItsStatusAndOutputAndNothingAfterItRuns) {
  ExtensionRunner runner(root_, minutes(90));
  runner.Load(Steps({Extension("first", "echo out; echo 'mount error(13): Permission denied' >&2; exit 32"),
               Extension("second", "touch ran")}));
  RunOne(runner, t0_);
  const ExtensionStatus s = runner.Statuses()[0];
  EXPECT_EQ(s.state, ExtensionState::kFailed);
  EXPECT_EQ(s.message, "Enable failed: failed to execute command: command terminated with exit status=32\n"
                       "[stdout]\nout\n\n[stderr]\nmount error(13): Permission denied\n");
  runner.Step(t0_);
  EXPECT_FALSE(runner.running());
  EXPECT_TRUE(runner.Finished());
  EXPECT_EQ(runner.Statuses()[1].state, ExtensionState::kTransitioning);
  EXPECT_FALSE(PathExists(root_ + "/custom-script/download/0/ran").value_or(true));

  // Not recorded as succeeded: a restart runs it again.
  ExtensionRunner again(root_, minutes(90));
  again.Load(Steps({Extension("first", "true")}));
  RunOne(again, t0_);
  EXPECT_EQ(again.Statuses()[0].state, ExtensionState::kSucceeded);
}

TEST_F(ExtensionRunnerTest, AScriptPastItsTimeIsKilled) {
  ExtensionRunner runner(root_, minutes(90));
  runner.Load(Steps({Extension("slow", "sleep 600 & sleep 600; wait")}));
  runner.Step(t0_);
  ASSERT_TRUE(runner.running());
  runner.Step(t0_ + minutes(89));
  EXPECT_TRUE(runner.running());
  runner.Step(t0_ + minutes(90));
  int status = 0;
  pid_t pid = waitpid(-1, &status, 0);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(runner.OnExit(pid, status));
  EXPECT_EQ(runner.Statuses()[0].state, ExtensionState::kFailed);
  EXPECT_EQ(runner.Statuses()[0].message.rfind(
                "Enable failed: failed to execute command: the script ran longer than 90 minutes and was killed", 0),
            0u)
      << runner.Statuses()[0].message;
}

TEST_F(ExtensionRunnerTest, ADirectoryThatCannotBeMadeFailsTheExtensionAndSaysWhy) {
  ASSERT_TRUE(MakeDirs(root_ + "/waagent", 0755).ok() &&
              WriteFileAtomic(root_ + "/waagent/custom-script", "a file where a directory goes", 0600).ok());
  ExtensionRunner runner(root_, minutes(90));
  runner.Load(Steps({Extension("files", "true")}));
  runner.Step(t0_);
  EXPECT_FALSE(runner.running());
  EXPECT_EQ(runner.Statuses()[0].state, ExtensionState::kFailed);
  EXPECT_NE(runner.Statuses()[0].message.find("Enable failed: "), std::string::npos);
  EXPECT_NE(runner.Statuses()[0].message.find("custom-script"), std::string::npos) << runner.Statuses()[0].message;
}

TEST_F(ExtensionRunnerTest, CustomDataRunsFirstInCloudInitsPlaceByItsOwnInterpreter) {
  ExtensionRunner runner(root_, minutes(90));
  runner.Load(Steps({Extension("files", "cat ../../../../cloud/instance/scripts/made-by-custom-data")},
                    Base64Encode("#!/bin/bash\necho \"$BASH_VERSION\" >/dev/null && echo from-bash >made-by-custom-data\n")));
  ASSERT_EQ(runner.Statuses().size(), 2u);
  EXPECT_EQ(runner.Statuses()[0].name, "customData");
  RunOne(runner, t0_);
  EXPECT_EQ(runner.Statuses()[0].state, ExtensionState::kSucceeded) << runner.Statuses()[0].message;
  EXPECT_EQ(*ReadFile(root_ + "/cloud/instance/scripts/made-by-custom-data"), "from-bash\n");
  RunOne(runner, t0_);
  EXPECT_EQ(runner.Statuses()[1].state, ExtensionState::kSucceeded) << runner.Statuses()[1].message;
  EXPECT_NE(runner.Statuses()[1].message.find("[stdout]\nfrom-bash\n"), std::string::npos) << runner.Statuses()[1].message;
}

}  // namespace
}  // namespace dspool
