// Child processes that outlive a call: what a long-running supervisor (the
// agent, PID 1 of an instance) needs, beyond RunProcess's run-and-wait.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "base/result.h"

namespace dspool {

// Starts argv[0] (an absolute path) with stdin on /dev/null and stdout and
// stderr appended to `log_path`, and returns its pid. The caller reaps it
// (waitpid). The child gets an empty signal mask and default dispositions.
Result<pid_t> SpawnChild(const std::vector<std::string>& argv, const std::string& log_path);

// Runs `fn` in a forked child that has dropped to `uid`/`gid` (no
// supplementary groups) and returns the Status `fn` returned. For touching
// paths a user controls without following their symlinks as root.
// `fn` must not depend on other threads (it runs in a fork).
Status RunAs(uid_t uid, gid_t gid, const std::function<Status()>& fn);

// Points this process's stderr at `path` (appending, created 0600).
Status RedirectStderr(const std::string& path);

}  // namespace dspool
