#include "api/api.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "identity/password.h"
#include "identity/secret_equals.h"
#include "identity/ssh_key.h"
#include "model/agent_config.h"
#include "model/json_reader.h"

namespace dspool {
namespace {

constexpr const char* kUsersVersion = "users_version";
constexpr const char* kUidHighWater = "uid_high_water";
// Conditional writes of an instance record that the reconcile loop keeps
// changing give up after this many tries (Aborted, 409: try again).
constexpr int kMaxRecordUpdateAttempts = 3;

Response JsonOk(int status, const Json& body) { return JsonResponse(status, body.dump()); }

Result<Json> ParseBody(const Request& r) {
  Json json;
  DSP_RETURN_IF_ERROR(ParseJsonText(r.body.empty() ? "{}" : r.body, "request body", &json));
  if (!json.is_object()) return InvalidArgument("request body: expected a JSON object");
  return json;
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(path);
  while (std::getline(in, part, '/')) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

// Whether an Authorization header carries `token`; constant-time in the
// token's contents and length (identity's SecretEquals).
bool TokenMatches(const std::string& header, const std::string& token) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (!header.starts_with(kPrefix)) return false;
  return SecretEquals(std::string_view(header).substr(kPrefix.size()), token);
}

Status MethodNotAllowed(const Request& r) {
  return InvalidArgument("method " + r.method + " is not allowed on " + r.path);
}

Json KeysJson(const std::vector<std::string>& keys) {
  Json out = Json::array();
  for (const std::string& k : keys) out.push_back({{"key", k}, {"fingerprint", SshKeyFingerprint(k)}});
  return out;
}

Json UserJson(const User& u) {
  Json j = UserToPublicJson(u);
  j["sshKeys"] = KeysJson(u.ssh_keys);
  return j;
}

std::string MetricEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
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
    : store_(store), clock_(clock), hooks_(hooks), options_(std::move(options)), started_at_(clock.Now()) {}

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

Result<Response> Api::Route(const Request& r, const std::string& actor) {
  std::vector<std::string> p = Split(r.path);
  const std::string& m = r.method;
  if (r.path == "/metrics" && m == "GET") return GetMetrics();
  if (p.empty() || p[0] != "v1") return NotFound("no resource at " + r.path);
  p.erase(p.begin());
  if (p.size() == 1 && p[0] == "status") return m == "GET" ? GetStatus() : MethodNotAllowed(r);
  if (p.size() == 1 && p[0] == "events") return m == "GET" ? ListEvents(r) : MethodNotAllowed(r);
  if (p.size() == 1 && p[0] == "instances") return m == "GET" ? ListInstances(r) : MethodNotAllowed(r);
  if (p.size() == 1 && p[0] == "sessions") return m == "GET" ? ListSessions() : MethodNotAllowed(r);
  if (p.size() == 2 && p[0] == "sessions") return m == "DELETE" ? StopSession(p[1], r, actor) : MethodNotAllowed(r);
  if (p.size() == 3 && p[0] == "instances" && (p[2] == "drain" || p[2] == "undrain")) {
    return m == "POST" ? SetDraining(InstanceId(p[1]), p[2] == "drain", r, actor) : MethodNotAllowed(r);
  }
  if (!p.empty() && p[0] == "pools") {
    if (p.size() == 1) {
      if (m == "GET") return ListPools();
      if (m == "POST") return CreatePool(r, actor);
      return MethodNotAllowed(r);
    }
    PoolName name(p[1]);
    if (p.size() == 2) {
      if (m == "GET") return GetPool(name);
      if (m == "DELETE") return DeletePool(name, actor);
      return MethodNotAllowed(r);
    }
    if (p.size() == 3 && p[2] == "scale") return m == "POST" ? ScalePool(name, r, actor) : MethodNotAllowed(r);
  }
  if (!p.empty() && p[0] == "users") {
    if (p.size() == 1) {
      if (m == "GET") return ListUsers();
      if (m == "POST") return CreateUser(r, actor);
      return MethodNotAllowed(r);
    }
    UserName name(p[1]);
    if (p.size() == 2) {
      if (m == "GET") return GetUser(name);
      if (m == "DELETE") return DeleteUser(name, actor);
      return MethodNotAllowed(r);
    }
    // Fingerprints are standard base64 and may hold '/': DELETE takes them
    // as ?fingerprint=, where no path rule applies.
    if (p.size() == 3 && p[2] == "keys" && m == "DELETE" && r.query.count("fingerprint")) {
      return RemoveKey(name, r.query.at("fingerprint"), actor);
    }
    if (p.size() == 3 && p[2] == "keys") return m == "POST" ? AddKey(name, r, actor) : MethodNotAllowed(r);
    if (p.size() == 4 && p[2] == "keys") {
      return m == "DELETE" ? RemoveKey(name, p[3], actor) : MethodNotAllowed(r);
    }
    if (p.size() == 3 && p[2] == "password") return m == "PUT" ? SetPassword(name, r, actor) : MethodNotAllowed(r);
  }
  return NotFound("no resource at " + r.path);
}

// ---- status, metrics, events ----

Result<Response> Api::GetStatus() {
  DSP_ASSIGN_OR_RETURN(auto pools, store_.ListPools());
  DSP_ASSIGN_OR_RETURN(auto instances, store_.ListInstances({}));
  DSP_ASSIGN_OR_RETURN(auto users, store_.ListUsers());
  int64_t ready = std::count_if(instances.begin(), instances.end(),
                                [](const Instance& i) { return i.phase == InstancePhase::kReady; });
  return JsonOk(200, {{"version", options_.version},
                      {"dataDir", options_.data_dir},
                      {"provider", options_.provider},
                      {"pools", pools.size()},
                      {"instances", {{"total", instances.size()}, {"ready", ready}}},
                      {"users", users.size()},
                      {"startedAt", FormatTime(started_at_)}});
}

Result<Response> Api::GetMetrics() {
  DSP_ASSIGN_OR_RETURN(auto pools, store_.ListPools());
  DSP_ASSIGN_OR_RETURN(auto instances, store_.ListInstances({}));
  DSP_ASSIGN_OR_RETURN(auto users, store_.ListUsers());
  std::ostringstream out;
  out << "# HELP dspool_pools Pools known to the server.\n# TYPE dspool_pools gauge\n"
      << "dspool_pools " << pools.size() << "\n";
  out << "# HELP dspool_pool_desired_instances Desired instance count per pool.\n"
      << "# TYPE dspool_pool_desired_instances gauge\n";
  for (const Pool& p : pools) {
    out << "dspool_pool_desired_instances{pool=\"" << p.name() << "\"} " << p.spec.instance_count << "\n";
  }
  out << "# HELP dspool_instances Instances per pool and phase.\n# TYPE dspool_instances gauge\n";
  std::map<std::pair<std::string, std::string>, int> by_phase;
  for (const Pool& p : pools) {
    for (auto phase : {InstancePhase::kPending, InstancePhase::kBooting, InstancePhase::kReady,
                       InstancePhase::kFailed, InstancePhase::kDeleting}) {
      by_phase[{p.name().value(), std::string(InstancePhaseName(phase))}] = 0;
    }
  }
  for (const Instance& i : instances) ++by_phase[{i.pool.value(), std::string(InstancePhaseName(i.phase))}];
  for (const auto& [key, n] : by_phase) {
    out << "dspool_instances{pool=\"" << MetricEscape(key.first) << "\",phase=\"" << key.second << "\"} " << n
        << "\n";
  }
  out << "# HELP dspool_users Pool users.\n# TYPE dspool_users gauge\ndspool_users " << users.size() << "\n";
  struct Gauge {
    const char* name;
    const char* help;
    std::function<double(const InstanceReport&)> value;
  };
  const Gauge gauges[] = {
      {"dspool_instance_cpu_percent", "CPU use of the instance, 100 = one core.",
       [](const InstanceReport& r) { return r.cpu_percent; }},
      {"dspool_instance_memory_used_bytes", "Memory used by the instance.",
       [](const InstanceReport& r) { return static_cast<double>(r.memory_used_bytes); }},
      {"dspool_instance_memory_limit_bytes", "Memory limit of the instance.",
       [](const InstanceReport& r) { return static_cast<double>(r.memory_limit_bytes); }},
      {"dspool_instance_ssh_sessions", "Open SSH sessions on the instance.",
       [](const InstanceReport& r) { return static_cast<double>(r.ssh_sessions); }},
  };
  for (const Gauge& g : gauges) {
    out << "# HELP " << g.name << " " << g.help << "\n# TYPE " << g.name << " gauge\n";
    for (const Instance& i : instances) {
      auto report = hooks_.LastReport(i.id);
      if (!report) continue;
      out << g.name << "{pool=\"" << i.pool << "\",instance=\"" << i.id << "\"} " << g.value(*report) << "\n";
    }
  }
  out << hooks_.ExtraMetrics();
  Response resp;
  resp.content_type = "text/plain; version=0.0.4";
  resp.body = out.str();
  return resp;
}

Result<Response> Api::ListEvents(const Request& r) {
  int64_t limit = 100;
  std::optional<int64_t> after;
  try {
    if (r.query.count("limit")) limit = std::stoll(r.query.at("limit"));
    if (r.query.count("after")) after = std::stoll(r.query.at("after"));
  } catch (...) {
    return InvalidArgument("query: after and limit must be integers");
  }
  if (limit < 1 || limit > 1000) return InvalidArgument("query: limit must be between 1 and 1000");
  std::vector<Event> events;
  if (after) {
    DSP_ASSIGN_OR_RETURN(events, store_.ListEvents(*after, static_cast<size_t>(limit)));
  } else {
    DSP_ASSIGN_OR_RETURN(events, store_.TailEvents(static_cast<size_t>(limit)));
  }
  Json list = Json::array();
  for (const Event& e : events) list.push_back(EventToJson(e));
  return JsonOk(200, {{"events", list}});
}

// ---- notebook sessions ----

Result<Response> Api::ListSessions() {
  Json list = Json::array();
  for (const NotebookSessionInfo& info : hooks_.NotebookSessions()) list.push_back(NotebookSessionInfoToJson(info));
  return JsonOk(200, {{"sessions", list}});
}

Result<Response> Api::StopSession(const std::string& user, const Request& r, const std::string& actor) {
  const std::string* pool = r.query.count("pool") ? &r.query.at("pool") : nullptr;
  std::vector<NotebookSessionInfo> found;
  for (NotebookSessionInfo& info : hooks_.NotebookSessions()) {
    if (info.user == user && (pool == nullptr || info.pool == *pool)) found.push_back(std::move(info));
  }
  if (found.empty()) {
    return NotFound("user '" + user + "' has no notebook server" + (pool ? " in pool '" + *pool + "'" : ""));
  }
  if (found.size() > 1) {
    std::string pools;
    for (const NotebookSessionInfo& info : found) pools += (pools.empty() ? "" : ", ") + info.pool;
    return InvalidArgument("user '" + user + "' has notebook servers in pools " + pools +
                           ": name one with ?pool=NAME");
  }
  const NotebookSessionInfo& session = found.front();
  DSP_RETURN_IF_ERROR(hooks_.StopNotebookSession(PoolName(session.pool), user));
  std::string detail = session.state + (session.instance.empty() ? "" : " on instance " + session.instance);
  DSP_RETURN_IF_ERROR(store_.Write(WriteBatch().Add(WriteBatch::AppendEvent{
      MakeEvent(actor, "session.stop", "session/" + session.pool + "/" + user, detail)})));
  Response resp;
  resp.status = 204;
  resp.content_type.clear();
  return resp;
}

Event Api::MakeEvent(const std::string& actor, std::string action, std::string subject, std::string detail) {
  return Event{0, clock_.Now(), actor, std::move(action), std::move(subject), std::move(detail)};
}

Status Api::BumpUsersVersion(WriteBatch& batch) {
  int64_t version = 0;
  auto current = store_.GetMeta(kUsersVersion);
  if (current.ok()) version = std::stoll(*current);
  else if (current.status().code() != StatusCode::kNotFound) return current.status();
  batch.Add(WriteBatch::PutMeta{kUsersVersion, std::to_string(version + 1)});
  return Status::Ok();
}

// ---- pools ----

Json Api::InstanceJson(const Instance& i, const Pool* pool) {
  Json j = InstanceToJson(i);
  j["hostname"] = InstanceHostname(i.pool, i.index);
  j["createdAt"] = FormatTime(i.created_at);
  j["phaseSince"] = FormatTime(i.phase_since);
  auto report = hooks_.LastReport(i.id);
  if (report) {
    Json rj = InstanceReportToJson(*report);
    rj["receivedAt"] = FormatTime(report->received_at);
    j["report"] = rj;
  } else {
    j["report"] = nullptr;
  }
  if (auto health = hooks_.InstanceHealth(i.id)) j["health"] = InstanceHealthToJson(*health);
  if (pool && pool->spec.load_balancer) {
    // Port start+k of a NAT pool reaches the instance with index k.
    Json ports = Json::array();
    for (const NatPool& nat : pool->spec.load_balancer->nat_pools) {
      if (i.index >= 0 && i.index < nat.size()) {
        ports.push_back({{"natPool", nat.name}, {"port", nat.frontend_port_start + i.index}});
      }
    }
    j["natPorts"] = ports;
  }
  return j;
}

Result<Json> Api::PoolJson(const Pool& p) {
  DSP_ASSIGN_OR_RETURN(auto instances, store_.ListInstances(p.name()));
  Json list = Json::array();
  for (const Instance& i : instances) list.push_back(InstanceJson(i, &p));
  Json j = {{"name", p.name().value()},
           {"state", PoolStateName(p.state)},
           {"instanceCount", p.spec.instance_count},
           {"generation", p.generation},
           {"idBase", p.id_base},
           {"createdAt", FormatTime(p.created_at)},
           {"updatedAt", FormatTime(p.updated_at)},
           {"spec", PoolSpecToJson(p.spec)},
           {"bridge", BridgeName(p.name())},
           {"gateway", FormatIpv4(GatewayAddress(p.spec.network))},
           {"instances", list}};
  Json frontends = Json::array();
  const std::string address = p.spec.load_balancer ? p.spec.load_balancer->frontend_address : "0.0.0.0";
  if (const auto& lb = p.spec.load_balancer) {
    for (const LbRule& rule : lb->rules) {
      frontends.push_back({{"rule", rule.name},
                           {"address", address},
                           {"port", rule.frontend_port},
                           {"backendPort", rule.backend_port}});
    }
  }
  // The gateway's own HTTPS entry: it routes each user to their server.
  if (const auto& jupyter = p.spec.jupyter) {
    frontends.push_back({{"rule", "Jupyter"}, {"address", address}, {"port", jupyter->frontend_port}, {"https", true}});
  }
  if (!frontends.empty()) j["frontends"] = frontends;
  return j;
}

Result<Response> Api::ListPools() {
  DSP_ASSIGN_OR_RETURN(auto pools, store_.ListPools());
  Json list = Json::array();
  for (const Pool& p : pools) {
    DSP_ASSIGN_OR_RETURN(Json j, PoolJson(p));
    list.push_back(std::move(j));
  }
  return JsonOk(200, {{"pools", list}});
}

Result<Response> Api::GetPool(const PoolName& name) {
  DSP_ASSIGN_OR_RETURN(Pool pool, store_.GetPool(name));
  DSP_ASSIGN_OR_RETURN(Json j, PoolJson(pool));
  return JsonOk(200, j);
}

Result<Response> Api::CreatePool(const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  DSP_ASSIGN_OR_RETURN(PoolSpec spec, ParsePoolSpec(body));
  AdminUserSpec& admin = spec.admin;
  DSP_RETURN_IF_ERROR(ValidateUserName(admin.name).WithPrefix("adminUser.name"));
  if (!admin.ssh_public_key.empty()) {
    auto key = NormalizeSshPublicKey(admin.ssh_public_key);
    if (!key.ok()) return key.status().WithPrefix("adminUser.sshPublicKey");
    admin.ssh_public_key = *key;
  }
  if (!admin.password.empty()) {
    DSP_RETURN_IF_ERROR(ValidatePassword(admin.password).WithPrefix("adminUser.password"));
    auto hash = HashPassword(admin.password);
    if (!hash.ok()) return hash.status();
    admin.password_hash = *hash;
    admin.password.assign(admin.password.size(), '\0');
    admin.password.clear();
  } else if (!admin.password_hash.empty()) {
    DSP_RETURN_IF_ERROR(ValidatePasswordHash(admin.password_hash).WithPrefix("adminUser.passwordHash"));
  }

  std::lock_guard lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(auto pools, store_.ListPools());
  for (const Pool& p : pools) {
    if (p.name() == spec.name) return AlreadyExists("pool '" + spec.name.value() + "' already exists");
  }
  DSP_RETURN_IF_ERROR(hooks_.CheckPoolHost(spec, pools));

  WriteBatch batch;
  Pool pool;
  pool.spec = spec;
  pool.created_at = pool.updated_at = clock_.Now();
  DSP_ASSIGN_OR_RETURN(pool.id_base, AllocateIdBase(pools));
  batch.Add(WriteBatch::CreatePool{pool});
  batch.Add(WriteBatch::AppendEvent{MakeEvent(
      actor, "pool.create", "pool/" + spec.name.value(),
      std::to_string(spec.instance_count) + " instances of " + std::to_string(spec.size.vcpus) + " vCPU, " +
          std::to_string(spec.size.memory_mib) + " MiB on " + spec.network.subnet.ToString())});

  // The admin user: created, or given the spec's key and password.
  auto existing = store_.GetUser(UserName(admin.name));
  if (existing.ok()) {
    User u = *existing;
    if (!admin.ssh_public_key.empty() &&
        std::find(u.ssh_keys.begin(), u.ssh_keys.end(), admin.ssh_public_key) == u.ssh_keys.end()) {
      u.ssh_keys.push_back(admin.ssh_public_key);
    }
    if (!admin.password_hash.empty()) u.password_hash = admin.password_hash;
    u.admin = true;
    if (!(u == *existing)) {
      batch.Add(WriteBatch::UpdateUser{u});
      batch.Add(WriteBatch::AppendEvent{
          MakeEvent(actor, "user.update", "user/" + admin.name, "admin of pool " + spec.name.value())});
      DSP_RETURN_IF_ERROR(BumpUsersVersion(batch));
    }
  } else if (existing.status().code() == StatusCode::kNotFound) {
    DSP_ASSIGN_OR_RETURN(auto users, store_.ListUsers());
    int64_t hwm = 0;
    if (auto h = store_.GetMeta(kUidHighWater); h.ok()) hwm = std::stoll(*h);
    DSP_ASSIGN_OR_RETURN(int64_t uid, AllocateUid(users, options_.uid_range, hwm));
    User u;
    u.name = UserName(admin.name);
    u.uid = uid;
    if (!admin.ssh_public_key.empty()) u.ssh_keys.push_back(admin.ssh_public_key);
    u.password_hash = admin.password_hash;
    u.admin = true;
    u.created_at = clock_.Now();
    batch.Add(WriteBatch::CreateUser{u});
    batch.Add(WriteBatch::PutMeta{kUidHighWater, std::to_string(uid)});
    batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "user.create", "user/" + admin.name,
                                                "uid " + std::to_string(uid) + ", admin of pool " + spec.name.value())});
    DSP_RETURN_IF_ERROR(BumpUsersVersion(batch));
  } else {
    return existing.status();
  }

  DSP_RETURN_IF_ERROR(hooks_.PreparePool(spec.name));
  DSP_RETURN_IF_ERROR(store_.Write(batch));
  hooks_.PoolsChanged();
  DSP_ASSIGN_OR_RETURN(Pool created, store_.GetPool(spec.name));
  DSP_ASSIGN_OR_RETURN(Json j, PoolJson(created));
  return JsonOk(201, j);
}

Result<Response> Api::ScalePool(const PoolName& name, const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  int64_t count = 0;
  reader.Required("instanceCount", &count);
  DSP_RETURN_IF_ERROR(reader.Finish());
  std::lock_guard lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(Pool pool, store_.GetPool(name));
  if (pool.state == PoolState::kDeleting) return FailedPrecondition("pool '" + name.value() + "' is being deleted");
  int64_t max = MaxInstanceCount(pool.spec);
  if (count < 0 || count > max) {
    return InvalidArgument("instanceCount: must be between 0 and " + std::to_string(max) + " for pool '" +
                           name.value() + "'");
  }
  int64_t before = pool.spec.instance_count;
  int64_t generation = pool.generation;
  pool.spec.instance_count = count;
  pool.generation++;
  pool.updated_at = clock_.Now();
  WriteBatch batch;
  batch.Add(WriteBatch::UpdatePool{pool, generation});
  batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "pool.scale", "pool/" + name.value(),
                                              std::to_string(before) + " → " + std::to_string(count))});
  DSP_RETURN_IF_ERROR(store_.Write(batch));
  hooks_.PoolsChanged();
  DSP_ASSIGN_OR_RETURN(Json j, PoolJson(pool));
  return JsonOk(200, j);
}

Result<Response> Api::DeletePool(const PoolName& name, const std::string& actor) {
  std::lock_guard lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(Pool pool, store_.GetPool(name));
  if (pool.state != PoolState::kDeleting) {
    int64_t generation = pool.generation;
    pool.state = PoolState::kDeleting;
    pool.generation++;
    pool.updated_at = clock_.Now();
    WriteBatch batch;
    batch.Add(WriteBatch::UpdatePool{pool, generation});
    batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "pool.delete", "pool/" + name.value(), "")});
    DSP_RETURN_IF_ERROR(store_.Write(batch));
    hooks_.PoolsChanged();
  }
  DSP_ASSIGN_OR_RETURN(Json j, PoolJson(pool));
  return JsonOk(202, j);
}

Result<Response> Api::ListInstances(const Request& r) {
  std::optional<PoolName> pool;
  if (r.query.count("pool")) {
    pool = PoolName(r.query.at("pool"));
    DSP_RETURN_IF_ERROR(store_.GetPool(*pool).status());
  }
  DSP_ASSIGN_OR_RETURN(auto instances, store_.ListInstances(pool));
  DSP_ASSIGN_OR_RETURN(auto pools, store_.ListPools());
  std::map<PoolName, const Pool*> by_name;
  for (const Pool& p : pools) by_name[p.name()] = &p;
  Json list = Json::array();
  for (const Instance& i : instances) {
    auto it = by_name.find(i.pool);
    list.push_back(InstanceJson(i, it == by_name.end() ? nullptr : it->second));
  }
  return JsonOk(200, {{"instances", list}});
}

Result<Response> Api::SetDraining(const InstanceId& id, bool draining, const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  DSP_RETURN_IF_ERROR(JsonReader(body, "").Finish());  // takes no fields
  std::lock_guard lock(write_mu_);
  for (int attempt = 1;; ++attempt) {
    DSP_ASSIGN_OR_RETURN(Instance read, store_.GetInstance(id));
    if (read.phase == InstancePhase::kDeleting) {
      return FailedPrecondition("instance '" + id.value() + "' of pool '" + read.pool.value() +
                                "' is being deleted" + (read.reason.empty() ? "" : " (" + read.reason + ")") +
                                "; it cannot be " + (draining ? "drained" : "put back in rotation"));
    }
    if (read.draining == draining) break;
    Instance next = read;
    next.draining = draining;
    WriteBatch batch;
    batch.Add(WriteBatch::UpdateInstance{next, read});
    batch.Add(WriteBatch::AppendEvent{
        MakeEvent(actor, draining ? "instance.drain" : "instance.undrain", "instance/" + id.value(),
                  draining ? "no new connections; open ones go on" : "back in rotation")});
    Status s = store_.Write(batch);
    if (s.ok()) {
      hooks_.PoolsChanged();
      break;
    }
    if (s.code() != StatusCode::kAborted || attempt == kMaxRecordUpdateAttempts) return s;
  }
  DSP_ASSIGN_OR_RETURN(Instance instance, store_.GetInstance(id));
  auto pool = store_.GetPool(instance.pool);
  return JsonOk(200, InstanceJson(instance, pool.ok() ? &*pool : nullptr));
}

// ---- users ----

Result<Response> Api::CreateUser(const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  std::string name, password;
  std::vector<std::string> keys;
  bool admin = false;
  reader.Required("name", &name);
  reader.Optional("sshKeys", &keys);
  reader.Optional("password", &password);
  reader.Optional("admin", &admin);
  DSP_RETURN_IF_ERROR(reader.Finish());
  DSP_RETURN_IF_ERROR(ValidateUserName(name).WithPrefix("name"));
  User u;
  u.name = UserName(name);
  u.admin = admin;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto key = NormalizeSshPublicKey(keys[i]);
    if (!key.ok()) return key.status().WithPrefix("sshKeys[" + std::to_string(i) + "]");
    if (std::find(u.ssh_keys.begin(), u.ssh_keys.end(), *key) == u.ssh_keys.end()) u.ssh_keys.push_back(*key);
  }
  if (!password.empty()) {
    DSP_RETURN_IF_ERROR(ValidatePassword(password).WithPrefix("password"));
    DSP_ASSIGN_OR_RETURN(u.password_hash, HashPassword(password));
    password.assign(password.size(), '\0');
  }
  std::lock_guard lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(auto users, store_.ListUsers());
  for (const User& other : users) {
    if (other.name == u.name) return AlreadyExists("user '" + name + "' already exists");
  }
  int64_t hwm = 0;
  if (auto h = store_.GetMeta(kUidHighWater); h.ok()) hwm = std::stoll(*h);
  DSP_ASSIGN_OR_RETURN(u.uid, AllocateUid(users, options_.uid_range, hwm));
  u.created_at = clock_.Now();
  WriteBatch batch;
  batch.Add(WriteBatch::CreateUser{u});
  batch.Add(WriteBatch::PutMeta{kUidHighWater, std::to_string(u.uid)});
  batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "user.create", "user/" + name,
                                              "uid " + std::to_string(u.uid) + (admin ? ", admin" : ""))});
  DSP_RETURN_IF_ERROR(BumpUsersVersion(batch));
  DSP_RETURN_IF_ERROR(store_.Write(batch));
  return JsonOk(201, UserJson(u));
}

Result<Response> Api::GetUser(const UserName& name) {
  DSP_ASSIGN_OR_RETURN(User u, store_.GetUser(name));
  return JsonOk(200, UserJson(u));
}

Result<Response> Api::ListUsers() {
  DSP_ASSIGN_OR_RETURN(auto users, store_.ListUsers());
  Json list = Json::array();
  for (const User& u : users) list.push_back(UserJson(u));
  return JsonOk(200, {{"users", list}});
}

Result<Response> Api::DeleteUser(const UserName& name, const std::string& actor) {
  std::lock_guard lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(User u, store_.GetUser(name));
  WriteBatch batch;
  batch.Add(WriteBatch::DeleteUser{name});
  batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "user.delete", "user/" + name.value(),
                                              "uid " + std::to_string(u.uid) + "; files kept on the shares")});
  DSP_RETURN_IF_ERROR(BumpUsersVersion(batch));
  DSP_RETURN_IF_ERROR(store_.Write(batch));
  return JsonOk(200, {{"deleted", name.value()}, {"uid", u.uid}, {"filesKept", true}});
}

Result<Response> Api::AddKey(const UserName& name, const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  std::string key_text;
  reader.Required("key", &key_text);
  DSP_RETURN_IF_ERROR(reader.Finish());
  auto key = NormalizeSshPublicKey(key_text);
  if (!key.ok()) return key.status().WithPrefix("key");
  std::lock_guard lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(User u, store_.GetUser(name));
  std::string fingerprint = SshKeyFingerprint(*key);
  for (const std::string& k : u.ssh_keys) {
    if (SshKeyFingerprint(k) == fingerprint) {
      return AlreadyExists("user '" + name.value() + "' already has key " + fingerprint);
    }
  }
  u.ssh_keys.push_back(*key);
  WriteBatch batch;
  batch.Add(WriteBatch::UpdateUser{u});
  batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "user.key.add", "user/" + name.value(), fingerprint)});
  DSP_RETURN_IF_ERROR(BumpUsersVersion(batch));
  DSP_RETURN_IF_ERROR(store_.Write(batch));
  return JsonOk(201, UserJson(u));
}

Result<Response> Api::RemoveKey(const UserName& name, const std::string& fingerprint, const std::string& actor) {
  std::lock_guard lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(User u, store_.GetUser(name));
  auto it = std::find_if(u.ssh_keys.begin(), u.ssh_keys.end(),
                         [&](const std::string& k) { return SshKeyFingerprint(k) == fingerprint; });
  if (it == u.ssh_keys.end()) {
    return NotFound("user '" + name.value() + "' has no key with fingerprint " + fingerprint);
  }
  u.ssh_keys.erase(it);
  WriteBatch batch;
  batch.Add(WriteBatch::UpdateUser{u});
  batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "user.key.remove", "user/" + name.value(), fingerprint)});
  DSP_RETURN_IF_ERROR(BumpUsersVersion(batch));
  DSP_RETURN_IF_ERROR(store_.Write(batch));
  return JsonOk(200, UserJson(u));
}

Result<Response> Api::SetPassword(const UserName& name, const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  std::string password;
  reader.Required("password", &password);
  DSP_RETURN_IF_ERROR(reader.Finish());
  DSP_RETURN_IF_ERROR(ValidatePassword(password).WithPrefix("password"));
  DSP_ASSIGN_OR_RETURN(std::string hash, HashPassword(password));
  password.assign(password.size(), '\0');
  std::lock_guard lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(User u, store_.GetUser(name));
  u.password_hash = hash;
  WriteBatch batch;
  batch.Add(WriteBatch::UpdateUser{u});
  batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "user.password", "user/" + name.value(), "password changed")});
  DSP_RETURN_IF_ERROR(BumpUsersVersion(batch));
  DSP_RETURN_IF_ERROR(store_.Write(batch));
  return JsonOk(200, UserJson(u));
}

// ---- the agents' channel ----

Result<Response> Api::RouteAgent(const Request& r, const InstanceId& id) {
  std::vector<std::string> p = Split(r.path);
  if (p.size() < 3 || p[0] != "v1" || p[1] != "agent") return NotFound("no agent resource at " + r.path);
  DSP_ASSIGN_OR_RETURN(Instance instance, store_.GetInstance(id));
  DSP_ASSIGN_OR_RETURN(Pool pool, store_.GetPool(instance.pool));
  // The channel's socket belongs to the instance's root, and only it may
  // speak here: not a user of the instance, not another pool's instance.
  if (!r.peer.is_unix || r.peer.uid != static_cast<uid_t>(pool.id_base)) {
    return PermissionDenied("the channel of instance " + id.value() + " serves its root only (host uid " +
                            std::to_string(pool.id_base) + "), not peer uid " + std::to_string(r.peer.uid));
  }
  if (p.size() == 3 && p[2] == "config" && r.method == "GET") {
    DSP_ASSIGN_OR_RETURN(HostKey key, hooks_.ReadHostKey(instance.pool));
    DSP_ASSIGN_OR_RETURN(auto users, store_.ListUsers());
    AgentConfig config;
    config.instance_id = id.value();
    config.pool = pool.name().value();
    config.hostname = InstanceHostname(pool.name(), instance.index);
    config.address = instance.address;
    config.share_mount_path = pool.spec.share.mount_path;
    config.jupyter = pool.spec.jupyter.has_value();
    for (const User& u : users) {
      config.users.push_back({u.name.value(), u.uid, u.admin, u.password_hash, u.ssh_keys});
    }
    config.host_private_key = key.private_key;
    config.host_public_key = key.public_key;
    if (auto v = store_.GetMeta(kUsersVersion); v.ok()) config.config_version = std::stoll(*v);
    return JsonOk(200, AgentConfigToJson(config));
  }
  if (p.size() == 3 && p[2] == "report" && r.method == "POST") {
    DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
    DSP_ASSIGN_OR_RETURN(InstanceReport report, ParseInstanceReport(body));
    report.received_at = clock_.Now();
    hooks_.RecordReport(id, report);
    int64_t version = 0;
    if (auto v = store_.GetMeta(kUsersVersion); v.ok()) version = std::stoll(*v);
    return JsonOk(200, {{"configVersion", version}});
  }
  if (p.size() == 4 && p[2] == "keys" && r.method == "GET") {
    DSP_ASSIGN_OR_RETURN(User u, store_.GetUser(UserName(p[3])));
    return JsonOk(200, {{"keys", u.ssh_keys}});
  }
  return NotFound("no agent resource at " + r.method + " " + r.path);
}

}  // namespace dspool
