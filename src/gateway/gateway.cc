#include "gateway/gateway.h"

#include <future>
#include <sstream>
#include <unordered_map>

#include "base/log.h"
#include "base/metrics.h"
#include "base/thread_name.h"
#include "gateway/balancer.h"
#include "gateway/probe.h"
#include "model/ipv4.h"
#include "net/event_loop.h"
#include "net/relay.h"
#include "net/socket.h"
#include "os/unique_fd.h"
#include "http/proxy.h"

namespace dspool {
namespace {

constexpr const char* kLog = "gateway";
constexpr auto kWakeEvery = std::chrono::seconds(1);
constexpr auto kMaxProbeTimeout = std::chrono::seconds(5);
constexpr int kMaxAcceptsPerEvent = 64;
constexpr size_t kMaxHttpStatusLine = 1024;

using SteadyTime = EventLoop::TimePoint;
using ListenerKey = std::pair<uint32_t, uint16_t>;  // address, port

std::string Where(const ListenerKey& k) { return FormatEndpoint(k.first, k.second); }

// Open relayed connections to one backend. Shared with the relay threads,
// which decrement it when a connection closes (RelayOptions::tag points at
// it); kept alive until the last one has.
struct ConnectionCount {
  std::atomic<int64_t> value{0};
};

// One pool's web entry, with the hooks it calls bound to the pool.
class PoolWeb final : public WebHooks {
 public:
  PoolWeb(PoolName pool, GatewayHooks& hooks, const Clock& clock, const std::string& key)
      : pool_(std::move(pool)), hooks_(hooks), entry(clock, *this, key, WebEntryOptions{}) {}
  std::optional<std::string> PasswordHash(const std::string& user) override { return hooks_.PasswordHash(user); }
  void StartServer(const std::string& user, const std::string& token) override {
    hooks_.StartNotebook(pool_, user, token);
  }

 private:
  const PoolName pool_;
  GatewayHooks& hooks_;

 public:
  WebEntry entry;
};

// The ProxyRouter of all pools' web listeners: picks the pool's WebEntry by
// the port the client came in on. Activity tags carry the port in their
// upper half, so two pools' tags never meet.
class WebDispatch final : public ProxyRouter {
 public:
  ProxyRoute Decide(const Request& head) override {
    uint16_t port = 0;
    std::shared_ptr<PoolWeb> web = Find(head.listener_tag, &port);
    if (!web) return ProxyReply{JsonResponse(503, JsonErrorBody("Unavailable", "this address serves no pool now"))};
    ProxyRoute route = web->entry.Decide(head);
    if (auto* f = std::get_if<ProxyForward>(&route)) f->tag |= static_cast<uint64_t>(port) << 32;
    return route;
  }
  Response Serve(const Request& request) override {
    std::shared_ptr<PoolWeb> web = Find(request.listener_tag, nullptr);
    if (!web) return JsonResponse(503, JsonErrorBody("Unavailable", "this address serves no pool now"));
    return web->entry.Serve(request);
  }
  void Activity(uint64_t tag) override {
    std::shared_ptr<PoolWeb> web = Find(std::to_string(tag >> 32), nullptr);
    if (web) web->entry.Activity(tag & 0xffffffffu);
  }
  void Set(uint16_t port, std::shared_ptr<PoolWeb> web) {
    std::lock_guard lock(mu_);
    if (web) {
      by_port_[port] = std::move(web);
    } else {
      by_port_.erase(port);
    }
  }

 private:
  std::shared_ptr<PoolWeb> Find(const std::string& tag, uint16_t* port_out) {
    uint16_t port = static_cast<uint16_t>(std::atoi(tag.c_str()));
    if (port_out) *port_out = port;
    std::lock_guard lock(mu_);
    auto it = by_port_.find(port);
    return it == by_port_.end() ? nullptr : it->second;
  }
  std::mutex mu_;
  std::map<uint16_t, std::shared_ptr<PoolWeb>> by_port_;
};

}  // namespace

class Gateway::Impl {
 public:
  Impl(GatewayOptions options, GatewayHooks& hooks, std::unique_ptr<EventLoop> loop,
       std::vector<std::unique_ptr<RelayLoop>> relays)
      : options_(std::move(options)), hooks_(hooks), loop_(std::move(loop)), relays_(std::move(relays)) {}

  ~Impl() { Stop(); }

  Status Start() {
    ProxyOptions web_options;
    web_options.upstream_congestion_control = options_.backend_congestion_control;
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

  void Stop() {
    if (!started_) return;
    started_ = false;
    loop_->Stop();
    control_.join();
    // Control state goes first (held and connecting clients are closed),
    // then the relays, whose on_close still reaches the counts.
    listeners_.clear();
    conns_.clear();
    web_->Stop();
    for (auto& relay : relays_) relay->Stop();
    for (auto& t : relay_threads_) t.join();
    relay_threads_.clear();
  }

  Status Apply(RoutingTable table) {
    if (!started_) return FailedPrecondition("gateway: Apply before Start");
    std::promise<Status> done;
    auto result = done.get_future();
    if (!loop_->Post([&] { done.set_value(ApplyOnLoop(std::move(table))); })) {
      return Unavailable("gateway: stopped");
    }
    return result.get();
  }

  Status CheckListen(const PoolSpec& spec) {
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

  std::optional<InstanceHealth> Health(const InstanceId& id) const {
    std::lock_guard lock(mu_);
    auto it = health_.find(id);
    if (it == health_.end()) return std::nullopt;
    InstanceHealth h = it->second.health;
    h.connections = it->second.count->value.load(std::memory_order_relaxed);
    return h;
  }

  std::shared_ptr<PoolWeb> WebOf(const PoolName& pool) const {
    std::lock_guard lock(web_mu_);
    auto it = web_pools_.find(pool);
    return it == web_pools_.end() ? nullptr : it->second;
  }

  std::vector<Gateway::PoolNotebook> Notebooks() const {
    std::vector<Gateway::PoolNotebook> out;
    std::lock_guard lock(web_mu_);
    for (const auto& [pool, web] : web_pools_) {
      for (NotebookSession& s : web->entry.Sessions()) out.push_back({pool, std::move(s)});
    }
    return out;
  }

  GatewayCounters counters() const {
    GatewayCounters c;
    {
      std::lock_guard lock(mu_);
      c = counters_;
    }
    for (const auto& relay : relays_) {
      const RelayCounters& r = relay->counters();
      c.connections_active += r.connections_active.load(std::memory_order_relaxed);
      c.bytes_client_to_backend += r.bytes_client_to_backend.load(std::memory_order_relaxed);
      c.bytes_backend_to_client += r.bytes_backend_to_client.load(std::memory_order_relaxed);
      c.idle_timeouts += r.idle_timeouts.load(std::memory_order_relaxed);
      c.relay_errors += r.errors.load(std::memory_order_relaxed);
    }
    return c;
  }

 private:
  // One probe spec against one backend.
  struct Probe {
    ProbeSpec spec;
    ProbeTracker tracker;
    EventLoop::TimerId next = 0;     // the next probe, or its timeout while one runs
    UniqueFd fd;                     // the probe running now
    std::string reply;               // Http: the status line so far
    SteadyTime started{};            // of the probe running now, or the last one
    explicit Probe(ProbeSpec s) : spec(std::move(s)), tracker(spec.number_of_probes) {}
  };

  struct Backend {
    RouteBackend route;
    std::shared_ptr<ConnectionCount> count = std::make_shared<ConnectionCount>();
    std::map<std::string, std::unique_ptr<Probe>> probes;  // by probe name
  };

  struct PoolRoutes {
    std::vector<ProbeSpec> probes;
    std::vector<LbRule> rules;
    std::map<InstanceId, std::unique_ptr<Backend>> backends;
    std::set<uint64_t> held;  // connection ids, oldest first
    SteadyTime last_wake{};
  };

  struct OpenListener {
    Listener spec;
    UniqueFd fd;
  };

  // A client connection until it is handed to the relay.
  struct Conn {
    uint64_t id = 0;
    UniqueFd client;
    FlowKey flow;
    Listener via;  // pool, rule or NAT slot, backend port
    std::set<InstanceId> tried;
    int attempts = 0;
    UniqueFd backend;  // while connecting
    InstanceId backend_id;
    uint32_t backend_address = 0;
    EventLoop::TimerId timer = 0;  // connect timeout, or hold deadline
    std::optional<SteadyTime> held_until;
  };

  struct HealthEntry {
    InstanceHealth health;
    std::shared_ptr<ConnectionCount> count;
  };

  // ---- routing table ----

  Status ApplyOnLoop(RoutingTable table) {
    std::vector<std::string> errors;
    std::map<ListenerKey, Listener> wanted;
    for (const Listener& l : table.listeners) wanted[{l.address, l.port}] = l;
    for (auto it = listeners_.begin(); it != listeners_.end();) {
      if (wanted.count(it->first)) {
        it->second->spec = wanted[it->first];
        ++it;
        continue;
      }
      DSP_LOG(kInfo, kLog) << "stops listening on " << Where(it->first);
      loop_->Unwatch(it->second->fd.get());
      it = listeners_.erase(it);
    }
    for (const auto& [key, spec] : wanted) {
      if (listeners_.count(key)) continue;
      auto fd = ListenTcp(FormatIpv4(key.first), key.second, options_.backlog, nullptr);
      if (!fd.ok()) {
        errors.push_back(fd.status().message() + " (pool " + spec.pool.value() + ")");
        continue;
      }
      auto open = std::make_unique<OpenListener>(OpenListener{spec, std::move(*fd)});
      OpenListener* raw = open.get();
      Status s = loop_->Watch(raw->fd.get(), EventLoop::kReadable, [this, raw](uint32_t) { Accept(*raw); });
      if (!s.ok()) {
        errors.push_back(Where(key) + ": " + s.message());
        continue;
      }
      listeners_[key] = std::move(open);
      DSP_LOG(kInfo, kLog) << "listening on " << Where(key) << " for pool " << spec.pool << " ("
                           << (spec.rule ? "rule " + spec.rule->name : "NAT slot " + std::to_string(*spec.nat_index))
                           << " → port " << spec.backend_port << ")";
    }
    ApplyWeb(table.web, errors);
    {
      std::lock_guard lock(mu_);
      open_keys_.clear();
      for (const auto& [key, l] : listeners_) open_keys_.insert(key);
      for (const auto& [key, l] : web_open_) open_keys_.insert(key);
    }

    // Pools and backends.
    std::set<PoolName> in_table;
    for (const auto& [name, backends] : table.backends) in_table.insert(name);
    for (auto it = pools_.begin(); it != pools_.end();) {
      if (in_table.count(it->first)) {
        ++it;
        continue;
      }
      for (auto& [id, b] : it->second.backends) RetireBackend(*b);
      std::set<uint64_t> held = it->second.held;
      for (uint64_t id : held) CloseConn(id);
      it = pools_.erase(it);
    }
    for (const auto& [name, routes] : table.backends) {
      PoolRoutes& pool = pools_[name];
      pool.probes = table.probes[name];
      pool.rules.clear();
      for (const Listener& l : table.listeners) {
        if (l.pool == name && l.rule) pool.rules.push_back(*l.rule);
      }
      std::set<InstanceId> seen;
      for (const RouteBackend& r : routes) {
        seen.insert(r.id);
        auto& slot = pool.backends[r.id];
        if (!slot) slot = std::make_unique<Backend>();
        Backend& b = *slot;
        b.route = r;
        SyncProbes(name, b, pool.probes);
      }
      for (auto it = pool.backends.begin(); it != pool.backends.end();) {
        if (seen.count(it->first)) {
          ++it;
          continue;
        }
        DSP_LOG(kInfo, kLog) << "instance " << it->first << " leaves pool " << name << "'s rotation";
        RetireBackend(*it->second);
        it = pool.backends.erase(it);
      }
    }
    PublishHealth();
    for (auto& [name, pool] : pools_) RetryHeld(name);

    if (errors.empty()) return Status::Ok();
    std::string message = "gateway cannot listen on";
    for (const std::string& e : errors) message += " " + e + ";";
    message.pop_back();
    return Unavailable(message);
  }

  // Opens and closes the pools' web listeners; a pool keeps its WebEntry
  // (and so its users' sessions) while it has a listener.
  void ApplyWeb(const std::vector<WebListener>& wanted_list, std::vector<std::string>& errors) {
    std::map<ListenerKey, WebListener> wanted;
    for (const WebListener& w : wanted_list) wanted[{w.address, w.port}] = w;
    for (auto it = web_open_.begin(); it != web_open_.end();) {
      auto want = wanted.find(it->first);
      if (want != wanted.end() && want->second == it->second) {
        ++it;
        continue;
      }
      DSP_LOG(kInfo, kLog) << "stops serving Jupyter on " << Where(it->first);
      web_->Unlisten(it->first.second);
      dispatch_.Set(it->first.second, nullptr);
      it = web_open_.erase(it);
    }
    std::set<PoolName> pools;
    for (const auto& [key, w] : wanted) {
      pools.insert(w.pool);
      if (web_open_.count(key)) continue;
      auto port = web_->Listen(FormatIpv4(key.first), key.second, w.certificate_file, w.key_file);
      if (!port.ok()) {
        errors.push_back(port.status().message() + " (Jupyter of pool " + w.pool.value() + ")");
        continue;
      }
      std::lock_guard lock(web_mu_);
      auto& web = web_pools_[w.pool];
      if (!web) web = std::make_shared<PoolWeb>(w.pool, hooks_, *options_.clock, session_key_);
      dispatch_.Set(key.second, web);
      web_open_[key] = w;
      DSP_LOG(kInfo, kLog) << "serving Jupyter for pool " << w.pool << " on " << Where(key)
                           << (w.certificate_file.empty() ? " (no TLS)" : " (TLS)");
    }
    std::lock_guard lock(web_mu_);
    std::erase_if(web_pools_, [&](const auto& kv) { return !pools.count(kv.first); });
  }

  void RetireBackend(Backend& b) {
    for (auto& [name, probe] : b.probes) StopProbe(*probe);
    // Relayed connections go on; the count lives as long as they do.
    retired_.push_back(b.count);
    std::erase_if(retired_, [](const std::shared_ptr<ConnectionCount>& c) { return c->value.load() == 0; });
  }

  // Starts, stops or keeps probing a backend as its phase and the pool's
  // probe specs say.
  void SyncProbes(const PoolName& pool, Backend& b, const std::vector<ProbeSpec>& specs) {
    for (auto it = b.probes.begin(); it != b.probes.end();) {
      auto spec = std::find_if(specs.begin(), specs.end(), [&](const ProbeSpec& s) { return s.name == it->first; });
      if (b.route.ready && !b.route.draining && spec != specs.end() && *spec == it->second->spec) {
        ++it;
        continue;
      }
      StopProbe(*it->second);
      it = b.probes.erase(it);
    }
    // A draining instance gets nothing new: no need to know its health.
    if (!b.route.ready || b.route.draining) return;
    for (const ProbeSpec& s : specs) {
      if (b.probes.count(s.name)) continue;
      auto& probe = b.probes[s.name] = std::make_unique<Probe>(s);
      ScheduleProbe(pool, b.route.id, *probe, std::chrono::milliseconds(0));
    }
  }

  // ---- accepting and dispatching ----

  void Accept(OpenListener& listener) {
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

  bool InRotation(const Backend& b, const LbRule& rule) const {
    if (!b.route.ready || b.route.draining) return false;
    if (rule.probe.empty()) return true;
    auto it = b.probes.find(rule.probe);
    return it != b.probes.end() && it->second->tracker.in_rotation();
  }

  void Dispatch(Conn& c) {
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

  void Connect(Conn& c, Backend& b) {
    c.backend_id = b.route.id;
    c.backend_address = b.route.address;
    auto port = static_cast<uint16_t>(c.via.backend_port);
    auto fd = StartConnectTcp(b.route.address, port, options_.backend_congestion_control);
    if (!fd.ok()) return ConnectFailed(c, fd.status());
    c.backend = std::move(*fd);
    uint64_t id = c.id;
    Status s = loop_->Watch(c.backend.get(), EventLoop::kWritable, [this, id](uint32_t) { Connected(id); });
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

  void Connected(uint64_t id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn& c = *it->second;
    loop_->Unwatch(c.backend.get());
    loop_->Cancel(c.timer);
    c.timer = 0;
    auto port = static_cast<uint16_t>(c.via.backend_port);
    if (Status s = FinishConnect(c.backend, c.backend_address, port); !s.ok()) {
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

  void ConnectFailed(Conn& c, const Status& why) {
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

  void Refuse(Conn& c) {
    Count(&GatewayCounters::refused);
    CloseConn(c.id);
  }

  // ---- holding ----

  void Hold(Conn& c, PoolRoutes& pool, bool wake) {
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
    UpdateHeldGauge();
    uint64_t id = c.id;
    // Only a close or reset by the client matters: what it sends (an SSH
    // banner) waits in the socket for the instance.
    if (!loop_->Watch(c.client.get(), EventLoop::kPeerClosed, [this, id](uint32_t) {
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
    if (wake) MaybeWake(c.via.pool, pool);
  }

  void MaybeWake(const PoolName& name, PoolRoutes& pool) {
    SteadyTime now = loop_->now();
    if (pool.last_wake != SteadyTime{} && now - pool.last_wake < kWakeEvery) return;
    pool.last_wake = now;
    Count(&GatewayCounters::wake_requests);
    hooks_.WakePool(name);
  }

  // Gives every connection waiting on `name` another chance.
  void RetryHeld(const PoolName& name) {
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

  size_t HeldCount() const {
    size_t n = 0;
    for (const auto& [name, pool] : pools_) n += pool.held.size();
    return n;
  }
  void UpdateHeldGauge() {
    size_t n = HeldCount();
    std::lock_guard lock(mu_);
    counters_.held_now = n;
  }

  // Closes a connection that never reached the relay (FIN, not RST: a
  // waiting client sees a clean end).
  void CloseConn(uint64_t id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn& c = *it->second;
    if (c.client.valid()) loop_->Unwatch(c.client.get());
    if (c.backend.valid()) loop_->Unwatch(c.backend.get());
    if (c.timer) loop_->Cancel(c.timer);
    if (auto pool = pools_.find(c.via.pool); pool != pools_.end() && pool->second.held.erase(id)) UpdateHeldGauge();
    conns_.erase(it);
  }

  // ---- probes ----

  void ScheduleProbe(const PoolName& pool, const InstanceId& id, Probe& p, std::chrono::milliseconds delay) {
    p.next = loop_->RunAfter(delay, [this, pool, id, name = p.spec.name] { RunProbe(pool, id, name); });
  }

  Probe* FindProbeFor(const PoolName& pool, const InstanceId& id, const std::string& name) {
    Backend* b = FindBackend(pool, id);
    if (!b) return nullptr;
    auto it = b->probes.find(name);
    return it == b->probes.end() ? nullptr : it->second.get();
  }

  void RunProbe(const PoolName& pool, const InstanceId& id, const std::string& name) {
    Backend* b = FindBackend(pool, id);
    Probe* p = FindProbeFor(pool, id, name);
    if (!b || !p) return;
    p->next = 0;
    p->started = loop_->now();
    auto port = static_cast<uint16_t>(p->spec.port);
    auto fd = StartConnectTcp(b->route.address, port);
    if (!fd.ok()) return ProbeDone(pool, id, *p, false);
    p->fd = std::move(*fd);
    p->reply.clear();
    auto timeout = std::min<std::chrono::milliseconds>(std::chrono::seconds(p->spec.interval_seconds),
                                                       kMaxProbeTimeout);
    Status s = loop_->Watch(p->fd.get(), EventLoop::kWritable,
                            [this, pool, id, name](uint32_t events) { ProbeEvent(pool, id, name, events); });
    if (!s.ok()) return ProbeDone(pool, id, *p, false);
    p->next = loop_->RunAfter(timeout, [this, pool, id, name] {
      if (Probe* probe = FindProbeFor(pool, id, name)) {
        probe->next = 0;
        ProbeDone(pool, id, *probe, false);
      }
    });
  }

  void ProbeEvent(const PoolName& pool, const InstanceId& id, const std::string& name, uint32_t events) {
    Backend* b = FindBackend(pool, id);
    Probe* p = FindProbeFor(pool, id, name);
    if (!b || !p || !p->fd.valid()) return;
    if (p->reply.empty() && (events & EventLoop::kWritable)) {
      // The handshake ended.
      if (!FinishConnect(p->fd, b->route.address, static_cast<uint16_t>(p->spec.port)).ok()) {
        return ProbeDone(pool, id, *p, false);
      }
      if (p->spec.protocol == ProbeProtocol::kTcp) return ProbeDone(pool, id, *p, true);
      std::string request = "GET " + p->spec.path + " HTTP/1.1\r\nHost: " + FormatIpv4(b->route.address) +
                            "\r\nUser-Agent: dspool-probe\r\nConnection: close\r\n\r\n";
      // A few dozen bytes into an empty socket buffer: one write takes them.
      auto sent = TrySend(p->fd, request);
      if (!sent.ok() || *sent != request.size()) return ProbeDone(pool, id, *p, false);
      p->reply = " ";  // marks "request sent"; the reply is appended after it
      if (!loop_->Change(p->fd.get(), EventLoop::kReadable).ok()) return ProbeDone(pool, id, *p, false);
      return;
    }
    char buf[512];
    auto n = TryRecv(p->fd, buf, sizeof(buf));
    if (n.ok() && !*n) return;  // nothing yet
    if (!n.ok() || **n == 0) return ProbeDone(pool, id, *p, false);
    p->reply.append(buf, **n);
    size_t eol = p->reply.find("\r\n");
    if (eol == std::string::npos) {
      if (p->reply.size() > kMaxHttpStatusLine) ProbeDone(pool, id, *p, false);
      return;
    }
    // " HTTP/1.1 200 OK": Azure counts only 200 as healthy.
    std::string_view line(p->reply.data() + 1, eol - 1);
    bool ok = line.rfind("HTTP/1.", 0) == 0 && line.size() >= 12 && line.substr(8, 5) == " 200 ";
    ok = ok || (line.size() == 12 && line.substr(8) == " 200");
    ProbeDone(pool, id, *p, ok);
  }

  void ProbeDone(const PoolName& pool_name, const InstanceId& id, Probe& p, bool success) {
    if (p.fd.valid()) {
      loop_->Unwatch(p.fd.get());
      p.fd.reset();
    }
    if (p.next) loop_->Cancel(p.next);
    p.next = 0;
    bool changed = p.tracker.Record(success);
    if (changed) {
      Count(&GatewayCounters::probe_transitions);
      DSP_LOG(kInfo, kLog) << "instance " << id << " of pool " << pool_name << " is "
                           << (p.tracker.in_rotation() ? "in rotation" : "out of rotation") << " (probe "
                           << p.spec.name << ", " << (success ? "answered" : "no answer") << ")";
      PublishHealth();
    }
    {
      // Counted once its outcome shows in Health(): whoever sees the probe
      // counted sees what it changed.
      std::lock_guard lock(mu_);
      ++counters_.probes;
      if (!success) ++counters_.probe_failures;
    }
    // Probes start every interval, however long each took.
    std::chrono::milliseconds next = options_.fast_probe_interval;
    if (p.tracker.ever_succeeded()) {
      auto due = p.started + std::chrono::seconds(p.spec.interval_seconds);
      next = std::max(std::chrono::milliseconds(0),
                      std::chrono::ceil<std::chrono::milliseconds>(due - loop_->now()));
    }
    ScheduleProbe(pool_name, id, p, next);
    if (changed && p.tracker.in_rotation()) RetryHeld(pool_name);
  }

  void StopProbe(Probe& p) {
    if (p.fd.valid()) {
      loop_->Unwatch(p.fd.get());
      p.fd.reset();
    }
    if (p.next) loop_->Cancel(p.next);
    p.next = 0;
    p.tracker.Remove();
  }

  // ---- helpers ----

  Backend* FindBackend(const PoolName& pool, const InstanceId& id) {
    auto p = pools_.find(pool);
    if (p == pools_.end()) return nullptr;
    auto b = p->second.backends.find(id);
    return b == p->second.backends.end() ? nullptr : b->second.get();
  }

  void PublishHealth() {
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

  void Count(uint64_t GatewayCounters::*field) {
    std::lock_guard lock(mu_);
    ++(counters_.*field);
  }

  const GatewayOptions options_;
  GatewayHooks& hooks_;
  const std::string session_key_ = options_.session_key.empty() ? NewSessionKey() : options_.session_key;
  WebDispatch dispatch_;
  std::unique_ptr<ProxyServer> web_;
  std::map<ListenerKey, WebListener> web_open_;  // control thread
  mutable std::mutex web_mu_;
  std::map<PoolName, std::shared_ptr<PoolWeb>> web_pools_;  // guarded by web_mu_
  std::unique_ptr<EventLoop> loop_;
  std::vector<std::unique_ptr<RelayLoop>> relays_;
  std::thread control_;
  std::vector<std::thread> relay_threads_;
  bool started_ = false;

  // Control thread only.
  std::map<ListenerKey, std::unique_ptr<OpenListener>> listeners_;
  std::map<PoolName, PoolRoutes> pools_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::vector<std::shared_ptr<ConnectionCount>> retired_;
  uint64_t next_conn_ = 1;
  size_t next_relay_ = 0;

  // Read from other threads.
  mutable std::mutex mu_;
  GatewayCounters counters_;                 // guarded by mu_ (the relays' are added on read)
  std::set<ListenerKey> open_keys_;          // guarded by mu_
  std::map<InstanceId, HealthEntry> health_;  // guarded by mu_
};

Result<std::unique_ptr<Gateway>> Gateway::Create(GatewayOptions options, GatewayHooks& hooks) {
  if (options.relay_threads < 1 || options.relay_threads > 64) {
    return InvalidArgument("gateway: relay threads must be between 1 and 64, not " +
                           std::to_string(options.relay_threads));
  }
  if (!options.backend_congestion_control.empty()) {
    DSP_RETURN_IF_ERROR(CheckCongestionControl(options.backend_congestion_control));
  }
  if (options.clock == nullptr) options.clock = &SystemClock();
  auto now = [clock = options.clock] { return clock->Monotonic(); };
  DSP_ASSIGN_OR_RETURN(auto loop, EventLoop::Create(now));
  std::vector<std::unique_ptr<RelayLoop>> relays;
  for (int i = 0; i < options.relay_threads; ++i) {
    RelayLoopOptions relay_options;
    relay_options.now = now;
    relay_options.on_close = [](uint64_t tag) {
      reinterpret_cast<ConnectionCount*>(tag)->value.fetch_sub(1, std::memory_order_relaxed);
    };
    DSP_ASSIGN_OR_RETURN(auto relay, RelayLoop::Create(std::move(relay_options)));
    relays.push_back(std::move(relay));
  }
  return std::unique_ptr<Gateway>(
      new Gateway(std::make_unique<Impl>(std::move(options), hooks, std::move(loop), std::move(relays))));
}

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() = default;
Status Gateway::Start() { return impl_->Start(); }
void Gateway::Stop() { impl_->Stop(); }
Status Gateway::Apply(RoutingTable table) { return impl_->Apply(std::move(table)); }
Status Gateway::CheckListen(const PoolSpec& spec) { return impl_->CheckListen(spec); }
std::optional<InstanceHealth> Gateway::Health(const InstanceId& id) const { return impl_->Health(id); }
GatewayCounters Gateway::counters() const { return impl_->counters(); }

void Gateway::NotebookReady(const PoolName& pool, const std::string& user, const InstanceId& instance,
                            uint32_t address, uint16_t port) {
  if (auto web = impl_->WebOf(pool)) web->entry.ServerReady(user, instance, address, port);
}
void Gateway::NotebookFailed(const PoolName& pool, const std::string& user, const std::string& error) {
  if (auto web = impl_->WebOf(pool)) web->entry.ServerFailed(user, error);
}
void Gateway::NotebookGone(const PoolName& pool, const std::string& user) {
  if (auto web = impl_->WebOf(pool)) web->entry.ServerGone(user);
}
std::vector<Gateway::PoolNotebook> Gateway::Notebooks() const { return impl_->Notebooks(); }

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
  metric("dspool_gateway_held_total", "counter", "Connections that waited for an instance.", c.held_total);
  metric("dspool_gateway_held", "gauge", "Connections waiting for an instance now.", c.held_now);
  metric("dspool_gateway_hold_timeouts_total", "counter", "Waiting connections closed after the hold timeout.",
         c.hold_timeouts);
  metric("dspool_gateway_hold_abandoned_total", "counter", "Waiting connections the client closed.",
         c.hold_abandoned);
  metric("dspool_gateway_wake_requests_total", "counter", "Requests to wake a pool for a waiting connection.",
         c.wake_requests);
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
