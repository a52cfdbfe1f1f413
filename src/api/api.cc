#include "api/api.h"

#include "api/api_internal.h"
#include "api/deployments.h"
#include "api/storage.h"
#include "identity/secret_equals.h"

namespace dspool {

using namespace api_internal;

namespace {

// Whether an Authorization header carries `token`; constant-time in the
// token's contents and length (identity's SecretEquals).
bool TokenMatches(const std::string& header, const std::string& token) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (!header.starts_with(kPrefix)) return false;
  return SecretEquals(std::string_view(header).substr(kPrefix.size()), token);
}

}  // namespace

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted: return 409;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

Response ErrorResponse(const Status& s) {
  Json body = {{"error", {{"code", StatusCodeName(s.code())}, {"message", s.message()}}}};
  return JsonResponse(HttpStatusFor(s.code()), body.dump());
}

Api::Api(StateStore& store, const Clock& clock, ApiHooks& hooks, ApiOptions options)
    : store_(store), clock_(clock), hooks_(hooks), options_(std::move(options)), started_at_(clock.Now()) {
  storage_ = std::make_unique<Storage>(*this, store_, clock_, hooks_,
                                       [this] { return deployments_->SubscriptionId(); });
  deployments_ = std::make_unique<Deployments>(*this, store_, clock_, options_.deployments);
}

std::vector<Status> Api::PurgeExpiredShares() { return storage_->PurgeExpired(clock_.Now()); }

Api::~Api() = default;

Response Api::Handle(const Request& r) {
  Result<Response> resp = Status(StatusCode::kInternal, "unrouted");
  if (r.listener_tag.rfind("agent:", 0) == 0) {
    resp = RouteAgent(r, InstanceId(r.listener_tag.substr(6)));
  } else if (r.listener_tag == "api") {
    if (!r.peer.is_unix || r.peer.uid != 0) {
      resp = PermissionDenied("the API socket serves root only (peer uid " + std::to_string(r.peer.uid) + ")");
    } else {
      resp = Route(r, "root");
    }
  } else if (r.listener_tag == "api-tcp") {
    auto auth = r.headers.find("authorization");
    if (auth == r.headers.end() || !TokenMatches(auth->second, options_.token)) {
      resp = Unauthenticated("missing or wrong bearer token");
    } else {
      resp = Route(r, "token@" + r.peer.address);
    }
  } else {
    resp = NotFound("unknown listener");
  }
  return resp.ok() ? std::move(*resp) : ErrorResponse(resp.status());
}

// ---- routing ----

namespace {

// Whether `path` (segments) matches `pattern`; collects its {} segments.
bool MatchPath(std::string_view pattern, const std::vector<std::string>& path, std::vector<std::string>* args) {
  std::vector<std::string> want = Split(std::string(pattern));
  if (want.size() != path.size()) return false;
  args->clear();
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == "{}") {
      args->push_back(path[i]);
    } else if (want[i] != path[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

// The route of `r` in `routes`: its handler's answer; 400 naming the method
// when the path is known under other methods only; else `not_found`.
Result<Response> Api::Dispatch(const ApiRoute* routes, size_t count, const Request& r, const std::string& actor,
                               const std::string& not_found) {
  const std::vector<std::string> path = Split(r.path);
  Call call{r, actor, {}};
  bool path_known = false;
  for (size_t i = 0; i < count; ++i) {
    if (!MatchPath(routes[i].pattern, path, &call.args)) continue;
    if (routes[i].method == r.method) return routes[i].serve(*this, call);
    path_known = true;
  }
  if (path_known) return MethodNotAllowed(r);
  return NotFound(not_found);
}

Result<Response> Api::Route(const Request& r, const std::string& actor) {
  using C = const Call&;
  static const ApiRoute kRoutes[] = {
      {"GET", "/metrics", [](Api& a, C) { return a.GetMetrics(); }},
      {"GET", "/v1/status", [](Api& a, C) { return a.GetStatus(); }},
      {"GET", "/v1/gateway", [](Api& a, C) { return a.GetGateway(); }},
      {"POST", "/v1/gateway/upgrade", [](Api& a, C c) { return a.UpgradeGateway(c.request, c.actor); }},
      {"POST", "/v1/server/stop", [](Api& a, C c) { return a.StopServer(c.request, c.actor); }},
      {"GET", "/v1/events", [](Api& a, C c) { return a.ListEvents(c.request); }},
      {"GET", "/v1/instances", [](Api& a, C c) { return a.ListInstances(c.request); }},
      {"POST", "/v1/instances/{}/drain",
       [](Api& a, C c) { return a.SetDraining(InstanceId(c.args[0]), true, c.request, c.actor); }},
      {"POST", "/v1/instances/{}/undrain",
       [](Api& a, C c) { return a.SetDraining(InstanceId(c.args[0]), false, c.request, c.actor); }},
      {"GET", "/v1/sessions", [](Api& a, C) { return a.ListSessions(); }},
      {"DELETE", "/v1/sessions/{}", [](Api& a, C c) { return a.StopSession(c.args[0], c.request, c.actor); }},
      {"GET", "/v1/pools", [](Api& a, C) { return a.ListPools(); }},
      {"POST", "/v1/pools", [](Api& a, C c) { return a.CreatePool(c.request, c.actor); }},
      {"GET", "/v1/pools/{}", [](Api& a, C c) { return a.GetPool(PoolName(c.args[0])); }},
      {"DELETE", "/v1/pools/{}", [](Api& a, C c) { return a.DeletePool(PoolName(c.args[0]), c.actor); }},
      {"POST", "/v1/pools/{}/scale",
       [](Api& a, C c) { return a.ScalePool(PoolName(c.args[0]), c.request, c.actor); }},
      {"GET", "/v1/users", [](Api& a, C) { return a.ListUsers(); }},
      {"POST", "/v1/users", [](Api& a, C c) { return a.CreateUser(c.request, c.actor); }},
      {"GET", "/v1/users/{}", [](Api& a, C c) { return a.GetUser(UserName(c.args[0])); }},
      {"DELETE", "/v1/users/{}", [](Api& a, C c) { return a.DeleteUser(UserName(c.args[0]), c.actor); }},
      {"POST", "/v1/users/{}/keys", [](Api& a, C c) { return a.AddKey(UserName(c.args[0]), c.request, c.actor); }},
      // Fingerprints are standard base64 and may hold '/': DELETE takes them
      // as ?fingerprint=, where no path rule applies, or as the last segment.
      {"DELETE", "/v1/users/{}/keys",
       [](Api& a, C c) -> Result<Response> {
         auto fingerprint = c.request.query.find("fingerprint");
         if (fingerprint == c.request.query.end()) return MethodNotAllowed(c.request);
         return a.RemoveKey(UserName(c.args[0]), fingerprint->second, c.actor);
       }},
      {"DELETE", "/v1/users/{}/keys/{}",
       [](Api& a, C c) { return a.RemoveKey(UserName(c.args[0]), c.args[1], c.actor); }},
      {"GET", "/v1/groups", [](Api& a, C) { return a.deployments_->ListGroups(); }},
      {"PUT", "/v1/groups/{}", [](Api& a, C c) { return a.deployments_->PutGroup(c.args[0], c.request, c.actor); }},
      {"GET", "/v1/groups/{}", [](Api& a, C c) { return a.deployments_->GetGroup(c.args[0]); }},
      {"DELETE", "/v1/groups/{}", [](Api& a, C c) { return a.deployments_->DeleteGroup(c.args[0], c.actor); }},
      {"GET", "/v1/groups/{}/deployments", [](Api& a, C c) { return a.deployments_->ListDeployments(c.args[0]); }},
      {"PUT", "/v1/groups/{}/deployments/{}",
       [](Api& a, C c) { return a.deployments_->PutDeployment(c.args[0], c.args[1], c.request, c.actor); }},
      {"GET", "/v1/groups/{}/deployments/{}",
       [](Api& a, C c) { return a.deployments_->GetDeployment(c.args[0], c.args[1]); }},
      {"DELETE", "/v1/groups/{}/deployments/{}",
       [](Api& a, C c) { return a.deployments_->DeleteDeployment(c.args[0], c.args[1]); }},
      {"POST", "/v1/groups/{}/deployments/{}/validate",
       [](Api& a, C c) { return a.deployments_->Validate(c.args[0], c.args[1], c.request, c.actor); }},
      {"POST", "/v1/groups/{}/deployments/{}/whatIf",
       [](Api& a, C c) { return a.deployments_->WhatIf(c.args[0], c.args[1], c.request, c.actor); }},
      {"POST", "/v1/groups/{}/deployments/{}/cancel",
       [](Api& a, C c) { return a.deployments_->Cancel(c.args[0], c.args[1]); }},
      {"GET", "/v1/groups/{}/deployments/{}/operations",
       [](Api& a, C c) { return a.deployments_->ListOperations(c.args[0], c.args[1]); }},
      {"GET", "/v1/storageAccounts", [](Api& a, C) { return a.storage_->ListAccounts(std::nullopt); }},
      {"GET", "/v1/groups/{}/storageAccounts", [](Api& a, C c) { return a.storage_->ListAccounts(c.args[0]); }},
      {"PUT", "/v1/groups/{}/storageAccounts/{}",
       [](Api& a, C c) { return a.storage_->PutAccount(c.args[0], c.args[1], c.request, c.actor); }},
      {"GET", "/v1/groups/{}/storageAccounts/{}",
       [](Api& a, C c) { return a.storage_->GetAccount(c.args[0], c.args[1]); }},
      {"DELETE", "/v1/groups/{}/storageAccounts/{}",
       [](Api& a, C c) { return a.storage_->DeleteAccount(c.args[0], c.args[1], c.actor); }},
      {"POST", "/v1/groups/{}/storageAccounts/{}/listKeys",
       [](Api& a, C c) { return a.storage_->ListKeys(c.args[0], c.args[1], c.actor); }},
      {"POST", "/v1/groups/{}/storageAccounts/{}/regenerateKey",
       [](Api& a, C c) { return a.storage_->RegenerateKey(c.args[0], c.args[1], c.request, c.actor); }},
      {"POST", "/v1/groups/{}/storageAccounts/{}/checkKey",
       [](Api& a, C c) { return a.storage_->CheckKey(c.args[0], c.args[1], c.request); }},
      {"GET", "/v1/groups/{}/storageAccounts/{}/shares",
       [](Api& a, C c) { return a.storage_->ListShares(c.args[0], c.args[1], c.request); }},
      {"PUT", "/v1/groups/{}/storageAccounts/{}/shares/{}",
       [](Api& a, C c) { return a.storage_->PutShare(c.args[0], c.args[1], c.args[2], c.request, c.actor); }},
      {"GET", "/v1/groups/{}/storageAccounts/{}/shares/{}",
       [](Api& a, C c) { return a.storage_->GetShare(c.args[0], c.args[1], c.args[2]); }},
      {"DELETE", "/v1/groups/{}/storageAccounts/{}/shares/{}",
       [](Api& a, C c) { return a.storage_->DeleteShare(c.args[0], c.args[1], c.args[2], c.actor); }},
      {"POST", "/v1/groups/{}/storageAccounts/{}/shares/{}/restore",
       [](Api& a, C c) { return a.storage_->RestoreShare(c.args[0], c.args[1], c.args[2], c.request, c.actor); }},
      {"PUT", "/v1/users/{}/password",
       [](Api& a, C c) { return a.SetPassword(UserName(c.args[0]), c.request, c.actor); }},
  };
  return Dispatch(kRoutes, std::size(kRoutes), r, actor, "no resource at " + r.path);
}

Event Api::MakeEvent(const std::string& actor, std::string action, std::string subject, std::string detail) {
  return Event{0, clock_.Now(), actor, std::move(action), std::move(subject), std::move(detail)};
}

Result<int64_t> Api::BumpUsersVersion(WriteBatch& batch) {
  int64_t version = 0;
  auto current = store_.GetMeta(kUsersVersion);
  if (current.ok()) version = std::stoll(*current);
  else if (current.status().code() != StatusCode::kNotFound) return current.status();
  batch.Add(WriteBatch::PutMeta{kUsersVersion, std::to_string(version + 1)});
  return version + 1;
}

Result<Json> Api::CommitUsersChange(std::unique_lock<std::mutex>& lock, WriteBatch& batch, Json out) {
  DSP_ASSIGN_OR_RETURN(int64_t version, BumpUsersVersion(batch));
  DSP_RETURN_IF_ERROR(store_.Write(batch));
  lock.unlock();  // other writes need not wait for the instances
  std::vector<std::string> pending = hooks_.PushUsersChange(version);
  if (!pending.empty()) out["notAppliedOn"] = pending;
  return out;
}

}  // namespace dspool
