// The agent's Jupyter servers, as its control socket speaks of them
// (agent/README.md): the request that starts one (POST
// /v1/jupyter/servers) and what the agent says about each (the answer to
// that POST, and GET /v1/jupyter/servers). The gateway reads these with the
// parsers below.
//
// Times are Unix milliseconds, as everywhere in dspool's JSON.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "model/json_reader.h"

namespace dspool {

// POST /v1/jupyter/servers: {"user": NAME, "token": HEX}. The token is a
// secret: it is never part of an error message, a log line or a JSON answer.
struct JupyterStartRequest {
  std::string user;
  std::string token;
  // The notebook program for this start (`dspool server --jupyter-program`);
  // empty: the agent's default, Debian's jupyter-notebook.
  std::string program;
};

// A token is 32 to 256 hexadecimal digits (128 bits at least).
Status ValidateJupyterToken(const std::string& token);

// A notebook program: an absolute path of at most 4096 bytes, with no
// control character. InvalidArgument says which rule it breaks.
Status ValidateNotebookProgram(const std::string& program);

// Reads a request body (untrusted): unknown keys, a bad user name or token
// are InvalidArgument naming the field ("body.token: ...").
Result<JupyterStartRequest> ParseJupyterStartRequest(const Json& json);
Json JupyterStartRequestToJson(const JupyterStartRequest& request);

// starting  spawned; its /api/status has not answered yet
// ready     answers with its token
// unresponsive  running, but the last poll of its API failed (the counts
//           and lastActivity are those of the last poll that worked)
// exited    gone; reported by one listing, then forgotten
enum class JupyterState { kStarting, kReady, kUnresponsive, kExited };
std::string_view JupyterStateName(JupyterState state);
Result<JupyterState> ParseJupyterState(std::string_view name);

struct JupyterServer {
  std::string user;
  std::string address;  // where it listens: the instance's pool address
  int64_t port = 0;
  int64_t pid = 0;      // in the instance's PID namespace
  TimePoint started_at;
  JupyterState state = JupyterState::kStarting;
  // Activity, filled by listings. last_activity is the notebook's own
  // (its API, kernel messages, terminal I/O; the agent's polling does not
  // count); nullopt until a poll has worked. A running cell does not move
  // it: busy_kernels is the signal for that, busy_terminals for a command
  // running in a terminal.
  std::optional<TimePoint> last_activity;
  // How long the notebook's own activity has been still, measured by the
  // agent on its monotonic clock (the poll that saw last_activity change,
  // or the start, counts as the moment of activity), so that a step of the
  // wall clock never makes a busy server look idle. nullopt until a poll
  // has worked. Culling reads this, never last_activity.
  std::optional<Duration> idle_for;
  int64_t kernels = 0;
  int64_t busy_kernels = 0;
  int64_t terminals = 0;
  int64_t busy_terminals = 0;
  friend bool operator==(const JupyterServer&, const JupyterServer&) = default;
};

// The answer to a start: {"user","address","port","pid","startedAt","state"}.
Json JupyterServerToJson(const JupyterServer& server);
// An entry of a listing: the above plus "lastActivity" and "idleMs" (null
// when unknown), "kernels", "busyKernels", "terminals", "busyTerminals".
Json JupyterServerActivityToJson(const JupyterServer& server);
// {"servers": [entry, ...]}
Json JupyterServerListToJson(const std::vector<JupyterServer>& servers);

// Read either form (the activity fields are optional); errors name the
// JSON path under `path`.
Result<JupyterServer> ParseJupyterServer(const Json& json, const std::string& path = "server");
Result<std::vector<JupyterServer>> ParseJupyterServerList(const Json& json);

// The reason of an exit the instance's memory cgroup counted an OOM kill
// for (agent/jupyter.h's ClassifyExit).
inline constexpr char kOutOfMemory[] = "out of memory";

// A server that ended without being asked to, as the agent reports it to
// the server (its report's "notebookExits", agent/README.md): once, in
// the first report that reaches the server after the exit.
struct NotebookExit {
  std::string user;
  int64_t pid = 0;   // in the instance's PID namespace
  int64_t port = 0;  // where it listened: with the instance, which server it was
  // "out of memory" (kOutOfMemory), "exit 1", "killed by signal 9"
  std::string reason;
  TimePoint at;  // when the agent reaped it
  bool out_of_memory() const { return reason == kOutOfMemory; }
  friend bool operator==(const NotebookExit&, const NotebookExit&) = default;
};

// The most exits an agent keeps for its next report (the oldest go first)
// and a report may carry.
inline constexpr size_t kMaxNotebookExits = 64;

// {"user","pid","port","reason","at"}; `at` in Unix milliseconds.
Json NotebookExitToJson(const NotebookExit& exit);
// Untrusted (an agent's report): errors name the JSON path under `path`.
Result<NotebookExit> ParseNotebookExit(const Json& json, const std::string& path);

// What a user and an admin read about an exit, after "your notebook server "
// or "the notebook server of alice ": "ran out of memory (limit 512 MiB) and
// was stopped", "exited (exit 1)". `memory_limit_bytes` 0: not known.
std::string DescribeNotebookExit(const NotebookExit& exit, int64_t memory_limit_bytes);

// "512 MiB", "1.5 GiB", "800 KiB", "12 B".
std::string FormatMemorySize(int64_t bytes);

// A user's notebook server as the API lists it (GET /v1/sessions): the
// gateway's session joined with the last agent listing of that server.
struct NotebookSessionInfo {
  std::string pool;
  std::string user;
  std::string instance;     // empty while starting
  std::string state;        // "starting", "ready" or "failed"
  std::string error;        // "failed" only
  TimePoint started_at;     // when the gateway asked for it
  TimePoint last_activity;  // last request or tunnel traffic through the gateway
  // From the agent's last listing; zero until the first idle check has one.
  int64_t busy_kernels = 0;
  int64_t busy_terminals = 0;
  int64_t kernels = 0;
  // The address of the browser's last request ("" before the first).
  std::string client;
  friend bool operator==(const NotebookSessionInfo&, const NotebookSessionInfo&) = default;
};

// {"kind": "notebook","pool","user","instance","state","error","client",
//  "startedAt","lastActivity","busyKernels","busyTerminals","kernels"}.
// Unlike the agent's JSON above,
// this is the REST API's: times are RFC 3339 strings (FormatTime).
Json NotebookSessionInfoToJson(const NotebookSessionInfo& info);

}  // namespace dspool
