// RoutingTable: what the gateway listens on and where each listener's
// connections may go, built from the desired and recorded state. A pure
// function: the server rebuilds the table when pools or instances change
// and hands the gateway an immutable snapshot (Envoy's habit: built off the
// I/O threads, swapped in whole).
//
//   pool "team" loadBalancer                  listeners
//     rules: SSH 22 → 22 (SourceIP)      →     0.0.0.0:22    rule SSH   → any backend of "team"
//     inboundNatPools: 50000-50099 → 22  →     0.0.0.0:50000 nat        → the instance with index 0
//                                              0.0.0.0:50001 nat        → the instance with index 1 ...
// Listeners to backend port 22 (SSH) wait for the client's first bytes.
// A NAT port is listened on for every index in its range, whether or not an
// instance has that index now: a connection to an empty slot is refused
// cleanly, and the port keeps its meaning when the instance comes.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "model/instance.h"
#include "model/pool.h"

namespace dspool {

struct RouteBackend {
  InstanceId id;
  int64_t index = 0;
  uint32_t address = 0;  // on the pool's bridge
  bool ready = false;    // phase Ready (probes decide rotation on top)
  bool draining = false;  // drained or chosen by scale-in: no new connections; open ones go on
  friend bool operator==(const RouteBackend&, const RouteBackend&) = default;
};

struct Listener {
  uint32_t address = 0;  // host byte order; 0 = all interfaces
  uint16_t port = 0;
  PoolName pool;
  // A rule's listener balances over the pool; a NAT listener has one slot.
  std::optional<LbRule> rule;
  std::optional<int64_t> nat_index;
  int64_t backend_port = 0;
  // The client speaks first: SSH (backend port 22), whose clients send
  // their identification string at once. The gateway connects to an
  // instance only once the client has sent something (gateway.h).
  bool client_speaks_first = false;
  friend bool operator==(const Listener&, const Listener&) = default;
};

// A pool's Jupyter address (WebEntry behind http/proxy).
struct WebListener {
  uint32_t address = 0;  // host byte order; 0 = all interfaces
  uint16_t port = 0;
  PoolName pool;
  std::string certificate_file;  // empty in the table: the server fills in the pool's own
  std::string key_file;
  friend bool operator==(const WebListener&, const WebListener&) = default;
};

// A pool's network security groups as the gateway applies them to the
// connections of its frontends and to its health probes: inbound flows to
// `destination`, the address of the pool's first instance. Every instance
// gets the same verdict (model/network_security.h refuses prefixes that
// split the subnet), so the gateway decides before it picks one.
struct RouteSecurity {
  NetworkSecurity groups;
  TagAddresses tags;
  uint32_t destination = 0;
  // The verdict for a TCP connection from address:port to `backend_port`.
  SecurityVerdict Inbound(uint32_t address, uint16_t port, int64_t backend_port) const;
  friend bool operator==(const RouteSecurity&, const RouteSecurity&) = default;
};

struct RoutingTable {
  std::vector<Listener> listeners;  // ordered by port, then address
  std::map<PoolName, std::vector<RouteBackend>> backends;  // by index
  std::map<PoolName, std::vector<ProbeSpec>> probes;
  std::vector<WebListener> web;  // ordered by port
  // Pools with a network security group (shared: the web threads read it).
  std::map<PoolName, std::shared_ptr<const RouteSecurity>> security;
};

RoutingTable BuildRoutingTable(const std::vector<Pool>& pools, const std::vector<Instance>& instances);

// Whether `spec`'s frontend ports collide with those of any pool in
// `existing` (other than itself): same port, and the same address or either
// one "all interfaces". InvalidArgument naming both, else OK.
Status CheckFrontendPorts(const PoolSpec& spec, const std::vector<Pool>& existing);

}  // namespace dspool
