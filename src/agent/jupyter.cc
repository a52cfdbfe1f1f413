#include "agent/jupyter.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>

#include <set>

#include "base/log.h"
#include "model/user.h"

namespace dspool {
namespace {

constexpr const char* kLog = "jupyter";
constexpr size_t kMaxTailBytes = 4096;

std::string Quoted(const std::string& user) { return "user '" + user + "'"; }

std::string ServerOf(const std::string& user) { return "the Jupyter server of " + Quoted(user); }

std::string Seconds(Duration d) {
  int64_t ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

std::string Url(const std::string& address, uint16_t port, const std::string& target) {
  return "http://" + address + ":" + std::to_string(port) + target;
}

}  // namespace

std::string NotebookBaseUrl(const std::string& user) { return "/user/" + user + "/"; }

std::vector<std::string> NotebookArgv(const std::string& program, const std::string& address, uint16_t port,
                                      const RenderedUser& user) {
  return {program,
          "--no-browser",
          "--ip=" + address,
          "--port=" + std::to_string(port),
          // Fail rather than move to another port than the one reported.
          "--NotebookApp.port_retries=0",
          "--NotebookApp.base_url=" + NotebookBaseUrl(user.name),
          "--notebook-dir=" + user.home,
          // The gateway's Host is not local; the token is checked anyway.
          "--NotebookApp.allow_remote_access=True",
          // Kernels on Unix sockets named after them, not on TCP ports that
          // jupyter_client picks free and leaves free until the kernel binds
          // them: many servers starting kernels at once took one another's
          // ports ("Address already in use"), and a server then talked to
          // another user's kernel or to none.
          "--KernelManager.transport=ipc"};
}

Result<NotebookActivity> ParseNotebookActivity(const Json& status, const Json& kernels, const Json& terminals) {
  NotebookActivity a;
  if (!status.is_object()) return InvalidArgument("notebook api/status: expected a JSON object");
  auto last = status.find("last_activity");
  if (last == status.end() || !last->is_string()) {
    return InvalidArgument("notebook api/status: last_activity: expected a time string");
  }
  auto when = ParseTime(last->get<std::string>());
  if (!when.ok()) return when.status().WithPrefix("notebook api/status: last_activity");
  a.last_activity = *when;
  if (!kernels.is_array()) return InvalidArgument("notebook api/kernels: expected a JSON array");
  for (size_t i = 0; i < kernels.size(); ++i) {
    const Json& k = kernels[i];
    auto state = k.is_object() ? k.find("execution_state") : k.end();
    if (!k.is_object() || state == k.end() || !state->is_string()) {
      return InvalidArgument("notebook api/kernels[" + std::to_string(i) + "].execution_state: expected a string");
    }
    ++a.kernels;
    // "starting": not heard yet (dspool_kernels.py), so a cell may be
    // running: never cull on a guess.
    const std::string& s = state->get_ref<const std::string&>();
    if (s == "busy" || s == "starting") ++a.busy_kernels;
  }
  if (!terminals.is_array()) return InvalidArgument("notebook api/terminals: expected a JSON array");
  a.terminals = static_cast<int64_t>(terminals.size());
  return a;
}

int64_t CountBusyTerminals(const std::vector<ProcStat>& processes, pid_t server_pid) {
  std::set<pid_t> parents;  // of live processes
  for (const ProcStat& p : processes) {
    if (p.state != 'Z' && p.state != 'X') parents.insert(p.ppid);
  }
  int64_t busy = 0;
  for (const ProcStat& p : processes) {
    if (p.ppid != server_pid || p.tty_nr == 0) continue;
    bool foreground_job = p.tpgid > 0 && p.tpgid != p.pgrp;
    if (foreground_job || parents.count(p.pid)) ++busy;
  }
  return busy;
}

std::string LastLines(const std::string& text, size_t max_lines, const std::string& secret) {
  std::string masked = text;
  if (!secret.empty()) {
    for (size_t at = masked.find(secret); at != std::string::npos; at = masked.find(secret, at)) {
      masked.replace(at, secret.size(), "<token>");
    }
  }
  size_t end = masked.find_last_not_of('\n');
  if (end == std::string::npos || max_lines == 0) return "";
  ++end;
  size_t start = 0;
  size_t newlines = 0;
  for (size_t i = end; i > 0; --i) {
    if (masked[i - 1] == '\n' && ++newlines == max_lines) {
      start = i;
      break;
    }
  }
  if (end - start > kMaxTailBytes) {
    // Cut only at a line's start: a cut line could hold part of a secret
    // that the mask no longer recognises.
    size_t nl = masked.find('\n', end - kMaxTailBytes - 1);
    if (nl == std::string::npos || nl + 1 >= end) return "[last line longer than 4096 bytes, not shown]";
    start = nl + 1;
  }
  return masked.substr(start, end - start);
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return "exit " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "wait status " + std::to_string(wait_status);
}

std::string ClassifyExit(int wait_status, std::optional<int64_t> oom_kills_before,
                         std::optional<int64_t> oom_kills_now) {
  bool killed = WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL;
  if (killed && oom_kills_before && oom_kills_now && *oom_kills_now > *oom_kills_before) return kOutOfMemory;
  return DescribeWaitStatus(wait_status);
}

JupyterSupervisor::JupyterSupervisor(NotebookProcesses& processes, NotebookApi& api, const Clock& clock,
                                     std::function<void(Duration)> sleep, JupyterOptions options)
    : processes_(processes), api_(api), clock_(clock), sleep_(std::move(sleep)), options_(std::move(options)) {}

void JupyterSupervisor::SetUsers(std::string address, std::vector<RenderedUser> users) {
  std::lock_guard<std::mutex> lock(mu_);
  address_ = std::move(address);
  users_.clear();
  for (RenderedUser& u : users) users_[u.name] = std::move(u);
}

JupyterSupervisor::Entry* JupyterSupervisor::FindLocked(const std::string& user, uint64_t id) {
  auto it = servers_.find(user);
  return it == servers_.end() || it->second.id != id ? nullptr : &it->second;
}

void JupyterSupervisor::EraseLocked(const std::string& user, uint64_t id) {
  if (FindLocked(user, id) != nullptr) servers_.erase(user);
}

Result<JupyterSupervisor::Started> JupyterSupervisor::Start(const JupyterStartRequest& request) {
  const std::string& user = request.user;
  if (Status s = ValidateUserName(user); !s.ok()) return s.WithPrefix("user");
  if (Status s = ValidateJupyterToken(request.token); !s.ok()) return s.WithPrefix("token");
  if (!request.program.empty()) {
    if (Status s = ValidateNotebookProgram(request.program); !s.ok()) return s.WithPrefix("program");
  }
  const std::string& program = request.program.empty() ? options_.program : request.program;
  std::shared_ptr<std::mutex> start_lock;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) return Unavailable("the agent is stopping: no Jupyter server is started");
    if (!users_.count(user)) return NotFound(Quoted(user) + " is not a pool user on this instance");
    auto& slot = start_locks_[user];
    if (!slot) slot = std::make_shared<std::mutex>();
    start_lock = slot;
  }
  std::lock_guard<std::mutex> one_start(*start_lock);

  uint64_t old_id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = servers_.find(user);
    if (it != servers_.end()) {
      Entry& e = it->second;
      bool running = e.info.state == JupyterState::kReady || e.info.state == JupyterState::kUnresponsive;
      if (e.info.state == JupyterState::kExited) {
        servers_.erase(it);
      } else if (running && !e.stopping && e.token == request.token && e.launch.argv.at(0) == program) {
        return Started{e.info, false};
      } else {
        old_id = e.id;
      }
    }
  }
  if (old_id != 0) {
    DSP_LOG(kInfo, kLog) << "restarting " << ServerOf(user) << " with a new token or program";
    DSP_RETURN_IF_ERROR(StopEntry(user, old_id));
  }

  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) return Unavailable("the agent is stopping: no Jupyter server is started");
    auto u = users_.find(user);
    if (u == users_.end()) return NotFound(Quoted(user) + " is not a pool user on this instance");
    if (address_.empty()) {
      return FailedPrecondition("cannot start " + ServerOf(user) +
                                ": this instance's pool address is unknown (the server's configuration has none)");
    }
    auto port = PickPortLocked();
    if (!port.ok()) return port.status().WithPrefix("cannot start " + ServerOf(user));
    NotebookLaunch launch = MakeLaunch(u->second, program, address_, *port, request.token);
    // With no server running, no exit can be told apart wrongly: the OOM
    // count starts from now.
    bool none_running = std::all_of(servers_.begin(), servers_.end(), [](const auto& kv) {
      return kv.second.info.state == JupyterState::kExited;
    });
    if (none_running) {
      oom_baseline_.reset();
      oom_last_.reset();
    }
    ReadOomKillsLocked();
    // Spawned under the lock, so OnExit cannot see the pid before the entry.
    auto pid = processes_.Spawn(launch);
    if (!pid.ok()) return Unavailable("cannot start " + ServerOf(user) + ": " + pid.status().message());
    Entry e;
    e.id = id = next_id_++;
    e.token = request.token;
    e.info = JupyterServer{user, address_, *port, *pid, clock_.Now(), JupyterState::kStarting};
    e.active_at = clock_.Monotonic();
    e.launch = std::move(launch);
    servers_[user] = std::move(e);
    DSP_LOG(kInfo, kLog) << "starting " << ServerOf(user) << " (pid " << *pid << ", " << address_ << ":" << *port
                         << ")";
  }
  return WaitReady(user, id);
}

Result<uint16_t> JupyterSupervisor::PickPortLocked() {
  std::set<int64_t> taken;
  for (const auto& [name, e] : servers_) {
    if (e.info.state != JupyterState::kExited) taken.insert(e.info.port);
  }
  for (uint32_t p = options_.first_port; p <= options_.last_port; ++p) {
    if (taken.count(p)) continue;
    auto free = processes_.PortFree(address_, static_cast<uint16_t>(p));
    if (!free.ok()) return free.status();
    if (*free) return static_cast<uint16_t>(p);
  }
  return ResourceExhausted("no free port in " + std::to_string(options_.first_port) + ".." +
                           std::to_string(options_.last_port) + " on " + address_);
}

NotebookLaunch JupyterSupervisor::MakeLaunch(const RenderedUser& user, const std::string& program,
                                             const std::string& address, uint16_t port,
                                             const std::string& token) const {
  NotebookLaunch l;
  l.user = user;
  l.argv = NotebookArgv(program, address, port, user);
  l.env = {"HOME=" + user.home, "USER=" + user.name, "LOGNAME=" + user.name, "SHELL=" + user.shell,
           "PATH=" + options_.path};
  if (!options_.lang.empty()) l.env.push_back("LANG=" + options_.lang);
  if (!options_.python_dir.empty()) {
    l.argv.push_back(std::string("--NotebookApp.kernel_manager_class=") + kKernelManagerClass);
    l.env.push_back("PYTHONPATH=" + options_.python_dir);
    l.kernel_forker = true;
  }
  l.runtime_dir = options_.runtime_root + "/" + std::to_string(user.uid);
  l.env.push_back("JUPYTER_RUNTIME_DIR=" + l.runtime_dir);
  l.env.push_back("JUPYTER_TOKEN=" + token);
  l.log_path = user.home + "/.dspool/jupyter.log";
  return l;
}

Result<JupyterSupervisor::Started> JupyterSupervisor::WaitReady(const std::string& user, uint64_t id) {
  const MonoTime started = clock_.Monotonic();
  const MonoTime deadline = started + options_.start_timeout;
  Status last_error = Unavailable("not polled yet");
  for (;;) {
    std::string address, token;
    uint16_t port = 0;
    pid_t pid = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      Entry* e = FindLocked(user, id);
      if (e == nullptr) return Unavailable(ServerOf(user) + " was stopped while it started");
      if (e->info.state == JupyterState::kExited) {
        NotebookLaunch launch = e->launch;
        std::string reason = e->exit_reason;
        std::string secret = e->token;
        servers_.erase(user);
        lock.unlock();
        DSP_LOG(kWarning, kLog) << ServerOf(user) << " exited (" << reason << ") before it answered";
        return Unavailable(ServerOf(user) + " exited (" + reason + ") before it answered" +
                           DescribeLog(launch, secret));
      }
      if (shutdown_) return Unavailable("the agent is stopping: " + ServerOf(user) + " is being stopped");
      address = e->info.address;
      port = static_cast<uint16_t>(e->info.port);
      token = e->token;
      pid = static_cast<pid_t>(e->info.pid);
    }
    std::string target = NotebookBaseUrl(user) + "api/status";
    auto status = api_.Get(address, port, target, token);
    if (status.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      Entry* e = FindLocked(user, id);
      if (e != nullptr && e->info.state == JupyterState::kStarting) {
        e->info.state = JupyterState::kReady;
        e->starting = false;
        auto last = status->is_object() && status->contains("last_activity") && (*status)["last_activity"].is_string()
                        ? ParseTime((*status)["last_activity"].get<std::string>())
                        : Result<TimePoint>(InvalidArgument("none"));
        if (last.ok()) e->info.last_activity = *last;
        DSP_LOG(kInfo, kLog) << ServerOf(user) << " is ready after "
                             << std::chrono::duration_cast<Duration>(clock_.Monotonic() - started).count()
                             << " ms";
        return Started{e->info, true};
      }
      continue;  // exited or stopped meanwhile: the top of the loop says which
    }
    last_error = status.status();
    if (clock_.Monotonic() >= deadline) {
      processes_.Kill(pid);
      bool gone = WaitExit(user, id, options_.stop_grace);
      NotebookLaunch launch;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (Entry* e = FindLocked(user, id)) launch = e->launch;
        // Not reaped (yet): still forgotten here; OnExit will find nothing.
        EraseLocked(user, id);
      }
      DSP_LOG(kWarning, kLog) << ServerOf(user) << " did not answer within " << Seconds(options_.start_timeout)
                              << "; killed";
      return DeadlineExceeded(ServerOf(user) + " did not answer on " + Url(address, port, target) + " within " +
                              Seconds(options_.start_timeout) + " (last: " + last_error.message() + "); it was killed" +
                              (gone ? "" : " but has not exited yet") +
                              (launch.log_path.empty() ? "" : DescribeLog(launch, token)));
    }
    sleep_(options_.poll_interval);
  }
}

std::string JupyterSupervisor::DescribeLog(const NotebookLaunch& launch, const std::string& token) {
  auto tail = processes_.LogTail(launch, options_.log_tail_lines);
  if (!tail.ok()) return "; its log " + launch.log_path + " cannot be read: " + tail.status().message();
  std::string text = LastLines(*tail, options_.log_tail_lines, token);
  if (text.empty()) return "; its log " + launch.log_path + " is empty";
  return "; last lines of " + launch.log_path + ":\n" + text;
}

bool JupyterSupervisor::WaitExit(const std::string& user, uint64_t id, Duration limit) {
  const MonoTime deadline = clock_.Monotonic() + limit;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      Entry* e = FindLocked(user, id);
      if (e == nullptr || e->info.state == JupyterState::kExited) return true;
      if (shutdown_) return false;
    }
    if (clock_.Monotonic() >= deadline) return false;
    sleep_(options_.poll_interval);
  }
}

Status JupyterSupervisor::StopEntry(const std::string& user, uint64_t id) {
  pid_t pid = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry* e = FindLocked(user, id);
    if (e == nullptr) return Status::Ok();
    if (e->info.state == JupyterState::kExited) {
      servers_.erase(user);
      return Status::Ok();
    }
    e->stopping = true;
    pid = static_cast<pid_t>(e->info.pid);
  }
  DSP_LOG(kInfo, kLog) << "stopping " << ServerOf(user) << " (pid " << pid << ")";
  processes_.Terminate(pid);
  bool gone = WaitExit(user, id, options_.stop_grace);
  if (!gone) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shutdown_) return Unavailable("the agent is stopping: " + ServerOf(user) + " got SIGTERM");
    }
    DSP_LOG(kWarning, kLog) << ServerOf(user) << " ignored SIGTERM for " << Seconds(options_.stop_grace)
                            << "; SIGKILL";
    processes_.Kill(pid);
    gone = WaitExit(user, id, options_.stop_grace);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!gone) {
    if (shutdown_) return Unavailable("the agent is stopping: " + ServerOf(user) + " got SIGKILL");
    return Internal(ServerOf(user) + " (pid " + std::to_string(pid) + ") has not exited " +
                    Seconds(options_.stop_grace) + " after SIGKILL");
  }
  EraseLocked(user, id);
  return Status::Ok();
}

Status JupyterSupervisor::Stop(const std::string& user) {
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = servers_.find(user);
    if (it == servers_.end()) return NotFound("no Jupyter server for " + Quoted(user) + " on this instance");
    id = it->second.id;
  }
  return StopEntry(user, id);
}

std::vector<JupyterServer> JupyterSupervisor::List() {
  struct Poll {
    std::string user;
    uint64_t id;
    std::string address;
    uint16_t port;
    std::string token;
    pid_t pid;
    Result<NotebookActivity> activity = Status(StatusCode::kInternal, "not polled");
  };
  std::vector<Poll> polls;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [user, e] : servers_) {
      bool running = e.info.state == JupyterState::kReady || e.info.state == JupyterState::kUnresponsive;
      if (running && !e.stopping) {
        polls.push_back({user, e.id, e.info.address, static_cast<uint16_t>(e.info.port), e.token,
                         static_cast<pid_t>(e.info.pid)});
      }
    }
  }
  for (Poll& p : polls) {
    std::string base = NotebookBaseUrl(p.user);
    auto get = [&](const std::string& what) { return api_.Get(p.address, p.port, base + what, p.token); };
    p.activity = [&]() -> Result<NotebookActivity> {
      DSP_ASSIGN_OR_RETURN(Json status, get("api/status"));
      DSP_ASSIGN_OR_RETURN(Json kernels, get("api/kernels?no_track_activity=1"));
      DSP_ASSIGN_OR_RETURN(Json terminals, get("api/terminals?no_track_activity=1"));
      DSP_ASSIGN_OR_RETURN(NotebookActivity a, ParseNotebookActivity(status, kernels, terminals));
      DSP_ASSIGN_OR_RETURN(a.busy_terminals, processes_.BusyTerminals(p.pid));
      return a;
    }();
  }

  const MonoTime now = clock_.Monotonic();
  std::lock_guard<std::mutex> lock(mu_);
  for (const Poll& p : polls) {
    Entry* e = FindLocked(p.user, p.id);
    if (e == nullptr || e->info.state == JupyterState::kExited) continue;
    if (p.activity.ok()) {
      if (e->info.state == JupyterState::kUnresponsive) DSP_LOG(kInfo, kLog) << ServerOf(p.user) << " answers again";
      e->info.state = JupyterState::kReady;
      // Any change counts, also backwards (the wall clock was set back).
      if (p.activity->last_activity != e->info.last_activity) e->active_at = now;
      e->info.idle_for = std::chrono::duration_cast<Duration>(now - e->active_at);
      e->info.last_activity = p.activity->last_activity;
      e->info.kernels = p.activity->kernels;
      e->info.busy_kernels = p.activity->busy_kernels;
      e->info.terminals = p.activity->terminals;
      e->info.busy_terminals = p.activity->busy_terminals;
    } else {
      if (e->info.state == JupyterState::kReady) {
        DSP_LOG(kWarning, kLog) << ServerOf(p.user) << " does not answer: " << p.activity.status();
      }
      e->info.state = JupyterState::kUnresponsive;
    }
  }
  std::vector<JupyterServer> out;
  for (auto it = servers_.begin(); it != servers_.end();) {
    out.push_back(it->second.info);
    // A failed start is reported by its Start, not here.
    bool report_once = it->second.info.state == JupyterState::kExited && !it->second.starting;
    it = report_once ? servers_.erase(it) : std::next(it);
  }
  return out;
}

bool JupyterSupervisor::OnExit(pid_t pid, int wait_status) {
  std::lock_guard<std::mutex> lock(mu_);
  bool queued = false;
  for (auto& [user, e] : servers_) {
    if (e.info.pid != pid || e.info.state == JupyterState::kExited) continue;
    e.info.state = JupyterState::kExited;
    std::optional<int64_t> oom_now;
    if (!e.stopping && WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL) oom_now = ReadOomKillsLocked();
    e.exit_reason = ClassifyExit(wait_status, oom_baseline_, oom_now);
    const bool oom = e.exit_reason == kOutOfMemory;
    if (oom) *oom_baseline_ += 1;  // this exit takes one OOM kill
    if (e.stopping) {
      DSP_LOG(kInfo, kLog) << ServerOf(user) << " (pid " << pid << ") exited: " << e.exit_reason;
      continue;
    }
    DSP_LOG(kWarning, kLog) << ServerOf(user) << " (pid " << pid << ") exited: " << e.exit_reason;
    // A start that fails says so itself; out of memory is worth an event anyway.
    if (e.starting && !oom) continue;
    if (exits_.size() >= kMaxNotebookExits) {
      DSP_LOG(kWarning, kLog) << "the exit of " << ServerOf(exits_.front().second.user)
                              << " is dropped unreported: more than " << kMaxNotebookExits << " wait for the server";
      exits_.pop_front();
    }
    exits_.push_back({next_exit_++, NotebookExit{user, pid, e.info.port, e.exit_reason, clock_.Now()}});
    queued = true;
  }
  return queued;
}

std::optional<int64_t> JupyterSupervisor::ReadOomKillsLocked() {
  auto n = processes_.OomKills();
  if (!n.ok()) {
    if (!oom_unknown_logged_) {
      DSP_LOG(kWarning, kLog) << "a server killed for lack of memory will read as \"killed by signal 9\": "
                              << n.status();
      oom_unknown_logged_ = true;
    }
    return std::nullopt;
  }
  if (!oom_baseline_) oom_baseline_ = *n;
  if (!oom_last_) oom_last_ = *n;
  return *n;
}

JupyterSupervisor::PendingExits JupyterSupervisor::ExitsToReport() {
  std::lock_guard<std::mutex> lock(mu_);
  bool running = std::any_of(servers_.begin(), servers_.end(), [](const auto& kv) {
    return kv.second.info.state != JupyterState::kExited;
  });
  if (running) {
    // The baseline lags one call behind, so an OOM kill whose victim is
    // reaped within a report interval still counts for it.
    std::optional<int64_t> previous = oom_last_;
    std::optional<int64_t> now = ReadOomKillsLocked();
    if (previous && oom_baseline_) oom_baseline_ = std::max(*oom_baseline_, *previous);
    if (now) oom_last_ = now;
  }
  PendingExits out;
  for (const auto& [seq, exit] : exits_) {
    out.exits.push_back(exit);
    out.through = seq;
  }
  return out;
}

void JupyterSupervisor::ExitsReported(uint64_t through) {
  std::lock_guard<std::mutex> lock(mu_);
  while (!exits_.empty() && exits_.front().first <= through) exits_.pop_front();
}

void JupyterSupervisor::Shutdown() {
  std::vector<pid_t> pids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    for (auto& [user, e] : servers_) {
      if (e.info.state == JupyterState::kExited) continue;
      e.stopping = true;
      pids.push_back(static_cast<pid_t>(e.info.pid));
    }
  }
  for (pid_t pid : pids) processes_.Terminate(pid);
}

size_t JupyterSupervisor::Running() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [user, e] : servers_) n += e.info.state != JupyterState::kExited;
  return n;
}

}  // namespace dspool
