// LoadBalancerSpec: a pool's one address — rules, probes and NAT pools with
// the fields and meaning of an Azure load balancer (azure-semantics.md B),
// parsed strictly from the pool spec's "loadBalancer" object.
//
// Where dspool's defaults differ from Azure's, it says why:
//   idleTimeoutInMinutes defaults to 30 (Azure: 4), the sample template's
//   value: four idle minutes end an SSH session that sends no keepalives.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "model/json_reader.h"

namespace dspool {

enum class Distribution { kDefault, kSourceIP, kSourceIPProtocol, kLeastConnections };
std::string_view DistributionName(Distribution d);
// "Default", "SourceIP", "SourceIPProtocol", "LeastConnections".
Result<Distribution> ParseDistribution(std::string_view name);

enum class ProbeProtocol { kTcp, kHttp };

struct ProbeSpec {
  std::string name;
  ProbeProtocol protocol = ProbeProtocol::kTcp;
  int64_t port = 0;
  std::string path;  // Http only; starts with '/'
  int64_t interval_seconds = 15;
  int64_t number_of_probes = 2;
  friend bool operator==(const ProbeSpec&, const ProbeSpec&) = default;
};

struct LbRule {
  std::string name;
  int64_t frontend_port = 0;
  int64_t backend_port = 0;
  std::string probe;  // a ProbeSpec name
  Distribution distribution = Distribution::kDefault;
  int64_t idle_timeout_minutes = 30;
  friend bool operator==(const LbRule&, const LbRule&) = default;
};

// Frontend port start + k reaches the instance with index k, for that
// instance's whole life.
struct NatPool {
  std::string name;
  int64_t frontend_port_start = 0;
  int64_t frontend_port_end = 0;
  int64_t backend_port = 0;
  int64_t size() const { return frontend_port_end - frontend_port_start + 1; }
  friend bool operator==(const NatPool&, const NatPool&) = default;
};

struct LoadBalancerSpec {
  std::string frontend_address = "0.0.0.0";
  std::vector<LbRule> rules;
  std::vector<ProbeSpec> probes;
  std::vector<NatPool> nat_pools;
  friend bool operator==(const LoadBalancerSpec&, const LoadBalancerSpec&) = default;
};

// Parses the "loadBalancer" object; errors name the JSON path under
// `path` ("loadBalancer.rules[1].probe: ..."). Checks names, ports, probe
// references and that no two frontend ports or ranges overlap.
Result<LoadBalancerSpec> ParseLoadBalancer(const Json& json, const std::string& path);
Json LoadBalancerToJson(const LoadBalancerSpec& lb);

// The most instances every NAT pool can address (nullopt: no NAT pools).
std::optional<int64_t> NatCapacity(const LoadBalancerSpec& lb);

// A connection the gateway relays to an instance (an SSH session, through
// a rule or a NAT-pool port), as the API lists it (GET /v1/sessions).
// Endpoints are "address:port".
struct RelayedSessionInfo {
  std::string pool;
  std::string instance;
  std::string kind;           // "ssh" (backend port 22) or "tcp"
  std::string client;         // as the gateway accepted it
  int64_t frontend_port = 0;
  std::string instance_address;  // the instance's end
  // The client's end as the instance sees it (its sshd's log line):
  // the client's own address when `transparent`, else the host's
  // address on the pool's bridge; the port is the gateway's.
  std::string instance_sees;
  bool transparent = false;
  TimePoint started_at;
  friend bool operator==(const RelayedSessionInfo&, const RelayedSessionInfo&) = default;
};

// {"kind","pool","instance","client","frontendPort","instanceAddress",
//  "instanceSees","transparent","startedAt"} (RFC 3339).
Json RelayedSessionInfoToJson(const RelayedSessionInfo& info);

}  // namespace dspool
