// Reading the process table from /proc: who is whose child, and which
// process group owns a terminal. For the agent's view of what runs inside
// its Jupyter servers (a terminal's shell with a job in it is busy).
//
// `proc_root` is "/proc" except in tests, which build a fake tree.
// Thread safety: the functions keep no state; call them from any thread.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace dspool {

// The fields of /proc/<pid>/stat the agent uses (proc(5) numbers them 1..7
// and 8 for tpgid).
struct ProcStat {
  pid_t pid = 0;
  std::string comm;  // without the parentheses; may contain spaces and ')'
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;
  pid_t session = 0;
  int tty_nr = 0;    // 0: no controlling terminal
  pid_t tpgid = -1;  // the terminal's foreground process group; -1: none
  friend bool operator==(const ProcStat&, const ProcStat&) = default;
};

// Parses the text of /proc/<pid>/stat. InvalidArgument naming what is
// missing otherwise.
Result<ProcStat> ParseProcStat(std::string_view text);

// Every process under `proc_root` (the numeric directories), by pid.
// A process whose stat cannot be read (it exited meanwhile) is skipped; a
// stat file that does not parse is an error naming it. NotFound if `proc_root` is missing.
Result<std::vector<ProcStat>> ListProcesses(const std::string& proc_root = "/proc");

}  // namespace dspool
