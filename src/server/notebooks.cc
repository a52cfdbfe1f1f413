#include "server/pool_server.h"

#include "base/log.h"
#include "model/jupyter.h"
#include "net/socket.h"

namespace dspool {
namespace {

constexpr const char* kLog = "server";

}  // namespace

std::vector<NotebookSessionInfo> PoolServer::NotebookSessions() {
  std::vector<NotebookSessionInfo> out;
  for (const auto& n : gateway_->Notebooks().value_or({})) {
    NotebookSessionInfo info{n.pool.value(),
                             n.session.user,
                             n.session.instance.value(),
                             std::string(NotebookStateName(n.session.state)),
                             n.session.error,
                             n.session.started,
                             n.session.last_activity};
    info.client = n.session.client;
    if (auto activity = culler_.Activity(n.pool, n.session.user)) {
      info.busy_kernels = activity->busy_kernels;
      info.busy_terminals = activity->busy_terminals;
      info.kernels = activity->kernels;
    }
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<RelayedSessionInfo> PoolServer::RelayedSessions() {
  std::vector<RelayedSessionInfo> out;
  for (const RelayedConnection& c : gateway_->Connections().value_or({})) {
    out.push_back(RelayedSessionInfo{c.pool.value(), c.instance.value(), c.ssh ? "ssh" : "tcp",
                                     FormatEndpoint(c.client_address, c.client_port), c.frontend_port,
                                     FormatEndpoint(c.instance_address, c.instance_port),
                                     FormatEndpoint(c.seen_address, c.seen_port), c.transparent, c.started});
  }
  return out;
}

Status PoolServer::StopNotebookSession(const PoolName& pool, const std::string& user) {
  DSP_ASSIGN_OR_RETURN(auto notebooks, gateway_->Notebooks());
  for (const auto& n : notebooks) {
    if (n.pool != pool || n.session.user != user) continue;
    if (n.session.state == NotebookSession::State::kReady) {
      Status stopped = StopAgentServer(n.session.instance, user);
      // An instance that is gone took its servers with it.
      if (!stopped.ok() && store_->GetInstance(n.session.instance).ok()) return stopped;
    }
    ForgetNotebook(pool, user);
    DSP_LOG(kInfo, kLog) << "notebook server of " << user << " in pool " << pool << " stopped by request";
    return Status::Ok();
  }
  return NotFound("user '" + user + "' has no notebook server in pool '" + pool.value() + "'");
}

void PoolServer::NotebookExited(const PoolName& pool, const InstanceId& instance, const NotebookExit& exit,
                                const std::string& description) {
  DSP_LOG(kWarning, kLog) << "notebook server of " << exit.user << " in pool " << pool << " on " << instance << " "
                          << description;
  if (!exit.out_of_memory() || exit.port < 1 || exit.port > 65535) return;
  if (!gateway_->NotebookLost(pool, exit.user, instance, static_cast<uint16_t>(exit.port), description)) {
    DSP_LOG(kInfo, kLog) << "the session of " << exit.user << " in pool " << pool
                         << " has moved on from that server (a new one, or none): unchanged";
  }
}

void PoolServer::StartNotebook(const PoolName& pool, const std::string& user, const std::string& token) {
  workers_.Run([this, pool, user, token] {
    auto started = StartNotebookNow(pool, user, token);
    if (!started.ok()) {
      DSP_LOG(kWarning, kLog) << "notebook server of " << user << " in pool " << pool << ": " << started.status();
      gateway_->NotebookFailed(pool, user, started.status().message());
      return;
    }
    DSP_LOG(kInfo, kLog) << "notebook server of " << user << " ready on " << started->instance << " ("
                         << started->server.address << ":" << started->server.port << ")";
    gateway_->NotebookReady(pool, user, started->instance, ParseIpv4(started->server.address).value_or(0),
                            static_cast<uint16_t>(started->server.port));
  });
}

Result<Json> PoolServer::CallAgent(const InstanceId& id, const std::string& method, const std::string& path,
                       const std::string& body, std::chrono::seconds timeout) {
  auto owner = InstanceRoot(id);
  if (!owner.ok()) return Unavailable("instance " + id.value() + ": " + owner.status().message());
  return channels_.Call(id, *owner, method, path, body, timeout);
}

Status PoolServer::StopAgentServer(const InstanceId& id, const std::string& user) {
  auto stopped = CallAgent(id, "DELETE", "/v1/jupyter/servers/" + user, "", std::chrono::seconds(15));
  if (!stopped.ok() && stopped.status().code() != StatusCode::kNotFound) return stopped.status();
  return Status::Ok();
}

void PoolServer::ForgetNotebook(const PoolName& pool, const std::string& user) {
  gateway_->NotebookGone(pool, user);
  culler_.Forget(pool, user);
}

Result<PoolServer::StartedNotebook> PoolServer::StartNotebookNow(const PoolName& pool, const std::string& user, const std::string& token) {
  const MonoTime deadline = clock_.Monotonic() + options_.gateway.hold_timeout;
  // The user's home and notebooks on the share, if the sweep has not made
  // them yet (a user added a moment ago).
  DSP_ASSIGN_OR_RETURN(Pool spec, store_->GetPool(pool));
  DSP_ASSIGN_OR_RETURN(auto users, store_->ListUsers());
  DSP_RETURN_IF_ERROR(EnsureShareLayout(spec, users).WithPrefix("share of pool " + pool.value()));
  for (;;) {
    const uint64_t seen = RecordWrites();
    DSP_ASSIGN_OR_RETURN(auto instances, store_->ListInstances(pool));
    std::map<InstanceId, int> load;
    DSP_ASSIGN_OR_RETURN(auto notebooks, gateway_->Notebooks());
    for (const auto& n : notebooks) {
      if (n.pool == pool && n.session.state != NotebookSession::State::kFailed) load[n.session.instance]++;
    }
    const Instance* best = nullptr;
    for (const Instance& i : instances) {
      if (i.phase != InstancePhase::kReady || i.closed_to_new()) continue;
      if (auto health = gateway_->Health(i.id); health && !health->in_rotation && health->state != "unprobed") {
        continue;
      }
      if (!best || load[i.id] < load[best->id]) best = &i;
    }
    if (best) {
      Json body = JupyterStartRequestToJson(JupyterStartRequest{user, token, options_.jupyter_program});
      DSP_ASSIGN_OR_RETURN(Json json, CallAgent(best->id, "POST", "/v1/jupyter/servers", body.dump(),
                                                std::chrono::seconds(90)));
      DSP_ASSIGN_OR_RETURN(JupyterServer server, ParseJupyterServer(json));
      return StartedNotebook{best->id, server};
    }
    if (clock_.Monotonic() >= deadline) {
      return Unavailable("no instance of pool " + pool.value() + " became ready");
    }
    if (Status s = RaiseFromZero(pool); !s.ok()) return s;
    // The instance's turn to Ready is a write: look again at once. The
    // gateway's first probe of it is not: look again every 200 ms.
    if (!AwaitRecordWrite(seen, std::min(deadline, clock_.Monotonic() + std::chrono::milliseconds(200)))) {
      return Unavailable("the server is stopping");
    }
  }
}

uint64_t PoolServer::RecordWrites() {
  std::lock_guard lock(mu_);
  return record_writes_;
}

bool PoolServer::AwaitRecordWrite(uint64_t seen, MonoTime until) {
  std::unique_lock lock(mu_);
  // The condition variable waits on the steady clock, as clock_ (a
  // RealClock) reads it.
  cv_.wait_for(lock, until - clock_.Monotonic(), [&] { return stopping_ || record_writes_ != seen; });
  return !stopping_;
}

std::vector<PoolServer::Notebook> PoolServer::Notebooks() {
  std::vector<Notebook> out;
  for (auto& n : gateway_->Notebooks().value_or({})) out.push_back({std::move(n.pool), std::move(n.session)});
  return out;
}

Result<std::vector<JupyterServer>> PoolServer::ListServers(const InstanceId& id) {
  DSP_ASSIGN_OR_RETURN(Json json, CallAgent(id, "GET", "/v1/jupyter/servers", "", std::chrono::seconds(10)));
  return ParseJupyterServerList(json);
}

}  // namespace dspool
