#include "server/gateway_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include "base/version.h"
#include "gateway/handoff.h"
#include "gateway/service.h"
#include "net/socket.h"
#include "identity/session.h"
#include "net/unix_socket.h"
#include "os/fs.h"
#include "os/process.h"

namespace dspool {

namespace {

constexpr const char* kLog = "gateway";

// How the start went, to whoever started this process: "ok" or the error
// on --status-fd; a frame ({"ok": true} or {"error"}) on --takeover-fd.
void Report(const GatewayProcessOptions& options, const Status& status) {
  if (options.takeover_fd >= 0) {
    Json answer = status.ok() ? Json{{"ok", true}} : Json{{"error", StatusToJson(status)}};
    (void)WriteFrame(options.takeover_fd, answer.dump());
    if (!status.ok()) ::close(options.takeover_fd);  // else the relayed connections come next
  }
  if (options.status_fd >= 0) {
    const std::string text = status.ok() ? "ok" : status.message();
    (void)!::write(options.status_fd, text.data(), text.size());
    ::close(options.status_fd);
  }
}

// Removes the pid file if it is still this process's (a successor wrote its own).
void RemovePidFile(const std::string& path) {
  auto text = ReadFile(path);
  if (text.ok() && *text == std::to_string(::getpid()) + "\n") ::unlink(path.c_str());
}

// Everything up to serving: the lock, the key, the control socket, the
// gateway; on an upgrade, what the old gateway handed over instead of the
// first two. The lock's descriptor stays open for the process's life.
Result<std::unique_ptr<GatewayService>> Prepare(const GatewayProcessOptions& options, UniqueFd* lock) {
  if (::geteuid() != 0) return PermissionDenied("dspool gateway must run as root");
  DSP_ASSIGN_OR_RETURN(bool exists, PathExists(options.data_dir));
  if (!exists) return NotFound("--data-dir " + options.data_dir + ": no such directory");
  std::optional<Handoff> handoff;
  UniqueFd control;
  if (options.takeover_fd >= 0) {
    DSP_ASSIGN_OR_RETURN(handoff, ReceiveHandoff(options.takeover_fd));
    *lock = std::move(handoff->lock);
    control = std::move(handoff->control);
    AdoptListeners(std::move(handoff->listeners));
  } else {
    const std::string lock_path = options.data_dir + "/gateway.lock";
    *lock = UniqueFd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock->valid()) return ErrnoStatus(lock_path, errno);
    if (::flock(lock->get(), LOCK_EX | LOCK_NB) != 0) {
      auto pid = ReadFile(options.data_dir + "/gateway.pid");
      return FailedPrecondition("a gateway already runs on " + options.data_dir +
                                (pid.ok() ? " (pid " + std::string(pid->substr(0, pid->find('\n'))) + ")" : ""));
    }
  }
  GatewayOptions gateway = options.gateway;
  if (gateway.relay_threads <= 0) {
    gateway.relay_threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
  }
  gateway.web_threads = gateway.relay_threads;
  DSP_ASSIGN_OR_RETURN(gateway.session_key, LoadSessionKey(options.data_dir + "/session.key"));
  DSP_ASSIGN_OR_RETURN(uint64_t descriptors, RaiseDescriptorLimit());
  DSP_LOG(kDebug, kLog) << "open descriptor limit " << descriptors;
  GatewayServiceOptions service_options;
  service_options.data_dir = options.data_dir;
  service_options.info = GatewayInfo{::getpid(), kVersion, SelfExecutable().value_or(""), std::chrono::system_clock::now(),
                                     kGatewayProtocol, 0};
  service_options.on_stop = [] {
    DSP_LOG(kInfo, kLog) << "stop requested by the server";
    ::kill(::getpid(), SIGTERM);
  };
  service_options.lock_fd = lock->get();
  DSP_ASSIGN_OR_RETURN(auto service, GatewayService::Create(std::move(gateway), std::move(service_options)));
  if (!handoff) {
    DSP_ASSIGN_OR_RETURN(control, ListenUnixStream(options.data_dir + "/gateway.sock", 0600));
  }
  DSP_RETURN_IF_ERROR(service->Start(std::move(control)));
  if (handoff) {
    DSP_RETURN_IF_ERROR(service->TakeOver(handoff->state));
    if (size_t n = DropUnclaimedListeners(); n > 0) {
      DSP_LOG(kInfo, kLog) << "take-over: " << n << " handed listeners were not in the table; closed";
    }
  }
  DSP_RETURN_IF_ERROR(WriteFileAtomic(options.data_dir + "/gateway.pid", std::to_string(::getpid()) + "\n", 0644));
  return service;
}

}  // namespace

// The key that signs the Jupyter addresses' session cookies: made once, so
// a restarted (or upgraded) gateway keeps its users logged in. Root's file,
// 0600, never a link (ReadPrivateFile checks); one that is not a key is an
// error that names it, not silently replaced (that would log everyone out).
Result<std::string> LoadSessionKey(const std::string& path) {
  auto text = ReadPrivateFile(path);
  if (text.ok()) {
    auto key = SessionKeyFromText(*text);
    if (!key.ok()) return FailedPrecondition(path + ": " + key.status().message() +
                                             "; remove it to make a new one (every browser then logs in again)");
    return key;
  }
  if (text.status().code() != StatusCode::kNotFound) return text.status();
  std::string key = NewSessionKey();
  DSP_RETURN_IF_ERROR(WriteFileAtomic(path, SessionKeyToText(key), 0600));
  DSP_LOG(kInfo, kLog) << "made the key that signs Jupyter session cookies: " << path;
  return key;
}

std::vector<std::string> GatewayArgv(const std::string& binary, const GatewayProcessOptions& o) {
  const GatewayOptions& g = o.gateway;
  auto seconds = [](std::chrono::milliseconds d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count());
  };
  std::vector<std::string> argv = {binary,
                                   "gateway",
                                   "--data-dir",
                                   o.data_dir,
                                   "--log-level",
                                   std::string(LogLevelText(o.log_level)),
                                   "--gateway-threads",
                                   std::to_string(g.relay_threads),
                                   "--gateway-congestion-control",
                                   g.backend_congestion_control.empty() ? "default" : g.backend_congestion_control,
                                   "--hold-timeout",
                                   seconds(g.hold_timeout),
                                   "--hold-max",
                                   std::to_string(g.max_held),
                                   "--first-bytes-timeout",
                                   seconds(g.first_bytes_timeout),
                                   "--pending-per-address",
                                   std::to_string(g.max_pending_per_address)};
  if (g.transparent_connect) argv.push_back("--transparent-connect");
  return argv;
}

Result<pid_t> SpawnGateway(const std::vector<std::string>& argv_in, std::chrono::milliseconds timeout) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  UniqueFd read_end(p[0]), write_end(p[1]);
  std::vector<std::string> argv = argv_in;
  argv.insert(argv.end(), {"--status-fd", "3"});
  DSP_ASSIGN_OR_RETURN(pid_t pid, SpawnDaemon(argv, {kDefaultChildPath}, write_end.get()));
  write_end.reset();
  // Its report: "ok", or the error; EOF without one: it died.
  std::string said;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      KillChild(pid);
      return DeadlineExceeded("the gateway (" + argv[0] + " gateway) did not start within " +
                              std::to_string(timeout.count() / 1000) + " s; killed");
    }
    pollfd f{read_end.get(), POLLIN, 0};
    int r = ::poll(&f, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[1024];
    ssize_t n = ::read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    said.append(buf, static_cast<size_t>(n));
  }
  if (said == "ok") return pid;
  ::waitpid(pid, nullptr, 0);
  return FailedPrecondition("the gateway did not start: " + (said.empty() ? "it exited (see its log)" : said));
}

int RunGateway(const GatewayProcessOptions& options) {
  SetLogLevel(options.log_level);
  const sigset_t set = BlockStopSignals();
  // A terminal's hangup (the server that started it was in one) is no
  // reason to end the users' sessions.
  signal(SIGHUP, SIG_IGN);

  UniqueFd lock;
  auto service = Prepare(options, &lock);
  if (!service.ok()) {
    std::cerr << "dspool gateway: " << service.status().message() << "\n";
    Report(options, service.status());
    return 1;
  }
  DSP_LOG(kInfo, kLog) << "dspool " << kVersion << " gateway serving on unix:" << options.data_dir
                       << "/gateway.sock (pid " << ::getpid() << ")"
                       << (options.takeover_fd >= 0 ? ", taken over from the gateway before it" : "");
  Report(options, Status::Ok());
  if (options.takeover_fd >= 0) {
    size_t taken = 0;
    Status s = ReceiveRelays(options.takeover_fd, [&](std::vector<Gateway::HandedRelay> batch) {
      taken += batch.size();
      (*service)->gateway().TakeOverRelays(std::move(batch));
    });
    ::close(options.takeover_fd);
    if (s.ok()) {
      DSP_LOG(kInfo, kLog) << "take-over: relaying the " << taken << " connections handed over";
    } else {
      DSP_LOG(kError, kLog) << "take-over: " << s << " (" << taken << " connections taken)";
    }
  }
  // Until a signal; or, once handed over to a successor, until the
  // connections still here have ended.
  const timespec kLook{1, 0};
  int sig = 0;
  for (;;) {
    sig = sigtimedwait(&set, nullptr, &kLook);
    if (sig > 0) {
      DSP_LOG(kInfo, kLog) << "signal " << sig << ": stopping (the relayed connections close)";
      break;
    }
    if ((*service)->handed_over() && (*service)->gateway().OpenConnections() == 0) {
      DSP_LOG(kInfo, kLog) << "handed over, and the last connection here has ended";
      break;
    }
  }
  (*service)->Stop();
  service->reset();
  RemovePidFile(options.data_dir + "/gateway.pid");
  DSP_LOG(kInfo, kLog) << "stopped";
  return 0;
}

}  // namespace dspool
