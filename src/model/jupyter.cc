#include "model/jupyter.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "model/user.h"

namespace dspool {

Status ValidateJupyterToken(const std::string& token) {
  bool hex = std::all_of(token.begin(), token.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
  if (!hex || token.size() < 32 || token.size() > 256) {
    // Never the token itself: it is a secret even when malformed.
    return InvalidArgument("must be 32 to 256 hexadecimal digits (got " + std::to_string(token.size()) +
                           " characters" + (hex ? "" : ", not all hexadecimal") + ")");
  }
  return Status::Ok();
}

Status ValidateNotebookProgram(const std::string& program) {
  if (program.size() > 4096) return InvalidArgument("longer than 4096 bytes");
  for (char c : program) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return InvalidArgument("the path holds a control character");
  }
  if (program.empty() || program[0] != '/') {
    return InvalidArgument("'" + program + "' is not an absolute path (it must start with /)");
  }
  return Status::Ok();
}

Result<JupyterStartRequest> ParseJupyterStartRequest(const Json& json) {
  JupyterStartRequest req;
  JsonReader r(json, "body");
  r.Required("user", &req.user);
  r.Required("token", &req.token);
  // Given, it must be a program (an empty string is no default).
  const bool has_program = r.Has("program");
  r.Optional("program", &req.program);
  DSP_RETURN_IF_ERROR(r.Finish());
  if (Status s = ValidateUserName(req.user); !s.ok()) return s.WithPrefix("body.user");
  if (Status s = ValidateJupyterToken(req.token); !s.ok()) return s.WithPrefix("body.token");
  if (has_program) {
    if (Status s = ValidateNotebookProgram(req.program); !s.ok()) return s.WithPrefix("body.program");
  }
  return req;
}

Json JupyterStartRequestToJson(const JupyterStartRequest& request) {
  Json j = {{"user", request.user}, {"token", request.token}};
  if (!request.program.empty()) j["program"] = request.program;
  return j;
}

std::string_view JupyterStateName(JupyterState state) {
  switch (state) {
    case JupyterState::kStarting: return "starting";
    case JupyterState::kReady: return "ready";
    case JupyterState::kUnresponsive: return "unresponsive";
    case JupyterState::kExited: return "exited";
  }
  return "exited";
}

Result<JupyterState> ParseJupyterState(std::string_view name) {
  for (JupyterState s : {JupyterState::kStarting, JupyterState::kReady, JupyterState::kUnresponsive,
                         JupyterState::kExited}) {
    if (JupyterStateName(s) == name) return s;
  }
  return InvalidArgument("unknown Jupyter server state '" + std::string(name) +
                         "' (expected starting, ready, unresponsive or exited)");
}

Json JupyterServerToJson(const JupyterServer& s) {
  return {{"user", s.user},
          {"address", s.address},
          {"port", s.port},
          {"pid", s.pid},
          {"startedAt", ToUnixMillis(s.started_at)},
          {"state", JupyterStateName(s.state)}};
}

Json JupyterServerActivityToJson(const JupyterServer& s) {
  Json j = JupyterServerToJson(s);
  j["lastActivity"] = s.last_activity ? Json(ToUnixMillis(*s.last_activity)) : Json(nullptr);
  j["idleMs"] = s.idle_for ? Json(s.idle_for->count()) : Json(nullptr);
  j["kernels"] = s.kernels;
  j["busyKernels"] = s.busy_kernels;
  j["terminals"] = s.terminals;
  j["busyTerminals"] = s.busy_terminals;
  return j;
}

Json JupyterServerListToJson(const std::vector<JupyterServer>& servers) {
  Json list = Json::array();
  for (const JupyterServer& s : servers) list.push_back(JupyterServerActivityToJson(s));
  return {{"servers", list}};
}

Result<JupyterServer> ParseJupyterServer(const Json& json, const std::string& path) {
  JupyterServer s;
  JsonReader r(json, path);
  std::string state;
  int64_t started_at = 0;
  int64_t last_activity = -1;
  int64_t idle_ms = -1;
  r.Required("user", &s.user);
  r.Required("address", &s.address);
  r.Required("port", &s.port);
  r.Required("pid", &s.pid);
  r.Required("startedAt", &started_at);
  r.Required("state", &state);
  r.Optional("lastActivity", &last_activity);
  r.Optional("idleMs", &idle_ms);
  r.Optional("kernels", &s.kernels);
  r.Optional("busyKernels", &s.busy_kernels);
  r.Optional("terminals", &s.terminals);
  r.Optional("busyTerminals", &s.busy_terminals);
  DSP_RETURN_IF_ERROR(r.Finish());
  auto parsed = ParseJupyterState(state);
  if (!parsed.ok()) return parsed.status().WithPrefix(r.PathOf("state"));
  s.state = *parsed;
  if (s.port < 1 || s.port > 65535) return InvalidArgument(r.PathOf("port") + ": must be 1..65535");
  for (auto [key, value] : {std::pair{"kernels", s.kernels}, {"busyKernels", s.busy_kernels},
                            {"terminals", s.terminals}, {"busyTerminals", s.busy_terminals}}) {
    if (value < 0) return InvalidArgument(r.PathOf(key) + ": must not be negative");
  }
  s.started_at = FromUnixMillis(started_at);
  if (last_activity >= 0) s.last_activity = FromUnixMillis(last_activity);
  if (idle_ms >= 0) s.idle_for = Duration(idle_ms);
  return s;
}

Result<std::vector<JupyterServer>> ParseJupyterServerList(const Json& json) {
  JsonReader r(json, "");
  const Json* list = r.Raw("servers");
  if (list == nullptr || !list->is_array()) r.Fail("servers", "expected an array");
  DSP_RETURN_IF_ERROR(r.Finish());
  std::vector<JupyterServer> out;
  for (size_t i = 0; i < list->size(); ++i) {
    DSP_ASSIGN_OR_RETURN(JupyterServer s, ParseJupyterServer((*list)[i], "servers[" + std::to_string(i) + "]"));
    out.push_back(std::move(s));
  }
  return out;
}

Json NotebookExitToJson(const NotebookExit& e) {
  return {{"user", e.user}, {"pid", e.pid}, {"port", e.port}, {"reason", e.reason}, {"at", ToUnixMillis(e.at)}};
}

Result<NotebookExit> ParseNotebookExit(const Json& json, const std::string& path) {
  NotebookExit e;
  JsonReader r(json, path);
  int64_t at = 0;
  r.Required("user", &e.user);
  r.Required("pid", &e.pid);
  r.Required("port", &e.port);
  r.Required("reason", &e.reason);
  r.Required("at", &at);
  DSP_RETURN_IF_ERROR(r.Finish());
  if (Status s = ValidateUserName(e.user); !s.ok()) return s.WithPrefix(r.PathOf("user"));
  if (e.port < 1 || e.port > 65535) return InvalidArgument(r.PathOf("port") + ": must be 1..65535");
  if (e.pid < 1) return InvalidArgument(r.PathOf("pid") + ": must be positive");
  // It is shown to people: short, one line.
  if (e.reason.empty() || e.reason.size() > 100) return InvalidArgument(r.PathOf("reason") + ": must be 1 to 100 bytes");
  for (char c : e.reason) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgument(r.PathOf("reason") + ": holds a control character");
    }
  }
  e.at = FromUnixMillis(at);
  return e;
}

std::string FormatMemorySize(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  size_t unit = 0;
  double value = static_cast<double>(bytes);
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  if (unit == 0 || value == static_cast<double>(static_cast<int64_t>(value))) {
    std::snprintf(buf, sizeof(buf), "%lld %s", static_cast<long long>(value), kUnits[unit]);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", value, kUnits[unit]);
  }
  return buf;
}

std::string DescribeNotebookExit(const NotebookExit& exit, int64_t memory_limit_bytes) {
  if (!exit.out_of_memory()) return "exited (" + exit.reason + ")";
  std::string limit = memory_limit_bytes > 0 ? " (limit " + FormatMemorySize(memory_limit_bytes) + ")" : "";
  return "ran out of memory" + limit + " and was stopped";
}

Json NotebookSessionInfoToJson(const NotebookSessionInfo& info) {
  return {{"kind", "notebook"},
          {"pool", info.pool},
          {"user", info.user},
          {"instance", info.instance},
          {"state", info.state},
          {"error", info.error},
          {"client", info.client},
          {"startedAt", FormatTime(info.started_at)},
          {"lastActivity", FormatTime(info.last_activity)},
          {"busyKernels", info.busy_kernels},
          {"busyTerminals", info.busy_terminals},
          {"kernels", info.kernels}};
}

}  // namespace dspool
