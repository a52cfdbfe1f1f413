// The agent's control socket: HTTP/1.1 on /run/dspool/agent/control.sock
// (mode 0600, owned by the instance's root, in the agent's own directory).
// The host's server reaches it at <data>/instances/<id>/agent/control.sock
// through a descriptor opened without following links (os/fs.h's
// OpenSocketNoFollow), and checks its owner first. The instance's root can
// connect too: it may start and stop Notebook servers anyway, so the socket
// asks for no further authentication.
//
//   POST   /v1/jupyter/servers         {"user","token"[,"program"]} → 201
//                                      (started) or 200 (running with that
//                                      token and program) + the server;
//                                      "program" (an absolute path) replaces
//                                      JupyterOptions.program for this start
//   GET    /v1/jupyter/servers         → 200 {"servers":[... with activity]}
//   DELETE /v1/jupyter/servers/{user}  → 204 once it has exited
//   POST   /v1/mounts                  a ShareMountRequest (model/storage.h),
//                                      from mount.cifs: 200 {} once the share
//                                      is attached at its target; 403 a
//                                      wrong key, 404 no such account or
//                                      share (agent/share_mounts.h)
//   POST   /v1/config/refresh          {"version": N} → 200 {"configVersion"}
//                                      once the agent applied a configuration
//                                      of version N or later (fetched now
//                                      from the server: users, keys,
//                                      passwords); 502 if not within 10 s
//
// Errors are {"error":{"code","message"}} as the API's: 400 bad input, 404
// unknown user or server, 409 no pool address yet, 502 the server could not
// be started (it exited or did not answer in time; the message quotes its
// log; or a configuration refresh not done in time), 503 no free port, 500
// a server that outlives SIGKILL.
//
// Thread safety: HandleControlRequest may be called concurrently (it is the
// control server's Handler); it blocks while a start or stop runs.
#pragma once

#include <chrono>
#include <cstdint>

#include "agent/jupyter.h"
#include "base/result.h"
#include "http/message.h"
#include "model/agent_config.h"
#include "model/storage.h"

namespace dspool {

// The agent's configuration, fetched again on request.
class ConfigRefresher {
 public:
  virtual ~ConfigRefresher() = default;
  // Returns the version applied once it is `at_least` or later: at once if
  // it is, or after fetching and applying the server's configuration.
  // DeadlineExceeded if that takes longer than `timeout`.
  virtual Result<int64_t> RefreshConfig(int64_t at_least, std::chrono::milliseconds timeout) = 0;
};

// Storage shares the instance mounts (agent/share_mounts.h).
class ShareMounter {
 public:
  virtual ~ShareMounter() = default;
  // Has the server check `request` and pass the share, and attaches it.
  virtual Status MountShare(const ShareMountRequest& request) = 0;
};

Response HandleControlRequest(JupyterSupervisor& jupyter, ConfigRefresher& config, ShareMounter& mounts,
                              const Request& request);

// The control socket's one mapping from Status to an HTTP error.
int ControlHttpStatus(StatusCode code);

}  // namespace dspool
