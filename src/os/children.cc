#include "os/children.h"

#include <fcntl.h>
#include <signal.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace dspool {

Result<pid_t> SpawnChild(const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') return InvalidArgument("SpawnChild needs an absolute path");
  int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) return ErrnoStatus("open " + log_path, errno);
  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0) {
    ::close(log);
    return ErrnoStatus("open /dev/null", errno);
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    ::close(log);
    ::close(null);
    return ErrnoStatus("fork", err);
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls from here to exec.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
    setsid();
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  ::close(log);
  ::close(null);
  return pid;
}

Status RunAs(uid_t uid, gid_t gid, const std::function<Status()>& fn) {
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
    Status s;
    if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
      s = ErrnoStatus("drop to uid " + std::to_string(uid), errno);
    } else {
      s = fn();
    }
    std::string reply = std::to_string(static_cast<int>(s.code())) + " " + s.message();
    (void)!::write(pipefd[1], reply.data(), reply.size());
    _exit(0);
  }
  ::close(pipefd[1]);
  std::string reply;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) reply.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  size_t space = reply.find(' ');
  if (space == std::string::npos) return Internal("child running as uid " + std::to_string(uid) + " died");
  auto code = static_cast<StatusCode>(std::atoi(reply.substr(0, space).c_str()));
  if (code == StatusCode::kOk) return Status::Ok();
  return Status(code, reply.substr(space + 1));
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
