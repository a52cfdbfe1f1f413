// `dspool gateway`: the gateway as a process of its own (gateway/service.h),
// which `dspool server` starts when none runs on its data directory and
// drives over <data dir>/gateway.sock. It outlives the server: stopping,
// killing or upgrading the server ends no relayed connection and no
// notebook WebSocket. One per data directory (gateway.lock); its pid is in
// gateway.pid.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/result.h"
#include "gateway/gateway.h"

namespace dspool {

struct GatewayProcessOptions {
  std::string data_dir = "/var/lib/dspool";
  LogLevel log_level = LogLevel::kInfo;
  // relay_threads (0: one per CPU, at most 4; web_threads the same),
  // backend_congestion_control, hold_timeout, max_held,
  // first_bytes_timeout, max_pending_per_address, transparent_connect;
  // the session key is the data directory's (session.key).
  GatewayOptions gateway;
  // A descriptor this process reports on once it serves: "ok", or why it
  // could not start; then closes. -1: none.
  int status_fd = -1;
  // An upgrade: the descriptor the old gateway hands over on (handoff.h);
  // this process answers there instead of status_fd. -1: a first start.
  int takeover_fd = -1;
};

// Runs until SIGTERM/SIGINT or a `stop` call; the exit code. Errors before
// the gateway serves are printed as one line (and sent to status_fd).
int RunGateway(const GatewayProcessOptions& options);

// The arguments that start `binary` as the gateway of `options`.
std::vector<std::string> GatewayArgv(const std::string& binary, const GatewayProcessOptions& options);

// Starts `argv` (GatewayArgv) as a daemon and waits until it serves, at
// most `timeout`: its pid, or what it said when it failed.
Result<pid_t> SpawnGateway(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// The key that signs the Jupyter addresses' session cookies (identity/
// session.h), made once at `path`.
Result<std::string> LoadSessionKey(const std::string& path);

}  // namespace dspool
