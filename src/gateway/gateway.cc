#include "gateway/gateway_impl.h"

#include <future>
#include <sstream>

#include "base/log.h"
#include "base/metrics.h"
#include "base/thread_name.h"
#include "model/ipv4.h"

namespace dspool {

using namespace gateway_internal;

Status Gateway::Impl::Start() {
  ProxyOptions web_options;
  web_options.upstream_congestion_control = options_.backend_congestion_control;
  web_options.clock = options_.clock;
  DSP_ASSIGN_OR_RETURN(web_, ProxyServer::Create(dispatch_, web_options));
  web_->Start(options_.web_threads);
  control_ = std::thread([this] {
    SetThreadName("gw-control");
    if (Status s = loop_->Run(); !s.ok()) DSP_LOG(kError, kLog) << s;
  });
  for (auto& relay : relays_) {
    relay_threads_.emplace_back([&relay, i = relay_threads_.size()] {
      SetThreadName("gw-relay-" + std::to_string(i));
      if (Status s = relay->Run(); !s.ok()) DSP_LOG(kError, kLog) << s;
    });
  }
  started_ = true;
  return Status::Ok();
}

void Gateway::Impl::Stop() {
  if (!started_) return;
  started_ = false;
  loop_->Stop();
  control_.join();
  // Control state goes first (held and connecting clients are closed),
  // then the relays, whose on_close still reaches the counts.
  listeners_.clear();
  conns_.clear();
  pending_by_address_.clear();
  web_->Stop();
  for (auto& relay : relays_) relay->Stop();
  for (auto& t : relay_threads_) t.join();
  relay_threads_.clear();
}

void Gateway::Impl::Wake() {
  loop_->Wake();
  for (auto& relay : relays_) relay->Wake();
  if (web_) web_->Wake();
}

Status Gateway::Impl::Apply(RoutingTable table) {
  if (!started_) return FailedPrecondition("gateway: Apply before Start");
  std::promise<Status> done;
  auto result = done.get_future();
  if (!loop_->Post([&] { done.set_value(ApplyOnLoop(std::move(table))); })) {
    return Unavailable("gateway: stopped");
  }
  return result.get();
}

Status Gateway::Impl::CheckListen(const PoolSpec& spec) {
  const LoadBalancerSpec lb = spec.load_balancer.value_or(LoadBalancerSpec{});
  uint32_t address = ParseIpv4(lb.frontend_address).value_or(0);
  std::set<ListenerKey> open;
  {
    std::lock_guard lock(mu_);
    open = open_keys_;
  }
  auto try_port = [&](int64_t port, const std::string& field) -> Status {
    ListenerKey key{address, static_cast<uint16_t>(port)};
    if (open.count(key)) return Status::Ok();
    auto fd = ListenTcp(FormatIpv4(address), key.second, 1, nullptr);
    if (!fd.ok()) return InvalidArgument(field + ": " + fd.status().message());
    return Status::Ok();
  };
  if (spec.jupyter) DSP_RETURN_IF_ERROR(try_port(spec.jupyter->frontend_port, "jupyter.frontendPort"));
  for (size_t i = 0; i < lb.rules.size(); ++i) {
    DSP_RETURN_IF_ERROR(
        try_port(lb.rules[i].frontend_port, "loadBalancer.rules[" + std::to_string(i) + "].frontendPort"));
  }
  for (size_t i = 0; i < lb.nat_pools.size(); ++i) {
    const NatPool& nat = lb.nat_pools[i];
    for (int64_t port = nat.frontend_port_start; port <= nat.frontend_port_end; ++port) {
      DSP_RETURN_IF_ERROR(try_port(port, "loadBalancer.inboundNatPools[" + std::to_string(i) + "]"));
    }
  }
  return Status::Ok();
}

std::optional<InstanceHealth> Gateway::Impl::Health(const InstanceId& id) const {
  std::lock_guard lock(mu_);
  auto it = health_.find(id);
  if (it == health_.end()) return std::nullopt;
  InstanceHealth h = it->second.health;
  h.connections = it->second.count->value.load(std::memory_order_relaxed);
  return h;
}

std::shared_ptr<PoolWeb> Gateway::Impl::WebOf(const PoolName& pool) const {
  std::lock_guard lock(web_mu_);
  auto it = web_pools_.find(pool);
  return it == web_pools_.end() ? nullptr : it->second;
}

std::vector<Gateway::PoolNotebook> Gateway::Impl::Notebooks() const {
  std::vector<Gateway::PoolNotebook> out;
  std::lock_guard lock(web_mu_);
  for (const auto& [pool, web] : web_pools_) {
    for (NotebookSession& s : web->entry.Sessions()) out.push_back({pool, std::move(s)});
  }
  return out;
}

GatewayCounters Gateway::Impl::counters() const {
  GatewayCounters c;
  {
    std::lock_guard lock(mu_);
    c = counters_;
  }
  if (web_) c.denied += web_->stats().refused;
  for (const auto& relay : relays_) {
    const RelayCounters& r = relay->counters();
    c.connections_active += r.connections_active.load(std::memory_order_relaxed);
    c.bytes_client_to_backend += r.bytes_client_to_backend.load(std::memory_order_relaxed);
    c.bytes_backend_to_client += r.bytes_backend_to_client.load(std::memory_order_relaxed);
    c.idle_timeouts += r.idle_timeouts.load(std::memory_order_relaxed);
    c.relay_errors += r.errors.load(std::memory_order_relaxed);
    c.connections_relayed += r.connects_completed.load(std::memory_order_relaxed);
  }
  return c;
}

// ---- helpers ----

Gateway::Impl::Backend* Gateway::Impl::FindBackend(const PoolName& pool, const InstanceId& id) {
  auto p = pools_.find(pool);
  if (p == pools_.end()) return nullptr;
  auto b = p->second.backends.find(id);
  return b == p->second.backends.end() ? nullptr : b->second.get();
}

void Gateway::Impl::PublishHealth() {
  std::map<InstanceId, HealthEntry> health;
  for (const auto& [name, pool] : pools_) {
    for (const auto& [id, b] : pool.backends) {
      HealthEntry& e = health[id];
      e.count = b->count;
      bool any_probe = false, all_in = true, never = false;
      for (const LbRule& rule : pool.rules) {
        if (rule.probe.empty()) continue;
        any_probe = true;
        auto p = b->probes.find(rule.probe);
        bool in = p != b->probes.end() && p->second->tracker.in_rotation();
        all_in = all_in && in;
        never = never || p == b->probes.end() || !p->second->tracker.ever_succeeded();
      }
      bool rotation = false;
      for (const LbRule& rule : pool.rules) rotation = rotation || InRotation(*b, rule);
      e.health.in_rotation = rotation;
      if (!any_probe) {
        e.health.state = "unprobed";
      } else if (all_in) {
        e.health.state = "healthy";
      } else if (never) {
        e.health.state = "probing";
      } else {
        e.health.state = "unhealthy";
      }
    }
  }
  std::lock_guard lock(mu_);
  health_ = std::move(health);
}

void Gateway::Impl::Count(uint64_t GatewayCounters::*field) {
  std::lock_guard lock(mu_);
  ++(counters_.*field);
}

Result<std::unique_ptr<Gateway>> Gateway::Create(GatewayOptions options, GatewayHooks& hooks) {
  if (options.relay_threads < 1 || options.relay_threads > 64) {
    return InvalidArgument("gateway: relay threads must be between 1 and 64, not " +
                           std::to_string(options.relay_threads));
  }
  if (options.first_bytes_timeout <= std::chrono::milliseconds(0)) {
    return InvalidArgument("gateway: the first-bytes timeout must be positive, not " +
                           std::to_string(options.first_bytes_timeout.count()) + " ms");
  }
  if (options.max_pending_per_address < 1) {
    return InvalidArgument("gateway: pending connections per client address must be at least 1");
  }
  if (!options.backend_congestion_control.empty()) {
    DSP_RETURN_IF_ERROR(CheckCongestionControl(options.backend_congestion_control));
  }
  if (options.clock == nullptr) options.clock = &SystemClock();
  DSP_ASSIGN_OR_RETURN(auto loop, Reactor::Create(options.clock));
  auto relayed = std::make_shared<RelayedTable>();
  std::vector<std::unique_ptr<RelayLoop>> relays;
  for (int i = 0; i < options.relay_threads; ++i) {
    RelayLoopOptions relay_options;
    relay_options.clock = options.clock;
    relay_options.on_close = [relayed](uint64_t id) { relayed->Closed(id); };
    DSP_ASSIGN_OR_RETURN(auto relay, RelayLoop::Create(std::move(relay_options)));
    relays.push_back(std::move(relay));
  }
  return std::unique_ptr<Gateway>(new Gateway(
      std::make_unique<Impl>(std::move(options), hooks, std::move(loop), std::move(relays), std::move(relayed))));
}

namespace gateway_internal {

void RelayedTable::Add(uint64_t id, RelayedConnection info, std::shared_ptr<ConnectionCount> count) {
  count->value.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  entries_[id] = Entry{std::move(info), std::move(count)};
}

void RelayedTable::Closed(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  it->second.count->value.fetch_sub(1, std::memory_order_relaxed);
  entries_.erase(it);
}

std::optional<RelayedConnection> RelayedTable::Get(uint64_t id) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.info;
}

std::vector<RelayedConnection> RelayedTable::List() const {
  std::lock_guard lock(mu_);
  std::vector<RelayedConnection> out;
  out.reserve(entries_.size());
  for (const auto& [id, e] : entries_) out.push_back(e.info);
  return out;
}

}  // namespace gateway_internal

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() = default;
Status Gateway::Start() { return impl_->Start(); }
void Gateway::Stop() { impl_->Stop(); }
Status Gateway::Apply(RoutingTable table) { return impl_->Apply(std::move(table)); }
Status Gateway::CheckListen(const PoolSpec& spec) { return impl_->CheckListen(spec); }
std::optional<InstanceHealth> Gateway::Health(const InstanceId& id) const { return impl_->Health(id); }
GatewayCounters Gateway::counters() const { return impl_->counters(); }
void Gateway::Wake() { impl_->Wake(); }

// Each change of a session may answer a request held for it (WebEntry's
// /hub/spawn-pending): the proxy decides those again.
void Gateway::NotebookReady(const PoolName& pool, const std::string& user, const InstanceId& instance,
                            uint32_t address, uint16_t port) {
  if (auto web = impl_->WebOf(pool)) web->entry.ServerReady(user, instance, address, port);
  impl_->WebRoutesChanged();
}
void Gateway::NotebookFailed(const PoolName& pool, const std::string& user, const std::string& error) {
  if (auto web = impl_->WebOf(pool)) web->entry.ServerFailed(user, error);
  impl_->WebRoutesChanged();
}
void Gateway::NotebookGone(const PoolName& pool, const std::string& user) {
  if (auto web = impl_->WebOf(pool)) web->entry.ServerGone(user);
  impl_->WebRoutesChanged();
}
bool Gateway::NotebookLost(const PoolName& pool, const std::string& user, const InstanceId& instance, uint16_t port,
                           const std::string& error) {
  auto web = impl_->WebOf(pool);
  const bool lost = web && web->entry.ServerLost(user, instance, port, error);
  if (lost) impl_->WebRoutesChanged();
  return lost;
}
std::vector<Gateway::PoolNotebook> Gateway::Notebooks() const { return impl_->Notebooks(); }
std::vector<Gateway::HandedNotebook> Gateway::HandOverNotebooks() const { return impl_->HandOverNotebooks(); }
void Gateway::TakeOverNotebooks(std::vector<HandedNotebook> notebooks) {
  impl_->TakeOverNotebooks(std::move(notebooks));
}
void Gateway::StopListening() { impl_->StopListening(); }
uint64_t Gateway::OpenConnections() const { return impl_->OpenConnections(); }
std::vector<Gateway::HandedRelay> Gateway::HandOverRelays() { return impl_->HandOverRelays(); }
void Gateway::TakeOverRelays(std::vector<HandedRelay> relays) { impl_->TakeOverRelays(std::move(relays)); }

std::vector<Gateway::HandedRelay> Gateway::Impl::HandOverRelays() {
  std::vector<Gateway::HandedRelay> out;
  for (auto& relay : relays_) {
    for (RelayLoop::Handed& h : relay->HandOverIdle()) {
      std::optional<RelayedConnection> info = relayed_->Get(h.tag);
      relayed_->Closed(h.tag);
      if (!info) continue;  // not listed: cannot happen (listed before relayed); closes
      out.push_back({std::move(*info), std::move(h.client), std::move(h.backend), h.idle_timeout});
    }
  }
  return out;
}

void Gateway::Impl::TakeOverRelays(std::vector<Gateway::HandedRelay> relays) {
  std::promise<void> done;
  auto finished = done.get_future();
  if (!loop_->Post([&] {
        for (Gateway::HandedRelay& r : relays) {
          const uint64_t id = next_conn_++;
          Backend* b = FindBackend(r.info.pool, r.info.instance);
          relayed_->Add(id, r.info, b ? b->count : std::make_shared<ConnectionCount>());
          RelayOptions options;
          options.idle_timeout = r.idle_timeout;
          options.tag = id;
          RelayLoop& relay = *relays_[next_relay_++ % relays_.size()];
          if (Status s = relay.Add(std::move(r.client), std::move(r.backend), options); !s.ok()) {
            relayed_->Closed(id);
            DSP_LOG(kWarning, kLog) << "relay (taken over): " << s;
          }
        }
        done.set_value();
      })) {
    return;
  }
  finished.wait();
}

std::vector<Gateway::HandedNotebook> Gateway::Impl::HandOverNotebooks() const {
  std::vector<Gateway::HandedNotebook> out;
  std::lock_guard lock(web_mu_);
  for (const auto& [pool, web] : web_pools_) {
    for (auto& h : web->entry.HandOver()) out.push_back({pool, std::move(h)});
  }
  return out;
}

void Gateway::Impl::TakeOverNotebooks(std::vector<Gateway::HandedNotebook> notebooks) {
  std::map<PoolName, std::vector<WebEntry::HandedSession>> by_pool;
  for (auto& n : notebooks) by_pool[n.pool].push_back(std::move(n.session));
  for (auto& [pool, sessions] : by_pool) {
    if (auto web = WebOf(pool)) web->entry.TakeOver(std::move(sessions));
  }
}

void Gateway::Impl::StopListening() {
  if (!started_) return;
  std::promise<void> done;
  auto finished = done.get_future();
  if (!loop_->Post([&] {
        listening_stopped_ = true;
        for (auto& [key, l] : listeners_) {
          loop_->Unwatch(l->fd.get());
          loop_->Cancel(l->resume);
        }
        listeners_.clear();
        for (const auto& [key, w] : web_open_) web_->Unlisten(key.second);
        web_open_.clear();
        std::lock_guard lock(mu_);
        open_keys_.clear();
        done.set_value();
      })) {
    return;
  }
  finished.wait();
}

uint64_t Gateway::Impl::OpenConnections() const {
  uint64_t n = pending_conns_.load(std::memory_order_relaxed);
  for (const auto& r : relays_) n += r->counters().connections_active.load(std::memory_order_relaxed);
  if (web_) n += web_->stats().connections_active;
  return n;
}
std::vector<RelayedConnection> Gateway::Connections() const { return impl_->Connections(); }

std::string GatewayMetrics(const GatewayCounters& c) {
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help, uint64_t v) {
    WriteMetric(out, name, type, help, static_cast<int64_t>(v));
  };
  metric("dspool_gateway_connections_accepted_total", "counter", "Client connections accepted.",
         c.connections_accepted);
  metric("dspool_gateway_connections_relayed_total", "counter", "Connections relayed to an instance.",
         c.connections_relayed);
  metric("dspool_gateway_connections_active", "gauge", "Relayed connections open now.", c.connections_active);
  metric("dspool_gateway_connect_failures_total", "counter", "Connects to an instance that failed.",
         c.connect_failures);
  metric("dspool_gateway_refused_total", "counter", "Connections closed at once (empty NAT slot, too many waiting).",
         c.refused);
  metric("dspool_gateway_denied_total", "counter", "Connections reset at once by a network security rule.",
         c.denied);
  metric("dspool_gateway_held_total", "counter", "Connections that waited for an instance.", c.held_total);
  metric("dspool_gateway_held", "gauge", "Connections waiting for an instance now.", c.held_now);
  metric("dspool_gateway_hold_timeouts_total", "counter", "Waiting connections closed after the hold timeout.",
         c.hold_timeouts);
  metric("dspool_gateway_hold_abandoned_total", "counter", "Waiting connections the client closed.",
         c.hold_abandoned);
  metric("dspool_gateway_wake_requests_total", "counter", "Requests to wake a pool for a waiting connection.",
         c.wake_requests);
  metric("dspool_gateway_awaiting_first_bytes", "gauge",
         "Connections to SSH ports waiting for the client's first bytes now.", c.awaiting_first_bytes);
  metric("dspool_gateway_first_bytes_timeouts_total", "counter",
         "Connections to SSH ports closed for sending nothing within the first-bytes timeout.",
         c.first_bytes_timeouts);
  metric("dspool_gateway_pending_evicted_total", "counter",
         "Pending connections closed to make room for a newer one from the same client address.",
         c.pending_evicted);
  metric("dspool_gateway_accept_pauses_total", "counter",
         "Times a listener stopped accepting for a moment after a failed accept (out of descriptors).",
         c.accept_pauses);
  metric("dspool_gateway_probes_total", "counter", "Health probes run.", c.probes);
  metric("dspool_gateway_probe_failures_total", "counter", "Health probes that failed.", c.probe_failures);
  metric("dspool_gateway_probe_transitions_total", "counter", "Instances entering or leaving rotation.",
         c.probe_transitions);
  metric("dspool_gateway_bytes_client_to_instance_total", "counter", "Bytes relayed from clients to instances.",
         c.bytes_client_to_backend);
  metric("dspool_gateway_bytes_instance_to_client_total", "counter", "Bytes relayed from instances to clients.",
         c.bytes_backend_to_client);
  metric("dspool_gateway_idle_timeouts_total", "counter", "Relayed connections closed for idleness.",
         c.idle_timeouts);
  metric("dspool_gateway_relay_errors_total", "counter", "Relayed connections ended by a socket error.",
         c.relay_errors);
  return out.str();
}

}  // namespace dspool
