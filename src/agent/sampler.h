// Sampler: the instance's own usage, as the agent reports it. Reads the
// instance's cgroup (v1 or v2, seen from inside its cgroup namespace) and
// /proc. CPU is a rate between two samples: the first sample reports 0.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"

namespace dspool {

struct InstanceSample {
  // Unknown (nullopt) until there is something to tell: CPU use needs two
  // samples, memory a readable cgroup.
  std::optional<int64_t> cpu_permille;  // 1000 = one full CPU
  std::optional<int64_t> memory_used_bytes;
  int64_t memory_limit_bytes = 0;  // 0: unlimited or unknown
  int64_t ssh_sessions = 0;
};

class Sampler {
 public:
  explicit Sampler(std::string cgroup_root = "/sys/fs/cgroup", std::string proc_root = "/proc")
      : cgroup_root_(std::move(cgroup_root)), proc_root_(std::move(proc_root)) {}
  InstanceSample Sample();

 private:
  int64_t CpuUsageNanos();
  int64_t ReadNumber(const std::string& path);

  std::string cgroup_root_;
  std::string proc_root_;
  int64_t last_usage_ns_ = -1;
  std::chrono::steady_clock::time_point last_time_;
};

// How many processes the kernel's OOM killer has killed in the instance's
// memory cgroup (where the agent is, seen from inside the instance's cgroup
// namespace): the `oom_kill` line of `<root>/memory.events` (cgroup v2) or
// of `<root>/memory/memory.oom_control` (v1, kernel 4.13 and later). The
// count only grows. NotFound when neither file is there or has the line;
// errors name the file.
Result<int64_t> ReadOomKills(const std::string& cgroup_root = "/sys/fs/cgroup");
// The `oom_kill N` line of either file's text; nullopt without one.
std::optional<int64_t> ParseOomKills(std::string_view text);

// Counts "sshd: USER@tty" / "sshd: USER@notty" processes: one per session.
int64_t CountSshSessions(const std::string& proc_root);

}  // namespace dspool
