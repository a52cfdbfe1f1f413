// The agent's control socket: HTTP/1.1 on /run/dspool/control.sock (mode
// 0600, owned by the instance's root; the host's root reaches it through
// the bind mount of /run/dspool, at <data>/instances/<id>/control.sock).
// Only the host's root can connect, so there is no further authentication.
//
//   POST   /v1/jupyter/servers         {"user","token"[,"program"]} → 201
//                                      (started) or 200 (running with that
//                                      token and program) + the server;
//                                      "program" (an absolute path) replaces
//                                      JupyterOptions.program for this start
//   GET    /v1/jupyter/servers         → 200 {"servers":[... with activity]}
//   DELETE /v1/jupyter/servers/{user}  → 204 once it has exited
//
// Errors are {"error":{"code","message"}} as the API's: 400 bad input, 404
// unknown user or server, 409 no pool address yet, 502 the server could not
// be started (it exited or did not answer in time; the message quotes its
// log), 503 no free port, 500 a server that outlives SIGKILL.
//
// Thread safety: HandleControlRequest may be called concurrently (it is the
// control server's Handler); it blocks while a start or stop runs.
#pragma once

#include "agent/jupyter.h"
#include "http/message.h"

namespace dspool {

Response HandleControlRequest(JupyterSupervisor& jupyter, const Request& request);

// The control socket's one mapping from Status to an HTTP error.
int ControlHttpStatus(StatusCode code);

}  // namespace dspool
