// PythonZygote with the real dspool_zygote.py and /usr/bin/python3: the
// child runs in the zygote's interpreter, as the user, in the directory,
// with exactly the environment, its output in the log, no descriptor of
// ours; failed steps are named; a zygote that died is replaced.
#include "agent/zygote.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/jupyter.h"
#include "base/testing/cannot_run.h"
#include "base/testing/temp_dir.h"
#include "model/json_reader.h"
#include "os/fs.h"

namespace dspool {
namespace {

constexpr char kPython[] = "/usr/bin/python3";

// Writes what it is to stdout (the log), as JSON, and exits 3.
constexpr char kProbeScript[] = R"py(#!/usr/bin/python3
import json, os, sys, time
def forker():  # dspool_kernels' kernel forker, if any: [its parent, its name]
    f = getattr(sys.modules.get("dspool_kernels"), "FORKER", None)
    if f is None:
        return None
    # It names itself once forked, maybe after this script started: wait
    # for the name (a while, on a loaded machine), then say what is there.
    deadline = time.monotonic() + 30
    while True:
        stat = open(f"/proc/{f.pid}/stat").read()
        name = stat.split("(", 1)[1].rsplit(")", 1)[0]
        if name == "kernel-forker" or time.monotonic() > deadline:
            return [int(stat.rsplit(")", 1)[1].split()[1]), name]
        time.sleep(0.001)
fds = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
    except FileNotFoundError:
        pass  # the directory listdir had open
print(json.dumps({
    "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
    "cwd": os.getcwd(), "env": dict(os.environ), "argv": sys.argv, "main": __name__,
    "session_leader": os.getsid(0) == os.getpid(),
    "cmdline": open("/proc/self/cmdline").read(),
    "fds": fds,
    "forker": forker(),
}))
sys.exit(3)
)py";

class ZygoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kPython, X_OK) != 0) DSP_CANNOT_RUN_HERE(kPython << " is missing (apt-get install python3)");
    ASSERT_FALSE(dir_.path().empty());
    // The zygote's grandchildren are reparented to us, as to the agent (PID 1).
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    ASSERT_TRUE(WriteFileAtomic(dir_ / "dspool_zygote.py", kZygoteModule, 0644).ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ / "probe", kProbeScript, 0755).ok());
    // Where the user's log goes: the user must be able to make it.
    ASSERT_EQ(mkdir((dir_ / "home").c_str(), 0777), 0);
    ASSERT_EQ(chmod((dir_ / "home").c_str(), 0777), 0);
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
    PythonZygote::Options o;
    o.python = kPython;
    o.script = dir_ / "dspool_zygote.py";
    o.log_path = dir_ / "zygote.log";
    zygote_ = std::make_unique<PythonZygote>(o);
  }

  void TearDown() override {
    if (zygote_ != nullptr && zygote_->pid() > 0) {
      pid_t pid = zygote_->pid();
      zygote_.reset();  // closes the socket: the zygote exits
      int status = 0;
      waitpid(pid, &status, 0);
    }
  }

  NotebookLaunch Launch() {
    NotebookLaunch l;
    // Root drops to nobody, as the agent drops to the user; anyone else
    // stays themselves.
    bool root = geteuid() == 0;
    l.user = {"probe", root ? 65534 : getuid(), root ? 65534 : getgid(), {root ? 65534 : getgid()},
              dir_ / "home", "/bin/sh"};
    l.argv = {dir_ / "probe", "--flag=1", "two words"};
    l.env = {"HOME=" + l.user.home, "JUPYTER_TOKEN=" + std::string(48, 's'), "EMPTY="};
    l.log_path = dir_ / "home/.dspool/probe.log";
    return l;
  }

  // Waits for the child `pid` and returns what it printed.
  Json Reap(pid_t pid, int* exit_code) {
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    auto text = ReadFile(dir_ / "home/.dspool/probe.log");
    EXPECT_TRUE(text.ok()) << text.status();
    Json out;
    EXPECT_TRUE(ParseJsonText(text.value_or("{}"), "probe.log", &out).ok()) << text.value_or("");
    return out;
  }

  // Spawns the probe, which must run and exit 3.
  void ExpectRuns() {
    auto pid = zygote_->Spawn(Launch());
    ASSERT_TRUE(pid.ok()) << pid.status();
    int code = 0;
    Reap(*pid, &code);
    EXPECT_EQ(code, 3);
  }

  // Starts the zygote, kills it and waits for it (as the agent's reaper
  // would): its pid.
  pid_t StartAndKillZygote() {
    EXPECT_TRUE(zygote_->Start().ok());
    pid_t pid = zygote_->pid();
    EXPECT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    return pid;
  }

  TempDir dir_{"dspool-zygote"};
  std::unique_ptr<PythonZygote> zygote_;
};

TEST_F(ZygoteTest, RunsTheScriptAsTheUserInTheZygotesInterpreter) {
  NotebookLaunch l = Launch();
  auto pid = zygote_->Spawn(l);
  ASSERT_TRUE(pid.ok()) << pid.status();
  ASSERT_GT(zygote_->pid(), 0);
  EXPECT_NE(*pid, zygote_->pid());
  int code = 0;
  Json out = Reap(*pid, &code);
  EXPECT_EQ(code, 3);
  EXPECT_EQ(out["uid"], l.user.uid);
  EXPECT_EQ(out["euid"], l.user.uid);
  EXPECT_EQ(out["gid"], l.user.gid);
  EXPECT_EQ(out["groups"], Json(l.user.groups));
  EXPECT_EQ(out["cwd"], l.user.home);
  EXPECT_EQ(out["env"], (Json{{"HOME", l.user.home}, {"JUPYTER_TOKEN", std::string(48, 's')}, {"EMPTY", ""}}));
  EXPECT_EQ(out["argv"], Json(l.argv));
  EXPECT_EQ(out["main"], "__main__");
  EXPECT_EQ(out["session_leader"], true);
  // The zygote's process, not a fresh interpreter for the script.
  EXPECT_NE(out["cmdline"].get<std::string>().find("dspool_zygote.py"), std::string::npos);
  // Beyond 0-2, only files on /dev/null that preloaded modules keep.
  EXPECT_EQ(out["fds"]["0"], "/dev/null");
  EXPECT_EQ(out["fds"]["1"], l.log_path);
  EXPECT_EQ(out["fds"]["2"], l.log_path);
  for (const auto& [fd, target] : out["fds"].items()) {
    if (fd != "0" && fd != "1" && fd != "2") {
      EXPECT_EQ(target, "/dev/null") << "descriptor " << fd;
    }
  }
  struct stat st{};
  ASSERT_EQ(stat((dir_ / "home/.dspool/probe.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, static_cast<uid_t>(l.user.uid));
  ASSERT_EQ(stat((dir_ / "home/.dspool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // The secret went through a pipe: not in the zygote's environment.
  auto zygote_env = ReadFile("/proc/" + std::to_string(zygote_->pid()) + "/environ");
  ASSERT_TRUE(zygote_env.ok());
  EXPECT_EQ(zygote_env->find("JUPYTER_TOKEN"), std::string::npos);
}

TEST_F(ZygoteTest, AServerThatLoadsDspoolKernelsGetsAKernelForker) {
  if (access("/usr/lib/python3/dist-packages/notebook", F_OK) != 0) {
    DSP_CANNOT_RUN_HERE("Debian's Jupyter Notebook is missing (apt-get install jupyter-notebook)");
  }
  ASSERT_TRUE(WriteFileAtomic(dir_ / "dspool_kernels.py", kKernelManagerModule, 0644).ok());
  PythonZygote::Options o;
  o.python = kPython;
  o.script = dir_ / "dspool_zygote.py";
  o.python_path = dir_.path();
  o.log_path = dir_ / "zygote.log";
  zygote_ = std::make_unique<PythonZygote>(o);
  for (bool wanted : {false, true}) {
    NotebookLaunch l = Launch();
    l.kernel_forker = wanted;
    // The probe exits at once; its forker dies with it (PR_SET_PDEATHSIG).
    auto pid = zygote_->Spawn(l);
    ASSERT_TRUE(pid.ok()) << pid.status();
    int code = 0;
    Json out = Reap(*pid, &code);
    EXPECT_EQ(code, 3);
    if (!wanted) {
      EXPECT_TRUE(out["forker"].is_null()) << out["forker"];
      continue;
    }
    // The server's child, forked before the script ran.
    EXPECT_EQ(out["forker"], (Json{*pid, "kernel-forker"}));
  }
}

TEST_F(ZygoteTest, OneZygoteServesManyStarts) {
  ASSERT_TRUE(zygote_->Start().ok());
  pid_t zygote = zygote_->pid();
  for (int i = 0; i < 3; ++i) ExpectRuns();
  EXPECT_EQ(zygote_->pid(), zygote);
}

TEST_F(ZygoteTest, AFailedStepIsNamedAndNothingRuns) {
  NotebookLaunch l = Launch();
  l.user.home = dir_ / "missing";
  auto pid = zygote_->Spawn(l);
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(pid.status().message(),
            "chdir " + l.user.home + " (as uid " + std::to_string(l.user.uid) + "): No such file or directory");
  EXPECT_FALSE(PathExists(l.log_path).value_or(true));
  ExpectRuns();  // the zygote goes on
}

TEST_F(ZygoteTest, AZygoteThatDiedIsReplacedByTheNextSpawn) {
  pid_t first = StartAndKillZygote();
  zygote_->OnExit(first);
  EXPECT_EQ(zygote_->pid(), 0);
  ExpectRuns();
  EXPECT_GT(zygote_->pid(), 0);
  EXPECT_NE(zygote_->pid(), first);
}

TEST_F(ZygoteTest, ADeadZygoteNotYetReapedIsUnavailable) {
  // Between its death and the reaper's OnExit, a Spawn finds the socket
  // closed: Unavailable (the caller spawns without it), and the next Spawn
  // starts a new zygote.
  StartAndKillZygote();
  auto pid = zygote_->Spawn(Launch());
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.status().code(), StatusCode::kUnavailable) << pid.status();
  EXPECT_EQ(zygote_->pid(), 0);
  ExpectRuns();
}

TEST_F(ZygoteTest, CanRunOnlyScriptsForItsInterpreter) {
  auto script = [&](const std::string& name, const std::string& text) {
    EXPECT_TRUE(WriteFileAtomic(dir_ / name, text, 0755).ok());
    return dir_ / name;
  };
  EXPECT_TRUE(zygote_->CanRun(script("a", "#!/usr/bin/python3\nprint(1)\n")));
  EXPECT_TRUE(zygote_->CanRun(script("b", "#!/usr/bin/python3 -u\n")));
  EXPECT_FALSE(zygote_->CanRun(script("c", "#!/usr/bin/python3.11\n")));
  EXPECT_FALSE(zygote_->CanRun(script("d", "#!/bin/sh\n")));
  EXPECT_FALSE(zygote_->CanRun(script("e", "\x7f" "ELF\x02\x01\x01")));
  EXPECT_FALSE(zygote_->CanRun(dir_ / "missing"));
}

}  // namespace
}  // namespace dspool
