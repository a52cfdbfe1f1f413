// Gateway: the pools' one address. Listens on every rule and NAT-pool port
// of the routing table, picks an instance for each new connection, connects
// to it and hands the pair to the splice relay; probes the instances; holds
// connections that find no instance and asks for one (wake-on-connect).
//
//  accept ─┬─ SSH port: wait for the client's first bytes (and if no
//          │  instance is eligible, WakePool(pool) now); silent for
//          │  first_bytes_timeout, or gone: close
//          └─ other ports: at once
//     ▼
//  dispatch ► NAT port? ── instance k Ready ──────────────────────► connect
//     │                 └─ instance k not Ready yet ─► hold        │ fails: next
//     │                 └─ no instance k ─► refuse (close)         │ backend, at
//     └──► rule port ── PickBackend (probes, drain, distribution) ─┘ most 3 tries
//                    └─ none eligible ─► hold + WakePool(pool)
//  hold: re-dispatched whenever the pool's backends change or one enters
//        rotation; closed (FIN) after hold_timeout; dropped if the client
//        leaves; refused beyond max_held.
//  pending (accepted, not yet relayed): at most max_pending_per_address per
//        client address; one more closes the oldest of them still waiting
//        for its first bytes (else the oldest).
//  connected ──► RelayLoop (round robin over relay_threads), idle timeout
//                from the rule; the backend's connection count drops when
//                the relay closes it. Listed by Connections() until then.
//
// Clients' addresses: with transparent_connect, the connection to the
// instance leaves from the client's own address (IP_TRANSPARENT), so the
// instance's sshd, `who`, `last` and its per-source limits see the client.
// A loopback client (127.0.0.0/8 cannot be a source on the pool's bridge),
// a host without the routing for it, or a socket the kernel refuses falls
// back to the host's address on the bridge; the gateway then logs the
// mapping (client → the address and port the instance sees), and
// Connections() keeps it, for `dspool session list`.
//
// Probes (per instance and probe spec, only for Ready instances): Tcp is a
// completed handshake; Http is a GET answered with 200. A timeout is the
// probe's interval (at most 5 s). An instance that never answered is
// probed every fast_probe_interval until its first success, so a new
// instance joins at once; after that, every intervalInSeconds (ProbeTracker
// has the thresholds). A rule without a probe uses the Ready phase alone.
//
// Jupyter: each pool with a `jupyter` section gets a WebEntry (web_entry.h)
// on its port, served by one http/ProxyServer for all pools.
//
// Floods: an SSH port (Listener::client_speaks_first) costs an instance
// nothing until the client has spoken: thousands of idle connections wait
// here, each one descriptor and a timer, not in the instance's sshd
// (MaxStartups). Real clients send their identification string at once;
// what they send stays in the socket for the instance (MSG_PEEK). The wake
// is asked for at the accept, not at the first bytes, so waiting for them
// never delays a pool's start from zero; the connection is held (as any
// other) only once it has spoken. A listener whose accept fails (out of
// descriptors) pauses for kAcceptPause and tries again; the connections
// wait in its backlog meanwhile.
//
// Threads: one control thread (a Reactor: listeners, connects, holds,
// probes), relay_threads data threads (RelayLoop) and web_threads for the
// HTTP proxy. Every public method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "gateway/routing_table.h"
#include "gateway/web_entry.h"
#include "model/instance.h"
#include "model/pool.h"
#include "os/unique_fd.h"

namespace dspool {

class Reactor;
class RelayLoop;

class GatewayHooks {
 public:
  virtual ~GatewayHooks() = default;
  // No instance of `pool` can take a connection now, and one is waiting:
  // make capacity (raise the pool from zero). Called on the gateway's
  // control thread, at most once per second per pool while connections
  // wait; must not block for long.
  virtual void WakePool(const PoolName& pool) = 0;

  // Jupyter (WebEntry): the user's password hash, nullopt if none; and
  // "start `user`'s notebook server in `pool` with `token`", answered later
  // with Gateway::NotebookReady or NotebookFailed. Called on the web
  // threads; must not block for long.
  virtual std::optional<std::string> PasswordHash(const std::string& user) = 0;
  virtual void StartNotebook(const PoolName& pool, const std::string& user, const std::string& token) = 0;
};

struct GatewayOptions {
  int relay_threads = 1;
  std::chrono::milliseconds connect_timeout{5000};
  // How long a connection waits for an instance, and how many may wait.
  std::chrono::milliseconds hold_timeout{120000};
  size_t max_held = 1024;
  // Listeners whose client speaks first (SSH): a connection that has sent
  // nothing after first_bytes_timeout is closed, never having reached an
  // instance.
  std::chrono::milliseconds first_bytes_timeout{10000};
  // Connections from one client address not yet handed to a relay
  // (waiting for their first bytes, connecting, held). One more closes the
  // oldest of them that has sent nothing (else the oldest), so a flood from
  // a user's own address (one NAT) cannot lock the user out. Keep it well
  // above a team's logins at once (test/integration/burst_test.sh: 30).
  size_t max_pending_per_address = 256;
  int backlog = 4096;
  // Probing of instances that never answered (see above).
  std::chrono::milliseconds fast_probe_interval{200};
  // Attempts to connect a new connection to a backend before it is held.
  int connect_attempts = 3;
  // Time (default: the real clock). Holds, probes, connect and idle
  // timeouts and the notebooks' traffic idleness run on its monotonic
  // reading, as do the web proxy's header, idle and connect deadlines;
  // session cookies expire, and "last activity" is shown, on its wall
  // reading. Must outlive the gateway. With a simulated clock, Wake() after
  // moving it.
  const Clock* clock = nullptr;
  // The pools' Jupyter addresses: threads of the HTTP proxy, and the key
  // that signs session cookies (identity/session.h; empty: a random one, so
  // sessions end with the process).
  int web_threads = 2;
  std::string session_key;
  // TCP congestion control of the connections to instances, relayed and
  // proxied (TCP_CONGESTION); empty: the host's default. Instances sit on
  // the host's own bridge, where a loss-based algorithm keeps the short
  // path full; a host default of BBR there costs more than half the
  // throughput (docs/benchmarks.md). Create checks that the host has it.
  std::string backend_congestion_control = "cubic";
  // Connect to instances from the client's address (IP_TRANSPARENT; see
  // above). Only where the host delivers the answers to this host's
  // transparent sockets (LxcProvider::transparent_connect): otherwise the
  // instances' answers go astray and every such connect times out.
  bool transparent_connect = false;
};

// A connection relayed to an instance (on a rule or NAT-pool port), from its
// hand-over to a relay until it closes.
struct RelayedConnection {
  PoolName pool;
  InstanceId instance;
  bool ssh = false;  // backend port 22 (Listener::client_speaks_first)
  uint32_t client_address = 0;  // the client, as the gateway accepted it
  uint16_t client_port = 0;
  uint16_t frontend_port = 0;
  uint32_t instance_address = 0;
  uint16_t instance_port = 0;
  // The client as the instance sees it (what its sshd logs): the client's
  // own address if `transparent`, else this host's address on the bridge;
  // the port is the gateway's.
  uint32_t seen_address = 0;
  uint16_t seen_port = 0;
  bool transparent = false;
  TimePoint started;  // handed to the relay (wall clock)
};

// Whether a connection from `client` may leave for an instance from the
// client's own address (given transparent_connect): not from loopback,
// which the kernel never lets out onto another link, nor from 0.0.0.0/8.
bool MayConnectFromClient(uint32_t client);

// Monotonic counters, except the gauges marked so.
struct GatewayCounters {
  uint64_t connections_accepted = 0;
  uint64_t connections_relayed = 0;  // handed to a relay, whose connect to the backend then completed
  uint64_t connections_active = 0;   // gauge: relayed and not yet closed
  uint64_t connect_failures = 0;     // backend connects that failed (each attempt)
  uint64_t refused = 0;              // closed at once: empty NAT slot, hold queue full
  uint64_t denied = 0;               // reset at accept by a network security rule (SSH, NAT and Jupyter ports)
  uint64_t held_total = 0;           // connections that had to wait
  uint64_t held_now = 0;             // gauge
  uint64_t hold_timeouts = 0;        // waited hold_timeout, closed
  uint64_t hold_abandoned = 0;       // the client left while waiting
  uint64_t wake_requests = 0;        // WakePool calls
  uint64_t awaiting_first_bytes = 0;  // gauge: SSH ports, the client has not spoken yet
  uint64_t first_bytes_timeouts = 0;  // sent nothing within first_bytes_timeout, closed
  uint64_t pending_evicted = 0;       // closed for a newer one from its address (max_pending_per_address)
  uint64_t accept_pauses = 0;         // a listener's accept failed (EMFILE...) and it paused
  uint64_t probes = 0;
  uint64_t probe_failures = 0;
  uint64_t probe_transitions = 0;  // into or out of rotation
  uint64_t bytes_client_to_backend = 0;
  uint64_t bytes_backend_to_client = 0;
  uint64_t idle_timeouts = 0;
  uint64_t relay_errors = 0;
};

class Gateway {
 public:
  static Result<std::unique_ptr<Gateway>> Create(GatewayOptions options, GatewayHooks& hooks);
  ~Gateway();  // stops, closing every connection
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Starts the control and relay threads.
  Status Start();
  void Stop();

  // Replaces the routing table: opens listeners that are new (on the
  // caller's thread, so their errors come back here), closes those that are
  // gone, updates backends, re-dispatches held connections. A listener that
  // cannot be opened is skipped (and retried at the next Apply); the error
  // names every such address. REQUIRES: started.
  Status Apply(RoutingTable table);

  // Whether the gateway could listen on every frontend port of `spec` that
  // it does not hold already (for a pool being created): tries to bind
  // each and lets go. InvalidArgument naming the field and port if not.
  Status CheckListen(const PoolSpec& spec);

  // What the gateway knows of an instance: nullopt if it is no backend of
  // any pool with a load balancer.
  std::optional<InstanceHealth> Health(const InstanceId& id) const;

  GatewayCounters counters() const;

  // Makes every thread (control, relays, web) read its clock again and run
  // what is due: for a simulated GatewayOptions::clock that was moved.
  void Wake();

  // Jupyter: how a StartNotebook went, and a server that is gone (culled,
  // stopped, its instance removed).
  void NotebookReady(const PoolName& pool, const std::string& user, const InstanceId& instance, uint32_t address,
                     uint16_t port);
  void NotebookFailed(const PoolName& pool, const std::string& user, const std::string& error);
  void NotebookGone(const PoolName& pool, const std::string& user);
  // `user`'s server on `instance`:`port` ended (WebEntry::ServerLost).
  bool NotebookLost(const PoolName& pool, const std::string& user, const InstanceId& instance, uint16_t port,
                    const std::string& error);
  struct PoolNotebook {
    PoolName pool;
    NotebookSession session;
  };
  std::vector<PoolNotebook> Notebooks() const;

  // The relayed connections open now, oldest first.
  std::vector<RelayedConnection> Connections() const;

  // ---- handing over to a successor process (an upgrade) ----
  // The notebook sessions with their servers' tokens, and taking them in
  // (after the pool's web address is open: Apply first).
  struct HandedNotebook {
    PoolName pool;
    WebEntry::HandedSession session;
  };
  std::vector<HandedNotebook> HandOverNotebooks() const;
  void TakeOverNotebooks(std::vector<HandedNotebook> notebooks);
  // Stops listening for good (the successor accepts on the same sockets):
  // closes this process's copies of the listeners, web ones included, and
  // opens none again; connections open now go on.
  void StopListening();
  // Connections still open: relayed, proxied (web), or accepted and not
  // yet relayed. A gateway that stopped listening is done at zero.
  uint64_t OpenConnections() const;
  // The relayed connections with no bytes on their way (RelayLoop::
  // HandOverIdle), taken out of this gateway with their sockets; and
  // relaying them here (counted against their instance as any other).
  struct HandedRelay {
    RelayedConnection info;
    UniqueFd client;
    UniqueFd backend;
    std::chrono::milliseconds idle_timeout{0};
  };
  std::vector<HandedRelay> HandOverRelays();
  void TakeOverRelays(std::vector<HandedRelay> relays);

 private:
  class Impl;
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Prometheus text for the counters ("dspool_gateway_*").
std::string GatewayMetrics(const GatewayCounters& c);

}  // namespace dspool
