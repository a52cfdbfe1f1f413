// ExtensionRunner: runs the pool's CustomScript extensions in this instance,
// as Azure's handlers do (docs/extensions.md): each extension's files go to
// its download directory
//
//   Microsoft.Azure.Extensions.CustomScript 2.x   /var/lib/waagent/custom-script/download/0/
//   Microsoft.OSTCExtensions.CustomScriptForLinux /var/lib/waagent/Microsoft.OSTCExtensions.CustomScriptForLinux-<version>/download/0/
//
// and its command runs there, as root, by /bin/sh, with the script's output
// in `stdout` and `stderr` beside the files; one extension at a time, in the
// pool's order; a script running past kExtensionTimeoutMinutes is killed.
//
// The command itself is never on a command line: it is written to a
// root-only file under <root>/dspool/ that /bin/sh reads. There, too, each
// extension's outcome is kept, so an instance that restarts does not run a
// script that succeeded again (unless settings.timestamp changed).
//
// Driven by the agent's main loop: Step starts and times out, OnExit hears
// of the script's end (the loop reaps every child).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "model/extension.h"

namespace dspool {

class ExtensionRunner {
 public:
  // `root` is /var/lib/waagent in an instance.
  ExtensionRunner(std::string root, Duration timeout);

  // The pool's extensions, once (later calls are ignored): each is
  // Succeeded if its recorded outcome says so, else waits its turn.
  void Load(std::vector<AgentExtension> extensions);
  bool loaded() const { return loaded_; }

  // Starts the next waiting extension when none runs (writing its files
  // first; a failure to write fails it); kills a script past its deadline.
  void Step(MonoTime now);
  // A child the main loop reaped: true if it was the running script, whose
  // extension is then Succeeded or Failed.
  bool OnExit(pid_t pid, int wait_status);

  std::vector<ExtensionStatus> Statuses() const;
  // Loaded, and nothing runs or waits (after a failure nothing more runs).
  bool Finished() const;
  bool running() const { return running_.has_value(); }

  // Where an extension's files and output go.
  std::string DownloadDir(const ExtensionSpec& spec) const;

 private:
  struct Entry {
    AgentExtension extension;
    ExtensionStatus status;
    bool waiting = true;
  };
  struct Running {
    size_t index;
    pid_t pid;
    MonoTime deadline;
  };

  Status Start(size_t index, MonoTime now);
  void Finish(Entry& entry, ExtensionState state, const std::string& message);
  std::string StateFile(const ExtensionSpec& spec) const;
  // Azure's message: the outcome, then the tails of stdout and stderr.
  std::string Message(const Entry& entry, const std::string& outcome) const;

  std::string root_;
  Duration timeout_;
  bool loaded_ = false;
  std::vector<Entry> entries_;
  std::optional<Running> running_;
};

}  // namespace dspool
