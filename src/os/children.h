// Child processes that outlive a call: what a long-running supervisor (the
// agent, PID 1 of an instance) needs, beyond RunProcess's run-and-wait.
//
// The caller reaps what Spawn starts (waitpid), typically in one loop that
// reaps every child; nothing here waits for a spawned child except after a
// failed start, which Spawn reaps itself.
//
// Thread safety: every function may be called from any thread. Spawn and
// RunAs fork; between fork and exec the child makes only async-signal-safe
// calls, so a multithreaded caller is fine.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace dspool {

struct SpawnCredentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, exactly these
};

struct SpawnOptions {
  // argv[0] is an absolute path; run as is, no PATH lookup, no shell.
  std::vector<std::string> argv;
  // The child's whole environment ("NAME=value"); nullopt: this process's.
  // May hold secrets: it is never logged or put in an error message.
  std::optional<std::vector<std::string>> env;
  // Drop to these before anything else is done in the child (so the
  // directory and log below are made, and their paths resolved, as that
  // user). nullopt: keep this process's.
  std::optional<SpawnCredentials> credentials;
  // The child's working directory; empty: this process's.
  std::string cwd;
  // stdout and stderr go to this file, opened (created if missing) in the
  // child, with mode 0600 set on it; stdin is /dev/null.
  std::string log_path;
  // Truncate the log when opening it; otherwise append.
  bool truncate_log = false;
  // Non-zero: create the log's directory with this mode if it is missing
  // (its parent must exist).
  mode_t log_dir_mode = 0;
  // The child's stdin, if not -1 (any descriptor of ours, close-on-exec or
  // not); otherwise /dev/null.
  int stdin_fd = -1;
};

// Starts a child as `options` says and returns its pid once it has exec'd.
// The child is in a new session (so its own process group, pgid == pid),
// with an empty signal mask, default dispositions, and no descriptors but
// 0, 1 and 2. Errors, each naming the step and path ("chdir /home/alice:
// Permission denied", "exec /usr/bin/x: No such file or directory"):
// InvalidArgument for an empty argv or a relative argv[0]; the errno's code
// for a failing step in the child (the child is then reaped, or left to a
// reaper racing with us; either way it is gone).
Result<pid_t> Spawn(const SpawnOptions& options);

// Spawn with argv and log_path only (appending): the form the agent uses
// for sshd.
Result<pid_t> SpawnChild(const std::vector<std::string>& argv, const std::string& log_path);

// Runs `fn` in a forked child that has dropped to `uid`/`gid` (no
// supplementary groups) and returns the Status `fn` returned. For touching
// paths a user controls without following their symlinks as root.
// `fn` must not depend on other threads (it runs in a fork).
Status RunAs(uid_t uid, gid_t gid, const std::function<Status()>& fn);

// RunAs for reading: the string `fn` returns (up to 1 MiB) comes back too.
Result<std::string> RunAsCapture(uid_t uid, gid_t gid, const std::function<Result<std::string>()>& fn);

// Sends `signal` to every process of group `pgid` (kill(-pgid, signal)).
// OK if the group is gone; InvalidArgument for pgid <= 1.
Status SignalProcessGroup(pid_t pgid, int signal);

// Points this process's stderr at `path` (appending, created 0600).
Status RedirectStderr(const std::string& path);

}  // namespace dspool
