#include "agent/control.h"

#include "model/json_reader.h"
#include "model/user.h"

namespace dspool {
namespace {

constexpr const char* kServers = "/v1/jupyter/servers";

Response Error(const Status& s) {
  return JsonResponse(ControlHttpStatus(s.code()), JsonErrorBody(StatusCodeName(s.code()), s.message()));
}

Status MethodNotAllowed(const Request& r) {
  return InvalidArgument("method " + r.method + " is not allowed on " + r.path);
}

Result<Response> Refresh(ConfigRefresher& config, const Request& r) {
  if (r.method != "POST") return MethodNotAllowed(r);
  Json body;
  DSP_RETURN_IF_ERROR(ParseJsonText(r.body.empty() ? "{}" : r.body, "request body", &body));
  int64_t version = 0;
  JsonReader reader(body, "");
  reader.Required("version", &version);
  DSP_RETURN_IF_ERROR(reader.Finish());
  if (version < 0) return InvalidArgument("version: must not be negative");
  DSP_ASSIGN_OR_RETURN(int64_t applied, config.RefreshConfig(version, kConfigRefreshTimeout));
  return JsonResponse(200, Json{{"configVersion", applied}}.dump());
}

Result<Response> Mount(ShareMounter& mounts, const Request& r) {
  if (r.method != "POST") return MethodNotAllowed(r);
  Json body;
  DSP_RETURN_IF_ERROR(ParseJsonText(r.body.empty() ? "{}" : r.body, "request body", &body));
  DSP_ASSIGN_OR_RETURN(ShareMountRequest request, ParseShareMountRequest(body));
  DSP_RETURN_IF_ERROR(mounts.MountShare(request));
  return JsonResponse(200, "{}");
}

Result<Response> Route(JupyterSupervisor& jupyter, ConfigRefresher& config, ShareMounter& mounts, const Request& r) {
  if (r.path == kConfigRefreshPath) return Refresh(config, r);
  if (r.path == "/v1/mounts") return Mount(mounts, r);
  const std::string prefix = std::string(kServers) + "/";
  if (r.path == kServers) {
    if (r.method == "GET") return JsonResponse(200, JupyterServerListToJson(jupyter.List()).dump());
    if (r.method != "POST") return MethodNotAllowed(r);
    Json body;
    DSP_RETURN_IF_ERROR(ParseJsonText(r.body.empty() ? "{}" : r.body, "request body", &body));
    DSP_ASSIGN_OR_RETURN(JupyterStartRequest req, ParseJupyterStartRequest(body));
    DSP_ASSIGN_OR_RETURN(JupyterSupervisor::Started started, jupyter.Start(req));
    return JsonResponse(started.created ? 201 : 200, JupyterServerToJson(started.server).dump());
  }
  if (r.path.rfind(prefix, 0) == 0 && r.path.find('/', prefix.size()) == std::string::npos) {
    std::string user = r.path.substr(prefix.size());
    if (r.method != "DELETE") return MethodNotAllowed(r);
    if (Status s = ValidateUserName(user); !s.ok()) return s.WithPrefix(r.path);
    DSP_RETURN_IF_ERROR(jupyter.Stop(user));
    return Response{204, "", "", {}};
  }
  return NotFound("no resource at " + r.path + " on the agent's control socket");
}

}  // namespace

int ControlHttpStatus(StatusCode code) {
  // Only what JupyterSupervisor and the request parsing produce; the rest
  // is a bug of ours.
  switch (code) {
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kFailedPrecondition: return 409;
    // The notebook server, this socket's upstream, failed: it could not be
    // spawned, exited, or did not answer in time.
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded: return 502;
    case StatusCode::kResourceExhausted: return 503;
    default: return 500;
  }
}

Response HandleControlRequest(JupyterSupervisor& jupyter, ConfigRefresher& config, ShareMounter& mounts,
                              const Request& request) {
  Result<Response> resp = Route(jupyter, config, mounts, request);
  return resp.ok() ? std::move(*resp) : Error(resp.status());
}

}  // namespace dspool
