#include "agent/notebook_host.h"

#include <signal.h>

#include "agent/sampler.h"
#include "base/log.h"
#include "http/client.h"
#include "os/children.h"
#include "os/fs.h"
#include "os/net.h"
#include "os/procfs.h"

namespace dspool {
namespace {

constexpr const char* kLog = "jupyter";

void LogIfFailed(const Status& s) {
  if (!s.ok()) DSP_LOG(kWarning, kLog) << s;
}

}  // namespace

Result<pid_t> SystemNotebookProcesses::Spawn(const NotebookLaunch& launch) {
  if (!launch.runtime_dir.empty()) {
    // Its parent is root's, so that no user can have made (or replace) the
    // directory of another.
    size_t slash = launch.runtime_dir.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      DSP_RETURN_IF_ERROR(MakeDirs(launch.runtime_dir.substr(0, slash), 0755));
    }
    DSP_RETURN_IF_ERROR(EnsureDir(launch.runtime_dir, 0700,
                                  {static_cast<uid_t>(launch.user.uid), static_cast<gid_t>(launch.user.gid)}));
  }
  if (zygote_ != nullptr && !launch.argv.empty() && zygote_->CanRun(launch.argv[0])) {
    auto pid = zygote_->Spawn(launch);
    if (pid.ok() || pid.status().code() != StatusCode::kUnavailable) return pid;
    DSP_LOG(kWarning, kLog) << pid.status() << "; starting " << launch.argv[0] << " without it";
  }
  SpawnOptions o;
  o.argv = launch.argv;
  o.env = launch.env;
  SpawnCredentials creds{static_cast<uid_t>(launch.user.uid), static_cast<gid_t>(launch.user.gid), {}};
  for (int64_t g : launch.user.groups) creds.groups.push_back(static_cast<gid_t>(g));
  o.credentials = creds;
  o.cwd = launch.user.home;
  o.log_path = launch.log_path;
  o.truncate_log = true;
  o.log_dir_mode = 0700;
  return dspool::Spawn(o);
}

void SystemNotebookProcesses::Terminate(pid_t pid) { LogIfFailed(SignalProcessGroup(pid, SIGTERM)); }

void SystemNotebookProcesses::Kill(pid_t pid) {
  // Kernels and terminals lead sessions of their own: kill their groups
  // too, so none outlives its server.
  auto processes = ListProcesses(proc_root_);
  if (processes.ok()) {
    for (const ProcStat& p : *processes) {
      if (p.ppid == pid && p.pgrp == p.pid) LogIfFailed(SignalProcessGroup(p.pid, SIGKILL));
    }
  } else {
    LogIfFailed(processes.status());
  }
  LogIfFailed(SignalProcessGroup(pid, SIGKILL));
}

Result<bool> SystemNotebookProcesses::PortFree(const std::string& address, uint16_t port) {
  return TcpPortFree(address, port);
}

Result<int64_t> SystemNotebookProcesses::BusyTerminals(pid_t pid) {
  DSP_ASSIGN_OR_RETURN(std::vector<ProcStat> processes, ListProcesses(proc_root_));
  return CountBusyTerminals(processes, pid);
}

Result<int64_t> SystemNotebookProcesses::OomKills() { return ReadOomKills("/sys/fs/cgroup"); }

Result<std::string> SystemNotebookProcesses::LogTail(const NotebookLaunch& launch, size_t max_lines) {
  return RunAsCapture(static_cast<uid_t>(launch.user.uid), static_cast<gid_t>(launch.user.gid),
                      [&]() -> Result<std::string> {
                        DSP_ASSIGN_OR_RETURN(std::string text, ReadFile(launch.log_path));
                        return LastLines(text, max_lines);
                      });
}

Result<Json> HttpNotebookApi::Get(const std::string& address, uint16_t port, const std::string& target,
                                  const std::string& token) {
  std::string url = "http://" + address + ":" + std::to_string(port) + target;
  auto resp = Client::Do(Endpoint::Tcp(address, port), "GET", target, "", {{"Authorization", "token " + token}},
                         timeout_);
  if (!resp.ok()) return Status(resp.status().code(), "GET " + url + ": " + resp.status().message());
  if (resp->status / 100 != 2) return Unavailable("GET " + url + ": HTTP " + std::to_string(resp->status));
  Json json;
  DSP_RETURN_IF_ERROR(ParseJsonText(resp->body, "GET " + url, &json));
  return json;
}

}  // namespace dspool
