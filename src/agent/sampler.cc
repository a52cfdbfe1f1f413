#include "agent/sampler.h"

#include <algorithm>
#include <sstream>

#include "os/fs.h"

namespace dspool {

int64_t Sampler::ReadNumber(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return -1;
  try {
    if (text->rfind("max", 0) == 0) return 0;
    return std::stoll(*text);
  } catch (...) {
    return -1;
  }
}

int64_t Sampler::CpuUsageNanos() {
  int64_t v1 = ReadNumber(cgroup_root_ + "/cpuacct/cpuacct.usage");
  if (v1 >= 0) return v1;
  auto stat = ReadFile(cgroup_root_ + "/cpu.stat");
  if (!stat.ok()) return -1;
  std::istringstream in(*stat);
  std::string key;
  int64_t value = 0;
  while (in >> key >> value) {
    if (key == "usage_usec") return value * 1000;
  }
  return -1;
}

InstanceSample Sampler::Sample() {
  InstanceSample s;
  auto now = std::chrono::steady_clock::now();
  int64_t usage = CpuUsageNanos();
  if (usage >= 0 && last_usage_ns_ >= 0) {
    auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_time_).count();
    if (elapsed > 0) s.cpu_permille = std::max<int64_t>(0, (usage - last_usage_ns_) * 1000 / elapsed);
  }
  last_usage_ns_ = usage;
  last_time_ = now;

  int64_t used = ReadNumber(cgroup_root_ + "/memory/memory.usage_in_bytes");
  if (used >= 0) {
    s.memory_limit_bytes = ReadNumber(cgroup_root_ + "/memory/memory.limit_in_bytes");
  } else {
    used = ReadNumber(cgroup_root_ + "/memory.current");
    s.memory_limit_bytes = ReadNumber(cgroup_root_ + "/memory.max");
  }
  if (used >= 0) s.memory_used_bytes = used;
  // cgroup v1 says "no limit" with a huge number.
  if (s.memory_limit_bytes >= (int64_t{1} << 60)) s.memory_limit_bytes = 0;
  if (s.memory_limit_bytes < 0) s.memory_limit_bytes = 0;
  s.ssh_sessions = CountSshSessions(proc_root_);
  return s;
}

std::optional<int64_t> ParseOomKills(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string key;
  std::string value;
  while (in >> key >> value) {
    if (key != "oom_kill") continue;
    try {
      size_t used = 0;
      long long n = std::stoll(value, &used);
      if (used == value.size() && n >= 0) return n;
    } catch (...) {
    }
    return std::nullopt;
  }
  return std::nullopt;
}

Result<int64_t> ReadOomKills(const std::string& cgroup_root) {
  std::string tried;
  for (const std::string& path : {cgroup_root + "/memory.events", cgroup_root + "/memory/memory.oom_control"}) {
    auto text = ReadFile(path);
    if (!text.ok()) {
      if (text.status().code() != StatusCode::kNotFound) return text.status();
      tried += (tried.empty() ? "" : ", ") + path;
      continue;
    }
    if (auto n = ParseOomKills(*text)) return *n;
    return NotFound(path + " has no oom_kill count (a kernel older than 4.13?)");
  }
  return NotFound("no memory cgroup file with an oom_kill count: " + tried + " are missing");
}

int64_t CountSshSessions(const std::string& proc_root) {
  auto entries = ListDir(proc_root);
  if (!entries.ok()) return 0;
  int64_t sessions = 0;
  for (const std::string& e : *entries) {
    if (e.empty() || e.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cmdline = ReadFile(proc_root + "/" + e + "/cmdline");
    if (!cmdline.ok()) continue;
    // sshd sets its title as one string: "sshd: alice@pts/0" or "sshd: alice@notty".
    std::string title = cmdline->substr(0, cmdline->find('\0'));
    if (title.rfind("sshd: ", 0) == 0 && title.find('@') != std::string::npos) ++sessions;
  }
  return sessions;
}

}  // namespace dspool
