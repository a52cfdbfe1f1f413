#include "model/network_security.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>

#include "base/strings.h"

namespace dspool {
namespace {

// Azure's rule for the names of groups and rules: 1..80 characters, word
// characters, '.', '-' and '_', starting with a word character and ending
// with one or '_'.
bool ValidName(const std::string& name) {
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (name.empty() || name.size() > 80 || !word(name.front()) || !word(name.back())) return false;
  for (char c : name) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

// A decimal number of at most 6 digits, all of `text`.
std::optional<int64_t> ParseSmallNumber(std::string_view text) {
  int64_t value = 0;
  if (text.empty() || text.size() > 6) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

constexpr const char* kNameRule =
    "must be 1 to 80 letters, digits, '_', '.' and '-', starting with a letter, digit or '_' and ending with one";

std::optional<RuleProtocol> ParseProtocol(const std::string& text) {
  const std::string lower = ToLowerAscii(text);
  for (RuleProtocol p : {RuleProtocol::kAny, RuleProtocol::kTcp, RuleProtocol::kUdp, RuleProtocol::kIcmp,
                         RuleProtocol::kEsp, RuleProtocol::kAh}) {
    if (lower == ToLowerAscii(std::string(RuleProtocolName(p)))) return p;
  }
  return std::nullopt;
}

// One prefix or tag. `alone`: the singular field, where tags and "*" may
// stand; the plural fields take prefixes only, as on Azure.
std::optional<AddressMatch> ParseAddress(const std::string& text, bool alone, JsonReader& r, const std::string& key) {
  using Kind = AddressMatch::Kind;
  const std::string lower = ToLowerAscii(text);
  std::optional<Kind> tag;
  if (lower == "*" || lower == "any") tag = Kind::kAny;
  else if (lower == "virtualnetwork" || lower == "virtual_network") tag = Kind::kVirtualNetwork;
  else if (lower == "azureloadbalancer" || lower == "azure_loadbalancer") tag = Kind::kAzureLoadBalancer;
  else if (lower == "internet") tag = Kind::kInternet;
  if (tag) {
    if (!alone) {
      r.Fail(key, "'" + text + "': a service tag or '*' stands alone, in the singular field, not in a list of prefixes");
      return std::nullopt;
    }
    return AddressMatch{*tag, {}};
  }
  if (text.find(':') != std::string::npos) {
    r.Fail(key, "'" + text + "' is an IPv6 prefix; pools are IPv4 only");
    return std::nullopt;
  }
  const bool looks_numeric = !text.empty() && std::isdigit(static_cast<unsigned char>(text[0]));
  if (!looks_numeric) {
    r.Fail(key, "'" + text +
                    "' is no address here: give '*', VirtualNetwork, AzureLoadBalancer, Internet or an IPv4 prefix "
                    "(other Azure service tags name nothing on this host)");
    return std::nullopt;
  }
  std::string cidr = text.find('/') == std::string::npos ? text + "/32" : text;
  if (auto subnet = ParseIpv4Subnet(cidr)) return AddressMatch{Kind::kPrefixes, {*subnet}};
  // A prefix with host bits set: say which one was meant.
  size_t slash = cidr.find('/');
  auto address = ParseIpv4(cidr.substr(0, slash));
  auto length = ParseSmallNumber(std::string_view(cidr).substr(slash + 1));
  if (address && length && *length <= 32) {
    const int bits = static_cast<int>(*length);
    Ipv4Subnet meant{*address & Ipv4Subnet{0, bits}.Mask(), bits};
    r.Fail(key, "'" + text + "' has host bits set; did you mean " + meant.ToString() + "?");
  } else {
    r.Fail(key, "'" + text + "' is not an IPv4 address or prefix like 10.0.0.0/24");
  }
  return std::nullopt;
}

std::optional<PortRange> ParsePortRange(const std::string& text, JsonReader& r, const std::string& key) {
  if (text == "*") return PortRange{};
  size_t dash = text.find('-');
  auto first = ParseSmallNumber(std::string_view(text).substr(0, dash));
  auto last = dash == std::string::npos ? first : ParseSmallNumber(std::string_view(text).substr(dash + 1));
  if (!first || !last || *first < 0 || *last > 65535 || *first > *last) {
    r.Fail(key, "'" + text + "' is not '*', a port (0-65535) or a range of ports like 1000-2000");
    return std::nullopt;
  }
  return PortRange{*first, *last};
}

// `singular` or `plural` (the other absent or empty, as Azure's exports
// write them): the list of what they hold, each parsed by `parse`.
template <typename T, typename Parse>
std::vector<T> ReadEither(JsonReader& p, const std::string& singular, const std::string& plural, Parse parse) {
  std::string one;
  std::vector<std::string> many;
  p.Optional(singular, &one);
  p.Optional(plural, &many);
  std::vector<T> out;
  if (!p.ok()) return out;
  if (!one.empty() && !many.empty()) {
    p.Fail(plural, "is given with " + singular + "; give one or the other");
    return out;
  }
  if (one.empty() && many.empty()) {
    p.Fail(singular, "is required (or " + plural + ")");
    return out;
  }
  if (!one.empty()) {
    if (auto v = parse(one, true, singular)) out.push_back(*v);
    return out;
  }
  for (size_t i = 0; i < many.size(); ++i) {
    if (auto v = parse(many[i], false, plural + "[" + std::to_string(i) + "]")) out.push_back(*v);
  }
  return out;
}

AddressMatch ReadAddresses(JsonReader& p, const std::string& side) {
  std::vector<AddressMatch> parts = ReadEither<AddressMatch>(
      p, side + "AddressPrefix", side + "AddressPrefixes",
      [&](const std::string& text, bool alone, const std::string& key) { return ParseAddress(text, alone, p, key); });
  if (parts.size() == 1) return parts[0];
  AddressMatch out{AddressMatch::Kind::kPrefixes, {}};
  for (const AddressMatch& m : parts) out.prefixes.insert(out.prefixes.end(), m.prefixes.begin(), m.prefixes.end());
  if (out.prefixes.size() > kMaxRulePrefixes) {
    p.Fail(side + "AddressPrefixes", "holds more than " + std::to_string(kMaxRulePrefixes) + " prefixes");
  }
  return out;
}

std::vector<PortRange> ReadPorts(JsonReader& p, const std::string& side) {
  return ReadEither<PortRange>(p, side + "PortRange", side + "PortRanges",
                               [&](const std::string& text, bool, const std::string& key) {
                                 return ParsePortRange(text, p, key);
                               });
}

Json AddressesToJson(const AddressMatch& m, const std::string& side, Json& props) {
  using Kind = AddressMatch::Kind;
  switch (m.kind) {
    case Kind::kAny: return props[side + "AddressPrefix"] = "*";
    case Kind::kVirtualNetwork: return props[side + "AddressPrefix"] = "VirtualNetwork";
    case Kind::kAzureLoadBalancer: return props[side + "AddressPrefix"] = "AzureLoadBalancer";
    case Kind::kInternet: return props[side + "AddressPrefix"] = "Internet";
    case Kind::kPrefixes: break;
  }
  if (m.prefixes.size() == 1) return props[side + "AddressPrefix"] = m.prefixes[0].ToString();
  Json list = Json::array();
  for (const Ipv4Subnet& s : m.prefixes) list.push_back(s.ToString());
  return props[side + "AddressPrefixes"] = list;
}


void PortsToJson(const std::vector<PortRange>& ports, const std::string& side, Json& props) {
  if (ports.size() == 1) {
    props[side + "PortRange"] = ports[0].ToString();
    return;
  }
  Json list = Json::array();
  for (const PortRange& r : ports) list.push_back(r.ToString());
  props[side + "PortRanges"] = list;
}

bool InVirtualNetwork(uint32_t address, const TagAddresses& tags) {
  if (address == tags.load_balancer) return true;
  for (const Ipv4Subnet& s : tags.virtual_network) {
    if (s.Contains(address)) return true;
  }
  return false;
}

bool AddressMatches(const AddressMatch& m, uint32_t address, const TagAddresses& tags) {
  using Kind = AddressMatch::Kind;
  switch (m.kind) {
    case Kind::kAny: return true;
    case Kind::kVirtualNetwork: return InVirtualNetwork(address, tags);
    case Kind::kAzureLoadBalancer: return address == tags.load_balancer;
    case Kind::kInternet: return !InVirtualNetwork(address, tags);
    case Kind::kPrefixes: break;
  }
  for (const Ipv4Subnet& s : m.prefixes) {
    if (s.Contains(address)) return true;
  }
  return false;
}

bool PortMatches(const std::vector<PortRange>& ports, int64_t port) {
  for (const PortRange& r : ports) {
    if (r.first <= port && port <= r.last) return true;
  }
  return false;
}

SecurityRule DefaultRule(const char* name, const char* description, int64_t priority, RuleDirection direction,
                         AddressMatch::Kind source, AddressMatch::Kind destination, RuleAccess access) {
  SecurityRule r;
  r.name = name;
  r.description = description;
  r.priority = priority;
  r.direction = direction;
  r.source = AddressMatch{source, {}};
  r.destination = AddressMatch{destination, {}};
  r.access = access;
  return r;
}

}  // namespace

std::string_view RuleDirectionName(RuleDirection d) { return d == RuleDirection::kInbound ? "Inbound" : "Outbound"; }
std::string_view RuleAccessName(RuleAccess a) { return a == RuleAccess::kAllow ? "Allow" : "Deny"; }

std::string_view RuleProtocolName(RuleProtocol p) {
  switch (p) {
    case RuleProtocol::kAny: return "*";
    case RuleProtocol::kTcp: return "Tcp";
    case RuleProtocol::kUdp: return "Udp";
    case RuleProtocol::kIcmp: return "Icmp";
    case RuleProtocol::kEsp: return "Esp";
    case RuleProtocol::kAh: return "Ah";
  }
  return "*";
}

std::string PortRange::ToString() const {
  if (Any()) return "*";
  return first == last ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(last);
}

bool AnyPort(const std::vector<PortRange>& ports) {
  for (const PortRange& r : ports) {
    if (r.Any()) return true;
  }
  return false;
}

bool HasPorts(RuleProtocol p) { return p == RuleProtocol::kAny || p == RuleProtocol::kTcp || p == RuleProtocol::kUdp; }

const std::vector<SecurityRule>& DefaultRules() {
  using Kind = AddressMatch::Kind;
  static const std::vector<SecurityRule> rules = {
      DefaultRule("AllowVnetInBound", "Allow inbound traffic from all VMs in VNET", 65000, RuleDirection::kInbound,
                  Kind::kVirtualNetwork, Kind::kVirtualNetwork, RuleAccess::kAllow),
      DefaultRule("AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer", 65001,
                  RuleDirection::kInbound, Kind::kAzureLoadBalancer, Kind::kAny, RuleAccess::kAllow),
      DefaultRule("DenyAllInBound", "Deny all inbound traffic", 65500, RuleDirection::kInbound, Kind::kAny, Kind::kAny,
                  RuleAccess::kDeny),
      DefaultRule("AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET", 65000,
                  RuleDirection::kOutbound, Kind::kVirtualNetwork, Kind::kVirtualNetwork, RuleAccess::kAllow),
      DefaultRule("AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", 65001,
                  RuleDirection::kOutbound, Kind::kAny, Kind::kInternet, RuleAccess::kAllow),
      DefaultRule("DenyAllOutBound", "Deny all outbound traffic", 65500, RuleDirection::kOutbound, Kind::kAny,
                  Kind::kAny, RuleAccess::kDeny),
  };
  return rules;
}

Result<SecurityRule> ParseSecurityRule(const Json& json, const std::string& path) {
  JsonReader r(json, path);
  SecurityRule rule;
  r.Required("name", &rule.name);
  if (r.ok() && !ValidName(rule.name)) r.Fail("name", "'" + rule.name + "' " + kNameRule);
  JsonReader p = r.Object("properties", true);
  std::string protocol, access, direction;
  p.Required("protocol", &protocol);
  p.Required("access", &access);
  p.Required("direction", &direction);
  p.Required("priority", &rule.priority);
  p.Optional("description", &rule.description);
  if (!r.ok()) return r.Finish();
  if (auto parsed = ParseProtocol(protocol)) rule.protocol = *parsed;
  else p.Fail("protocol", "'" + protocol + "' is not one of Tcp, Udp, Icmp, Esp, Ah or '*'");
  if (EqualsIgnoreCase(access, "Allow")) rule.access = RuleAccess::kAllow;
  else if (EqualsIgnoreCase(access, "Deny")) rule.access = RuleAccess::kDeny;
  else p.Fail("access", "'" + access + "' is not Allow or Deny");
  if (EqualsIgnoreCase(direction, "Inbound")) rule.direction = RuleDirection::kInbound;
  else if (EqualsIgnoreCase(direction, "Outbound")) rule.direction = RuleDirection::kOutbound;
  else p.Fail("direction", "'" + direction + "' is not Inbound or Outbound");
  if (rule.priority < kMinRulePriority || rule.priority > kMaxRulePriority) {
    p.Fail("priority", std::to_string(rule.priority) + " is outside " + std::to_string(kMinRulePriority) + "-" +
                           std::to_string(kMaxRulePriority));
  }
  if (rule.description.size() > kMaxRuleDescription) {
    p.Fail("description", "is longer than " + std::to_string(kMaxRuleDescription) + " characters");
  }
  for (const char* asg : {"sourceApplicationSecurityGroups", "destinationApplicationSecurityGroups"}) {
    if (p.Has(asg)) p.Fail(asg, "application security groups do not exist on this host; give address prefixes");
  }
  rule.source = ReadAddresses(p, "source");
  rule.source_ports = ReadPorts(p, "source");
  rule.destination = ReadAddresses(p, "destination");
  rule.destination_ports = ReadPorts(p, "destination");
  if (p.ok() && !HasPorts(rule.protocol) && !(AnyPort(rule.source_ports) && AnyPort(rule.destination_ports))) {
    p.Fail("protocol", std::string(RuleProtocolName(rule.protocol)) + " has no ports: its port ranges must be '*'");
  }
  DSP_RETURN_IF_ERROR(p.Finish());
  DSP_RETURN_IF_ERROR(r.Finish());
  return rule;
}

Json SecurityRuleToJson(const SecurityRule& rule) {
  Json props = Json::object();
  props["protocol"] = std::string(RuleProtocolName(rule.protocol));
  AddressesToJson(rule.source, "source", props);
  PortsToJson(rule.source_ports, "source", props);
  AddressesToJson(rule.destination, "destination", props);
  PortsToJson(rule.destination_ports, "destination", props);
  props["access"] = std::string(RuleAccessName(rule.access));
  props["priority"] = rule.priority;
  props["direction"] = std::string(RuleDirectionName(rule.direction));
  if (!rule.description.empty()) props["description"] = rule.description;
  return Json{{"name", rule.name}, {"properties", props}};
}

Result<SecurityGroup> ParseSecurityGroup(const Json& json, const std::string& path) {
  JsonReader r(json, path);
  SecurityGroup group;
  r.Required("name", &group.name);
  if (r.ok() && !ValidName(group.name)) r.Fail("name", "'" + group.name + "' " + kNameRule);
  const Json* rules = r.Raw("securityRules");
  DSP_RETURN_IF_ERROR(r.Finish());
  if (!rules) return group;
  const std::string list = r.PathOf("securityRules");
  if (!rules->is_array()) return InvalidArgument(list + ": must be an array of rules");
  if (rules->size() > kMaxSecurityRules) {
    return InvalidArgument(list + ": holds more than " + std::to_string(kMaxSecurityRules) + " rules");
  }
  std::map<std::string, size_t> names;
  std::map<std::pair<RuleDirection, int64_t>, size_t> priorities;
  for (size_t i = 0; i < rules->size(); ++i) {
    const std::string at = list + "[" + std::to_string(i) + "]";
    DSP_ASSIGN_OR_RETURN(SecurityRule rule, ParseSecurityRule((*rules)[i], at));
    if (auto [it, fresh] = names.emplace(ToLowerAscii(rule.name), i); !fresh) {
      return InvalidArgument(at + ".name: '" + rule.name + "' is the name of rule " + std::to_string(it->second) +
                             " too");
    }
    if (auto [it, fresh] = priorities.emplace(std::make_pair(rule.direction, rule.priority), i); !fresh) {
      return InvalidArgument(at + ".properties.priority: SecurityRuleConflict: rule '" + rule.name + "' and rule '" +
                             group.rules[it->second].name + "' have the same priority " +
                             std::to_string(rule.priority) + " and direction " +
                             std::string(RuleDirectionName(rule.direction)));
    }
    group.rules.push_back(std::move(rule));
  }
  return group;
}

Json SecurityGroupToJson(const SecurityGroup& group) {
  Json rules = Json::array();
  for (const SecurityRule& r : group.rules) rules.push_back(SecurityRuleToJson(r));
  return Json{{"name", group.name}, {"securityRules", rules}};
}

Status CheckPrefixesAgainstSubnet(const SecurityGroup& group, const Ipv4Subnet& subnet, const std::string& path) {
  for (size_t i = 0; i < group.rules.size(); ++i) {
    const SecurityRule& rule = group.rules[i];
    for (const AddressMatch* side : {&rule.source, &rule.destination}) {
      for (const Ipv4Subnet& p : side->prefixes) {
        bool covers = p.prefix <= subnet.prefix && p.Contains(subnet.network);
        if (p.Overlaps(subnet) && !covers) {
          return InvalidArgument(path + ".securityRules[" + std::to_string(i) + "]: rule '" + rule.name + "': " +
                                 p.ToString() + " is part of the pool's subnet " + subnet.ToString() +
                                 "; which instance holds which address is dspool's choice, so name the whole "
                                 "subnet (or VirtualNetwork) or addresses outside it");
        }
      }
    }
  }
  return Status::Ok();
}

std::string SecurityVerdict::Explain() const {
  if (group.empty()) return "allowed: no network security group";
  return std::string(allowed ? "allowed" : "denied") + " by rule '" + rule + "' of network security group '" +
         group + "'";
}

bool Matches(const SecurityRule& rule, RuleDirection direction, const Flow& flow, const TagAddresses& tags) {
  if (rule.direction != direction) return false;
  if (rule.protocol != RuleProtocol::kAny && rule.protocol != flow.protocol) return false;
  if (!AddressMatches(rule.source, flow.source, tags) || !AddressMatches(rule.destination, flow.destination, tags)) {
    return false;
  }
  // A flow without ports matches only rules that ask for none.
  if (!HasPorts(flow.protocol)) return AnyPort(rule.source_ports) && AnyPort(rule.destination_ports);
  return PortMatches(rule.source_ports, flow.source_port) && PortMatches(rule.destination_ports, flow.destination_port);
}

bool PortRule::MatchesAll() const {
  return protocol == RuleProtocol::kAny && AnyPort(source_ports) && AnyPort(destination_ports);
}

std::vector<PortRule> RulesWithinSubnet(const SecurityGroup& group, RuleDirection direction, uint32_t member,
                                        const TagAddresses& tags) {
  std::vector<const SecurityRule*> ordered;
  for (const SecurityRule& r : group.rules) ordered.push_back(&r);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const SecurityRule* a, const SecurityRule* b) { return a->priority < b->priority; });
  for (const SecurityRule& r : DefaultRules()) ordered.push_back(&r);
  std::vector<PortRule> out;
  for (const SecurityRule* r : ordered) {
    if (r->direction != direction || !AddressMatches(r->source, member, tags) ||
        !AddressMatches(r->destination, member, tags)) {
      continue;
    }
    out.push_back(PortRule{r->name, r->protocol, r->source_ports, r->destination_ports, r->access});
    if (out.back().MatchesAll()) break;
  }
  return out;
}

std::vector<FilterLayer> LayersWithinSubnet(const NetworkSecurity& security, uint32_t member,
                                            const TagAddresses& tags) {
  std::vector<FilterLayer> out;
  const std::pair<const std::optional<SecurityGroup>*, RuleDirection> order[] = {
      {&security.nic, RuleDirection::kOutbound},
      {&security.subnet, RuleDirection::kOutbound},
      {&security.subnet, RuleDirection::kInbound},
      {&security.nic, RuleDirection::kInbound}};
  for (const auto& [group, direction] : order) {
    if (!*group) continue;
    out.push_back(FilterLayer{(*group)->name, direction, RulesWithinSubnet(**group, direction, member, tags)});
  }
  return out;
}

SecurityVerdict EvaluateGroup(const SecurityGroup& group, RuleDirection direction, const Flow& flow,
                              const TagAddresses& tags) {
  const SecurityRule* best = nullptr;
  for (const SecurityRule& r : group.rules) {
    if ((!best || r.priority < best->priority) && Matches(r, direction, flow, tags)) best = &r;
  }
  if (!best) {
    for (const SecurityRule& r : DefaultRules()) {
      if (Matches(r, direction, flow, tags)) {
        best = &r;
        break;
      }
    }
  }
  // The DenyAll defaults match every flow: best is set.
  return SecurityVerdict{best->access == RuleAccess::kAllow, group.name, best->name};
}

SecurityVerdict Evaluate(const NetworkSecurity& security, RuleDirection direction, const Flow& flow,
                         const TagAddresses& tags) {
  const SecurityGroup* subnet = security.subnet ? &*security.subnet : nullptr;
  const SecurityGroup* nic = security.nic ? &*security.nic : nullptr;
  const bool inbound = direction == RuleDirection::kInbound;
  const SecurityGroup* first = inbound ? subnet : nic;
  const SecurityGroup* second = inbound ? nic : subnet;
  SecurityVerdict verdict;
  for (const SecurityGroup* g : {first, second}) {
    if (!g) continue;
    verdict = EvaluateGroup(*g, direction, flow, tags);
    if (!verdict.allowed) return verdict;
  }
  return verdict;
}

}  // namespace dspool
