#include "agent/testing/fake_notebook.h"

namespace dspool {
namespace {

std::string EnvValue(const std::vector<std::string>& env, const std::string& name) {
  for (const std::string& e : env) {
    if (e.rfind(name + "=", 0) == 0) return e.substr(name.size() + 1);
  }
  return "";
}

}  // namespace

void FakeNotebookProcesses::Sleep(Duration d) {
  clock_.Advance(d);
  for (auto& [pid, p] : processes) {
    if (p.alive && p.exit_at && *p.exit_at <= clock_.Monotonic()) {
      p.alive = false;
      // As the kernel does: the count grows before the victim is reaped.
      if (oom_kill_exits.count(pid)) ++oom_kills;
      if (on_exit) on_exit(pid, p.exit_status);
    }
  }
}

void FakeNotebookProcesses::ExitAfter(pid_t pid, Duration after, int wait_status) {
  Process& p = processes.at(pid);
  MonoTime at = clock_.Monotonic() + after;
  if (!p.exit_at || at < *p.exit_at) {
    p.exit_at = at;
    p.exit_status = wait_status;
  }
}

const FakeNotebookProcesses::Process* FakeNotebookProcesses::ByPort(uint16_t port) const {
  for (const auto& [pid, p] : processes) {
    if (p.alive && p.port == port) return &p;
  }
  return nullptr;
}

size_t FakeNotebookProcesses::LiveCount() const {
  size_t n = 0;
  for (const auto& [pid, p] : processes) n += p.alive;
  return n;
}

Result<pid_t> FakeNotebookProcesses::Spawn(const NotebookLaunch& launch) {
  if (!spawn_error.ok()) return spawn_error;
  Process p;
  p.launch = launch;
  p.spawned_at = clock_.Monotonic();
  for (const std::string& a : launch.argv) {
    if (a.rfind("--port=", 0) == 0) p.port = static_cast<uint16_t>(std::stoi(a.substr(7)));
  }
  p.token = EnvValue(launch.env, "JUPYTER_TOKEN");
  pid_t pid = next_pid_++;
  processes[pid] = std::move(p);
  if (exit_after_spawn) ExitAfter(pid, exit_after_spawn->first, exit_after_spawn->second);
  return pid;
}

Result<Json> FakeNotebookApi::Get(const std::string& address, uint16_t port, const std::string& target,
                                  const std::string& token) {
  targets.push_back(target);
  std::string url = "http://" + address + ":" + std::to_string(port) + target;
  const FakeNotebookProcesses::Process* p = processes_.ByPort(port);
  if (p == nullptr || clock_.Monotonic() < p->spawned_at + startup) return Unavailable(url + ": connection refused");
  const std::string& user = p->launch.user.name;
  const Activity& a = activity[user];
  if (a.down) return DeadlineExceeded(url + ": timed out");
  if (token != p->token) return Unavailable(url + ": HTTP 403");
  std::string base = NotebookBaseUrl(user);
  if (target == base + "api/status") {
    return Json{{"connections", 0}, {"kernels", a.kernels.size()}, {"last_activity", a.last_activity},
                {"started", "2023-11-14T22:00:00.000000Z"}};
  }
  if (target == base + "api/kernels?no_track_activity=1") return a.kernels;
  if (target == base + "api/terminals?no_track_activity=1") return a.terminals;
  return Unavailable(url + ": HTTP 404");
}

}  // namespace dspool
