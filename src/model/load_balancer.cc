#include "model/load_balancer.h"

#include <array>
#include <set>

#include "model/ipv4.h"

namespace dspool {
namespace {

constexpr std::array<std::string_view, 4> kDistributionNames = {"Default", "SourceIP", "SourceIPProtocol",
                                                                 "LeastConnections"};

std::string Index(const std::string& path, const char* list, size_t i) {
  return path + "." + list + "[" + std::to_string(i) + "]";
}

bool PortOk(int64_t p) { return p >= 1 && p <= 65535; }

}  // namespace

std::string_view DistributionName(Distribution d) { return kDistributionNames[static_cast<size_t>(d)]; }

Result<Distribution> ParseDistribution(std::string_view name) {
  for (size_t i = 0; i < kDistributionNames.size(); ++i) {
    if (kDistributionNames[i] == name) return static_cast<Distribution>(i);
  }
  return InvalidArgument("'" + std::string(name) +
                         "' is not a distribution mode: use Default, SourceIP, SourceIPProtocol or LeastConnections");
}

Result<LoadBalancerSpec> ParseLoadBalancer(const Json& json, const std::string& path) {
  LoadBalancerSpec lb;
  JsonReader r(json, path);
  r.Optional("frontendAddress", &lb.frontend_address);
  if (r.ok() && !ParseIpv4(lb.frontend_address)) {
    r.Fail("frontendAddress", "'" + lb.frontend_address + "' is not an IPv4 address");
  }
  auto items = [&](const char* key) -> std::vector<const Json*> {
    std::vector<const Json*> out;
    const Json* list = r.Raw(key);
    if (list == nullptr) return out;
    if (!list->is_array()) {
      r.Fail(key, "expected an array");
      return out;
    }
    for (const Json& item : *list) out.push_back(&item);
    return out;
  };
  auto probes = items("probes");
  auto rules = items("rules");
  auto nats = items("inboundNatPools");
  DSP_RETURN_IF_ERROR(r.Finish());

  std::set<std::string> probe_names;
  for (size_t i = 0; i < probes.size(); ++i) {
    std::string at = Index(path, "probes", i);
    JsonReader p(*probes[i], at);
    ProbeSpec probe;
    std::string protocol;
    p.Required("name", &probe.name);
    p.Required("protocol", &protocol);
    p.Required("port", &probe.port);
    p.Optional("requestPath", &probe.path);
    p.Optional("intervalInSeconds", &probe.interval_seconds);
    p.Optional("numberOfProbes", &probe.number_of_probes);
    DSP_RETURN_IF_ERROR(p.Finish());
    if (probe.name.empty() || !probe_names.insert(probe.name).second) {
      return InvalidArgument(at + ".name: '" + probe.name + "' is empty or used twice");
    }
    if (protocol == "Tcp") {
      probe.protocol = ProbeProtocol::kTcp;
      if (!probe.path.empty()) return InvalidArgument(at + ".requestPath: only Http probes have a path");
    } else if (protocol == "Http") {
      probe.protocol = ProbeProtocol::kHttp;
      if (probe.path.empty() || probe.path[0] != '/') {
        return InvalidArgument(at + ".requestPath: an Http probe needs a path starting with '/'");
      }
    } else {
      return InvalidArgument(at + ".protocol: '" + protocol + "' is not supported; use Tcp or Http");
    }
    if (!PortOk(probe.port)) return InvalidArgument(at + ".port: must be between 1 and 65535");
    if (probe.interval_seconds < 5 || probe.interval_seconds > 3600) {
      return InvalidArgument(at + ".intervalInSeconds: must be between 5 and 3600");
    }
    if (probe.number_of_probes < 1 || probe.number_of_probes > 100) {
      return InvalidArgument(at + ".numberOfProbes: must be between 1 and 100");
    }
    lb.probes.push_back(probe);
  }

  // Every frontend port in use so far, and who uses it, for overlap errors.
  struct Claim {
    int64_t first, last;
    std::string who;
  };
  std::vector<Claim> claims;
  auto claim = [&](int64_t first, int64_t last, const std::string& who) -> Status {
    for (const Claim& c : claims) {
      if (first <= c.last && c.first <= last) {
        return InvalidArgument(who + ": frontend port" + (first == last ? " " + std::to_string(first) : "s " +
                               std::to_string(first) + "-" + std::to_string(last)) + " overlap " + c.who);
      }
    }
    claims.push_back({first, last, who});
    return Status::Ok();
  };

  std::set<std::string> rule_names;
  for (size_t i = 0; i < rules.size(); ++i) {
    std::string at = Index(path, "rules", i);
    JsonReader p(*rules[i], at);
    LbRule rule;
    std::string protocol = "Tcp", distribution = "Default";
    p.Required("name", &rule.name);
    p.Optional("protocol", &protocol);
    p.Required("frontendPort", &rule.frontend_port);
    p.Required("backendPort", &rule.backend_port);
    p.Required("probe", &rule.probe);
    p.Optional("loadDistribution", &distribution);
    p.Optional("idleTimeoutInMinutes", &rule.idle_timeout_minutes);
    DSP_RETURN_IF_ERROR(p.Finish());
    if (rule.name.empty() || !rule_names.insert(rule.name).second) {
      return InvalidArgument(at + ".name: '" + rule.name + "' is empty or used twice");
    }
    if (protocol != "Tcp") return InvalidArgument(at + ".protocol: '" + protocol + "' is not supported; use Tcp");
    if (!PortOk(rule.frontend_port)) return InvalidArgument(at + ".frontendPort: must be between 1 and 65535");
    if (!PortOk(rule.backend_port)) return InvalidArgument(at + ".backendPort: must be between 1 and 65535");
    if (!probe_names.count(rule.probe)) {
      return InvalidArgument(at + ".probe: no probe is named '" + rule.probe + "'");
    }
    auto mode = ParseDistribution(distribution);
    if (!mode.ok()) return mode.status().WithPrefix(at + ".loadDistribution");
    rule.distribution = *mode;
    if (rule.idle_timeout_minutes < 4 || rule.idle_timeout_minutes > 100) {
      return InvalidArgument(at + ".idleTimeoutInMinutes: must be between 4 and 100");
    }
    DSP_RETURN_IF_ERROR(claim(rule.frontend_port, rule.frontend_port, at + " (" + rule.name + ")"));
    lb.rules.push_back(rule);
  }

  std::set<std::string> nat_names;
  for (size_t i = 0; i < nats.size(); ++i) {
    std::string at = Index(path, "inboundNatPools", i);
    JsonReader p(*nats[i], at);
    NatPool nat;
    std::string protocol = "Tcp";
    p.Required("name", &nat.name);
    p.Optional("protocol", &protocol);
    p.Required("frontendPortRangeStart", &nat.frontend_port_start);
    p.Required("frontendPortRangeEnd", &nat.frontend_port_end);
    p.Required("backendPort", &nat.backend_port);
    DSP_RETURN_IF_ERROR(p.Finish());
    if (nat.name.empty() || !nat_names.insert(nat.name).second) {
      return InvalidArgument(at + ".name: '" + nat.name + "' is empty or used twice");
    }
    if (protocol != "Tcp") return InvalidArgument(at + ".protocol: '" + protocol + "' is not supported; use Tcp");
    if (!PortOk(nat.frontend_port_start) || nat.frontend_port_start > 65534) {
      return InvalidArgument(at + ".frontendPortRangeStart: must be between 1 and 65534");
    }
    if (!PortOk(nat.frontend_port_end) || nat.frontend_port_end < nat.frontend_port_start) {
      return InvalidArgument(at + ".frontendPortRangeEnd: must be between frontendPortRangeStart and 65535");
    }
    if (!PortOk(nat.backend_port)) return InvalidArgument(at + ".backendPort: must be between 1 and 65535");
    DSP_RETURN_IF_ERROR(claim(nat.frontend_port_start, nat.frontend_port_end, at + " (" + nat.name + ")"));
    lb.nat_pools.push_back(nat);
  }
  return lb;
}

Json LoadBalancerToJson(const LoadBalancerSpec& lb) {
  Json probes = Json::array(), rules = Json::array(), nats = Json::array();
  for (const ProbeSpec& p : lb.probes) {
    Json j = {{"name", p.name},
              {"protocol", p.protocol == ProbeProtocol::kTcp ? "Tcp" : "Http"},
              {"port", p.port},
              {"intervalInSeconds", p.interval_seconds},
              {"numberOfProbes", p.number_of_probes}};
    if (!p.path.empty()) j["requestPath"] = p.path;
    probes.push_back(j);
  }
  for (const LbRule& r : lb.rules) {
    rules.push_back({{"name", r.name},
                     {"protocol", "Tcp"},
                     {"frontendPort", r.frontend_port},
                     {"backendPort", r.backend_port},
                     {"probe", r.probe},
                     {"loadDistribution", DistributionName(r.distribution)},
                     {"idleTimeoutInMinutes", r.idle_timeout_minutes}});
  }
  for (const NatPool& n : lb.nat_pools) {
    nats.push_back({{"name", n.name},
                    {"protocol", "Tcp"},
                    {"frontendPortRangeStart", n.frontend_port_start},
                    {"frontendPortRangeEnd", n.frontend_port_end},
                    {"backendPort", n.backend_port}});
  }
  return {{"frontendAddress", lb.frontend_address}, {"rules", rules}, {"probes", probes}, {"inboundNatPools", nats}};
}

std::optional<int64_t> NatCapacity(const LoadBalancerSpec& lb) {
  std::optional<int64_t> cap;
  for (const NatPool& n : lb.nat_pools) cap = cap ? std::min(*cap, n.size()) : n.size();
  return cap;
}

Json RelayedSessionInfoToJson(const RelayedSessionInfo& info) {
  return {{"kind", info.kind},
          {"pool", info.pool},
          {"instance", info.instance},
          {"client", info.client},
          {"frontendPort", info.frontend_port},
          {"instanceAddress", info.instance_address},
          {"instanceSees", info.instance_sees},
          {"transparent", info.transparent},
          {"startedAt", FormatTime(info.started_at)}};
}

}  // namespace dspool
