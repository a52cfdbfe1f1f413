// The gateway's insides (gateway.h's Gateway::Impl), shared by the files
// that implement it, one role each:
//
//   gateway.cc    the public face, start and stop, the state other threads
//                 read (health, counters, notebooks), metrics
//   routes.cc     applying a routing table: listeners, backends, the web
//                 addresses, which backends are probed, notebook servers
//                 that went with their instance
//   dispatch.cc   accepting (and pausing when out of descriptors), the
//                 per-address limit, waiting for a client's first bytes,
//                 picking a backend, connecting, holding and waking,
//                 handing pairs to the relays
//   probing.cc    health probes and the health they publish
//
// Internal to the gateway module: nothing else includes it.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "gateway/balancer.h"
#include "gateway/gateway.h"
#include "gateway/probe.h"
#include "gateway/web_dispatch.h"
#include "http/proxy.h"
#include "net/reactor.h"
#include "net/relay.h"
#include "net/socket.h"
#include "os/unique_fd.h"

namespace dspool {
namespace gateway_internal {

inline constexpr const char* kLog = "gateway";
inline constexpr auto kWakeEvery = std::chrono::seconds(1);
inline constexpr auto kMaxProbeTimeout = std::chrono::seconds(5);
// The source port network security rules see on a probe: the first of the
// ephemeral ports (IANA), where the kernel picks them from.
inline constexpr uint16_t kProbeSourcePort = 49152;
inline constexpr int kMaxAcceptsPerEvent = 64;
// How long a listener whose accept failed (out of descriptors) rests.
inline constexpr auto kAcceptPause = std::chrono::milliseconds(100);
inline constexpr size_t kMaxHttpStatusLine = 1024;

using ListenerKey = std::pair<uint32_t, uint16_t>;  // address, port

inline std::string Where(const ListenerKey& k) { return FormatEndpoint(k.first, k.second); }

// Open relayed connections to one backend. Shared with the relay threads,
// which decrement it when a connection closes (RelayOptions::tag points at
// it); kept alive until the last one has.
struct ConnectionCount {
  std::atomic<int64_t> value{0};
};

// The relayed connections (Gateway::Connections): added by the control
// thread before it hands a pair to a relay, closed by the relay's on_close
// (RelayOptions::tag is the connection's id) on any relay thread, which
// also drops the backend's count. Each entry keeps its count alive, so a
// removed backend's count lives as long as its connections.
class RelayedTable {
 public:
  void Add(uint64_t id, RelayedConnection info, std::shared_ptr<ConnectionCount> count);
  void Closed(uint64_t id);
  std::vector<RelayedConnection> List() const;
  std::optional<RelayedConnection> Get(uint64_t id) const;

 private:
  struct Entry {
    RelayedConnection info;
    std::shared_ptr<ConnectionCount> count;
  };
  mutable std::mutex mu_;
  std::map<uint64_t, Entry> entries_;  // guarded by mu_; by id, so oldest first
};

}  // namespace gateway_internal

class Gateway::Impl {
 public:
  Impl(GatewayOptions options, GatewayHooks& hooks, std::unique_ptr<Reactor> loop,
       std::vector<std::unique_ptr<RelayLoop>> relays, std::shared_ptr<gateway_internal::RelayedTable> relayed)
      : options_(std::move(options)),
        hooks_(hooks),
        loop_(std::move(loop)),
        relays_(std::move(relays)),
        relayed_(std::move(relayed)) {}

  ~Impl() { Stop(); }

  // ---- the public face (gateway.cc) ----
  Status Start();
  void Stop();
  Status Apply(RoutingTable table);
  Status CheckListen(const PoolSpec& spec);
  std::optional<InstanceHealth> Health(const InstanceId& id) const;
  std::shared_ptr<PoolWeb> WebOf(const PoolName& pool) const;
  // A notebook session changed: held web requests are decided again.
  void WebRoutesChanged() {
    if (web_) web_->RoutesChanged();
  }
  std::vector<Gateway::PoolNotebook> Notebooks() const;
  std::vector<RelayedConnection> Connections() const { return relayed_->List(); }
  GatewayCounters counters() const;
  void Wake();
  std::vector<Gateway::HandedNotebook> HandOverNotebooks() const;
  void TakeOverNotebooks(std::vector<Gateway::HandedNotebook> notebooks);
  void StopListening();
  uint64_t OpenConnections() const;
  std::vector<Gateway::HandedRelay> HandOverRelays();
  void TakeOverRelays(std::vector<Gateway::HandedRelay> relays);

 private:
  // One probe spec against one backend.
  struct Probe {
    ProbeSpec spec;
    ProbeTracker tracker;
    Reactor::TimerId next = 0;     // the next probe, or its timeout while one runs
    UniqueFd fd;                     // the probe running now
    std::string reply;               // Http: the status line so far
    MonoTime started{};            // of the probe running now, or the last one
    explicit Probe(ProbeSpec s) : spec(std::move(s)), tracker(spec.number_of_probes) {}
  };

  struct Backend {
    RouteBackend route;
    std::shared_ptr<gateway_internal::ConnectionCount> count = std::make_shared<gateway_internal::ConnectionCount>();
    std::map<std::string, std::unique_ptr<Probe>> probes;  // by probe name
  };

  struct PoolRoutes {
    std::vector<ProbeSpec> probes;
    std::vector<LbRule> rules;
    std::shared_ptr<const RouteSecurity> security;  // null: no network security group
    std::map<InstanceId, std::unique_ptr<Backend>> backends;
    std::set<uint64_t> held;  // connection ids, oldest first
    MonoTime last_wake{};
    // While connections that asked for a wake wait, the wake is asked for
    // again every kWakeEvery: the capacity a wake made may go away (scaled
    // back to zero) before they are served. Once every one is served, the
    // next wait asks at once.
    Reactor::TimerId wake_timer = 0;
  };

  struct OpenListener {
    Listener spec;
    UniqueFd fd;
    Reactor::TimerId resume = 0;  // paused after a failed accept: when it is watched again
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
    bool transparent = false;  // this attempt leaves from the client's address
    Reactor::TimerId timer = 0;  // first bytes, connect timeout, or hold deadline
    std::optional<MonoTime> held_until;
    bool wants_wake = false;  // held for lack of capacity (not for a NAT slot's instance)
    bool awaiting = false;    // waiting for the client's first bytes (Listener::client_speaks_first)
  };

  struct HealthEntry {
    InstanceHealth health;
    std::shared_ptr<gateway_internal::ConnectionCount> count;
  };

  // ---- routing table (routes.cc) ----
  Status ApplyOnLoop(RoutingTable table);

  // Opens and closes the pools' web listeners; a pool keeps its WebEntry
  // (and so its users' sessions) while it has a listener.
  void ApplyWeb(const RoutingTable& table, std::vector<std::string>& errors);
  // Opens the web proxy's listener for `w`, with TLS if it has a
  // certificate (read here; the key as a root-only file).
  Result<uint16_t> ListenWeb(const gateway_internal::ListenerKey& key, const WebListener& w);
  void RetireBackend(Backend& b);
  // Notebook servers live on instances: each pool's WebEntry forgets those
  // on an instance that is no longer a Ready backend in `table`.
  void ForgetLostNotebooks(const RoutingTable& table);

  // Starts, stops or keeps probing a backend as its phase and the pool's
  // probe specs say.
  void SyncProbes(const PoolName& pool, Backend& b, const std::vector<ProbeSpec>& specs);

  // ---- accepting and dispatching (dispatch.cc) ----
  Status WatchListener(OpenListener& listener);
  void Accept(OpenListener& listener);
  // Whether the pool's network security groups let `peer` reach the
  // listener's backend port (RouteSecurity).
  bool Admitted(const Listener& via, const TcpEndpoint& peer);
  // Stops watching `listener` for kAcceptPause: its accept failed with
  // `why` (EMFILE, ENFILE, ENOMEM...), and a level-triggered listener would
  // report its backlog again at every turn.
  void PauseAccepting(OpenListener& listener, const Status& why);
  // Before a new connection from `address`: if it has
  // max_pending_per_address connections pending, closes one (gateway.h).
  void MakeRoomFor(uint32_t address);
  // Waits for the client's first bytes (a wake asked for now if the pool
  // cannot take the connection), then dispatches; closes it at
  // first_bytes_timeout, or if the client leaves first.
  void AwaitFirstBytes(Conn& c);
  void FirstBytes(uint64_t id);
  void SetAwaiting(Conn& c, bool awaiting);
  bool InRotation(const Backend& b, const LbRule& rule) const;
  // The balancer's choice for a rule port's connection among the pool's
  // backends it has not tried; nullopt if none is eligible.
  std::optional<InstanceId> Pick(const Conn& c, const PoolRoutes& pool) const;
  void Dispatch(Conn& c);
  // Starts the connect to `b` and hands the pair to a relay (HandToRelay).
  void Connect(Conn& c, Backend& b);
  // The pair goes to a relay thread while its backend still connects: the
  // relay waits for the connect on the registration it makes anyway, and
  // only a failure comes back here (RelayConnectFailed), with the client
  // socket unread, to try another instance or hold. Forgets `c` here.
  void HandToRelay(Conn& c, Backend& b);
  void RelayConnectFailed(const std::shared_ptr<Conn>& failed, UniqueFd client, const Status& why);
  // The connection as Connections() lists it, once handed to a relay; logs
  // the mapping where the instance does not see the client's address.
  RelayedConnection Describe(const Conn& c);
  void ConnectFailed(Conn& c, const Status& why);
  void Refuse(Conn& c);

  // ---- holding (dispatch.cc) ----
  void Hold(Conn& c, PoolRoutes& pool, bool wake);
  // Asks for a wake now, or (asked less than kWakeEvery ago) arms the
  // pool's wake timer to ask then.
  void MaybeWake(const PoolName& name, PoolRoutes& pool);
  void WakeTimerFired(const PoolName& name);

  // Gives every connection waiting on `name` another chance.
  void RetryHeld(const PoolName& name);
  size_t HeldCount() const;
  void UpdateHeldGauge();

  // Closes a connection that never reached the relay (FIN, not RST: a
  // waiting client sees a clean end; unless bytes it sent are unread,
  // which the kernel answers with a reset).
  void CloseConn(uint64_t id);
  // Lists a connection that has not reached a relay (again, for one whose
  // connect failed there).
  Conn& AddConn(std::unique_ptr<Conn> conn);
  // Forgets a connection closed or handed to a relay; returns it.
  std::unique_ptr<Conn> TakeConn(std::unordered_map<uint64_t, std::unique_ptr<Conn>>::iterator it);

  // ---- probes (probing.cc) ----
  void ScheduleProbe(const PoolName& pool, const InstanceId& id, Probe& p, std::chrono::milliseconds delay);
  Probe* FindProbeFor(const PoolName& pool, const InstanceId& id, const std::string& name);
  void RunProbe(const PoolName& pool, const InstanceId& id, const std::string& name);
  void ProbeEvent(const PoolName& pool, const InstanceId& id, const std::string& name, uint32_t events);
  void ProbeDone(const PoolName& pool_name, const InstanceId& id, Probe& p, bool success);
  void StopProbe(Probe& p);

  // ---- helpers (gateway.cc) ----
  Backend* FindBackend(const PoolName& pool, const InstanceId& id);
  void PublishHealth();
  void Count(uint64_t GatewayCounters::*field);

  const GatewayOptions options_;
  GatewayHooks& hooks_;
  const std::string session_key_ = options_.session_key.empty() ? NewSessionKey() : options_.session_key;
  WebDispatch dispatch_;
  std::unique_ptr<ProxyServer> web_;
  std::map<gateway_internal::ListenerKey, WebListener> web_open_;  // control thread
  mutable std::mutex web_mu_;
  std::map<PoolName, std::shared_ptr<PoolWeb>> web_pools_;  // guarded by web_mu_
  std::unique_ptr<Reactor> loop_;
  std::vector<std::unique_ptr<RelayLoop>> relays_;
  const std::shared_ptr<gateway_internal::RelayedTable> relayed_;  // shared with the relays' on_close
  std::thread control_;
  std::vector<std::thread> relay_threads_;
  bool started_ = false;

  // Control thread only.
  std::map<gateway_internal::ListenerKey, std::unique_ptr<OpenListener>> listeners_;
  std::map<PoolName, PoolRoutes> pools_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  // The ids in conns_ by client address, oldest first.
  std::unordered_map<uint32_t, std::set<uint64_t>> pending_by_address_;
  uint64_t next_conn_ = 1;
  size_t next_relay_ = 0;
  bool listening_stopped_ = false;  // StopListening: Apply opens nothing more
  std::atomic<uint64_t> pending_conns_{0};  // conns_.size(), for OpenConnections

  // Read from other threads.
  mutable std::mutex mu_;
  GatewayCounters counters_;                 // guarded by mu_ (the relays' are added on read)
  std::set<gateway_internal::ListenerKey> open_keys_;          // guarded by mu_
  std::map<InstanceId, HealthEntry> health_;  // guarded by mu_
};

}  // namespace dspool
