#include "gateway/gateway_impl.h"

#include "base/log.h"
#include "model/ipv4.h"

namespace dspool {

using namespace gateway_internal;

// ---- accepting and dispatching ----

void Gateway::Impl::Accept(OpenListener& listener) {
  for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
    TcpEndpoint peer;
    auto accepted = TryAcceptTcp(listener.fd, &peer);
    if (!accepted.ok()) {
      // EMFILE and friends: log, and let the next turn try again.
      DSP_LOG(kWarning, kLog) << "accept on " << FormatEndpoint(listener.spec.address, listener.spec.port) << ": "
                              << accepted.status();
      return;
    }
    if (!*accepted) return;
    FlowKey flow{peer.ip, peer.port, listener.spec.address, listener.spec.port, Protocol::kTcp};
    // Only the 5-tuple hash reads the address the client connected to;
    // a listener on all addresses learns it from the socket.
    if (flow.dst_ip == 0 && listener.spec.rule && listener.spec.rule->distribution == Distribution::kDefault) {
      auto local = LocalEndpoint(**accepted);
      if (!local.ok()) continue;  // reset before we looked: nothing to do
      flow.dst_ip = local->ip;
    }
    auto conn = std::make_unique<Conn>();
    conn->id = next_conn_++;
    conn->client = std::move(**accepted);
    conn->flow = flow;
    conn->via = listener.spec;
    Conn& c = *conn;
    conns_[c.id] = std::move(conn);
    Count(&GatewayCounters::connections_accepted);
    Dispatch(c);
  }
}

bool Gateway::Impl::InRotation(const Backend& b, const LbRule& rule) const {
  if (!b.route.ready || b.route.draining) return false;
  if (rule.probe.empty()) return true;
  auto it = b.probes.find(rule.probe);
  return it != b.probes.end() && it->second->tracker.in_rotation();
}

void Gateway::Impl::Dispatch(Conn& c) {
  auto pool_it = pools_.find(c.via.pool);
  if (pool_it == pools_.end()) return Refuse(c);
  PoolRoutes& pool = pool_it->second;
  if (c.via.nat_index) {
    for (auto& [id, b] : pool.backends) {
      if (b->route.index != *c.via.nat_index) continue;
      if (!b->route.ready) return Hold(c, pool, /*wake=*/false);
      return Connect(c, *b);
    }
    return Refuse(c);  // no instance has this slot
  }
  std::vector<dspool::Backend> candidates;
  for (auto& [id, b] : pool.backends) {
    if (c.tried.count(id)) continue;
    candidates.push_back(dspool::Backend{id, b->route.index, InRotation(*b, *c.via.rule), b->route.draining,
                                         b->count->value.load(std::memory_order_relaxed)});
  }
  std::optional<InstanceId> pick = PickBackend(c.via.rule->distribution, c.flow, candidates);
  if (!pick) return Hold(c, pool, /*wake=*/true);
  Connect(c, *pool.backends[*pick]);
}

void Gateway::Impl::Connect(Conn& c, Backend& b) {
  c.backend_id = b.route.id;
  c.backend_address = b.route.address;
  auto port = static_cast<uint16_t>(c.via.backend_port);
  auto fd = StartConnectTcp(b.route.address, port, options_.backend_congestion_control);
  if (!fd.ok()) return ConnectFailed(c, fd.status());
  c.backend = std::move(*fd);
  uint64_t id = c.id;
  Status s = loop_->Watch(c.backend.get(), Reactor::kWritable, [this, id](uint32_t) { Connected(id); });
  if (!s.ok()) return ConnectFailed(c, s);
  c.timer = loop_->RunAfter(options_.connect_timeout, [this, id] {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn& conn = *it->second;
    conn.timer = 0;
    loop_->Unwatch(conn.backend.get());
    conn.backend.reset();
    ConnectFailed(conn, DeadlineExceeded("connect " + FormatEndpoint(conn.backend_address,
                                                                     static_cast<uint16_t>(conn.via.backend_port)) +
                                         ": timed out"));
  });
}

void Gateway::Impl::Connected(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  loop_->Unwatch(c.backend.get());
  loop_->Cancel(c.timer);
  c.timer = 0;
  auto port = static_cast<uint16_t>(c.via.backend_port);
  if (Status s = FinishConnect(c.backend.get(), c.backend_address, port); !s.ok()) {
    c.backend.reset();
    return ConnectFailed(c, s);
  }
  Backend* b = FindBackend(c.via.pool, c.backend_id);
  std::shared_ptr<ConnectionCount> count = b ? b->count : std::make_shared<ConnectionCount>();
  if (!b) retired_.push_back(count);
  RelayOptions relay_options;
  if (c.via.rule) relay_options.idle_timeout = std::chrono::minutes(c.via.rule->idle_timeout_minutes);
  relay_options.tag = reinterpret_cast<uint64_t>(count.get());
  count->value.fetch_add(1, std::memory_order_relaxed);
  RelayLoop& relay = *relays_[next_relay_++ % relays_.size()];
  if (Status s = relay.Add(std::move(c.client), std::move(c.backend), relay_options); !s.ok()) {
    count->value.fetch_sub(1, std::memory_order_relaxed);
    DSP_LOG(kWarning, kLog) << "relay: " << s;
  } else {
    Count(&GatewayCounters::connections_relayed);
  }
  conns_.erase(it);
}

void Gateway::Impl::ConnectFailed(Conn& c, const Status& why) {
  Count(&GatewayCounters::connect_failures);
  DSP_LOG(kInfo, kLog) << "pool " << c.via.pool << ": " << why.message() << " (instance " << c.backend_id << ")";
  c.tried.insert(c.backend_id);
  ++c.attempts;
  if (c.via.nat_index) return CloseConn(c.id);  // the slot names one instance: no other to try
  auto pool = pools_.find(c.via.pool);
  if (pool == pools_.end()) return CloseConn(c.id);
  if (c.attempts >= options_.connect_attempts) return Hold(c, pool->second, /*wake=*/true);
  Dispatch(c);
}

void Gateway::Impl::Refuse(Conn& c) {
  Count(&GatewayCounters::refused);
  CloseConn(c.id);
}

// ---- holding ----

void Gateway::Impl::Hold(Conn& c, PoolRoutes& pool, bool wake) {
  if (!c.held_until) {
    if (HeldCount() >= options_.max_held) {
      DSP_LOG(kWarning, kLog) << "pool " << c.via.pool << ": " << options_.max_held
                              << " connections wait already; refusing one more";
      return Refuse(c);
    }
    c.held_until = loop_->now() + options_.hold_timeout;
    Count(&GatewayCounters::held_total);
    DSP_LOG(kDebug, kLog) << "pool " << c.via.pool << ": no instance can take a connection; holding it";
  }
  pool.held.insert(c.id);
  c.wants_wake = wake;
  // The wake first: a reader that sees the held gauge sees the wake it led to.
  if (wake) MaybeWake(c.via.pool, pool);
  UpdateHeldGauge();
  uint64_t id = c.id;
  // Only a close or reset by the client matters: what it sends (an SSH
  // banner) waits in the socket for the instance.
  if (!loop_->Watch(c.client.get(), Reactor::kPeerClosed, [this, id](uint32_t) {
        Count(&GatewayCounters::hold_abandoned);
        CloseConn(id);
      }).ok()) {
    return CloseConn(id);
  }
  c.timer = loop_->RunAt(*c.held_until, [this, id] {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    it->second->timer = 0;
    Count(&GatewayCounters::hold_timeouts);
    DSP_LOG(kInfo, kLog) << "pool " << it->second->via.pool << ": a connection waited "
                         << options_.hold_timeout.count() / 1000 << " s for an instance; closing it";
    CloseConn(id);
  });
}

void Gateway::Impl::MaybeWake(const PoolName& name, PoolRoutes& pool) {
  const MonoTime now = loop_->now();
  const bool recent = pool.last_wake != MonoTime{} && now - pool.last_wake < kWakeEvery;
  if (!recent) {
    pool.last_wake = now;
    Count(&GatewayCounters::wake_requests);
    hooks_.WakePool(name);
  }
  if (pool.wake_timer == 0) {
    pool.wake_timer = loop_->RunAt(pool.last_wake + kWakeEvery, [this, name] { WakeTimerFired(name); });
  }
}

void Gateway::Impl::WakeTimerFired(const PoolName& name) {
  auto pool = pools_.find(name);
  if (pool == pools_.end()) return;
  pool->second.wake_timer = 0;
  for (uint64_t id : pool->second.held) {
    auto it = conns_.find(id);
    if (it != conns_.end() && it->second->wants_wake) return MaybeWake(name, pool->second);
  }
}

void Gateway::Impl::RetryHeld(const PoolName& name) {
  auto pool = pools_.find(name);
  if (pool == pools_.end() || pool->second.held.empty()) return;
  std::set<uint64_t> held;
  held.swap(pool->second.held);
  for (uint64_t id : held) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    loop_->Unwatch(c.client.get());
    loop_->Cancel(c.timer);
    c.timer = 0;
    c.tried.clear();
    c.attempts = 0;
    Dispatch(c);
  }
  UpdateHeldGauge();
}

size_t Gateway::Impl::HeldCount() const {
  size_t n = 0;
  for (const auto& [name, pool] : pools_) n += pool.held.size();
  return n;
}

void Gateway::Impl::UpdateHeldGauge() {
  size_t n = HeldCount();
  std::lock_guard lock(mu_);
  counters_.held_now = n;
}

void Gateway::Impl::CloseConn(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (c.client.valid()) loop_->Unwatch(c.client.get());
  if (c.backend.valid()) loop_->Unwatch(c.backend.get());
  if (c.timer) loop_->Cancel(c.timer);
  if (auto pool = pools_.find(c.via.pool); pool != pools_.end() && pool->second.held.erase(id)) UpdateHeldGauge();
  conns_.erase(it);
}

}  // namespace dspool
