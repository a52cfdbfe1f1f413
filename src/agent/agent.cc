#include "agent/agent.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "agent/control.h"
#include "agent/extensions.h"
#include "agent/jupyter.h"
#include "agent/notebook_host.h"
#include "agent/render.h"
#include "agent/sampler.h"
#include "agent/share_mounts.h"
#include "agent/zygote.h"
#include "base/clock.h"
#include "base/log.h"
#include "http/client.h"
#include "http/server.h"
#include "model/user.h"
#include "net/socket.h"
#include "os/children.h"
#include "os/cgroup.h"
#include "os/fs.h"
#include "os/process.h"

namespace dspool {
namespace {

constexpr const char* kLog = "agent";
constexpr const char* kSshDir = "/etc/ssh/dspool";
constexpr const char* kKeyCacheDir = "/etc/ssh/dspool/keys";
constexpr auto kRequestTimeout = std::chrono::seconds(5);
// A start holds one of these for up to a minute (the handler is synchronous).
constexpr int kControlThreads = 8;
// How long a clean stop gives the Jupyter servers to exit.
constexpr auto kJupyterStopGrace = std::chrono::seconds(5);

Result<Json> Call(const AgentOptions& opts, const std::string& method, const std::string& target,
                  const std::string& body) {
  DSP_ASSIGN_OR_RETURN(Response resp, Client::Do(Endpoint::Unix(opts.socket), method, target, body, {},
                                                 std::chrono::duration_cast<std::chrono::milliseconds>(
                                                     kRequestTimeout)));
  Json json;
  DSP_RETURN_IF_ERROR(ParseJsonText(resp.body.empty() ? "{}" : resp.body, target, &json));
  if (resp.status / 100 != 2) {
    std::string message = json.is_object() && json.contains("error")
                              ? json["error"].value("message", "HTTP " + std::to_string(resp.status))
                              : "HTTP " + std::to_string(resp.status);
    // The server's code where it gives one (a mount's PermissionDenied).
    StatusCode code = resp.status == 404 ? StatusCode::kNotFound : StatusCode::kUnavailable;
    if (json.is_object() && json.contains("error") && json["error"].is_object()) {
      const std::string name = json["error"].value("code", "");
      if (!name.empty() && name != "Internal") code = StatusCodeFromName(name);
      if (code == StatusCode::kInternal) code = StatusCode::kUnavailable;
    }
    return Status(code, message);
  }
  return json;
}

// sshd accepts connections on the instance's loopback.
bool SshdListening() { return ConnectTcp(0x7f000001, 22, std::chrono::seconds(2)).ok(); }

JupyterOptions AgentJupyterOptions() {
  JupyterOptions o;
  if (const char* lang = std::getenv("LANG")) o.lang = lang;
  return o;
}

// The zygote runs from where InstallPythonModules writes it.
PythonZygote::Options ZygoteOptions(const JupyterOptions& jupyter, const AgentOptions& agent) {
  PythonZygote::Options o;
  o.script = jupyter.python_dir + "/dspool_zygote.py";
  o.python_path = jupyter.python_dir;
  o.log_path = agent.run_dir + "/jupyter-zygote.log";
  return o;
}

class Agent final : public ConfigRefresher, public ShareMounter {
 public:
  explicit Agent(AgentOptions options)
      : options_(std::move(options)),
        jupyter_(notebook_processes_, notebook_api_, clock_, [](Duration d) { std::this_thread::sleep_for(d); },
                 jupyter_options_) {}

  int Run() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPWR);  // what `lxc-stop` sends to init for a clean halt
    sigaddset(&set, SIGUSR1);  // RefreshConfig: fetch the configuration now
    sigprocmask(SIG_BLOCK, &set, nullptr);

    image_passwd_ = ReadFile("/etc/passwd").value_or("");
    image_group_ = ReadFile("/etc/group").value_or("");
    if (Status s = MakeDirs(kKeyCacheDir, 0700); !s.ok()) {
      DSP_LOG(kError, kLog) << s;
      return 1;
    }
    InstallPythonModules();
    InstallMountHelpers();
    // The sampler's usage and limit and the Jupyter supervisor's OOM count
    // read the instance's own cgroup; an unprivileged LXC container on a
    // cgroup v1 host has none mounted.
    if (auto mounted = MountOwnCgroups(); !mounted.ok()) {
      DSP_LOG(kWarning, kLog) << "the instance's cgroups cannot be read (no memory figures, no out-of-memory exits): "
                              << mounted.status();
    } else if (*mounted) {
      DSP_LOG(kInfo, kLog) << "mounted the instance's own cgroups on /sys/fs/cgroup (read-only)";
    }
    // After the signal mask: the server's threads inherit it, so signals
    // and children's exits come to this thread's sigtimedwait.
    StartControl();

    // Intervals on the monotonic clock: a step of the wall clock neither
    // silences nor floods the reports.
    MonoTime next_report = clock_.Monotonic();
    MonoTime next_sshd_start = clock_.Monotonic();
    for (;;) {
      MonoTime now = clock_.Monotonic();
      if (!config_ && now >= next_report) {
        Status s = FetchAndApply();
        if (!s.ok()) LogOnce("config", s);
      }
      // The pool's extensions run once the configuration (users, homes)
      // is in place, as Azure runs them once the VM is provisioned.
      if (config_ && !extensions_.loaded() && now >= next_report) {
        Status s = FetchExtensions();
        if (!s.ok()) LogOnce("extensions", s);
      }
      extensions_.Step(now);
      if (config_ && sshd_pid_ <= 0 && now >= next_sshd_start) {
        StartSshd();
        next_sshd_start = now + std::chrono::seconds(1);  // at most one restart a second
      }
      if (now >= next_report) {
        listening_seen_ |= config_ && Report();
        // Until sshd first listens, look often: that report makes the
        // instance Ready. Without a configuration, retry the fetch.
        int64_t ms = !config_ ? 500 : listening_seen_ ? config_->report_interval_ms : 50;
        next_report = now + std::chrono::milliseconds(ms);
      }
      // Sleep until the next report, waking for children and signals.
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_report - clock_.Monotonic());
      if (wait.count() < 0) wait = std::chrono::milliseconds(0);
      timespec ts{static_cast<time_t>(wait.count() / 1000), static_cast<long>((wait.count() % 1000) * 1000000)};
      int sig = sigtimedwait(&set, nullptr, &ts);
      if (sig == SIGTERM || sig == SIGINT || sig == SIGPWR) {
        DSP_LOG(kInfo, kLog) << "stopping on signal " << sig;
        if (sshd_pid_ > 0) kill(sshd_pid_, SIGTERM);
        StopJupyter();
        return 0;
      }
      if (sig == SIGUSR1 && config_) {
        Status s = FetchAndApply();
        if (!s.ok()) LogOnce("config", s);
      }
      ReapChildren();
      // A notebook server that ended unasked is told to the server at once
      // (the gateway shows its user why, instead of a dead address), and so
      // is an extension's end (the instance is Ready, or Failed, sooner).
      if (report_now_ && config_) next_report = clock_.Monotonic();
      report_now_ = false;
    }
  }

  // On a control thread: the server checks the key and passes the share to
  // mounts_, which attaches it before the server answers.
  Status MountShare(const ShareMountRequest& request) override {
    return Call(options_, "POST", "/v1/agent/mounts", ShareMountRequestToJson(request).dump()).status();
  }

  // On a control thread: the main loop fetches (woken by SIGUSR1, which
  // every thread blocks and it alone waits for), this waits.
  Result<int64_t> RefreshConfig(int64_t at_least, std::chrono::milliseconds timeout) override {
    std::unique_lock lock(applied_mu_);
    if (applied_version_ < at_least) {
      ::kill(::getpid(), SIGUSR1);
      if (!applied_cv_.wait_for(lock, timeout, [&] { return applied_version_ >= at_least; })) {
        return DeadlineExceeded("configuration version " + std::to_string(at_least) + " not applied within " +
                                std::to_string(timeout.count()) + " ms (applied: " +
                                std::to_string(applied_version_) + ")");
      }
    }
    return applied_version_;
  }

 private:
  void LogOnce(const std::string& key, const Status& s) {
    if (last_error_[key] == s.message()) return;
    last_error_[key] = s.message();
    DSP_LOG(kWarning, kLog) << key << ": " << s;
  }

  void StartControl() {
    std::string path = ControlSocketPath(options_);
    control_ = std::make_unique<HttpServer>(
        [this](const Request& r) { return HandleControlRequest(jupyter_, *this, *this, r); }, HttpServerOptions{});
    if (Status s = control_->ListenUnix(path, 0600, "control"); !s.ok()) {
      // The rest of the agent still works: users, sshd, reports.
      DSP_LOG(kError, kLog) << "control socket " << path << ": " << s << "; no Jupyter servers on this instance";
      control_.reset();
      return;
    }
    control_->Start(kControlThreads);
    DSP_LOG(kInfo, kLog) << "control socket " << path;
    const std::string mounts = options_.run_dir + "/" + kMountSocketName;
    if (Status s = mounts_.Start(mounts); !s.ok()) {
      DSP_LOG(kError, kLog) << "mounts socket " << mounts << ": " << s << "; no storage shares on this instance";
    }
  }

  // mount(8) runs /usr/sbin/mount.<type> for `mount -t <type>`: for the
  // storage shares' types, that is this binary (share_mounts.h).
  void InstallMountHelpers() {
    auto self = SelfExecutable();
    if (!self.ok()) return LogOnce("mount helpers", self.status());
    for (const char* name : kMountHelperNames) {
      const std::string path = std::string("/usr/sbin/") + name;
      Status s = RemoveTree(path);
      if (s.ok()) s = Symlink(*self, path);
      if (!s.ok()) LogOnce("mount helpers", s);
    }
  }

  // SIGTERM to every Jupyter server; waits (reaping) until they are gone or
  // kJupyterStopGrace has passed.
  void StopJupyter() {
    jupyter_.Shutdown();
    if (control_) control_->Stop();
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    MonoTime deadline = clock_.Monotonic() + kJupyterStopGrace;
    for (ReapChildren(); jupyter_.Running() > 0 && clock_.Monotonic() < deadline; ReapChildren()) {
      timespec ts{0, 100 * 1000 * 1000};
      sigtimedwait(&chld, nullptr, &ts);
    }
    if (jupyter_.Running() > 0) DSP_LOG(kWarning, kLog) << jupyter_.Running() << " Jupyter servers still running";
  }

  void ReapChildren() {
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      report_now_ |= jupyter_.OnExit(pid, status);
      report_now_ |= extensions_.OnExit(pid, status);
      zygote_.OnExit(pid);
      if (pid == sshd_pid_) {
        DSP_LOG(kWarning, kLog) << "sshd exited (status " << status << "); restarting";
        sshd_pid_ = -1;
      }
    }
  }

  Status FetchExtensions() {
    DSP_ASSIGN_OR_RETURN(Json json, Call(options_, "GET", "/v1/agent/extensions", ""));
    DSP_ASSIGN_OR_RETURN(AgentProvisioning provisioning, ParseAgentProvisioning(json));
    if (!provisioning.custom_data.empty()) DSP_LOG(kInfo, kLog) << "a customData script to run";
    if (!provisioning.extensions.empty()) DSP_LOG(kInfo, kLog) << provisioning.extensions.size() << " extensions to run";
    extensions_.Load(std::move(provisioning));
    last_error_.erase("extensions");
    return Status::Ok();
  }

  Status FetchAndApply() {
    DSP_ASSIGN_OR_RETURN(Json json, Call(options_, "GET", "/v1/agent/config", ""));
    DSP_ASSIGN_OR_RETURN(AgentConfig config, ParseAgentConfig(json));
    DSP_RETURN_IF_ERROR(Apply(config));
    jupyter_.SetUsers(config.address, RenderedUsers(config));
    bool first = !config_;
    config_ = std::move(config);
    if (first) DSP_LOG(kInfo, kLog) << "configured " << config_->hostname << " with " << config_->users.size() << " users";
    last_error_.erase("config");
    {
      std::lock_guard lock(applied_mu_);
      applied_version_ = config_->config_version;
    }
    applied_cv_.notify_all();
    KeepZygoteReady();
    return Status::Ok();
  }

  Status Apply(const AgentConfig& c) {
    std::string ssh = kSshDir;
    DSP_RETURN_IF_ERROR(WriteFileAtomic(ssh + "/ssh_host_ed25519_key", c.host_private_key, 0600));
    DSP_RETURN_IF_ERROR(WriteFileAtomic(ssh + "/ssh_host_ed25519_key.pub", c.host_public_key, 0644));
    DSP_RETURN_IF_ERROR(WriteFileAtomic("/etc/passwd", RenderPasswd(image_passwd_, c), 0644));
    DSP_RETURN_IF_ERROR(WriteFileAtomic("/etc/group", RenderGroup(image_group_, c), 0644));
    DSP_RETURN_IF_ERROR(WriteFileAtomic("/etc/shadow", RenderShadow(image_passwd_, c), 0640));
    // Homes and notebook folders on the share are the server's to make
    // (this instance's root cannot write there); only the key cache is ours.
    // Without a share, homes are this instance's own, and ours to make.
    if (c.share_mount_path.empty()) {
      for (const RenderedUser& u : RenderedUsers(c)) DSP_RETURN_IF_ERROR(MakeLocalHome(u));
    }
    for (const AgentUser& u : c.users) {
      std::string keys;
      for (const std::string& k : u.ssh_keys) keys += k + "\n";
      DSP_RETURN_IF_ERROR(WriteFileAtomic(std::string(kKeyCacheDir) + "/" + u.name, keys, 0600));
    }
    DSP_RETURN_IF_ERROR(WriteFileAtomic("/etc/hosts", RenderHosts(c), 0644));
    DSP_RETURN_IF_ERROR(MakeDirs("/etc/sudoers.d", 0755));
    DSP_RETURN_IF_ERROR(WriteFileAtomic("/etc/sudoers.d/dspool", RenderSudoers(c), 0440));
    DSP_ASSIGN_OR_RETURN(std::string self, SelfExecutable());
    SshdPaths paths{ssh + "/ssh_host_ed25519_key", self};
    DSP_RETURN_IF_ERROR(WriteFileAtomic(ssh + "/sshd_config", RenderSshdConfig(paths), 0644));
    DSP_RETURN_IF_ERROR(MakeDirs("/run/sshd", 0755));
    return Status::Ok();
  }

  // /home/<user> on this instance, as a new account gets it: /etc/skel's
  // files, and a notebooks folder (the reference's ~/notebooks). Once: an
  // existing home is the user's.
  static Status MakeLocalHome(const RenderedUser& u) {
    DSP_ASSIGN_OR_RETURN(bool exists, PathExists(u.home));
    if (exists) return Status::Ok();
    const FileOwner owner{static_cast<uid_t>(u.uid), static_cast<gid_t>(u.gid)};
    DSP_RETURN_IF_ERROR(MakeDirs("/home", 0755));
    DSP_RETURN_IF_ERROR(EnsureDir(u.home, 0700, owner));
    if (auto skel = ListDir("/etc/skel"); skel.ok()) {
      for (const std::string& name : *skel) {
        auto text = ReadFile("/etc/skel/" + name);  // directories and unreadable files are skipped
        if (text.ok()) DSP_RETURN_IF_ERROR(WriteFileAtomic(u.home + "/" + name, *text, 0644, owner));
      }
    }
    return EnsureDir(u.home + "/notebooks", 0755, owner);
  }

  // Writes dspool_kernels.py where the Jupyter servers import it from, and
  // dspool_zygote.py. If the kernel manager cannot be written the servers
  // fail to start, quoting Python's ImportError; without a zygote they
  // start, only slower.
  void InstallPythonModules() {
    const std::string& dir = jupyter_options_.python_dir;
    if (dir.empty()) return;
    Status s = MakeDirs(dir, 0755);
    if (s.ok()) s = WriteFileAtomic(dir + "/dspool_kernels.py", kKernelManagerModule, 0644);
    if (s.ok()) s = WriteFileAtomic(dir + "/dspool_zygote.py", kZygoteModule, 0644);
    if (!s.ok()) DSP_LOG(kError, kLog) << "installing the Jupyter kernel manager: " << s;
  }

  // In a pool that serves Jupyter, the zygote runs (is started again, if it
  // died) so that it has imported Notebook before the next login. Elsewhere
  // it would only hold memory.
  void KeepZygoteReady() {
    if (!config_ || !config_->jupyter || jupyter_options_.python_dir.empty() ||
        !zygote_.CanRun(jupyter_options_.program)) {
      return;
    }
    if (Status s = zygote_.Start(); !s.ok()) LogOnce("zygote", s);
  }

  void StartSshd() {
    std::string log = options_.run_dir + "/sshd.log";
    auto pid = SpawnChild({"/usr/sbin/sshd", "-D", "-e", "-f", std::string(kSshDir) + "/sshd_config"}, log);
    if (!pid.ok()) {
      LogOnce("sshd", pid.status());
      return;
    }
    sshd_pid_ = *pid;
    DSP_LOG(kInfo, kLog) << "sshd started (pid " << sshd_pid_ << ")";
  }

  // Once the extensions ran (the sample's script links its admin's; never
  // while a script runs), every other user's ~/notebooks/remote too, on
  // the shares the instance mounted; users added later at a later report.
  void LinkNotebooks() {
    if (!config_ || !config_->share_mount_path.empty() || !extensions_.Finished()) return;
    const std::vector<std::string> targets = mounts_.Targets();
    if (targets.empty()) return;
    for (const std::string& user : LinkRemoteNotebooks(RenderedUsers(*config_), targets)) {
      DSP_LOG(kInfo, kLog) << "linked ~/notebooks/remote of " << user;
    }
  }

  // Sends one report; returns whether sshd was listening.
  bool Report() {
    LinkNotebooks();
    InstanceSample sample = sampler_.Sample();
    bool listening = SshdListening();
    Json body = {{"sshdListening", listening},
                 {"memoryLimitBytes", sample.memory_limit_bytes},
                 {"sshSessions", sample.ssh_sessions},
                 {"notebookServers", static_cast<int64_t>(jupyter_.Running())},
                 {"usersRendered", config_ ? static_cast<int64_t>(config_->users.size()) : 0}};
    // What the agent cannot tell yet is left out (shown as "-").
    if (sample.cpu_permille) body["cpuPermille"] = *sample.cpu_permille;
    if (sample.memory_used_bytes) body["memoryUsedBytes"] = *sample.memory_used_bytes;
    if (extensions_.loaded()) {
      Json list = Json::array();
      for (const ExtensionStatus& e : extensions_.Statuses()) list.push_back(ExtensionStatusToJson(e));
      body["extensions"] = list;
    }
    JupyterSupervisor::PendingExits exits = jupyter_.ExitsToReport();
    if (!exits.exits.empty()) {
      Json list = Json::array();
      for (const NotebookExit& e : exits.exits) list.push_back(NotebookExitToJson(e));
      body["notebookExits"] = list;
    }
    auto resp = Call(options_, "POST", "/v1/agent/report", body.dump());
    if (!resp.ok()) {
      LogOnce("report", resp.status());
      return listening;
    }
    last_error_.erase("report");
    jupyter_.ExitsReported(exits.through);
    int64_t version = resp->value("configVersion", int64_t{0});
    if (config_ && version != config_->config_version) {
      Status s = FetchAndApply();
      if (!s.ok()) LogOnce("config", s);
    }
    return listening;
  }

  AgentOptions options_;
  RealClock clock_;
  bool report_now_ = false;  // main loop only: a notebook exit or an extension's end waits for the server
  const JupyterOptions jupyter_options_ = AgentJupyterOptions();
  PythonZygote zygote_{ZygoteOptions(jupyter_options_, options_)};
  SystemNotebookProcesses notebook_processes_{&zygote_};
  HttpNotebookApi notebook_api_;
  JupyterSupervisor jupyter_;
  std::unique_ptr<HttpServer> control_;  // after jupyter_: stopped before it goes
  MountListener mounts_;
  ExtensionRunner extensions_{"/var/lib", std::chrono::minutes(kExtensionTimeoutMinutes)};
  Sampler sampler_;
  std::optional<AgentConfig> config_;
  std::string image_passwd_, image_group_;
  pid_t sshd_pid_ = -1;
  bool listening_seen_ = false;
  std::map<std::string, std::string> last_error_;
  // The version of the configuration applied (files rendered), for
  // RefreshConfig's waiters.
  std::mutex applied_mu_;
  std::condition_variable applied_cv_;
  int64_t applied_version_ = -1;
};

}  // namespace

std::string ControlSocketPath(const AgentOptions& options) { return options.run_dir + "/" + kControlSocketName; }

int RunAgent(const AgentOptions& options) {
  // Agent output goes to its own directory, readable from the host.
  std::string log = options.run_dir + "/agent.log";
  if (Status s = RedirectStderr(log); !s.ok()) std::cerr << "dspool agent: " << s << "\n";
  DSP_LOG(kInfo, kLog) << "starting (pid " << getpid() << ")";
  return Agent(options).Run();
}

int PrintAuthorizedKeys(const AgentOptions& options, const std::string& user) {
  // sshd passes whatever name the client asked for.
  if (!ValidateUserName(user).ok()) return 0;
  auto json = Call(options, "GET", "/v1/agent/keys/" + user, "");
  if (json.ok()) {
    for (const auto& key : json->value("keys", std::vector<std::string>{})) std::cout << key << "\n";
    return 0;
  }
  if (json.status().code() == StatusCode::kNotFound) return 0;  // no such user: no keys
  // Server unreachable: the copy of the last configuration.
  auto cached = ReadFile(std::string(kKeyCacheDir) + "/" + user);
  if (!cached.ok()) return 0;
  std::cout << *cached;
  return 0;
}

}  // namespace dspool
