// The real NotebookProcesses and NotebookApi of jupyter.h: processes
// through os/ (Spawn as the user, process-group signals, /proc), the
// notebook's REST API through http::Client over TCP.
//
// Thread safety: both keep no mutable state; call them from any thread.
#pragma once

#include <chrono>
#include <string>

#include "agent/jupyter.h"
#include "agent/zygote.h"

namespace dspool {

class SystemNotebookProcesses final : public NotebookProcesses {
 public:
  // `zygote`, if not null, starts the programs it can run (zygote.h) and
  // must outlive this object.
  explicit SystemNotebookProcesses(PythonZygote* zygote = nullptr, std::string proc_root = "/proc")
      : zygote_(zygote), proc_root_(std::move(proc_root)) {}

  // As the user with their groups, in their home; the log (truncated at
  // each start) and its directory (0700) are made by the child once it is
  // the user, so root never follows the user's links. Forked from the
  // zygote when it can run the program; otherwise, or if the zygote is
  // unavailable, spawned afresh (os/children.h).
  Result<pid_t> Spawn(const NotebookLaunch& launch) override;
  void Terminate(pid_t pid) override;
  void Kill(pid_t pid) override;
  Result<bool> PortFree(const std::string& address, uint16_t port) override;
  Result<int64_t> BusyTerminals(pid_t pid) override;
  // Read in a child that dropped to the user (the home may be on a share
  // where root is squashed).
  Result<std::string> LogTail(const NotebookLaunch& launch, size_t max_lines) override;
  // The instance's own memory cgroup (ReadOomKills on /sys/fs/cgroup).
  Result<int64_t> OomKills() override;

 private:
  PythonZygote* zygote_;
  std::string proc_root_;
};

class HttpNotebookApi final : public NotebookApi {
 public:
  // `timeout`: for each request, connect to end of body.
  explicit HttpNotebookApi(std::chrono::milliseconds timeout = std::chrono::seconds(2)) : timeout_(timeout) {}
  Result<Json> Get(const std::string& address, uint16_t port, const std::string& target,
                   const std::string& token) override;

 private:
  std::chrono::milliseconds timeout_;
};

}  // namespace dspool
