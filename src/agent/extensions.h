// ExtensionRunner: runs the pool's customData script and CustomScript
// extensions in this instance, as cloud-init and Azure's handlers do
// (docs/extensions.md). Each one's files go to its directory
//
//   customData                                    /var/lib/cloud/instance/scripts/part-001
//   Microsoft.Azure.Extensions.CustomScript 2.x   /var/lib/waagent/custom-script/download/0/
//   Microsoft.OSTCExtensions.CustomScriptForLinux /var/lib/waagent/Microsoft.OSTCExtensions.CustomScriptForLinux-<version>/download/0/
//
// and its command runs there, as root, by /bin/sh, with the output in
// `stdout` and `stderr` beside the files; customData first, then one
// extension at a time, in the pool's order; a script running past
// kExtensionTimeoutMinutes is killed.
//
// The command itself is never on a command line: it is written to a
// root-only file under /var/lib/waagent/dspool/ that /bin/sh reads. There,
// too, each one's outcome is kept, so an instance that restarts does not run
// a script that succeeded again (unless settings.timestamp changed).
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
  // `var_lib` is /var/lib in an instance.
  ExtensionRunner(std::string var_lib, Duration timeout);

  // The pool's customData and extensions, once (later calls are ignored):
  // each is Succeeded if its recorded outcome says so, else waits its turn.
  void Load(AgentProvisioning provisioning);
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

  // Where an extension's files and output go (customData's: the spec
  // ExtensionRunner makes of it).
  std::string DownloadDir(const ExtensionSpec& spec) const;
  std::string StateDir() const { return var_lib_ + "/waagent/dspool"; }

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

  std::string var_lib_;
  Duration timeout_;
  bool loaded_ = false;
  std::vector<Entry> entries_;
  std::optional<Running> running_;
};

}  // namespace dspool
