#include "os/process.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "os/unique_fd.h"

namespace dspool {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Pipe ends for the child must not be 0, 1 or 2, or the dup2 onto one
// standard descriptor could clobber another (only if this process runs with a
// standard descriptor closed).
Status MoveAboveStdio(UniqueFd& fd) {
  if (fd.get() > 2) return Status::Ok();
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return ErrnoStatus("fcntl(F_DUPFD_CLOEXEC)", errno);
  fd.reset(moved);
  return Status::Ok();
}

struct Pipe {
  UniqueFd read_end;
  UniqueFd write_end;
};

Result<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
  DSP_RETURN_IF_ERROR(MoveAboveStdio(p.read_end));
  DSP_RETURN_IF_ERROR(MoveAboveStdio(p.write_end));
  return p;
}

Status SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return ErrnoStatus("fcntl(O_NONBLOCK)", errno);
  return Status::Ok();
}

// The PATH entry of `env`, or "" if there is none.
std::string_view PathOf(const std::vector<std::string>& env) {
  for (const std::string& entry : env) {
    if (entry.starts_with("PATH=")) return std::string_view(entry).substr(5);
  }
  return {};
}

// Looks `name` up like execvp, but in the child's PATH. Empty PATH entries
// (the current directory) are skipped on purpose.
Result<std::string> ResolveExecutable(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  std::string_view path = PathOf(env);
  bool saw_non_executable = false;
  while (!path.empty()) {
    size_t colon = path.find(':');
    std::string_view dir = path.substr(0, colon);
    path = colon == std::string_view::npos ? std::string_view() : path.substr(colon + 1);
    if (dir.empty()) continue;
    std::string candidate = std::string(dir) + "/" + name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    saw_non_executable = true;
  }
  if (saw_non_executable) return PermissionDenied(name + ": found in PATH but not executable");
  return NotFound(name + ": command not found in the child's PATH");
}

// Owns the spawned child until it is reaped. If the run is abandoned (an
// error, a timeout), the destructor kills the whole process group and reaps
// the child, so no path leaves a zombie or a runaway process behind.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ <= 0) return;
    KillGroup();
    int status;
    Wait(&status).IgnoreError();
  }

  pid_t pid() const { return pid_; }

  // The child is not reaped yet, so its pid (= process group id) cannot have
  // been reused: the signal reaches only the child's group.
  void KillGroup() const { ::kill(-pid_, SIGKILL); }

  Status Wait(int* status) {
    while (::waitpid(pid_, status, 0) < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      pid_ = -1;
      return ErrnoStatus("waitpid", err);
    }
    pid_ = -1;
    return Status::Ok();
  }

 private:
  pid_t pid_;
};

// One output stream of the child being collected.
struct Collector {
  UniqueFd fd;
  std::string* text;
  bool* truncated;
  size_t cap;

  // Reads what is available, at most `max_reads` chunks so that a chatty
  // writer cannot starve the caller. Returns false once the stream is finished
  // (EOF or error) and closes it; true if more may come.
  bool ReadAvailable(int max_reads) {
    char buf[64 * 1024];
    for (int i = 0; i < max_reads; ++i) {
      ssize_t n = ::read(fd.get(), buf, sizeof(buf));
      if (n > 0) {
        size_t room = cap > text->size() ? cap - text->size() : 0;
        size_t take = std::min(room, static_cast<size_t>(n));
        text->append(buf, take);
        if (take < static_cast<size_t>(n)) *truncated = true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      fd.reset();  // EOF, or an error we cannot recover from
      return false;
    }
    return true;
  }
};

}  // namespace

namespace {

// posix_spawn's file actions and attributes, destroyed with the object.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  int error = 0;  // of the initialisation
  SpawnSetup() {
    error = ::posix_spawn_file_actions_init(&actions);
    if (error != 0) return;
    error = ::posix_spawnattr_init(&attr);
    if (error != 0) ::posix_spawn_file_actions_destroy(&actions);
  }
  ~SpawnSetup() {
    if (error != 0) return;
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

}  // namespace

Result<ProcessResult> RunProcess(const std::vector<std::string>& argv, const RunOptions& options) {
  if (argv.empty() || argv[0].empty()) return InvalidArgument("RunProcess: empty argv");
  for (const std::string& arg : argv) {
    if (arg.find('\0') != std::string::npos) return InvalidArgument(argv[0] + ": an argument contains NUL");
  }
  for (const std::string& entry : options.env) {
    if (entry.find('\0') != std::string::npos || entry.find('=') == std::string::npos) {
      return InvalidArgument(argv[0] + ": environment entries must be NAME=value without NUL");
    }
  }
  DSP_ASSIGN_OR_RETURN(std::string executable, ResolveExecutable(argv[0], options.env));

  std::vector<char*> c_argv;
  for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);
  std::vector<char*> c_env;
  for (const std::string& entry : options.env) c_env.push_back(const_cast<char*>(entry.c_str()));
  c_env.push_back(nullptr);

  Pipe in;
  if (options.stdin_text.has_value()) {
    DSP_ASSIGN_OR_RETURN(in, MakePipe());
  }
  DSP_ASSIGN_OR_RETURN(Pipe out, MakePipe());
  DSP_ASSIGN_OR_RETURN(Pipe err, MakePipe());

  SpawnSetup setup;
  if (setup.error != 0) return ErrnoStatus("posix_spawn", setup.error);
  posix_spawn_file_actions_t& actions = setup.actions;
  posix_spawnattr_t& attr = setup.attr;
  int rc = 0;
  if (in.read_end.valid()) {
    rc = ::posix_spawn_file_actions_adddup2(&actions, in.read_end.get(), STDIN_FILENO);
  } else {
    rc = ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  }
  if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(&actions, out.write_end.get(), STDOUT_FILENO);
  if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(&actions, err.write_end.get(), STDERR_FILENO);
  // Belt and braces: descriptors opened without O_CLOEXEC elsewhere in this
  // process (libraries, other threads) must not leak into the child.
  if (rc == 0) rc = ::posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  sigset_t no_signals;
  sigset_t all_signals;
  sigemptyset(&no_signals);
  sigfillset(&all_signals);
  if (rc == 0)
    rc = ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (rc == 0) rc = ::posix_spawnattr_setpgroup(&attr, 0);
  if (rc == 0) rc = ::posix_spawnattr_setsigmask(&attr, &no_signals);
  if (rc == 0) rc = ::posix_spawnattr_setsigdefault(&attr, &all_signals);
  pid_t pid = -1;
  if (rc == 0) rc = ::posix_spawn(&pid, executable.c_str(), &actions, &attr, c_argv.data(), c_env.data());
  if (rc != 0) return ErrnoStatus(argv[0], rc);

  Child child(pid);
  in.read_end.reset();
  out.write_end.reset();
  err.write_end.reset();

  // Via syscall(): glibc 2.36's <sys/pidfd.h> lacks extern "C" for C++.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return ErrnoStatus("pidfd_open", errno);
  DSP_RETURN_IF_ERROR(SetNonBlocking(out.read_end.get()));
  DSP_RETURN_IF_ERROR(SetNonBlocking(err.read_end.get()));
  if (in.write_end.valid()) DSP_RETURN_IF_ERROR(SetNonBlocking(in.write_end.get()));

  ProcessResult result;
  Collector collectors[2] = {
      {std::move(out.read_end), &result.stdout_text, &result.stdout_truncated, options.max_output_bytes},
      {std::move(err.read_end), &result.stderr_text, &result.stderr_truncated, options.max_output_bytes},
  };
  UniqueFd stdin_fd = std::move(in.write_end);
  std::string_view stdin_left;
  if (options.stdin_text.has_value()) stdin_left = *options.stdin_text;
  if (stdin_fd.valid() && stdin_left.empty()) stdin_fd.reset();

  const bool has_deadline = options.timeout.count() > 0;
  const SteadyClock::time_point deadline = SteadyClock::now() + options.timeout;
  ScopedSigpipeBlock sigpipe_block;
  bool exited = false;
  while (!exited) {
    struct pollfd fds[4];
    int nfds = 0;
    fds[nfds++] = {pidfd.get(), POLLIN, 0};
    for (Collector& c : collectors) {
      if (c.fd.valid()) fds[nfds++] = {c.fd.get(), POLLIN, 0};
    }
    if (stdin_fd.valid()) fds[nfds++] = {stdin_fd.get(), POLLOUT, 0};

    int wait_ms = -1;
    if (has_deadline) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (left.count() <= 0) {
        // ~Child kills the group and reaps it.
        return DeadlineExceeded(argv[0] + ": timed out after " + std::to_string(options.timeout.count()) +
                                " ms; killed");
      }
      wait_ms = static_cast<int>(std::min<int64_t>(left.count(), 60'000));
    }
    int ready = ::poll(fds, nfds, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("poll", errno);
    }
    for (int i = 0; i < nfds; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == pidfd.get()) {
        exited = true;
        continue;
      }
      if (fds[i].fd == stdin_fd.get()) {
        ssize_t n = ::write(stdin_fd.get(), stdin_left.data(), stdin_left.size());
        if (n > 0) stdin_left.remove_prefix(static_cast<size_t>(n));
        bool retry = n < 0 && (errno == EINTR || errno == EAGAIN);
        if (stdin_left.empty() || (n < 0 && !retry)) stdin_fd.reset();  // done, or EPIPE: child stopped reading
        continue;
      }
      for (Collector& c : collectors) {
        if (c.fd.valid() && fds[i].fd == c.fd.get()) c.ReadAvailable(16);
      }
    }
  }
  // The child has exited but is not reaped yet. What it wrote is in the pipes
  // now; take it without waiting for descendants that may still hold them.
  stdin_fd.reset();
  for (Collector& c : collectors) {
    // Bounded: the child itself cannot have left more than a pipe's capacity.
    if (c.fd.valid()) c.ReadAvailable(64);
    c.fd.reset();
  }
  int status = 0;
  DSP_RETURN_IF_ERROR(child.Wait(&status));
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  return result;
}

Status RunChecked(const std::vector<std::string>& argv, const RunOptions& options) {
  DSP_ASSIGN_OR_RETURN(ProcessResult r, RunProcess(argv, options));
  if (r.Succeeded()) return Status::Ok();
  std::string message = argv[0] + ": ";
  if (r.term_signal != 0) {
    const char* name = ::sigabbrev_np(r.term_signal);
    message += "killed by signal " + std::to_string(r.term_signal);
    if (name != nullptr) message += std::string(" (SIG") + name + ")";
  } else {
    message += "exit " + std::to_string(r.exit_code);
  }
  for (const std::string* text : {&r.stderr_text, &r.stdout_text}) {
    std::string_view rest = *text;
    std::string_view line;
    while (!rest.empty() && line.empty()) {
      size_t nl = rest.find('\n');
      line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    }
    if (line.empty()) continue;
    constexpr size_t kMaxLine = 300;
    message += ": " + std::string(line.substr(0, kMaxLine));
    if (line.size() > kMaxLine) message += "...";
    break;
  }
  return Internal(std::move(message));
}

Result<pid_t> SpawnDaemon(const std::vector<std::string>& argv, const std::vector<std::string>& env, int fd3) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') return InvalidArgument("SpawnDaemon: argv[0] must be an absolute path");
  std::vector<char*> c_argv;
  for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);
  std::vector<char*> c_env;
  for (const std::string& entry : env) c_env.push_back(const_cast<char*>(entry.c_str()));
  c_env.push_back(nullptr);
  SpawnSetup setup;
  if (setup.error != 0) return ErrnoStatus("posix_spawn", setup.error);
  posix_spawn_file_actions_t& actions = setup.actions;
  posix_spawnattr_t& attr = setup.attr;
  int rc = ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // dup2 onto itself would leave close-on-exec set: move a descriptor 3
  // away first.
  UniqueFd moved;
  if (fd3 == 3) {
    moved = UniqueFd(::fcntl(fd3, F_DUPFD_CLOEXEC, 4));
    if (!moved.valid()) rc = errno;
    fd3 = moved.get();
  }
  if (rc == 0 && fd3 >= 0) rc = ::posix_spawn_file_actions_adddup2(&actions, fd3, 3);
  if (rc == 0) rc = ::posix_spawn_file_actions_addclosefrom_np(&actions, fd3 >= 0 ? 4 : 3);
  sigset_t no_signals;
  sigset_t all_signals;
  sigemptyset(&no_signals);
  sigfillset(&all_signals);
  if (rc == 0) rc = ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (rc == 0) rc = ::posix_spawnattr_setsigmask(&attr, &no_signals);
  if (rc == 0) rc = ::posix_spawnattr_setsigdefault(&attr, &all_signals);
  pid_t pid = -1;
  if (rc == 0) rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, &attr, c_argv.data(), c_env.data());
  if (rc != 0) return ErrnoStatus(argv[0], rc);
  return pid;
}

sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

Result<std::string> SelfExecutable() {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return ErrnoStatus("readlink /proc/self/exe", errno);
  return std::string(self, static_cast<size_t>(n));
}

void KillChild(pid_t pid) {
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

Result<uint64_t> RaiseDescriptorLimit() {
  rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return ErrnoStatus("getrlimit(RLIMIT_NOFILE)", errno);
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return ErrnoStatus("setrlimit(RLIMIT_NOFILE)", errno);
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

ScopedSigpipeBlock::ScopedSigpipeBlock() {
  sigset_t pending;
  sigemptyset(&pending);
  ::sigpending(&pending);
  was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &block, &old_);
}

ScopedSigpipeBlock::~ScopedSigpipeBlock() {
  if (!was_pending_) Drain();
  ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

bool ReleaseFreeHeap() { return ::malloc_trim(0) == 1; }

void ScopedSigpipeBlock::Drain() {
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  const timespec zero = {0, 0};
  for (;;) {
    int got = ::sigtimedwait(&pipe_only, nullptr, &zero);
    if (got == SIGPIPE || (got < 0 && errno == EINTR)) continue;
    return;
  }
}

}  // namespace dspool
