#include "os/children.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace dspool {
namespace {

// The steps of a child's start; the child reports which one failed.
enum SpawnStep : int { kDropPrivileges, kChdir, kMakeLogDir, kOpenLog, kOpenNull, kExec };

struct SpawnFailure {
  int step;
  int err;
};

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Child side of Spawn: only async-signal-safe calls; never returns.
[[noreturn]] void ExecChild(const SpawnOptions& o, const std::string& log_dir, char* const* argv, char* const* envp,
                            const gid_t* groups, size_t ngroups, int report_fd, long open_max) {
  auto fail = [&](int step) {
    SpawnFailure f{step, errno};
    (void)!::write(report_fd, &f, sizeof(f));
    _exit(127);
  };
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
  setsid();
  if (o.credentials) {
    if (setgroups(ngroups, groups) != 0 || setresgid(o.credentials->gid, o.credentials->gid, o.credentials->gid) != 0 ||
        setresuid(o.credentials->uid, o.credentials->uid, o.credentials->uid) != 0) {
      fail(kDropPrivileges);
    }
  }
  if (!o.cwd.empty() && chdir(o.cwd.c_str()) != 0) fail(kChdir);
  if (o.log_dir_mode != 0 && mkdir(log_dir.c_str(), o.log_dir_mode) != 0 && errno != EEXIST) fail(kMakeLogDir);
  int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (o.truncate_log ? O_TRUNC : 0);
  int log = open(o.log_path.c_str(), flags, 0600);
  if (log < 0 || fchmod(log, 0600) != 0) fail(kOpenLog);
  int in = o.stdin_fd;
  if (in < 0 && (in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) fail(kOpenNull);
  // dup2 clears FD_CLOEXEC on 0-2; every other descriptor goes, except
  // the report pipe, which exec closes.
  dup2(in, 0);
  dup2(log, 1);
  dup2(log, 2);
  bool closed = (report_fd == 3 || close_range(3, static_cast<unsigned>(report_fd) - 1, 0) == 0) &&
                close_range(static_cast<unsigned>(report_fd) + 1, ~0U, 0) == 0;
  for (long fd = 3; !closed && fd < open_max; ++fd) {  // kernels before 5.9
    if (fd != report_fd) close(static_cast<int>(fd));
  }
  if (envp != nullptr) {
    execve(argv[0], argv, envp);
  } else {
    execv(argv[0], argv);
  }
  fail(kExec);
  _exit(127);
}

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

Result<pid_t> Spawn(const SpawnOptions& o) {
  if (o.argv.empty() || o.argv[0].empty() || o.argv[0][0] != '/') {
    return InvalidArgument("Spawn needs an absolute program path, got '" + (o.argv.empty() ? "" : o.argv[0]) + "'");
  }
  if (o.log_path.empty()) return InvalidArgument("Spawn of " + o.argv[0] + ": no log path");
  // Everything the child needs is built here: it may not allocate.
  std::vector<char*> argv = CStrings(o.argv);
  std::vector<char*> envp = o.env ? CStrings(*o.env) : std::vector<char*>{};
  std::vector<gid_t> groups = o.credentials ? o.credentials->groups : std::vector<gid_t>{};
  std::string log_dir = DirOf(o.log_path);
  long open_max = sysconf(_SC_OPEN_MAX);
  if (open_max < 0 || open_max > (1 << 20)) open_max = 1 << 20;
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    ::close(report[0]);
    ::close(report[1]);
    return ErrnoStatus("fork for " + o.argv[0], err);
  }
  if (pid == 0) {
    ::close(report[0]);
    ExecChild(o, log_dir, argv.data(), o.env ? envp.data() : nullptr, groups.data(), groups.size(), report[1],
              open_max);
  }
  ::close(report[1]);
  SpawnFailure failure{};
  ssize_t n;
  while ((n = ::read(report[0], &failure, sizeof(failure))) < 0 && errno == EINTR) {
  }
  ::close(report[0]);
  if (n == 0) return pid;  // the pipe closed on exec
  // The child failed before exec and exits 127. A reaper racing with us may
  // take it first (ECHILD here), which is as good.
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof(failure))) return Internal("starting " + o.argv[0] + ": child died before exec");
  std::string what;
  switch (failure.step) {
    case kDropPrivileges:
      what = "drop to uid " + std::to_string(o.credentials->uid) + " gid " + std::to_string(o.credentials->gid);
      break;
    case kChdir: what = "chdir " + o.cwd; break;
    case kMakeLogDir: what = "mkdir " + log_dir; break;
    case kOpenLog: what = "open " + o.log_path; break;
    case kOpenNull: what = "open /dev/null"; break;
    default: what = "exec " + o.argv[0]; break;
  }
  if (o.credentials && failure.step != kDropPrivileges) what += " (as uid " + std::to_string(o.credentials->uid) + ")";
  return ErrnoStatus(what, failure.err);
}

Result<pid_t> SpawnChild(const std::vector<std::string>& argv, const std::string& log_path) {
  SpawnOptions o;
  o.argv = argv;
  o.log_path = log_path;
  return Spawn(o);
}

Result<std::string> RunAsCapture(uid_t uid, gid_t gid, const std::function<Result<std::string>()>& fn) {
  constexpr size_t kMaxReply = size_t{1} << 20;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return ErrnoStatus("fork", err);
  }
  if (pid == 0) {
    ::close(pipefd[0]);
    Result<std::string> r = Status(StatusCode::kInternal, "not run");
    if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
      r = ErrnoStatus("drop to uid " + std::to_string(uid), errno);
    } else {
      r = fn();
    }
    // "<code> <output or message>"
    std::string reply = std::to_string(static_cast<int>(r.ok() ? StatusCode::kOk : r.status().code())) + " " +
                        (r.ok() ? r->substr(0, kMaxReply) : r.status().message());
    const char* p = reply.data();
    size_t left = reply.size();
    while (left > 0) {
      ssize_t w = ::write(pipefd[1], p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      p += w;
      left -= static_cast<size_t>(w);
    }
    _exit(0);
  }
  ::close(pipefd[1]);
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0 && reply.size() < kMaxReply + 64) reply.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  size_t space = reply.find(' ');
  if (space == std::string::npos) return Internal("child running as uid " + std::to_string(uid) + " died");
  auto code = static_cast<StatusCode>(std::atoi(reply.substr(0, space).c_str()));
  if (code == StatusCode::kOk) return reply.substr(space + 1);
  return Status(code, reply.substr(space + 1));
}

Status RunAs(uid_t uid, gid_t gid, const std::function<Status()>& fn) {
  return RunAsCapture(uid, gid, [&]() -> Result<std::string> {
           DSP_RETURN_IF_ERROR(fn());
           return std::string();
         })
      .status();
}

Status SignalProcessGroup(pid_t pgid, int signal) {
  if (pgid <= 1) return InvalidArgument("refusing to signal process group " + std::to_string(pgid));
  if (::kill(-pgid, signal) != 0 && errno != ESRCH) {
    return ErrnoStatus("signal " + std::to_string(signal) + " to process group " + std::to_string(pgid), errno);
  }
  return Status::Ok();
}

Status RedirectStderr(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  if (dup2(fd, 2) < 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus("dup2 stderr", err);
  }
  ::close(fd);
  return Status::Ok();
}

}  // namespace dspool
