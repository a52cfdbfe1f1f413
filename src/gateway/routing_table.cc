#include "gateway/routing_table.h"

#include <algorithm>

#include "model/ipv4.h"

namespace dspool {
namespace {

// SSH: both sides send their identification string when the connection
// opens (RFC 4253, 4.2); an SSH-2 client does not wait for the server's
// (OpenSSH sends its own first, "to save a round-trip").
constexpr int64_t kSshPort = 22;

struct PortUse {
  uint32_t address;
  int64_t first, last;
  std::string what;
};

std::vector<PortUse> PortsOf(const PoolSpec& spec) {
  std::vector<PortUse> out;
  uint32_t address = spec.load_balancer ? ParseIpv4(spec.load_balancer->frontend_address).value_or(0) : 0;
  if (spec.jupyter) {
    out.push_back({address, spec.jupyter->frontend_port, spec.jupyter->frontend_port,
                   "jupyter of pool '" + spec.name.value() + "'"});
  }
  if (!spec.load_balancer) return out;
  const LoadBalancerSpec& lb = *spec.load_balancer;
  for (const LbRule& r : lb.rules) {
    out.push_back({address, r.frontend_port, r.frontend_port, "rule " + r.name + " of pool '" + spec.name.value() + "'"});
  }
  for (const NatPool& n : lb.nat_pools) {
    out.push_back({address, n.frontend_port_start, n.frontend_port_end,
                   "NAT pool " + n.name + " of pool '" + spec.name.value() + "'"});
  }
  return out;
}

}  // namespace

RoutingTable BuildRoutingTable(const std::vector<Pool>& pools, const std::vector<Instance>& instances) {
  RoutingTable table;
  for (const Pool& pool : pools) {
    if (pool.state != PoolState::kActive) continue;
    if (const auto& j = pool.spec.jupyter) {
      uint32_t address =
          pool.spec.load_balancer ? ParseIpv4(pool.spec.load_balancer->frontend_address).value_or(0) : 0;
      table.web.push_back(
          {address, static_cast<uint16_t>(j->frontend_port), pool.name(), j->certificate_file, j->key_file});
    }
    if (!pool.spec.load_balancer && !pool.spec.jupyter) continue;
    const LoadBalancerSpec lb = pool.spec.load_balancer.value_or(LoadBalancerSpec{});
    uint32_t address = ParseIpv4(lb.frontend_address).value_or(0);
    for (const LbRule& rule : lb.rules) {
      Listener l;
      l.address = address;
      l.port = static_cast<uint16_t>(rule.frontend_port);
      l.pool = pool.name();
      l.rule = rule;
      l.backend_port = rule.backend_port;
      l.client_speaks_first = rule.backend_port == kSshPort;
      table.listeners.push_back(l);
    }
    for (const NatPool& nat : lb.nat_pools) {
      for (int64_t k = 0; k < nat.size(); ++k) {
        Listener l;
        l.address = address;
        l.port = static_cast<uint16_t>(nat.frontend_port_start + k);
        l.pool = pool.name();
        l.nat_index = k;
        l.backend_port = nat.backend_port;
        l.client_speaks_first = nat.backend_port == kSshPort;
        table.listeners.push_back(l);
      }
    }
    table.probes[pool.name()] = lb.probes;
    if (!pool.spec.network.security.empty()) {
      table.security[pool.name()] = std::make_shared<const RouteSecurity>(
          RouteSecurity{pool.spec.network.security, PoolTagAddresses(pool.spec.network),
                        InstanceAddress(pool.spec.network, 0)});
    }
    auto& backends = table.backends[pool.name()];
    for (const Instance& i : instances) {
      // A standby is frozen: not probed, and no NAT slot names it.
      if (i.pool != pool.name() || i.phase == InstancePhase::kDeleting || i.phase == InstancePhase::kFailed ||
          i.standby) {
        continue;
      }
      backends.push_back(
          {i.id, i.index, ParseIpv4(i.address).value_or(0), i.phase == InstancePhase::kReady, i.closed_to_new()});
    }
    std::sort(backends.begin(), backends.end(),
              [](const RouteBackend& a, const RouteBackend& b) { return a.index < b.index; });
  }
  std::sort(table.listeners.begin(), table.listeners.end(), [](const Listener& a, const Listener& b) {
    return std::tie(a.port, a.address) < std::tie(b.port, b.address);
  });
  std::sort(table.web.begin(), table.web.end(),
            [](const WebListener& a, const WebListener& b) { return std::tie(a.port, a.address) < std::tie(b.port, b.address); });
  return table;
}

SecurityVerdict RouteSecurity::Inbound(uint32_t address, uint16_t port, int64_t backend_port) const {
  return Evaluate(groups, RuleDirection::kInbound, Flow{RuleProtocol::kTcp, address, port, destination, backend_port},
                  tags);
}

Status CheckFrontendPorts(const PoolSpec& spec, const std::vector<Pool>& existing) {
  std::vector<PortUse> mine = PortsOf(spec);
  for (const Pool& other : existing) {
    if (other.name() == spec.name) continue;
    for (const PortUse& theirs : PortsOf(other.spec)) {
      for (const PortUse& m : mine) {
        bool same_address = m.address == 0 || theirs.address == 0 || m.address == theirs.address;
        if (same_address && m.first <= theirs.last && theirs.first <= m.last) {
          return InvalidArgument("loadBalancer: " + m.what + " (ports " + std::to_string(m.first) + "-" +
                                 std::to_string(m.last) + ") collides with " + theirs.what);
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace dspool
