// Network links, IPv4 addresses and routes of this host, through rtnetlink;
// and which local ports the kernel keeps for servers.
//
// The lxc provider uses these to set up its bridge and to pick a subnet that
// does not collide with a route the host already has. Everything speaks
// rtnetlink (a NETLINK_ROUTE socket) directly: no `ip` command is run.
//
// All functions act on the network namespace of the calling thread. Changes
// need CAP_NET_ADMIN in that namespace (PermissionDenied otherwise); listing
// does not. Errors carry the kernel's extended-ack text when it gives one.
//
// Thread safety: every function may be called concurrently from any thread;
// each call uses its own netlink socket. Calls are not atomic with respect to
// each other (a link may vanish between LinkExists and SetLinkUp).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/status.h"
#include "model/ipv4.h"

namespace dspool {

struct RouteEntry {
  Ipv4Subnet destination;  // 0.0.0.0/0 for a default route
  std::string interface;   // "" if the route has no output link (blackhole, unreachable, ...)
  friend bool operator==(const RouteEntry&, const RouteEntry&) = default;
};

// Every IPv4 route of the main routing table, of any type (unicast,
// blackhole, ...), in kernel order. A multipath route reports its first hop's
// link.
Result<std::vector<RouteEntry>> ListIpv4Routes();

// Names of all links ("lo", "eth0", ...), in index order.
Result<std::vector<std::string>> ListLinks();

Result<bool> LinkExists(const std::string& name);

// Creates a bridge named `name`, down and without addresses.
// Errors: AlreadyExists if a link with that name exists (of any kind);
// InvalidArgument if `name` is not a valid link name (1..15 bytes, no '/',
// whitespace or ':').
Status CreateBridge(const std::string& name);
// Whether IPv4 and IPv6 frames that `bridge` forwards between its ports
// pass the host's netfilter hooks (IFLA_BR_NF_CALL_IPTABLES and
// _IP6TABLES, the per-bridge form of br_netfilter's sysctls), so that
// nftables' inet tables and connection tracking see them. NotFound if the
// bridge is absent; FailedPrecondition if the kernel lacks br_netfilter.
Status SetBridgeNetfilter(const std::string& bridge, bool on);

// Sets the link administratively up. OK if it already is. NotFound if absent.
Status SetLinkUp(const std::string& name);

// Adds addr/prefix (host byte order) to the link; the kernel adds the
// connected route for the subnet once the link is up. OK if the link already
// has exactly this address and prefix. NotFound if the link is absent;
// InvalidArgument if prefix is not 1..32.
Status AddIpv4Address(const std::string& name, uint32_t addr, int prefix);

// Deletes the link (for a bridge, its ports are released, not deleted).
// NotFound if absent.
Status DeleteLink(const std::string& name);

// Makes `bridge` the master of link `name` (attaches a port). Idempotent.
// NotFound if either is absent.
Status SetLinkMaster(const std::string& name, const std::string& bridge);

// Names of the links enslaved to `bridge` (whose master it is).
// NotFound if `bridge` is absent.
Result<std::vector<std::string>> ListBridgePorts(const std::string& bridge);

// Packets whose firewall mark is `mark` are delivered to this host,
// whatever their destination address: a rule "fwmark `mark` lookup
// `table`" at `priority`, and "local 0.0.0.0/0 dev lo" in `table`. How the
// answers to a socket bound to a foreign address (IP_TRANSPARENT) reach it
// rather than being forwarded; the mark is set by the firewall for such
// packets only. Idempotent: the route is replaced, and the rule added only
// if no rule with this mark (whole mask), table and priority exists.
// InvalidArgument for mark 0, a reserved table (0, 252-255) or a priority
// outside 1..32765.
Status EnsureMarkedLocalDelivery(uint32_t mark, uint32_t table, uint32_t priority);

// Whether a TCP server could listen on IPv4 `address`:`port` now: binds a
// socket there (with SO_REUSEADDR, as servers set it) and closes it. false
// if the port is taken (EADDRINUSE). InvalidArgument if `address` is not an
// IPv4 address; other failures (an address this host does not have:
// EADDRNOTAVAIL) as errors naming address and port. Not netlink, but this
// host's network all the same.
Result<bool> TcpPortFree(const std::string& address, uint16_t port);

// net.ipv4.ip_local_reserved_ports of this network namespace: ports the
// kernel never picks as a client socket's ephemeral port, while a server
// can still listen on them. Not netlink either: a /proc/sys file.
inline constexpr const char* kReservedPortsPath = "/proc/sys/net/ipv4/ip_local_reserved_ports";
// The file's form, "8000,50000-50002" (empty: none), to ports and back;
// InvalidArgument naming the part that is not a port or a range.
Result<std::set<uint16_t>> ParsePortList(std::string_view text);
std::string FormatPortList(const std::set<uint16_t>& ports);
Result<std::set<uint16_t>> ReadReservedPorts(const std::string& path = kReservedPortsPath);
// Needs CAP_NET_ADMIN over the namespace (PermissionDenied otherwise).
Status WriteReservedPorts(const std::set<uint16_t>& ports, const std::string& path = kReservedPortsPath);

}  // namespace dspool
