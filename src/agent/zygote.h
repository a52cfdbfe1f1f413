// PythonZygote: starts Python programs from an interpreter that has imported
// Jupyter Notebook already (src/agent/dspool_zygote.py, the "zygote").
//
// A Notebook server spends most of its start-up importing; a server forked
// from the zygote answers in ~0.05 s instead of ~0.5 s, and that is most of
// the time a user waits between logging in and their notebook page. The
// agent starts the zygote once, as root; for each server it sends the
// launch (argv, credentials, directory, log) over a socket pair, the
// zygote forks a child that becomes the user and runs the script, and the
// child's pid comes back. The child is the zygote's grandchild: the agent,
// PID 1, inherits and reaps it as any process it spawned itself.
//
// Spawn keeps NotebookProcesses::Spawn's contract (jupyter.h): the child
// is in a session of its own, runs as the user with their groups, in their
// home, with exactly launch.env, its output in launch.log_path; a step that
// fails is named in the error. The environment (the token) travels in a
// pipe the zygote hands to the child unread (see dspool_zygote.py).
//
// Only scripts for the zygote's interpreter can run in it (CanRun: the
// program's "#!" line names it); the caller spawns anything else itself.
// A zygote that is not running is started by the next Spawn.
//
// Thread safety: every method may be called from any thread; Spawns run
// one at a time (each is one fork in the zygote).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "agent/jupyter.h"
#include "base/result.h"
#include "os/unique_fd.h"

namespace dspool {

// src/agent/dspool_zygote.py, compiled in (python_modules.cc).
extern const char kZygoteModule[];

class PythonZygote {
 public:
  struct Options {
    std::string python = "/usr/bin/python3";
    std::string script;       // where dspool_zygote.py is (the agent installs it)
    std::string python_path;  // the zygote's PYTHONPATH: where dspool_kernels.py is; may be empty
    std::string log_path;     // the zygote's own output (what it could not preload)
    // How long a Spawn waits for the zygote's answer; the first one waits
    // for the zygote's imports too.
    std::chrono::milliseconds reply_timeout = std::chrono::seconds(30);
  };

  explicit PythonZygote(Options options) : options_(std::move(options)) {}
  // Destruction closes the socket: the zygote exits on its own (its
  // children live on).
  PythonZygote(const PythonZygote&) = delete;
  PythonZygote& operator=(const PythonZygote&) = delete;

  // Starts the zygote now, so that it has imported before the first Spawn.
  // OK if it runs already.
  Status Start();

  // Whether `program` is a script for this zygote's interpreter: its first
  // line is "#!" followed by options.python (and nothing but spaces and
  // arguments after it).
  bool CanRun(const std::string& program) const;

  // Starts launch.argv in a child of the zygote, which is started first if
  // needed. Errors: Unavailable when the zygote cannot be started or does
  // not answer (it is then killed; the caller may spawn the program
  // itself); a failed step in the child is reported with its errno's code
  // and the step named ("chdir /home/alice: Permission denied"), and the
  // child is gone.
  Result<pid_t> Spawn(const NotebookLaunch& launch);

  // The process reaper saw `pid` exit. If it was the zygote, the next Spawn
  // starts a new one.
  void OnExit(pid_t pid);

  // The zygote's pid; 0 when none runs.
  pid_t pid() const;

 private:
  Status StartLocked();
  void StopLocked(bool kill);
  Result<pid_t> SpawnLocked(const NotebookLaunch& launch);

  const Options options_;
  mutable std::mutex mu_;
  pid_t pid_ = 0;
  UniqueFd socket_;  // our end of the zygote's stdin
  uint64_t next_id_ = 1;
};

}  // namespace dspool
