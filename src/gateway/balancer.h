// Balancing: which instance a new connection goes to. Pure functions of the
// flow and the backends; the gateway's listeners call them per connection.
//
// Distribution modes (model/load_balancer.h; azure-semantics.md B2), and
// where dspool differs:
//   kDefault            the 5-tuple (sticky for one connection only)
//   kSourceIP           client IP and frontend IP
//   kSourceIPProtocol   client IP, frontend IP and protocol
//   kLeastConnections   the eligible backend with the fewest connections
// Hash modes use rendezvous (highest-random-weight) hashing over the
// eligible backends: each (key, backend) pair gets a score and the highest
// wins. Removing a backend moves only the clients it had; adding one moves
// only the clients it now wins (Azure re-hashes everyone on any change).
//
// Eligible: in rotation (probes) and not draining.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "base/ids.h"
#include "base/result.h"
#include "model/load_balancer.h"

namespace dspool {

enum class Protocol : uint8_t { kTcp = 6, kUdp = 17 };

struct FlowKey {
  uint32_t src_ip = 0;  // host byte order
  uint16_t src_port = 0;
  uint32_t dst_ip = 0;  // the frontend address the client connected to
  uint16_t dst_port = 0;
  Protocol protocol = Protocol::kTcp;
};

struct Backend {
  InstanceId id;
  int64_t index = 0;
  bool in_rotation = false;
  bool draining = false;
  int64_t active_connections = 0;
};

// The backend for a new connection, or nullopt if none is eligible (the
// gateway then holds the connection and asks for capacity).
std::optional<InstanceId> PickBackend(Distribution mode, const FlowKey& flow, const std::vector<Backend>& backends);

}  // namespace dspool
