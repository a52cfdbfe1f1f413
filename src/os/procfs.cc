#include "os/procfs.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "os/fs.h"

namespace dspool {
namespace {

bool ReadInt(std::string_view text, size_t* pos, long long* out) {
  while (*pos < text.size() && text[*pos] == ' ') ++*pos;
  size_t start = *pos;
  auto [end, ec] = std::from_chars(text.data() + start, text.data() + text.size(), *out);
  if (ec != std::errc()) return false;
  *pos = static_cast<size_t>(end - text.data());
  return true;
}

bool IsPid(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Result<ProcStat> ParseProcStat(std::string_view text) {
  // "pid (comm) state ppid pgrp session tty_nr tpgid ...": comm may hold
  // anything, so it ends at the last ')'.
  size_t open = text.find(" (");
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return InvalidArgument("stat: expected 'pid (comm) ...'");
  }
  ProcStat s;
  size_t pos = 0;
  long long v;
  if (!ReadInt(text.substr(0, open), &pos, &v)) return InvalidArgument("stat: bad pid");
  s.pid = static_cast<pid_t>(v);
  s.comm = std::string(text.substr(open + 2, close - open - 2));
  pos = close + 1;
  while (pos < text.size() && text[pos] == ' ') ++pos;
  if (pos >= text.size()) return InvalidArgument("stat of " + std::to_string(s.pid) + ": no state");
  s.state = text[pos++];
  long long f[5];
  const char* names[5] = {"ppid", "pgrp", "session", "tty_nr", "tpgid"};
  for (int i = 0; i < 5; ++i) {
    if (!ReadInt(text, &pos, &f[i])) {
      return InvalidArgument("stat of " + std::to_string(s.pid) + ": bad or missing " + names[i]);
    }
  }
  s.ppid = static_cast<pid_t>(f[0]);
  s.pgrp = static_cast<pid_t>(f[1]);
  s.session = static_cast<pid_t>(f[2]);
  s.tty_nr = static_cast<int>(f[3]);
  s.tpgid = static_cast<pid_t>(f[4]);
  return s;
}

Result<std::vector<ProcStat>> ListProcesses(const std::string& proc_root) {
  DSP_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(proc_root));
  std::vector<ProcStat> out;
  for (const std::string& name : names) {
    if (!IsPid(name)) continue;
    std::string path = proc_root + "/" + name + "/stat";
    auto text = ReadFile(path);
    if (!text.ok()) continue;  // exited meanwhile (ENOENT, or ESRCH mid-exit)
    auto stat = ParseProcStat(*text);
    if (!stat.ok()) return stat.status().WithPrefix(path);
    out.push_back(std::move(*stat));
  }
  std::sort(out.begin(), out.end(), [](const ProcStat& a, const ProcStat& b) { return a.pid < b.pid; });
  return out;
}

}  // namespace dspool
