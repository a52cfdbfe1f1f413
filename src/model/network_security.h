// Network security groups: Azure's Microsoft.Network/networkSecurityGroups,
// with its rules' fields, its default rules and its evaluation, as a pure
// value (docs/network-security.md).
//
// A rule matches a flow by protocol, source and destination address (an
// IPv4 prefix, "*" or a service tag) and port ranges; the rules of a group
// are tried by priority, lowest number first, and the first match decides:
// Allow or Deny. User rules have priorities 100..4096; below them every
// group has Azure's six default rules (priorities 65000, 65001, 65500 each
// way), so a group with no rules lets the virtual network talk to itself
// and the load balancer probe, denies everything else inbound and allows
// everything outbound.
//
// A pool has up to two groups, as an Azure NIC does: one on its subnet and
// one on its network interfaces. Inbound, the subnet's group decides
// first, then the NIC's; outbound, the NIC's first, then the subnet's. A
// flow passes only if both allow it; a layer without a group allows all.
// Rules are stateful: the answers of an allowed flow always pass.
//
// Service tags, as they read on this host:
//   VirtualNetwork     the pool's address space (network.addressSpace,
//                      which holds its subnet) and the host's address on
//                      the pool's bridge
//   AzureLoadBalancer  the host's address on the pool's bridge: where the
//                      gateway's health probes come from
//   Internet           every address outside VirtualNetwork
// Other Azure service tags (Storage, AzureCloud, ...) name nothing here and
// are refused, as are IPv6 prefixes and application security groups.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "model/ipv4.h"
#include "model/json_reader.h"

namespace dspool {

enum class RuleDirection { kInbound, kOutbound };
enum class RuleAccess { kAllow, kDeny };
enum class RuleProtocol { kAny, kTcp, kUdp, kIcmp, kEsp, kAh };
std::string_view RuleDirectionName(RuleDirection d);  // "Inbound", "Outbound"
std::string_view RuleAccessName(RuleAccess a);        // "Allow", "Deny"
std::string_view RuleProtocolName(RuleProtocol p);    // "*", "Tcp", "Udp", "Icmp", "Esp", "Ah"
// Ports mean something only for Tcp, Udp and "*"; the other protocols
// match whatever the rule's port ranges say.
bool HasPorts(RuleProtocol p);

// One side of a rule: "*", a service tag, or IPv4 prefixes (a bare address
// is a /32).
struct AddressMatch {
  enum class Kind { kAny, kVirtualNetwork, kAzureLoadBalancer, kInternet, kPrefixes };
  Kind kind = Kind::kAny;
  std::vector<Ipv4Subnet> prefixes;  // kPrefixes
  friend bool operator==(const AddressMatch&, const AddressMatch&) = default;
};

struct PortRange {
  int64_t first = 0;
  int64_t last = 65535;
  bool Any() const { return first == 0 && last == 65535; }
  // "*", "22" or "8000-8010", as Azure writes ranges.
  std::string ToString() const;
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

struct SecurityRule {
  std::string name;
  std::string description;
  RuleProtocol protocol = RuleProtocol::kAny;
  AddressMatch source;
  std::vector<PortRange> source_ports{PortRange{}};
  AddressMatch destination;
  std::vector<PortRange> destination_ports{PortRange{}};
  RuleAccess access = RuleAccess::kAllow;
  int64_t priority = 100;
  RuleDirection direction = RuleDirection::kInbound;
  friend bool operator==(const SecurityRule&, const SecurityRule&) = default;
};

// Whether `ports` hold the whole range ("*" among them).
bool AnyPort(const std::vector<PortRange>& ports);

inline constexpr int64_t kMinRulePriority = 100;
inline constexpr int64_t kMaxRulePriority = 4096;
inline constexpr size_t kMaxSecurityRules = 1000;    // Azure's limit per group
inline constexpr size_t kMaxRuleDescription = 140;   // Azure's limit
inline constexpr size_t kMaxRulePrefixes = 4000;     // Azure's limit per rule

// A group: its user rules (the default rules are implied, DefaultRules()).
struct SecurityGroup {
  std::string name;
  std::vector<SecurityRule> rules;
  friend bool operator==(const SecurityGroup&, const SecurityGroup&) = default;
};

// Azure's default rules of every group, in priority order:
// AllowVnetInBound, AllowAzureLoadBalancerInBound, DenyAllInBound,
// AllowVnetOutBound, AllowInternetOutBound, DenyAllOutBound.
const std::vector<SecurityRule>& DefaultRules();

// The pool's two layers.
struct NetworkSecurity {
  std::optional<SecurityGroup> subnet;
  std::optional<SecurityGroup> nic;
  bool empty() const { return !subnet && !nic; }
  friend bool operator==(const NetworkSecurity&, const NetworkSecurity&) = default;
};

// Parses one rule in Azure's form ({"name", "properties": {"protocol",
// "sourceAddressPrefix" | "sourceAddressPrefixes", "sourcePortRange" |
// "sourcePortRanges", "destination..." alike, "access", "priority",
// "direction", "description"}}); errors name the JSON path under `path`.
Result<SecurityRule> ParseSecurityRule(const Json& json, const std::string& path);
Json SecurityRuleToJson(const SecurityRule& rule);
// A group ({"name", "securityRules": [rule...]}): each rule, then the
// group's own checks (names unique without case, no two rules of one
// direction with one priority).
Result<SecurityGroup> ParseSecurityGroup(const Json& json, const std::string& path);
Json SecurityGroupToJson(const SecurityGroup& group);
// Rules whose prefixes cover part of `subnet` and not all of it: refused,
// naming the rule, because which instance holds which address is dspool's
// choice (every instance of a pool gets the same verdict). `path` is the
// group's.
Status CheckPrefixesAgainstSubnet(const SecurityGroup& group, const Ipv4Subnet& subnet, const std::string& path);

// What the service tags hold for a pool.
struct TagAddresses {
  std::vector<Ipv4Subnet> virtual_network;
  uint32_t load_balancer = 0;
  friend bool operator==(const TagAddresses&, const TagAddresses&) = default;
};

struct Flow {
  RuleProtocol protocol = RuleProtocol::kTcp;  // kTcp, kUdp, kIcmp, kEsp or kAh
  uint32_t source = 0;
  int64_t source_port = 0;
  uint32_t destination = 0;
  int64_t destination_port = 0;
};

struct SecurityVerdict {
  bool allowed = true;
  std::string group;  // the group that decided; empty: no group on the way
  std::string rule;   // its rule that matched
  // "denied by rule 'deny-ssh' (priority 100) of network security group 'nsg'".
  std::string Explain() const;
};

bool Matches(const SecurityRule& rule, RuleDirection direction, const Flow& flow, const TagAddresses& tags);
// The group's rules, then the default rules: the first that matches.
SecurityVerdict EvaluateGroup(const SecurityGroup& group, RuleDirection direction, const Flow& flow,
                              const TagAddresses& tags);
// Both layers, in Azure's order for `direction`; the first deny, else the
// last allow.
SecurityVerdict Evaluate(const NetworkSecurity& security, RuleDirection direction, const Flow& flow,
                         const TagAddresses& tags);

// A rule as it applies to flows between two instances of one pool (both
// ends in its subnet, where every rule's addresses match all or none):
// what is left to match is the protocol and the ports.
struct PortRule {
  std::string name;
  RuleProtocol protocol = RuleProtocol::kAny;
  std::vector<PortRange> source_ports{PortRange{}};
  std::vector<PortRange> destination_ports{PortRange{}};
  RuleAccess access = RuleAccess::kAllow;
  // Matches every flow: the rules after it are never reached.
  bool MatchesAll() const;
  friend bool operator==(const PortRule&, const PortRule&) = default;
};
// `group`'s rules for `direction` (its own, then the defaults) that match
// flows from one address of the pool's subnet to another, in the order
// they are tried, up to the first that matches everything. `member` is an
// instance's address.
std::vector<PortRule> RulesWithinSubnet(const SecurityGroup& group, RuleDirection direction, uint32_t member,
                                        const TagAddresses& tags);

// The layers a flow between two instances of the pool meets, each
// RulesWithinSubnet of a group, in Azure's order: the sender's NIC group
// and subnet group outbound, then the receiver's subnet group and NIC
// group inbound. The flow passes if each layer's first matching rule
// allows it. Empty: no group, everything passes.
struct FilterLayer {
  std::string group;
  RuleDirection direction = RuleDirection::kInbound;
  std::vector<PortRule> rules;
  friend bool operator==(const FilterLayer&, const FilterLayer&) = default;
};
std::vector<FilterLayer> LayersWithinSubnet(const NetworkSecurity& security, uint32_t member,
                                            const TagAddresses& tags);

}  // namespace dspool
