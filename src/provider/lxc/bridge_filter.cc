#include "provider/lxc/bridge_filter.h"

#include <sstream>

#include "model/ipv4.h"

namespace dspool {
namespace {

// A set of ranges, none of them "*", as nft reads it.
std::string PortSet(const std::vector<PortRange>& ports) {
  std::string out;
  for (const PortRange& r : ports) out += (out.empty() ? "" : ", ") + r.ToString();
  return ports.size() == 1 ? out : "{ " + out + " }";
}

// One rule's match and verdict, as nft reads it.
std::string RuleLine(const PortRule& rule) {
  std::string match;
  switch (rule.protocol) {
    case RuleProtocol::kTcp: match = "meta l4proto tcp "; break;
    case RuleProtocol::kUdp: match = "meta l4proto udp "; break;
    case RuleProtocol::kIcmp: match = "meta l4proto icmp "; break;
    case RuleProtocol::kEsp: match = "meta l4proto esp "; break;
    case RuleProtocol::kAh: match = "meta l4proto ah "; break;
    case RuleProtocol::kAny: break;
  }
  const bool any_ports = AnyPort(rule.source_ports) && AnyPort(rule.destination_ports);
  if (!any_ports) {
    // Ports ask for a protocol that has them (model: Matches).
    if (rule.protocol == RuleProtocol::kAny) match = "meta l4proto { tcp, udp } ";
    if (!AnyPort(rule.source_ports)) match += "th sport " + PortSet(rule.source_ports) + " ";
    if (!AnyPort(rule.destination_ports)) match += "th dport " + PortSet(rule.destination_ports) + " ";
  }
  std::string verdict = rule.access == RuleAccess::kAllow ? "return" : "counter drop";
  return "    " + match + verdict + " comment \"" + rule.name + "\"\n";
}

}  // namespace

std::string BridgeFilterTable(const PoolName& pool) { return "dspool_" + pool.value(); }

std::string RemoveBridgeFilterScript(const PoolName& pool) {
  const std::string table = "inet " + BridgeFilterTable(pool);
  // Declaring it first makes the delete succeed whether or not it existed.
  return "table " + table + " {}\ndelete table " + table + "\n";
}

std::string BridgeFilterScript(const PoolNetwork& net) {
  std::ostringstream out;
  out << RemoveBridgeFilterScript(net.pool);
  if (net.filter.empty()) return out.str();
  const uint32_t network = (net.gateway - 1);
  const std::string subnet = Ipv4Subnet{network, net.prefix}.ToString();
  out << "table inet " << BridgeFilterTable(net.pool) << " {\n";
  out << "  chain forward {\n"
      << "    type filter hook forward priority filter; policy accept;\n"
      << "    iifname != \"" << net.bridge << "\" accept\n"
      << "    oifname != \"" << net.bridge << "\" accept\n"
      << "    meta nfproto ipv6 counter drop comment \"IPv4 only\"\n"
      << "    ip saddr != " << subnet << " counter drop comment \"not the pool's address\"\n"
      << "    ip daddr != " << subnet << " counter drop comment \"not the pool's address\"\n"
      << "    ct state established,related accept\n"
      << "    ct state invalid counter drop\n";
  for (size_t k = 0; k < net.filter.size(); ++k) out << "    jump layer" << k << "\n";
  out << "    accept\n  }\n";
  for (size_t k = 0; k < net.filter.size(); ++k) {
    const FilterLayer& layer = net.filter[k];
    out << "  chain layer" << k << " {\n"
        << "    # " << RuleDirectionName(layer.direction) << " rules of network security group " << layer.group
        << "\n";
    for (const PortRule& rule : layer.rules) out << RuleLine(rule);
    out << "  }\n";
  }
  out << "}\n";
  return out.str();
}

}  // namespace dspool
