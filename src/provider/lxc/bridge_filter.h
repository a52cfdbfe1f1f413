// BridgeFilter: a pool's network security groups between its instances,
// as nftables rules on its bridge (PoolNetwork::filter).
//
// The bridge hands the IP frames it forwards between its ports to the
// host's netfilter hooks (os/net.h SetBridgeNetfilter, set by
// EnsureNetwork), where they meet a table of the pool's own ("inet
// dspool_<pool>", forward hook, the bridge as both interfaces) with
// connection tracking:
//   - only IPv4 between the pool's subnet addresses crosses, so an
//     instance's root cannot step around the rules with another address or
//     IPv6;
//   - answers of allowed flows pass (connection tracking: rules are
//     stateful, as Azure's);
//   - a new flow meets each layer in turn (a chain per layer, Azure's
//     order); a layer's first matching rule returns (Allow) or drops (Deny).
// Traffic between the host and an instance (the gateway, its probes) does
// not cross the bridge: the gateway applies the same groups itself.
#pragma once

#include <string>

#include "provider/compute_provider.h"

namespace dspool {

// The nft table's name for `pool`.
std::string BridgeFilterTable(const PoolName& pool);
// An `nft -f` script that replaces the pool's table in one transaction
// with `net`'s rules, or removes it when there are none.
std::string BridgeFilterScript(const PoolNetwork& net);
// An `nft -f` script that removes the pool's table, whether or not it exists.
std::string RemoveBridgeFilterScript(const PoolName& pool);

}  // namespace dspool
