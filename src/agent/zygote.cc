#include "agent/zygote.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "base/log.h"
#include "model/json_reader.h"
#include "net/unix_socket.h"
#include "os/children.h"

namespace dspool {
namespace {

constexpr const char* kLog = "jupyter";

// The environment as the zygote's child reads it: entries ending in NUL.
// A pipe holds 64 KiB without a reader; an environment is a few hundred
// bytes.
constexpr size_t kMaxEnvironment = 60 * 1024;

// A pipe's read end, holding `env` as the zygote's child reads it.
Result<UniqueFd> EnvironmentPipe(const std::vector<std::string>& env) {
  std::string data;
  for (const std::string& entry : env) {
    data += entry;
    data += '\0';
  }
  if (data.size() > kMaxEnvironment) {
    return InvalidArgument("environment of " + std::to_string(data.size()) + " bytes: more than the zygote takes");
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(write_end.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("writing the environment pipe", errno);
    done += static_cast<size_t>(n);
  }
  return read_end;
}

}  // namespace

Status PythonZygote::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  return StartLocked();
}

pid_t PythonZygote::pid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pid_;
}

bool PythonZygote::CanRun(const std::string& program) const {
  std::ifstream in(program);
  std::string line;
  if (!in || !std::getline(in, line)) return false;
  std::string shebang = "#!" + options_.python;
  return line.compare(0, shebang.size(), shebang) == 0 &&
         (line.size() == shebang.size() || line[shebang.size()] == ' ' || line[shebang.size()] == '\t');
}

Status PythonZygote::StartLocked() {
  if (pid_ > 0) return Status::Ok();
  DSP_ASSIGN_OR_RETURN(auto pair, MakeSeqPacketPair("the Jupyter zygote"));
  auto& [ours, theirs] = pair;
  SpawnOptions o;
  o.argv = {options_.python, options_.script};
  o.env = std::vector<std::string>{"PATH=/usr/local/bin:/usr/bin:/bin"};
  if (!options_.python_path.empty()) o.env->push_back("PYTHONPATH=" + options_.python_path);
  o.log_path = options_.log_path;
  o.stdin_fd = theirs.get();
  DSP_ASSIGN_OR_RETURN(pid_t pid, dspool::Spawn(o));
  pid_ = pid;
  socket_ = std::move(ours);
  DSP_LOG(kInfo, kLog) << "Jupyter zygote started (pid " << pid_ << ")";
  return Status::Ok();
}

void PythonZygote::StopLocked(bool kill) {
  // Reaped by the reaper, which calls OnExit. Not killed when its socket
  // closed: it is dead then, maybe reaped already, and its pid free.
  if (kill && pid_ > 0) ::kill(pid_, SIGKILL);
  socket_.reset();
  pid_ = 0;
}

void PythonZygote::OnExit(pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pid <= 0 || pid != pid_) return;
  DSP_LOG(kWarning, kLog) << "Jupyter zygote (pid " << pid << ") exited; the next server start starts another";
  StopLocked(/*kill=*/false);
}

Result<pid_t> PythonZygote::Spawn(const NotebookLaunch& launch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Status s = StartLocked(); !s.ok()) return Unavailable("starting the Jupyter zygote: " + s.message());
  return SpawnLocked(launch);
}

Result<pid_t> PythonZygote::SpawnLocked(const NotebookLaunch& launch) {
  if (launch.argv.empty()) return InvalidArgument("zygote spawn: empty argv");
  const uint64_t id = next_id_++;
  Json request = {{"id", id},
                  {"argv", launch.argv},
                  {"uid", launch.user.uid},
                  {"gid", launch.user.gid},
                  {"groups", launch.user.groups},
                  {"cwd", launch.user.home},
                  {"log_path", launch.log_path},
                  {"truncate_log", true},
                  {"log_dir_mode", 0700},
                  {"kernel_forker", launch.kernel_forker}};
  DSP_ASSIGN_OR_RETURN(UniqueFd env, EnvironmentPipe(launch.env));
  Status sent = SendWithFd(socket_.get(), request.dump(), env.get());
  env.reset();
  if (!sent.ok()) {
    StopLocked(/*kill=*/false);
    return Unavailable("sending to the Jupyter zygote: " + sent.message());
  }
  // The answer to this request; an answer to an earlier one (that timed
  // out) is skipped.
  const auto deadline = std::chrono::steady_clock::now() + options_.reply_timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{socket_.get(), POLLIN, 0};
    int ready = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      StopLocked(/*kill=*/true);
      return Unavailable("the Jupyter zygote did not answer within " +
                         std::to_string(options_.reply_timeout.count()) + " ms; it was killed");
    }
    char buffer[4096];
    Result<size_t> n = ReceiveMessage(socket_.get(), buffer, sizeof(buffer));
    if (!n.ok() || *n == 0) {
      StopLocked(/*kill=*/false);
      return Unavailable(!n.ok() ? "reading the Jupyter zygote's answer: " + n.status().message()
                                 : "the Jupyter zygote closed its socket");
    }
    Json reply;
    if (Status s = ParseJsonText(std::string(buffer, *n), "the Jupyter zygote's answer", &reply);
        !s.ok() || !reply.is_object() || !reply.contains("id") || !reply["id"].is_number_unsigned()) {
      StopLocked(/*kill=*/true);
      return Unavailable("the Jupyter zygote's answer is not JSON with an id; it was killed");
    }
    if (reply["id"].get<uint64_t>() != id) continue;
    if (reply.contains("pid") && reply["pid"].is_number_integer() && reply["pid"].get<int64_t>() > 1) {
      return static_cast<pid_t>(reply["pid"].get<int64_t>());
    }
    if (reply.contains("step") && reply["step"].is_string() && reply.contains("errno") &&
        reply["errno"].is_number_integer()) {
      std::string what = reply["step"].get<std::string>();
      if (what.rfind("drop to ", 0) != 0) what += " (as uid " + std::to_string(launch.user.uid) + ")";
      return ErrnoStatus(what, static_cast<int>(reply["errno"].get<int64_t>()));
    }
    std::string error = reply.contains("error") && reply["error"].is_string() ? reply["error"].get<std::string>()
                                                                             : reply.dump();
    return Internal("starting " + launch.argv[0] + " in the Jupyter zygote: " + error);
  }
}

}  // namespace dspool
