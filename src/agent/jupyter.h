// JupyterSupervisor: the per-user Jupyter Notebook servers of one instance.
// The gateway asks for them through the agent's control socket (control.h);
// this class starts them, watches them and stops them.
//
// A server's life (one per user at most):
//
//   Start ─spawn─► starting ──/api/status answers with the token──► ready ◄─► unresponsive
//                     │      (polled every 100 ms, at most 60 s)       │   (a listing's poll of
//                     │                                                 │    its API failed/worked)
//                     │ exits, or never answers (SIGKILL)               │ exits by itself, or Stop:
//                     ▼                                                 ▼ SIGTERM, SIGKILL after 5 s
//                 forgotten; Start fails (502)                        exited ─ shown by one List ─► forgotten
//
// An exit nobody asked for (not Stop, not Shutdown) of a server that was
// ready, and any exit out of memory, is also queued for the server
// (ExitsToReport, sent with the agent's next report), with its reason:
// "out of memory" when it died of SIGKILL and the instance's memory cgroup
// counted an OOM kill since the reading of one report before (ClassifyExit),
// else DescribeWaitStatus's. Each OOM exit takes one count, so two SIGKILLs
// after one OOM kill are one "out of memory" and one "killed by signal 9";
// a SIGKILL sent by hand within one report interval (2 s) after an OOM kill
// of another process (a kernel) reads as "out of memory".
//
// Start is idempotent: a ready server with the same token is the answer; a
// different token stops the old server and starts a new one. Starts for one
// user run one at a time; for different users, in parallel.
//
// Who reaps: this class never waits for a process. Whoever reaps children
// (the agent's main loop: it is PID 1 and reaps everything with
// waitpid(-1)) calls OnExit for every pid it reaps.
//
// The OS and the notebook's HTTP API are behind NotebookProcesses and
// NotebookApi, and time behind a Clock and a sleep function, so tests run
// on fakes and a simulated clock (agent/testing/fake_notebook.h); the real
// ones are in notebook_host.h.
//
// Secrets: the token is in the notebook's environment only (JUPYTER_TOKEN,
// readable by the user alone), never in argv, a log line, an error or an
// answer. Log tails quoted in errors have it masked.
//
// Thread safety: every method may be called from any thread, concurrently.
// Start and Stop block (up to start_timeout, 2 x stop_grace) while sleeping
// through the injected function; List blocks for the servers' HTTP answers.
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/render.h"
#include "base/clock.h"
#include "base/result.h"
#include "model/jupyter.h"
#include "os/procfs.h"

namespace dspool {

// How one server is started. `env` holds the token.
struct NotebookLaunch {
  RenderedUser user;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string log_path;  // in the user's home, written by the server as the user
  // JUPYTER_RUNTIME_DIR: the server's connection files and its kernels'
  // sockets. Made by NotebookProcesses::Spawn (the user's, 0700).
  std::string runtime_dir;
  // The server loads dspool_kernels: a zygote that starts it gives it a
  // kernel forker (dspool_zygote.py, "Kernels").
  bool kernel_forker = false;
};

// The processes of the servers. Implementations: SystemNotebookProcesses
// (notebook_host.h), FakeNotebookProcesses (testing/).
class NotebookProcesses {
 public:
  virtual ~NotebookProcesses() = default;
  // Starts launch.argv as launch.user (uid, gid, groups), in their home, in
  // a process group of its own, with exactly launch.env, its output going to
  // launch.log_path (created as the user, 0600), after making
  // launch.runtime_dir the user's (0700). Returns the pid; does not
  // wait for the server. Errors name the step that failed.
  virtual Result<pid_t> Spawn(const NotebookLaunch& launch) = 0;
  // SIGTERM to the server's process group.
  virtual void Terminate(pid_t pid) = 0;
  // SIGKILL to the server's process group and to those of its children
  // (kernels and terminals run in sessions of their own).
  virtual void Kill(pid_t pid) = 0;
  // Whether a server could listen on address:port now.
  virtual Result<bool> PortFree(const std::string& address, uint16_t port) = 0;
  // How many of the server's terminals run something (CountBusyTerminals).
  virtual Result<int64_t> BusyTerminals(pid_t pid) = 0;
  // The last `max_lines` lines of launch.log_path, read as the user.
  virtual Result<std::string> LogTail(const NotebookLaunch& launch, size_t max_lines) = 0;
  // How many processes the OOM killer has killed in the instance's memory
  // cgroup so far (sampler.h's ReadOomKills); an error when it cannot tell.
  virtual Result<int64_t> OomKills() = 0;
};

// The servers' HTTP API. Implementations: HttpNotebookApi (notebook_host.h),
// FakeNotebookApi (testing/).
class NotebookApi {
 public:
  virtual ~NotebookApi() = default;
  // GET http://address:port<target> with "Authorization: token <token>";
  // the parsed JSON body of a 2xx answer. Any other answer, or none, is an
  // error naming the URL (never the token).
  virtual Result<Json> Get(const std::string& address, uint16_t port, const std::string& target,
                           const std::string& token) = 0;
};

struct JupyterOptions {
  std::string program = "/usr/bin/jupyter-notebook";  // Debian's Notebook 6.4
  // Servers listen on the first free port of this range.
  uint16_t first_port = 9000;
  uint16_t last_port = 9999;
  Duration start_timeout = std::chrono::seconds(60);
  Duration poll_interval = std::chrono::milliseconds(25);
  // From SIGTERM to SIGKILL, and from SIGKILL to giving up on the exit.
  Duration stop_grace = std::chrono::seconds(5);
  std::string path = "/usr/local/bin:/usr/bin:/bin";  // the servers' PATH
  std::string lang;  // the servers' LANG; empty: none
  // Where the agent installs dspool_kernels.py (kKernelManagerModule), which
  // the servers load as their kernel manager so that /api/kernels' "busy"
  // means a running cell. Empty: Notebook's own manager.
  std::string python_dir = "/usr/local/lib/dspool/python";
  // A server's runtime directory is runtime_root/UID. Its kernels talk to
  // it over Unix sockets there (NotebookArgv), whose paths must fit in 108
  // bytes: not in the home, whose path can be long. Root's, so no user can
  // plant another's. Not /run/user/UID: logind removes that when the user's
  // last login session ends, and with it the sockets of running kernels.
  std::string runtime_root = "/run/dspool/jupyter";
  size_t log_tail_lines = 20;  // quoted in the error of a failed start
};

class JupyterSupervisor {
 public:
  // `sleep` waits for the given time (the real one sleeps; tests advance a
  // SimulatedClock). The references must outlive this object.
  JupyterSupervisor(NotebookProcesses& processes, NotebookApi& api, const Clock& clock,
                    std::function<void(Duration)> sleep, JupyterOptions options = {});
  JupyterSupervisor(const JupyterSupervisor&) = delete;
  JupyterSupervisor& operator=(const JupyterSupervisor&) = delete;

  // The users servers may be started for, and the address they listen on
  // (this instance's on its pool's bridge; empty: unknown). Running servers
  // are left alone.
  void SetUsers(std::string address, std::vector<RenderedUser> users);

  struct Started {
    JupyterServer server;  // state kReady
    bool created = false;  // false: an existing server with the same token
  };
  // Starts `request.user`'s server, or answers with the one running with
  // the same token. Errors:
  //   InvalidArgument     bad user name, token or program
  //   NotFound            the user is not one of SetUsers'
  //   FailedPrecondition  no address to listen on
  //   ResourceExhausted   no free port in the range
  //   Unavailable         it could not be spawned, or exited before it
  //                       answered (the message quotes its log's last lines),
  //                       or the agent is stopping
  //   DeadlineExceeded    it did not answer within start_timeout (it is
  //                       killed; the message quotes its log's last lines)
  //   Internal            an old server (token or program change) would
  //                       not exit
  // `request.program` (ValidateNotebookProgram) replaces options.program
  // for this start when not empty; a running server started with another
  // program is replaced, as for another token.
  Result<Started> Start(const JupyterStartRequest& request);

  // Every server, by user, with its activity: each ready one's API is
  // polled now (status, kernels, terminals; the kernels and terminals with
  // no_track_activity=1, so polling is no activity) and /proc is read for
  // its busy terminals. A server whose poll fails is kUnresponsive with the
  // figures of its last good poll. Exited servers are listed once, then
  // forgotten.
  std::vector<JupyterServer> List();

  // Stops `user`'s server: SIGTERM to its process group, SIGKILL after
  // stop_grace, and returns once it has exited (an exited one is just
  // forgotten). NotFound if there is none; Internal if it outlives SIGKILL
  // by stop_grace; Unavailable if the agent stops meanwhile.
  Status Stop(const std::string& user);

  // Called by the reaper for each child it reaps, with waitpid's status.
  // Pids that are not servers are ignored. True when the exit was queued
  // for the server (ExitsToReport).
  bool OnExit(pid_t pid, int wait_status);

  // The agent is stopping: every server gets SIGTERM, Start and Stop in
  // progress return Unavailable soon, and no new one begins.
  void Shutdown();
  // Servers not yet reaped.
  size_t Running() const;

  // The exits queued for the server (see the top), oldest first, at most
  // kMaxNotebookExits (older ones are dropped, logged), and the sequence
  // number to give ExitsReported once they reached it. Each call also moves
  // the OOM baseline to the previous call's reading: the agent calls it once
  // per report.
  struct PendingExits {
    std::vector<NotebookExit> exits;
    uint64_t through = 0;
  };
  PendingExits ExitsToReport();
  // The exits up to `through` reached the server: forgotten.
  void ExitsReported(uint64_t through);

 private:
  struct Entry {
    uint64_t id = 0;
    NotebookLaunch launch;
    std::string token;
    JupyterServer info;
    // When its activity was last seen to move (the spawn, then each poll that
    // found info.last_activity changed): info.idle_for counts from here.
    MonoTime active_at;
    std::string exit_reason;  // "exit 1", "killed by signal 9"
    bool starting = true;     // a Start is still waiting on it: it reports the exit
    bool stopping = false;
  };

  Entry* FindLocked(const std::string& user, uint64_t id);
  void EraseLocked(const std::string& user, uint64_t id);
  Result<uint16_t> PickPortLocked();
  NotebookLaunch MakeLaunch(const RenderedUser& user, const std::string& program, const std::string& address,
                            uint16_t port, const std::string& token) const;
  Result<Started> WaitReady(const std::string& user, uint64_t id);
  // Stops the entry (see Stop); OK if it is gone already.
  Status StopEntry(const std::string& user, uint64_t id);
  // Waits until the entry has exited or is gone (true), at most `limit`.
  bool WaitExit(const std::string& user, uint64_t id, Duration limit);
  // "; last lines of <log>:\n..." with the token masked.
  std::string DescribeLog(const NotebookLaunch& launch, const std::string& token);
  // Reads the OOM count; the first reading is also the baseline.
  // REQUIRES: mu_ held.
  std::optional<int64_t> ReadOomKillsLocked();

  NotebookProcesses& processes_;
  NotebookApi& api_;
  const Clock& clock_;
  std::function<void(Duration)> sleep_;
  const JupyterOptions options_;

  mutable std::mutex mu_;
  std::string address_;
  std::map<std::string, RenderedUser> users_;
  std::map<std::string, Entry> servers_;  // by user
  std::map<std::string, std::shared_ptr<std::mutex>> start_locks_;  // by user: one Start at a time
  uint64_t next_id_ = 1;
  bool shutdown_ = false;
  // OOM kills counted before any exit now could be ours, and the last
  // reading (ExitsToReport); nullopt until read.
  std::optional<int64_t> oom_baseline_;
  std::optional<int64_t> oom_last_;
  bool oom_unknown_logged_ = false;
  std::deque<std::pair<uint64_t, NotebookExit>> exits_;  // by sequence number
  uint64_t next_exit_ = 1;
};

// The text of src/agent/dspool_kernels.py: Notebook's kernel manager whose
// execution_state counts running cells only (see that file).
extern const char kKernelManagerModule[];
// Its import name, for --NotebookApp.kernel_manager_class.
inline constexpr char kKernelManagerClass[] = "dspool_kernels.WorkAwareKernelManager";

// ---- pure parts, exposed for tests ----

// The notebook command line (no secret in it).
std::vector<std::string> NotebookArgv(const std::string& program, const std::string& address, uint16_t port,
                                      const RenderedUser& user);
// "/user/<name>/": the server's base URL, which the gateway keeps in paths.
std::string NotebookBaseUrl(const std::string& user);

struct NotebookActivity {
  std::optional<TimePoint> last_activity;
  int64_t kernels = 0;
  int64_t busy_kernels = 0;  // execution_state "busy" or "starting" (not known yet)
  int64_t terminals = 0;
  int64_t busy_terminals = 0;
};
// Reads the answers of <base>api/status, api/kernels and api/terminals.
// Errors name the endpoint and field.
Result<NotebookActivity> ParseNotebookActivity(const Json& status, const Json& kernels, const Json& terminals);

// A terminal of the server is a direct child with a controlling terminal
// (its shell; kernels have none). It is busy when a job runs in it: its
// terminal's foreground group is not the shell's own, or the shell has a
// live child (a background job). Jobs that left the shell (setsid, disown
// and reparented) are not seen.
int64_t CountBusyTerminals(const std::vector<ProcStat>& processes, pid_t server_pid);

// The last `max_lines` lines of `text` (whole lines, at most 4 KiB of
// them), with every occurrence of `secret` (if not empty) replaced by
// "<token>". Lines are never cut, so no part of a secret survives a cut.
std::string LastLines(const std::string& text, size_t max_lines, const std::string& secret = "");

// "exit 3", "killed by signal 9".
std::string DescribeWaitStatus(int wait_status);

// Why a server ended: kOutOfMemory ("out of memory") if SIGKILL ended it
// and the OOM count grew from `oom_kills_before` to `oom_kills_now` (both
// known); else DescribeWaitStatus.
std::string ClassifyExit(int wait_status, std::optional<int64_t> oom_kills_before,
                         std::optional<int64_t> oom_kills_now);

}  // namespace dspool
