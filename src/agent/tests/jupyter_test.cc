#include "agent/jupyter.h"

#include <gtest/gtest.h>
#include <signal.h>

#include "agent/testing/fake_notebook.h"

namespace dspool {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kTokenA(64, 'a');
const std::string kTokenB(64, 'b');
constexpr int kExit1 = 1 << 8;  // wait status of exit(1)

RenderedUser Alice() { return {"alice", 20000, 20000, {20000}, "/srv/share/home/alice", "/bin/bash"}; }
RenderedUser Bob() { return {"bob", 20001, 20001, {20001}, "/srv/share/home/bob", "/bin/bash"}; }

class JupyterTest : public ::testing::Test {
 protected:
  JupyterTest() { Make({}); }

  void Make(JupyterOptions options) {
    options.lang = "C.UTF-8";
    sup_ = std::make_unique<JupyterSupervisor>(procs_, api_, clock_, [this](Duration d) { procs_.Sleep(d); },
                                               options);
    procs_.on_exit = [this](pid_t pid, int status) { sup_->OnExit(pid, status); };
    sup_->SetUsers("10.80.0.11", {Alice(), Bob()});
  }

  Result<JupyterSupervisor::Started> Start(const std::string& user, const std::string& token) {
    return sup_->Start({user, token});
  }

  SimulatedClock clock_;
  FakeNotebookProcesses procs_{clock_};
  FakeNotebookApi api_{procs_, clock_};
  std::unique_ptr<JupyterSupervisor> sup_;
};

TEST_F(JupyterTest, StartSpawnsAsTheUserAndAnswersWhenTheApiAnswersWithTheToken) {
  TimePoint t0 = clock_.Now();
  auto started = Start("alice", kTokenA);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_TRUE(started->created);
  const JupyterServer& s = started->server;
  EXPECT_EQ(s.user, "alice");
  EXPECT_EQ(s.address, "10.80.0.11");
  EXPECT_EQ(s.port, 9000);
  EXPECT_EQ(s.state, JupyterState::kReady);
  EXPECT_EQ(s.started_at, t0);
  // Polled every 25 ms until the server answered, 500 ms after its spawn.
  EXPECT_EQ(clock_.Now() - t0, milliseconds(500));
  EXPECT_EQ(api_.targets.size(), 21u);
  EXPECT_EQ(api_.targets.back(), "/user/alice/api/status");

  ASSERT_EQ(procs_.processes.size(), 1u);
  const NotebookLaunch& l = procs_.processes.at(static_cast<pid_t>(s.pid)).launch;
  EXPECT_EQ(l.user, Alice());
  EXPECT_EQ(l.argv, (std::vector<std::string>{"/usr/bin/jupyter-notebook", "--no-browser", "--ip=10.80.0.11",
                                              "--port=9000", "--NotebookApp.port_retries=0",
                                              "--NotebookApp.base_url=/user/alice/",
                                              "--notebook-dir=/srv/share/home/alice",
                                              "--NotebookApp.allow_remote_access=True",
                                              "--KernelManager.transport=ipc",
                                              "--NotebookApp.kernel_manager_class=dspool_kernels.WorkAwareKernelManager"}));
  EXPECT_EQ(l.env, (std::vector<std::string>{"HOME=/srv/share/home/alice", "USER=alice", "LOGNAME=alice",
                                             "SHELL=/bin/bash", "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
                                             "PYTHONPATH=/usr/local/lib/dspool/python",
                                             "JUPYTER_RUNTIME_DIR=/run/dspool/jupyter/20000",
                                             "JUPYTER_TOKEN=" + kTokenA}));
  EXPECT_EQ(l.runtime_dir, "/run/dspool/jupyter/20000");
  EXPECT_TRUE(l.kernel_forker);
  EXPECT_EQ(l.log_path, "/srv/share/home/alice/.dspool/jupyter.log");
  for (const std::string& a : l.argv) EXPECT_EQ(a.find(kTokenA), std::string::npos) << a;
}

TEST_F(JupyterTest, SameTokenIsTheRunningServerAndANewTokenReplacesIt) {
  auto first = Start("alice", kTokenA);
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = Start("alice", kTokenA);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->server.pid, first->server.pid);
  EXPECT_EQ(procs_.processes.size(), 1u);

  auto replaced = Start("alice", kTokenB);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_TRUE(replaced->created);
  EXPECT_NE(replaced->server.pid, first->server.pid);
  EXPECT_EQ(procs_.signals, (std::vector<std::pair<pid_t, int>>{{first->server.pid, SIGTERM}}));
  EXPECT_FALSE(procs_.processes.at(static_cast<pid_t>(first->server.pid)).alive);
  EXPECT_EQ(procs_.processes.at(static_cast<pid_t>(replaced->server.pid)).token, kTokenB);
  EXPECT_EQ(replaced->server.port, 9000);  // free again
  // The old one is gone, not reported as exited.
  auto list = sup_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].pid, replaced->server.pid);
}

TEST_F(JupyterTest, ServerThatExitsWhileStartingIsA502WithItsLogAndNoToken) {
  procs_.exit_after_spawn = {{milliseconds(250), kExit1}};
  procs_.log = "line 1\nline 2\n[C] http://10.80.0.11:9000/user/alice/?token=" + kTokenA + "\nOSError: port in use\n";
  auto started = Start("alice", kTokenA);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.status().code(), StatusCode::kUnavailable);
  const std::string m = started.status().message();
  EXPECT_NE(m.find("the Jupyter server of user 'alice' exited (exit 1) before it answered"), std::string::npos) << m;
  EXPECT_NE(m.find("last lines of /srv/share/home/alice/.dspool/jupyter.log:\nline 1"), std::string::npos) << m;
  EXPECT_NE(m.find("OSError: port in use"), std::string::npos) << m;
  EXPECT_NE(m.find("?token=<token>"), std::string::npos) << m;
  EXPECT_EQ(m.find(kTokenA), std::string::npos) << m;
  EXPECT_TRUE(sup_->List().empty());
  EXPECT_EQ(sup_->Running(), 0u);

  procs_.log_error = PermissionDenied("open /srv/share/home/alice/.dspool/jupyter.log: Permission denied");
  started = Start("alice", kTokenA);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.status().message().find("its log /srv/share/home/alice/.dspool/jupyter.log cannot be read"),
            std::string::npos)
      << started.status();
}

TEST_F(JupyterTest, ServerThatNeverAnswersIsKilledAfterTheTimeout) {
  api_.startup = std::chrono::hours(1);
  TimePoint t0 = clock_.Now();
  auto started = Start("alice", kTokenA);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.status().code(), StatusCode::kDeadlineExceeded);
  const std::string m = started.status().message();
  EXPECT_NE(m.find("did not answer on http://10.80.0.11:9000/user/alice/api/status within 60 s"), std::string::npos)
      << m;
  EXPECT_NE(m.find("connection refused"), std::string::npos) << m;
  EXPECT_NE(m.find("it was killed"), std::string::npos) << m;
  EXPECT_NE(m.find("[I NotebookApp] starting"), std::string::npos) << m;
  EXPECT_GE(clock_.Now() - t0, seconds(60));
  EXPECT_LT(clock_.Now() - t0, seconds(61));
  ASSERT_EQ(procs_.signals.size(), 1u);
  EXPECT_EQ(procs_.signals[0].second, SIGKILL);
  EXPECT_EQ(procs_.LiveCount(), 0u);
  EXPECT_TRUE(sup_->List().empty());
}

TEST_F(JupyterTest, BadRequestsAreRefusedAndNamed) {
  auto r = Start("carol", kTokenA);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "user 'carol' is not a pool user on this instance");
  r = Start("alice", "short");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().find("short"), std::string::npos) << r.status();
  r = Start("Alice", kTokenA);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  sup_->SetUsers("", {Alice()});
  r = Start("alice", kTokenA);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("pool address is unknown"), std::string::npos) << r.status();
  EXPECT_TRUE(procs_.processes.empty());
}

TEST_F(JupyterTest, PortsAreTheFirstFreeOnesAndRunOut) {
  Make({.first_port = 9000, .last_port = 9002});
  procs_.taken_ports = {9000};
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->server.port, 9001);
  auto b = Start("bob", kTokenB);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->server.port, 9002);
  ASSERT_TRUE(sup_->Stop("bob").ok());
  procs_.taken_ports.insert(9002);
  auto none = Start("bob", kTokenB);
  EXPECT_EQ(none.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(none.status().message(),
            "cannot start the Jupyter server of user 'bob': no free port in 9000..9002 on 10.80.0.11");
}

TEST_F(JupyterTest, SpawnFailureIsUnavailableNamingTheUser) {
  procs_.spawn_error = NotFound("exec /usr/bin/jupyter-notebook: No such file or directory");
  auto r = Start("alice", kTokenA);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(),
            "cannot start the Jupyter server of user 'alice': exec /usr/bin/jupyter-notebook: No such file or "
            "directory");
}

TEST_F(JupyterTest, ListPollsWithoutTrackingAndCountsBusyKernelsAndTerminals) {
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  auto& act = api_.activity["alice"];
  act.last_activity = "2023-11-14T22:13:25.500123Z";
  // "starting": dspool_kernels.py has not heard the kernel yet; a cell may
  // run unheard, so it counts as busy.
  act.kernels = Json::parse(R"([{"id":"k1","execution_state":"busy"},{"id":"k2","execution_state":"idle"},
                                {"id":"k3","execution_state":"starting"}, {"id":"k4","execution_state":"dead"}])");
  act.terminals = Json::parse(R"([{"name":"1"},{"name":"2"}])");
  procs_.busy_terminals[static_cast<pid_t>(a->server.pid)] = 1;
  api_.targets.clear();

  auto list = sup_->List();
  ASSERT_EQ(list.size(), 1u);
  const JupyterServer& s = list[0];
  EXPECT_EQ(s.state, JupyterState::kReady);
  EXPECT_EQ(s.last_activity, FromUnixMillis(1'700'000'005'500));
  EXPECT_EQ(s.kernels, 4);
  EXPECT_EQ(s.busy_kernels, 2);
  EXPECT_EQ(s.terminals, 2);
  EXPECT_EQ(s.busy_terminals, 1);
  EXPECT_EQ(api_.targets, (std::vector<std::string>{"/user/alice/api/status",
                                                    "/user/alice/api/kernels?no_track_activity=1",
                                                    "/user/alice/api/terminals?no_track_activity=1"}));
}

// idle_for is the agent's own monotonic measure: it grows while the
// notebook's last_activity stays put, ignores steps of the wall clock, and
// starts again at any change of last_activity, also one backwards.
TEST_F(JupyterTest, IdleTimeIsMeasuredOnTheMonotonicClock) {
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  auto& act = api_.activity["alice"];
  const MonoTime spawned = procs_.processes.at(static_cast<pid_t>(a->server.pid)).spawned_at;
  auto idle = [&] { return sup_->List().at(0).idle_for; };
  ASSERT_EQ(idle(), clock_.Monotonic() - spawned) << "until it changes, the activity was the start";
  clock_.Advance(std::chrono::minutes(10));
  const Duration ten_minutes = std::chrono::duration_cast<Duration>(clock_.Monotonic() - spawned);
  EXPECT_EQ(idle(), ten_minutes);
  clock_.StepWall(std::chrono::hours(1));
  EXPECT_EQ(idle(), ten_minutes) << "a wall step is not idleness";
  clock_.StepWall(-std::chrono::hours(2));
  EXPECT_EQ(idle(), ten_minutes);
  act.last_activity = "2023-11-14T21:00:00.000000Z";  // earlier than before: the clock went back
  clock_.Advance(seconds(3));
  EXPECT_EQ(idle(), Duration(0));
  clock_.Advance(seconds(3));
  EXPECT_EQ(idle(), Duration(seconds(3)));
}

TEST_F(JupyterTest, AServerThatStopsAnsweringIsUnresponsiveWithItsLastFigures) {
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  api_.activity["alice"].kernels = Json::parse(R"([{"execution_state":"busy"}])");
  ASSERT_EQ(sup_->List().at(0).busy_kernels, 1);
  api_.activity["alice"].down = true;
  auto list = sup_->List();
  EXPECT_EQ(list.at(0).state, JupyterState::kUnresponsive);
  EXPECT_EQ(list.at(0).busy_kernels, 1);
  // Still this token's server: a start with it answers with it.
  auto again = Start("alice", kTokenA);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created);
  api_.activity["alice"].down = false;
  EXPECT_EQ(sup_->List().at(0).state, JupyterState::kReady);
}

TEST_F(JupyterTest, AnExitedServerIsListedOnceThenForgotten) {
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  procs_.ExitAfter(static_cast<pid_t>(a->server.pid), Duration(0), kExit1);
  procs_.Sleep(Duration(0));
  EXPECT_EQ(sup_->Running(), 0u);
  api_.targets.clear();
  auto list = sup_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].state, JupyterState::kExited);
  EXPECT_TRUE(api_.targets.empty());  // not polled
  EXPECT_TRUE(sup_->List().empty());
  // A new start after the exit is a fresh server.
  auto b = Start("alice", kTokenA);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->created);
}

TEST_F(JupyterTest, ClassifiesAnExitBySignalAndTheOomCount) {
  EXPECT_EQ(ClassifyExit(SIGKILL, 4, 5), kOutOfMemory);
  EXPECT_EQ(ClassifyExit(SIGKILL, 5, 5), "killed by signal 9") << "no OOM kill since";
  EXPECT_EQ(ClassifyExit(SIGKILL, std::nullopt, 5), "killed by signal 9") << "no baseline: cannot tell";
  EXPECT_EQ(ClassifyExit(SIGKILL, 4, std::nullopt), "killed by signal 9") << "unreadable count";
  EXPECT_EQ(ClassifyExit(SIGTERM, 4, 5), "killed by signal 15") << "the OOM killer sends SIGKILL only";
  EXPECT_EQ(ClassifyExit(kExit1, 4, 5), "exit 1");
}

TEST_F(JupyterTest, AServerTheOomKillerKilledIsReportedOnceAsOutOfMemory) {
  procs_.oom_kills = 7;  // earlier kills in the instance are not this server's
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(sup_->ExitsToReport().exits.empty());

  procs_.oom_kill_exits = {static_cast<pid_t>(a->server.pid)};
  procs_.ExitAfter(static_cast<pid_t>(a->server.pid), Duration(0), SIGKILL);
  procs_.Sleep(Duration(0));
  auto pending = sup_->ExitsToReport();
  ASSERT_EQ(pending.exits.size(), 1u);
  const NotebookExit& e = pending.exits[0];
  EXPECT_EQ(e.user, "alice");
  EXPECT_EQ(e.pid, a->server.pid);
  EXPECT_EQ(e.port, 9000);
  EXPECT_EQ(e.reason, "out of memory");
  EXPECT_EQ(e.at, clock_.Now());
  // Not acknowledged (the report failed): sent again.
  EXPECT_EQ(sup_->ExitsToReport().exits, pending.exits);
  sup_->ExitsReported(pending.through);
  EXPECT_TRUE(sup_->ExitsToReport().exits.empty());
  // The listing says it once too.
  auto list = sup_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].state, JupyterState::kExited);
}

TEST_F(JupyterTest, EachOomKillExplainsOneSigkillOnly) {
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = Start("bob", kTokenB);
  ASSERT_TRUE(b.ok()) << b.status();
  procs_.oom_kills = 1;  // one OOM kill, two servers killed (one by hand)
  procs_.ExitAfter(static_cast<pid_t>(a->server.pid), Duration(0), SIGKILL);
  procs_.ExitAfter(static_cast<pid_t>(b->server.pid), Duration(0), SIGKILL);
  procs_.Sleep(Duration(0));
  auto pending = sup_->ExitsToReport();
  ASSERT_EQ(pending.exits.size(), 2u);
  EXPECT_EQ(pending.exits[0].reason, "out of memory");
  EXPECT_EQ(pending.exits[1].reason, "killed by signal 9");
}

TEST_F(JupyterTest, AnOldOomKillIsNotBlamedOnALaterSigkill) {
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  procs_.oom_kills = 1;  // a kernel, say, killed for lack of memory
  // Two reports later the baseline has caught up with it.
  (void)sup_->ExitsToReport();
  (void)sup_->ExitsToReport();
  procs_.ExitAfter(static_cast<pid_t>(a->server.pid), Duration(0), SIGKILL);
  procs_.Sleep(Duration(0));
  auto pending = sup_->ExitsToReport();
  ASSERT_EQ(pending.exits.size(), 1u);
  EXPECT_EQ(pending.exits[0].reason, "killed by signal 9");
}

TEST_F(JupyterTest, AnOomKillJustBeforeAReportIsStillTheServers) {
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  (void)sup_->ExitsToReport();
  procs_.oom_kills = 1;  // killed; a report runs before the reaper sees the exit
  (void)sup_->ExitsToReport();
  procs_.ExitAfter(static_cast<pid_t>(a->server.pid), Duration(0), SIGKILL);
  procs_.Sleep(Duration(0));
  auto pending = sup_->ExitsToReport();
  ASSERT_EQ(pending.exits.size(), 1u);
  EXPECT_EQ(pending.exits[0].reason, "out of memory");
}

TEST_F(JupyterTest, ExitsReportedAreOnlyUnaskedOnesAndOomWhileStarting) {
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(sup_->Stop("alice").ok());
  EXPECT_TRUE(sup_->ExitsToReport().exits.empty()) << "a stop is asked for";

  auto b = Start("bob", kTokenB);
  ASSERT_TRUE(b.ok()) << b.status();
  procs_.ExitAfter(static_cast<pid_t>(b->server.pid), Duration(0), kExit1);
  procs_.Sleep(Duration(0));
  auto pending = sup_->ExitsToReport();
  ASSERT_EQ(pending.exits.size(), 1u);
  EXPECT_EQ(pending.exits[0].reason, "exit 1");
  sup_->ExitsReported(pending.through);

  // A failed start is Start's error; out of memory is reported as well.
  procs_.exit_after_spawn = {{milliseconds(250), kExit1}};
  EXPECT_FALSE(Start("alice", kTokenA).ok());
  EXPECT_TRUE(sup_->ExitsToReport().exits.empty());
  procs_.oom_kills = 4;
  procs_.oom_kill_exits = {1003};  // the next spawn
  procs_.exit_after_spawn = {{milliseconds(250), SIGKILL}};
  auto failed = Start("alice", kTokenA);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("exited (out of memory) before it answered"), std::string::npos)
      << failed.status();
  pending = sup_->ExitsToReport();
  ASSERT_EQ(pending.exits.size(), 1u);
  EXPECT_EQ(pending.exits[0].reason, "out of memory");
}

TEST_F(JupyterTest, WithoutAnOomCountAKillIsJustASignal) {
  procs_.oom_error = NotFound("/sys/fs/cgroup/memory.events: no such file");
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  procs_.ExitAfter(static_cast<pid_t>(a->server.pid), Duration(0), SIGKILL);
  procs_.Sleep(Duration(0));
  auto pending = sup_->ExitsToReport();
  ASSERT_EQ(pending.exits.size(), 1u);
  EXPECT_EQ(pending.exits[0].reason, "killed by signal 9");
}

TEST_F(JupyterTest, AtMostKMaxNotebookExitsWaitTheOldestGoFirst) {
  for (size_t i = 0; i < kMaxNotebookExits + 2; ++i) {
    auto a = Start("alice", kTokenA);
    ASSERT_TRUE(a.ok()) << a.status();
    procs_.ExitAfter(static_cast<pid_t>(a->server.pid), Duration(0), kExit1);
    procs_.Sleep(Duration(0));
  }
  auto pending = sup_->ExitsToReport();
  ASSERT_EQ(pending.exits.size(), kMaxNotebookExits);
  EXPECT_EQ(pending.exits.front().pid, 1002) << "the first two were dropped";
}

TEST_F(JupyterTest, StopTerminatesThenKillsAfterTheGrace) {
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  pid_t pid = static_cast<pid_t>(a->server.pid);
  TimePoint t0 = clock_.Now();
  ASSERT_TRUE(sup_->Stop("alice").ok());
  EXPECT_EQ(procs_.signals, (std::vector<std::pair<pid_t, int>>{{pid, SIGTERM}}));
  EXPECT_EQ(clock_.Now() - t0, milliseconds(300));
  EXPECT_TRUE(sup_->List().empty());
  EXPECT_EQ(sup_->Stop("alice").code(), StatusCode::kNotFound);

  procs_.ignore_term = true;
  a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  pid = static_cast<pid_t>(a->server.pid);
  procs_.signals.clear();
  t0 = clock_.Now();
  ASSERT_TRUE(sup_->Stop("alice").ok());
  EXPECT_EQ(procs_.signals, (std::vector<std::pair<pid_t, int>>{{pid, SIGTERM}, {pid, SIGKILL}}));
  EXPECT_GE(clock_.Now() - t0, seconds(5));
  EXPECT_LT(clock_.Now() - t0, milliseconds(5200));
  EXPECT_EQ(procs_.LiveCount(), 0u);
}

TEST_F(JupyterTest, StopOfAnUnreapedServerFailsNamingIt) {
  auto a = Start("alice", kTokenA);
  ASSERT_TRUE(a.ok()) << a.status();
  procs_.on_exit = nullptr;  // nobody reaps
  Status s = sup_->Stop("alice");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "the Jupyter server of user 'alice' (pid " + std::to_string(a->server.pid) +
                             ") has not exited 5 s after SIGKILL");
}

TEST_F(JupyterTest, ShutdownTerminatesEveryServerAndRefusesStarts) {
  ASSERT_TRUE(Start("alice", kTokenA).ok());
  ASSERT_TRUE(Start("bob", kTokenB).ok());
  sup_->Shutdown();
  EXPECT_EQ(procs_.signals.size(), 2u);
  EXPECT_EQ(Start("alice", kTokenB).status().code(), StatusCode::kUnavailable);
  procs_.Sleep(seconds(1));
  EXPECT_EQ(sup_->Running(), 0u);
}

TEST(JupyterPureTest, BusyTerminalsAreShellsWithAJob) {
  const pid_t server = 100;
  std::vector<ProcStat> ps = {
      {100, "jupyter-noteboo", 'S', 1, 100, 100, 0, -1},
      {110, "python3", 'S', 100, 110, 110, 0, -1},        // a kernel: no terminal
      {120, "bash", 'S', 100, 120, 120, 34816, 120},      // idle prompt
      {130, "bash", 'S', 100, 130, 130, 34817, 135},      // foreground job
      {135, "sleep", 'S', 130, 135, 130, 34817, 135},
      {140, "bash", 'S', 100, 140, 140, 34818, 140},      // background job
      {145, "sleep", 'S', 140, 145, 140, 34818, 140},
      {150, "bash", 'S', 100, 150, 150, 34819, 150},      // only a zombie child
      {155, "true", 'Z', 150, 155, 150, 34819, 150},
      {160, "bash", 'S', 999, 160, 160, 34820, 165},      // another server's
  };
  EXPECT_EQ(CountBusyTerminals(ps, server), 2);
  EXPECT_EQ(CountBusyTerminals(ps, 999), 1);
  EXPECT_EQ(CountBusyTerminals({}, server), 0);
}

TEST(JupyterPureTest, ActivityParsingNamesWhatIsWrong) {
  Json status = {{"last_activity", "2023-11-14T22:13:20.042000Z"}};
  auto a = ParseNotebookActivity(status, Json::array(), Json::array());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->last_activity, FromUnixMillis(1'700'000'000'042));
  EXPECT_EQ(a->kernels, 0);

  EXPECT_EQ(ParseNotebookActivity(Json::object(), Json::array(), Json::array()).status().message(),
            "notebook api/status: last_activity: expected a time string");
  EXPECT_NE(ParseNotebookActivity({{"last_activity", "soon"}}, Json::array(), Json::array())
                .status()
                .message()
                .find("notebook api/status: last_activity: time \"soon\""),
            std::string::npos);
  EXPECT_EQ(ParseNotebookActivity(status, Json::parse(R"([{"id":"k"}])"), Json::array()).status().message(),
            "notebook api/kernels[0].execution_state: expected a string");
  EXPECT_EQ(ParseNotebookActivity(status, Json::object(), Json::array()).status().message(),
            "notebook api/kernels: expected a JSON array");
  EXPECT_EQ(ParseNotebookActivity(status, Json::array(), Json::object()).status().message(),
            "notebook api/terminals: expected a JSON array");
}

TEST_F(JupyterTest, AProgramReplacesTheDefaultForThatStartOnly) {
  auto echo = sup_->Start({"alice", kTokenA, "/datamnt/dsvmshare/bench/http_echo"});
  ASSERT_TRUE(echo.ok()) << echo.status();
  const NotebookLaunch& l = procs_.processes.at(static_cast<pid_t>(echo->server.pid)).launch;
  EXPECT_EQ(l.argv.at(0), "/datamnt/dsvmshare/bench/http_echo");
  std::vector<std::string> rest(l.argv.begin() + 1, l.argv.end());
  std::vector<std::string> want = NotebookArgv("/x", "10.80.0.11", 9000, Alice());
  want.erase(want.begin());
  EXPECT_EQ(std::vector<std::string>(rest.begin(), rest.begin() + static_cast<long>(want.size())), want);
  EXPECT_EQ(l.env.back(), "JUPYTER_TOKEN=" + kTokenA);

  // The same program and token: the running server. Another program (here
  // the default): replaced, as for another token.
  auto again = sup_->Start({"alice", kTokenA, "/datamnt/dsvmshare/bench/http_echo"});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created);
  auto standard = Start("alice", kTokenA);
  ASSERT_TRUE(standard.ok()) << standard.status();
  EXPECT_TRUE(standard->created);
  EXPECT_NE(standard->server.pid, echo->server.pid);
  EXPECT_FALSE(procs_.processes.at(static_cast<pid_t>(echo->server.pid)).alive);
  EXPECT_EQ(procs_.processes.at(static_cast<pid_t>(standard->server.pid)).launch.argv.at(0),
            "/usr/bin/jupyter-notebook");

  auto relative = sup_->Start({"bob", kTokenB, "bench/http_echo"});
  ASSERT_FALSE(relative.ok());
  EXPECT_EQ(relative.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(relative.status().message(), "program: 'bench/http_echo' is not an absolute path (it must start with /)");
  EXPECT_EQ(procs_.processes.size(), 2u);  // nothing spawned for bob
}

TEST(JupyterPureTest, LastLinesKeepsTheEndAndMasksTheSecret) {
  EXPECT_EQ(LastLines("a\nb\nc\n", 2), "b\nc");
  EXPECT_EQ(LastLines("a\nb\nc", 5), "a\nb\nc");
  EXPECT_EQ(LastLines("\n\n", 3), "");
  EXPECT_EQ(LastLines("a\nb", 0), "");
  EXPECT_EQ(LastLines("x=SECRET\ny=SECRETSECRET\n", 5, "SECRET"), "x=<token>\ny=<token><token>");
  EXPECT_EQ(LastLines(std::string(10000, 'x'), 1), "[last line longer than 4096 bytes, not shown]");
  // Over 4 KiB: whole lines only, so a secret on a cut line is dropped, not
  // shown in part (the child's LogTail truncates before the mask applies).
  std::string secret(64, 'f');
  std::string log = "a\ntoken=" + secret + std::string(4060, 'y') + "\n" + std::string(30, 'z') + "\n";
  std::string tail = LastLines(log, 10);
  EXPECT_EQ(tail, std::string(30, 'z'));
  EXPECT_EQ(LastLines(std::string(5000, 'x') + "\n" + std::string(4095, 'w') + "\n", 5), std::string(4095, 'w'));
  EXPECT_EQ(DescribeWaitStatus(kExit1), "exit 1");
  EXPECT_EQ(DescribeWaitStatus(SIGKILL), "killed by signal 9");
}

}  // namespace
}  // namespace dspool
