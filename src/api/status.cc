#include "api/api.h"

#include <unistd.h>

#include <map>
#include <sstream>

#include "api/api_internal.h"

namespace dspool {

using namespace api_internal;

// ---- status, metrics, events ----

Result<Response> Api::GetStatus() {
  DSP_ASSIGN_OR_RETURN(auto pools, store_.ListPools());
  DSP_ASSIGN_OR_RETURN(auto instances, store_.ListInstances({}));
  DSP_ASSIGN_OR_RETURN(auto users, store_.ListUsers());
  int64_t ready = std::count_if(instances.begin(), instances.end(), [](const Instance& i) {
    return i.phase == InstancePhase::kReady && !i.standby;
  });
  int64_t standby = std::count_if(instances.begin(), instances.end(), [](const Instance& i) {
    return i.phase == InstancePhase::kReady && i.standby;
  });
  return JsonOk(200, {{"version", options_.version},
                      {"dataDir", options_.data_dir},
                      {"provider", options_.provider},
                      {"pools", pools.size()},
                      {"instances", {{"total", instances.size()}, {"ready", ready}, {"standby", standby}}},
                      {"users", users.size()},
                      {"startedAt", FormatTime(started_at_)}});
}

Result<Response> Api::StopServer(const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  bool gateway = false;  // the gateway too, and the connections it carries
  reader.Optional("gateway", &gateway);
  DSP_RETURN_IF_ERROR(reader.Finish());
  {
    std::lock_guard lock(write_mu_);
    DSP_RETURN_IF_ERROR(store_.Write(WriteBatch().Add(WriteBatch::AppendEvent{
        MakeEvent(actor, "server.stop", "server",
                  gateway ? "stopped by request with the gateway; the instances keep running"
                          : "stopped by request; the gateway and the instances keep running")})));
  }
  if (gateway) DSP_RETURN_IF_ERROR(hooks_.StopGateway());
  hooks_.RequestStop();
  return JsonOk(202, {{"stopping", true}, {"pid", static_cast<int64_t>(::getpid())}});
}

Result<Response> Api::GetGateway() {
  DSP_ASSIGN_OR_RETURN(Json info, hooks_.DescribeGateway());
  return JsonOk(200, info);
}

Result<Response> Api::UpgradeGateway(const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  std::string binary;
  reader.Optional("binary", &binary);
  DSP_RETURN_IF_ERROR(reader.Finish());
  DSP_ASSIGN_OR_RETURN(Json answer, hooks_.UpgradeGateway(binary));
  std::lock_guard lock(write_mu_);
  DSP_RETURN_IF_ERROR(store_.Write(WriteBatch().Add(WriteBatch::AppendEvent{MakeEvent(
      actor, "gateway.upgrade", "gateway",
      "pid " + answer.value("previousPid", Json()).dump() + " handed over to pid " + answer.value("pid", Json()).dump() +
          " (" + answer.value("binary", std::string()) + ")")})));
  return JsonOk(200, answer);
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
  out << "# HELP dspool_instances Instances per pool and phase, standbys among them.\n"
      << "# TYPE dspool_instances gauge\n";
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
  out << "# HELP dspool_pool_standby_instances Standbys per pool (live: pending, booting or ready and frozen).\n"
      << "# TYPE dspool_pool_standby_instances gauge\n";
  for (const Pool& p : pools) {
    auto standbys = std::count_if(instances.begin(), instances.end(), [&](const Instance& i) {
      return i.pool == p.name() && i.standby && IsLive(i.phase);
    });
    out << "dspool_pool_standby_instances{pool=\"" << MetricEscape(p.name().value()) << "\"} " << standbys << "\n";
  }
  out << "# HELP dspool_users Pool users.\n# TYPE dspool_users gauge\ndspool_users " << users.size() << "\n";
  struct Gauge {
    const char* name;
    const char* help;
    std::function<std::optional<double>(const InstanceReport&)> value;  // nullopt: not known, no sample
  };
  const Gauge gauges[] = {
      {"dspool_instance_cpu_percent", "CPU use of the instance, 100 = one core.",
       [](const InstanceReport& r) { return r.cpu_percent; }},
      {"dspool_instance_memory_used_bytes", "Memory used by the instance.",
       [](const InstanceReport& r) -> std::optional<double> {
         if (!r.memory_used_bytes) return std::nullopt;
         return static_cast<double>(*r.memory_used_bytes);
       }},
      {"dspool_instance_memory_limit_bytes", "Memory limit of the instance.",
       [](const InstanceReport& r) -> std::optional<double> { return static_cast<double>(r.memory_limit_bytes); }},
      {"dspool_instance_ssh_sessions", "Open SSH sessions on the instance.",
       [](const InstanceReport& r) -> std::optional<double> { return static_cast<double>(r.ssh_sessions); }},
  };
  for (const Gauge& g : gauges) {
    out << "# HELP " << g.name << " " << g.help << "\n# TYPE " << g.name << " gauge\n";
    for (const Instance& i : instances) {
      auto report = hooks_.LastReport(i.id);
      if (!report) continue;
      std::optional<double> value = g.value(*report);
      if (!value) continue;
      out << g.name << "{pool=\"" << i.pool << "\",instance=\"" << i.id << "\"} " << *value << "\n";
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

// ---- sessions: notebook servers, then relayed connections ----

Result<Response> Api::ListSessions() {
  Json list = Json::array();
  for (const NotebookSessionInfo& info : hooks_.NotebookSessions()) list.push_back(NotebookSessionInfoToJson(info));
  for (const RelayedSessionInfo& info : hooks_.RelayedSessions()) list.push_back(RelayedSessionInfoToJson(info));
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

}  // namespace dspool
