// Running a program and collecting what it printed.
//
// RunProcess starts argv[0] directly with posix_spawn: there is no shell, so
// arguments reach the program exactly as given (spaces, quotes, '$' and ';'
// are plain characters). The child gets:
//   - its own process group (so a timeout can kill everything it started),
//   - only stdin/stdout/stderr: every other descriptor is closed,
//   - default signal dispositions and an empty signal mask,
//   - exactly the environment in RunOptions::env (nothing is inherited).
//
// Secrets go through RunOptions::stdin_text, never argv: argv is visible to
// every user on the host in /proc/<pid>/cmdline.
//
// Timeouts run on the real monotonic clock; this is the OS layer, where the
// injected Clock of the loops above does not reach.
//
// Thread safety: RunProcess and RunChecked may be called concurrently from any
// threads. REQUIRES (process-wide): SIGCHLD is not set to SIG_IGN and nothing
// else reaps children with waitpid(-1, ...), or the child's exit status is lost.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/status.h"

namespace dspool {

// PATH given to children when RunOptions::env is left at its default.
inline constexpr char kDefaultChildPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct RunOptions {
  // Written to the child's stdin, which is then closed. nullopt: stdin is
  // /dev/null. If the child exits without reading it all, the rest is dropped.
  std::optional<std::string> stdin_text;
  // The child's whole environment, "NAME=value" entries. argv[0] without a '/'
  // is looked up in the PATH given here (not in this process's PATH).
  std::vector<std::string> env = {kDefaultChildPath};
  // Zero: no limit. Otherwise, when it passes, the child's process group gets
  // SIGKILL and RunProcess returns DeadlineExceeded.
  std::chrono::milliseconds timeout{0};
  // Per stream. Output beyond it is read and discarded (the child never blocks
  // on a full pipe), and the *_truncated flag is set.
  size_t max_output_bytes = size_t{1} << 20;
};

struct ProcessResult {
  int exit_code = -1;   // exit status if the child exited, else -1
  int term_signal = 0;  // the signal that killed the child, else 0
  std::string stdout_text;
  std::string stderr_text;
  bool stdout_truncated = false;
  bool stderr_truncated = false;

  bool Succeeded() const { return exit_code == 0 && term_signal == 0; }
};

// Runs argv to completion and returns how it ended. A non-zero exit or a
// signal is a successful Result (inspect exit_code / term_signal).
//
// Output is what the child (and any descendants) wrote before the child
// exited; a descendant that outlives it keeps running, but what it writes
// afterwards is discarded (it sees EPIPE).
//
// Errors: InvalidArgument if argv is empty or an entry contains NUL;
// NotFound if argv[0] does not exist (or, without a '/', is not in PATH);
// PermissionDenied if it is not executable; DeadlineExceeded
// on timeout (the process group is killed and reaped first); other codes for
// failing system calls. No child is left running or unreaped on any path,
// except descendants that left the process group themselves.
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv, const RunOptions& options = {});

// RunProcess for commands that must succeed. OK iff the command exited 0.
// A non-zero exit or a signal gives Internal with the message
// "<argv[0]>: exit <N>: <first non-empty stderr line>" (or "killed by signal
// <N>"); the rest of argv is never put in the message. Errors of RunProcess
// are returned unchanged.
Status RunChecked(const std::vector<std::string>& argv, const RunOptions& options = {});

// Starts argv[0] (an absolute path) as a daemon of its own: a new session
// (so no terminal's or process group's signal reaches it), stdin from
// /dev/null, stdout and stderr this process's, `fd3` (if not -1) as
// descriptor 3, and no other descriptor; default signal dispositions, an
// empty mask, exactly `env`. Returns its pid without waiting: the caller
// reaps it (waitpid on that pid) if it exits before this process does.
Result<pid_t> SpawnDaemon(const std::vector<std::string>& argv, const std::vector<std::string>& env, int fd3 = -1);

// For a daemon's main thread, before it starts any other: blocks SIGTERM
// and SIGINT (the threads it starts inherit the mask, so only a sigwait
// takes them) and ignores SIGPIPE. Returns the set to sigwait on.
sigset_t BlockStopSignals();

// The path of this process's executable (/proc/self/exe).
Result<std::string> SelfExecutable();

// SIGKILL to `pid` (a child of this process), then reaps it.
void KillChild(pid_t pid);

// Raises this process's soft limit on open descriptors to its hard limit
// (the gateway holds six per relayed connection) and returns the new soft
// limit.
Result<uint64_t> RaiseDescriptorLimit();

// Blocks SIGPIPE on the calling thread for the object's lifetime, and
// discards the SIGPIPEs raised meanwhile (one that was pending before is
// left alone). For threads that write where the reader may be gone: a
// child's stdin, and the event loops, where splice(2) and OpenSSL's
// write(2) into a reset socket raise it (send(2) with MSG_NOSIGNAL does
// not).
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock();
  ~ScopedSigpipeBlock();
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;
  // Discards a pending SIGPIPE now (while blocked, it stays pending: the
  // relay calls this when splice says EPIPE).
  static void Drain();

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

// Hands the heap's free pages back to the kernel (glibc's malloc_trim(0)):
// memory freed in the middle of the heap stays the process's otherwise, so
// a server that held many connections once keeps their size for good.
// Walks every arena, briefly holding each one's lock: call it after many
// frees, not per free. Returns whether any memory was given back.
bool ReleaseFreeHeap();

}  // namespace dspool
