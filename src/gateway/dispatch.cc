#include "gateway/gateway_impl.h"

#include "base/log.h"
#include "model/ipv4.h"

namespace dspool {

using namespace gateway_internal;

// ---- accepting and dispatching ----

Status Gateway::Impl::WatchListener(OpenListener& listener) {
  OpenListener* raw = &listener;
  return loop_->Watch(listener.fd.get(), Reactor::kReadable, [this, raw](uint32_t) { Accept(*raw); });
}

void Gateway::Impl::Accept(OpenListener& listener) {
  for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
    TcpEndpoint peer;
    auto accepted = TryAcceptTcp(listener.fd, &peer);
    if (!accepted.ok()) return PauseAccepting(listener, accepted.status());
    if (!*accepted) return;
    if (!Admitted(listener.spec, peer)) {
      Count(&GatewayCounters::denied);
      CloseWithReset(std::move(**accepted));
      continue;
    }
    FlowKey flow{peer.ip, peer.port, listener.spec.address, listener.spec.port, Protocol::kTcp};
    // Only the 5-tuple hash reads the address the client connected to;
    // a listener on all addresses learns it from the socket.
    if (flow.dst_ip == 0 && listener.spec.rule && listener.spec.rule->distribution == Distribution::kDefault) {
      auto local = LocalEndpoint(**accepted);
      if (!local.ok()) continue;  // reset before we looked: nothing to do
      flow.dst_ip = local->ip;
    }
    MakeRoomFor(peer.ip);
    auto conn = std::make_unique<Conn>();
    conn->id = next_conn_++;
    conn->client = std::move(**accepted);
    conn->flow = flow;
    conn->via = listener.spec;
    Conn& c = AddConn(std::move(conn));
    Count(&GatewayCounters::connections_accepted);
    if (c.via.client_speaks_first) {
      AwaitFirstBytes(c);
    } else {
      Dispatch(c);
    }
  }
}

bool Gateway::Impl::Admitted(const Listener& via, const TcpEndpoint& peer) {
  auto pool = pools_.find(via.pool);
  if (pool == pools_.end() || !pool->second.security) return true;
  SecurityVerdict verdict = pool->second.security->Inbound(peer.ip, peer.port, via.backend_port);
  if (!verdict.allowed) {
    DSP_LOG(kDebug, kLog) << "pool " << via.pool << ": " << FormatEndpoint(peer.ip, peer.port) << " to port "
                          << via.port << " " << verdict.Explain();
  }
  return verdict.allowed;
}

void Gateway::Impl::PauseAccepting(OpenListener& listener, const Status& why) {
  Count(&GatewayCounters::accept_pauses);
  ListenerKey key{listener.spec.address, listener.spec.port};
  DSP_LOG(kWarning, kLog) << "accept on " << Where(key) << ": " << why << "; accepting again in "
                          << kAcceptPause.count() << " ms";
  loop_->Unwatch(listener.fd.get());
  listener.resume = loop_->RunAfter(kAcceptPause, [this, key] {
    auto it = listeners_.find(key);
    if (it == listeners_.end()) return;
    OpenListener& l = *it->second;
    l.resume = 0;
    if (Status s = WatchListener(l); !s.ok()) PauseAccepting(l, s);
  });
}

void Gateway::Impl::MakeRoomFor(uint32_t address) {
  auto pending = pending_by_address_.find(address);
  if (pending == pending_by_address_.end() || pending->second.size() < options_.max_pending_per_address) return;
  // Real clients speak at once: the oldest silent one is the likeliest
  // part of a flood, and a user's own connection (spoken, held for a
  // wake) the last to go.
  uint64_t victim = *pending->second.begin();
  for (uint64_t id : pending->second) {
    if (conns_.at(id)->awaiting) {
      victim = id;
      break;
    }
  }
  Count(&GatewayCounters::pending_evicted);
  DSP_LOG(kDebug, kLog) << FormatIpv4(address) << " has " << options_.max_pending_per_address
                        << " connections pending; closing its oldest";
  CloseConn(victim);
}

void Gateway::Impl::AwaitFirstBytes(Conn& c) {
  // The wake is not held back by the client: a pool that cannot take the
  // connection starts now, while its first bytes are on their way.
  if (auto pool = pools_.find(c.via.pool); pool != pools_.end() && c.via.rule && !Pick(c, pool->second)) {
    MaybeWake(c.via.pool, pool->second);
  }
  SetAwaiting(c, true);
  uint64_t id = c.id;
  if (!loop_->Watch(c.client.get(), Reactor::kReadable | Reactor::kPeerClosed, [this, id](uint32_t) {
        FirstBytes(id);
      }).ok()) {
    return CloseConn(id);
  }
  c.timer = loop_->RunAfter(options_.first_bytes_timeout, [this, id] {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    it->second->timer = 0;
    Count(&GatewayCounters::first_bytes_timeouts);
    DSP_LOG(kDebug, kLog) << "pool " << it->second->via.pool << ": a client sent nothing in "
                          << options_.first_bytes_timeout.count() << " ms; closing it";
    CloseConn(id);
  });
}

void Gateway::Impl::FirstBytes(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  char byte;
  // Peeked, not read: the instance gets every byte the client sent.
  auto peeked = TryPeek(c.client, &byte, 1);
  if (peeked.ok() && !peeked->has_value()) return;  // nothing yet
  loop_->Unwatch(c.client.get());
  loop_->Cancel(c.timer);
  c.timer = 0;
  SetAwaiting(c, false);
  if (!peeked.ok() || **peeked == 0) return CloseConn(id);  // left (or reset) without a word
  Dispatch(c);
}

void Gateway::Impl::SetAwaiting(Conn& c, bool awaiting) {
  if (c.awaiting == awaiting) return;
  c.awaiting = awaiting;
  std::lock_guard lock(mu_);
  if (awaiting) {
    ++counters_.awaiting_first_bytes;
  } else {
    --counters_.awaiting_first_bytes;
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
  std::optional<InstanceId> pick = Pick(c, pool);
  if (!pick) return Hold(c, pool, /*wake=*/true);
  Connect(c, *pool.backends[*pick]);
}

std::optional<InstanceId> Gateway::Impl::Pick(const Conn& c, const PoolRoutes& pool) const {
  std::vector<dspool::Backend> candidates;
  for (const auto& [id, b] : pool.backends) {
    if (c.tried.count(id)) continue;
    candidates.push_back(dspool::Backend{id, b->route.index, InRotation(*b, *c.via.rule), b->route.draining,
                                         b->count->value.load(std::memory_order_relaxed)});
  }
  return PickBackend(c.via.rule->distribution, c.flow, candidates);
}

bool MayConnectFromClient(uint32_t client) {
  const uint32_t first_octet = client >> 24;
  return first_octet != 127 && first_octet != 0;
}

void Gateway::Impl::Connect(Conn& c, Backend& b) {
  c.backend_id = b.route.id;
  c.backend_address = b.route.address;
  auto port = static_cast<uint16_t>(c.via.backend_port);
  c.transparent = options_.transparent_connect && MayConnectFromClient(c.flow.src_ip);
  Result<UniqueFd> fd = UniqueFd();
  if (c.transparent) {
    fd = StartConnectTcp(b.route.address, port, options_.backend_congestion_control, c.flow.src_ip);
    if (!fd.ok() && fd.status().code() != StatusCode::kUnavailable) {
      // The kernel would not let this socket leave from the client's
      // address (no capability...): the instance sees the bridge's.
      DSP_LOG(kWarning, kLog) << "pool " << c.via.pool << ": " << fd.status().message()
                              << "; connecting from this host's address instead";
      c.transparent = false;
    }
  }
  if (!c.transparent) fd = StartConnectTcp(b.route.address, port, options_.backend_congestion_control);
  if (!fd.ok()) return ConnectFailed(c, fd.status());
  c.backend = std::move(*fd);
  HandToRelay(c, b);
}

void Gateway::Impl::HandToRelay(Conn& c, Backend& b) {
  RelayOptions relay_options;
  if (c.via.rule) relay_options.idle_timeout = std::chrono::minutes(c.via.rule->idle_timeout_minutes);
  relay_options.tag = c.id;
  relay_options.connect_timeout = options_.connect_timeout;
  // Listed before the relay has it: its on_close may come at once.
  relayed_->Add(c.id, Describe(c), b.count);
  std::shared_ptr<Conn> conn = TakeConn(conns_.find(c.id));
  UniqueFd client = std::move(conn->client);
  UniqueFd backend = std::move(conn->backend);
  // On the relay's thread; the rest on this loop.
  relay_options.on_connect_failed = [this, conn](UniqueFd client_back, Status why) {
    auto fd = std::make_shared<UniqueFd>(std::move(client_back));
    loop_->Post([this, conn, fd, why = std::move(why)] { RelayConnectFailed(conn, std::move(*fd), why); });
  };
  RelayLoop& relay = *relays_[next_relay_++ % relays_.size()];
  // Both sockets are net/socket.h's (TryAcceptTcp, StartConnectTcp).
  if (Status s = relay.AddPrepared(std::move(client), std::move(backend), std::move(relay_options)); !s.ok()) {
    relayed_->Closed(conn->id);
    DSP_LOG(kWarning, kLog) << "relay: " << s;
  }
}

void Gateway::Impl::RelayConnectFailed(const std::shared_ptr<Conn>& failed, UniqueFd client, const Status& why) {
  relayed_->Closed(failed->id);  // not relayed after all; its backend's count drops
  auto conn = std::make_unique<Conn>(std::move(*failed));
  conn->client = std::move(client);
  Conn& c = AddConn(std::move(conn));
  const std::string where = FormatEndpoint(c.backend_address, static_cast<uint16_t>(c.via.backend_port));
  ConnectFailed(c, Status(why.code(), "connect " + where + ": " + why.message()));
}

RelayedConnection Gateway::Impl::Describe(const Conn& c) {
  RelayedConnection r;
  r.pool = c.via.pool;
  r.instance = c.backend_id;
  r.ssh = c.via.client_speaks_first;
  r.client_address = c.flow.src_ip;
  r.client_port = c.flow.src_port;
  r.frontend_port = c.via.port;
  r.instance_address = c.backend_address;
  r.instance_port = static_cast<uint16_t>(c.via.backend_port);
  r.transparent = c.transparent;
  r.started = options_.clock->Now();
  // The backend socket's own end is what the instance sees as its peer.
  if (auto local = LocalEndpoint(c.backend); local.ok()) {
    r.seen_address = local->ip;
    r.seen_port = local->port;
  }
  const std::string client = FormatEndpoint(r.client_address, r.client_port);
  const std::string instance =
      r.instance.value() + " (" + FormatEndpoint(r.instance_address, r.instance_port) + ")";
  const std::string seen = FormatEndpoint(r.seen_address, r.seen_port);
  if (r.transparent) {
    DSP_LOG(kDebug, kLog) << "pool " << r.pool << ": client " << client << " → instance " << instance
                          << ", from the client's address (" << seen << ")";
  } else {
    DSP_LOG(kInfo, kLog) << "pool " << r.pool << ": client " << client << " → instance " << instance
                         << ", which sees it as " << seen;
  }
  return r;
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
  if (pool->second.held.empty()) {
    // Every waiting connection was served: the next one to wait asks for
    // a wake at once, however soon (the pool may be scaled back to zero
    // within the second).
    pool->second.last_wake = MonoTime{};
    loop_->Cancel(pool->second.wake_timer);
    pool->second.wake_timer = 0;
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
  SetAwaiting(c, false);
  TakeConn(it);
}

Gateway::Impl::Conn& Gateway::Impl::AddConn(std::unique_ptr<Conn> conn) {
  Conn& c = *conn;
  conns_[c.id] = std::move(conn);
  pending_conns_.store(conns_.size(), std::memory_order_relaxed);
  pending_by_address_[c.flow.src_ip].insert(c.id);
  return c;
}

std::unique_ptr<Gateway::Impl::Conn> Gateway::Impl::TakeConn(
    std::unordered_map<uint64_t, std::unique_ptr<Conn>>::iterator it) {
  auto pending = pending_by_address_.find(it->second->flow.src_ip);
  if (pending != pending_by_address_.end()) {
    pending->second.erase(it->first);
    if (pending->second.empty()) pending_by_address_.erase(pending);
  }
  std::unique_ptr<Conn> conn = std::move(it->second);
  conns_.erase(it);
  pending_conns_.store(conns_.size(), std::memory_order_relaxed);
  return conn;
}

}  // namespace dspool
