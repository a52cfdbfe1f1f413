// Working fakes of jupyter.h's NotebookProcesses and NotebookApi, on a
// SimulatedClock: a spawned "server" answers its API once `startup` has
// passed since its spawn, with the token of its launch; it exits when the
// test says so, or on SIGTERM/SIGKILL, at the next Sleep.
//
//   SimulatedClock clock;
//   FakeNotebookProcesses procs(clock);
//   FakeNotebookApi api(procs, clock);
//   JupyterSupervisor sup(procs, api, clock, [&](Duration d) { procs.Sleep(d); });
//   procs.on_exit = [&](pid_t pid, int status) { sup.OnExit(pid, status); };
//
// Not thread-safe: one test thread drives it.
#pragma once

#include <signal.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/jupyter.h"

namespace dspool {

class FakeNotebookProcesses final : public NotebookProcesses {
 public:
  struct Process {
    NotebookLaunch launch;
    MonoTime spawned_at;
    uint16_t port = 0;
    std::string token;
    bool alive = true;
    std::optional<MonoTime> exit_at;
    int exit_status = 0;
  };

  explicit FakeNotebookProcesses(SimulatedClock& clock) : clock_(clock) {}

  // Where exits are reported (the supervisor's OnExit).
  std::function<void(pid_t, int)> on_exit;
  // The supervisor's sleep: advances the clock, then reports due exits.
  void Sleep(Duration d);
  // `pid` exits with `wait_status` at now + after (at the next Sleep).
  void ExitAfter(pid_t pid, Duration after, int wait_status);

  // Script.
  Status spawn_error;  // non-OK: Spawn fails so
  // Set: every spawned server exits by itself this long after its spawn,
  // with this wait status.
  std::optional<std::pair<Duration, int>> exit_after_spawn;
  Duration term_exit_after = std::chrono::milliseconds(300);  // SIGTERM → exit after this
  bool ignore_term = false;
  std::set<uint16_t> taken_ports;           // PortFree says false for these
  std::map<pid_t, int64_t> busy_terminals;  // BusyTerminals per pid (default 0)
  std::string log = "[I NotebookApp] starting\n";
  Status log_error;
  int64_t oom_kills = 0;  // the memory cgroup's count (OomKills)
  std::set<pid_t> oom_kill_exits;  // these pids' exits add one to oom_kills (OOM kills)
  Status oom_error;       // non-OK: OomKills fails so

  // What happened.
  std::map<pid_t, Process> processes;
  std::vector<std::pair<pid_t, int>> signals;  // (pid, SIGTERM or SIGKILL)
  const Process* ByPort(uint16_t port) const;  // the live one
  size_t LiveCount() const;

  // The interface, as scripted above. (The wait status of a death by
  // signal N is N.)
  Result<pid_t> Spawn(const NotebookLaunch& launch) override;
  void Terminate(pid_t pid) override {
    signals.push_back({pid, SIGTERM});
    if (!ignore_term && processes.count(pid)) ExitAfter(pid, term_exit_after, SIGTERM);
  }
  void Kill(pid_t pid) override {
    signals.push_back({pid, SIGKILL});
    if (processes.count(pid)) ExitAfter(pid, Duration(0), SIGKILL);
  }
  Result<bool> PortFree(const std::string&, uint16_t port) override {
    return !taken_ports.count(port) && ByPort(port) == nullptr;
  }
  Result<int64_t> BusyTerminals(pid_t pid) override {
    return busy_terminals.count(pid) ? busy_terminals.at(pid) : 0;
  }
  Result<std::string> LogTail(const NotebookLaunch&, size_t max_lines) override {
    if (!log_error.ok()) return log_error;
    return LastLines(log, max_lines);
  }
  Result<int64_t> OomKills() override {
    if (!oom_error.ok()) return oom_error;
    return oom_kills;
  }

 private:
  SimulatedClock& clock_;
  pid_t next_pid_ = 1000;
};

class FakeNotebookApi final : public NotebookApi {
 public:
  // What a user's server says about itself.
  struct Activity {
    std::string last_activity = "2023-11-14T22:13:20.042000Z";
    Json kernels = Json::array();
    Json terminals = Json::array();
    bool down = false;  // answers nothing (hung)
  };

  FakeNotebookApi(const FakeNotebookProcesses& processes, const Clock& clock) : processes_(processes), clock_(clock) {}

  Duration startup = std::chrono::milliseconds(500);  // from spawn to answering
  std::map<std::string, Activity> activity;            // by user
  std::vector<std::string> targets;                    // every target asked, in order

  Result<Json> Get(const std::string& address, uint16_t port, const std::string& target,
                   const std::string& token) override;

 private:
  const FakeNotebookProcesses& processes_;
  const Clock& clock_;
};

}  // namespace dspool
