#include "deploy/realize.h"

#include <set>

#include "model/autoscale.h"
#include "model/deployment.h"
#include "model/extension.h"
#include "model/ipv4.h"
#include "model/network_security.h"
#include "model/storage.h"

namespace dspool::deploy {
namespace {

using arm::Value;

// The first error and the warnings of one resource's reading.
struct Report {
  std::string resource;  // "Microsoft.Network/loadBalancers 'lb'"
  Status error;
  std::vector<std::string> warnings;

  void Fail(const std::string& path, const std::string& message) {
    if (error.ok()) error = InvalidArgument(resource + ": " + path + ": " + message);
  }
  void Warn(const std::string& path, const std::string& message) {
    warnings.push_back(resource + ": " + path + ": " + message);
  }
};

// A member of the resource, read as ARM reads it: names without case.
// Members nobody read are reported as ignored when the object is Done().
class Node {
 public:
  Node(const Value* value, std::string path, Report* report) : value_(value), path_(std::move(path)), report_(report) {}

  bool present() const { return value_ != nullptr && !value_->is_null(); }
  const Value* value() const { return value_; }
  const std::string& path() const { return path_; }

  Node Get(const std::string& key) {
    read_.insert(ToLowerAscii(key));
    const Value* v = value_ && value_->is_object() ? arm::FindMember(*value_, key) : nullptr;
    return Node(v, Join(key), report_);
  }
  std::optional<std::string> String(const std::string& key, bool required = false) {
    Node n = Get(key);
    if (!n.present()) {
      if (required) report_->Fail(n.path_, "is required");
      return std::nullopt;
    }
    if (!n.value_->is_string()) {
      report_->Fail(n.path_, "must be a string, not " + arm::TypeName(*n.value_));
      return std::nullopt;
    }
    return n.value_->get<std::string>();
  }
  std::optional<int64_t> Int(const std::string& key, bool required = false) {
    Node n = Get(key);
    if (!n.present()) {
      if (required) report_->Fail(n.path_, "is required");
      return std::nullopt;
    }
    if (!arm::IsInteger(*n.value_)) {
      report_->Fail(n.path_, "must be an integer, not " + arm::TypeName(*n.value_));
      return std::nullopt;
    }
    return arm::AsInteger(*n.value_);
  }
  std::optional<bool> Bool(const std::string& key) {
    Node n = Get(key);
    if (!n.present()) return std::nullopt;
    if (!n.value_->is_boolean()) {
      report_->Fail(n.path_, "must be true or false, not " + arm::TypeName(*n.value_));
      return std::nullopt;
    }
    return n.value_->get<bool>();
  }
  std::vector<Node> Array(const std::string& key) {
    Node n = Get(key);
    std::vector<Node> out;
    if (!n.present()) return out;
    if (!n.value_->is_array()) {
      report_->Fail(n.path_, "must be an array, not " + arm::TypeName(*n.value_));
      return out;
    }
    for (size_t i = 0; i < n.value_->size(); ++i) {
      out.emplace_back(&(*n.value_)[i], n.path_ + "[" + std::to_string(i) + "]", report_);
    }
    return out;
  }
  // The "id" of a reference object ({"id": "..."}).
  std::optional<std::string> Id(const std::string& key, bool required = false) {
    Node n = Get(key);
    if (!n.present()) {
      if (required) report_->Fail(n.path_, "is required");
      return std::nullopt;
    }
    auto id = n.String("id", true);
    n.Done();
    return id;
  }
  // A member that matters and that this host does not do: an error.
  void Refuse(const std::string& key, const std::string& why) {
    Node n = Get(key);
    if (n.present()) report_->Fail(n.path_, why);
  }
  // A member accepted and ignored: a warning saying why.
  void Ignore(const std::string& key, const std::string& why) {
    Node n = Get(key);
    if (n.present()) report_->Warn(n.path_, why);
  }
  // Every member not read: ignored, with a warning.
  void Done() {
    if (!value_ || !value_->is_object()) return;
    for (const auto& [key, _] : value_->items()) {
      if (!read_.count(ToLowerAscii(key))) report_->Warn(Join(key), "not used on this host; ignored");
    }
  }

 private:
  std::string Join(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  const Value* value_;
  std::string path_;
  Report* report_;
  std::set<std::string> read_;
};

// The members of a resource that the template language itself handles.
void SkipEnvelope(Node& r) {
  for (const char* key : {"type", "name", "apiVersion", "location", "tags", "id", "scope", "comments"}) r.Get(key);
}

Value Succeeded(const Value& body) {
  Value state = body;
  if (!state.contains("properties") || !state["properties"].is_object()) state["properties"] = Value::object();
  state["properties"]["provisioningState"] = "Succeeded";
  return state;
}

const Value* FindDeployed(const Deployed& deployed, const std::string& id) {
  auto it = deployed.find(StoreKey(id));
  return it == deployed.end() ? nullptr : &it->second;
}

// "…/loadBalancers/lb/backendAddressPools/pool" → ("…/loadBalancers/lb", "pool").
std::optional<std::pair<std::string, std::string>> SplitChildId(const std::string& id, const std::string& child_type) {
  const std::string lower = StoreKey(id), marker = "/" + StoreKey(child_type) + "/";
  size_t at = lower.rfind(marker);
  if (at == std::string::npos || at == 0) return std::nullopt;
  std::string name = id.substr(at + marker.size());
  if (name.empty() || name.find('/') != std::string::npos) return std::nullopt;
  return std::make_pair(id.substr(0, at), name);
}

// ------------------------------------------------------------ networks

// A subnet's prefix, checked to be inside one of the network's.
// A network security group named by `n` ({"id": ...}), which must be
// deployed before the resource that names it. Its ID.
std::optional<std::string> ReadSecurityGroupId(Node& n, const Deployed& deployed, Report& report) {
  auto id = n.Id("networkSecurityGroup");
  if (id && !FindDeployed(deployed, *id)) {
    report.Fail(n.path() + ".networkSecurityGroup.id",
                "'" + *id + "' is not a network security group deployed before this resource; add it to dependsOn");
  }
  return id;
}

void ReadSubnet(Node& props, const std::vector<Ipv4Subnet>& space, const Deployed& deployed, Report& report) {
  auto prefix = props.String("addressPrefix");
  if (!prefix) {
    auto list = props.Array("addressPrefixes");
    if (list.size() == 1 && list[0].value()->is_string()) prefix = list[0].value()->get<std::string>();
    else if (report.error.ok()) report.Fail(props.path() + ".addressPrefix", "is required");
  }
  ReadSecurityGroupId(props, deployed, report);
  props.Refuse("routeTable", "route tables are not supported on this host");
  for (const char* key : {"serviceEndpoints", "delegations", "privateEndpointNetworkPolicies",
                          "privateLinkServiceNetworkPolicies", "natGateway"}) {
    props.Ignore(key, "not used on this host; ignored");
  }
  props.Done();
  if (!prefix) return;
  auto subnet = ParseIpv4Subnet(*prefix);
  if (!subnet) {
    report.Fail(props.path() + ".addressPrefix", "'" + *prefix + "' is not an IPv4 prefix like 10.0.0.0/24");
    return;
  }
  if (!space.empty()) {
    bool inside = false;
    for (const Ipv4Subnet& s : space) inside |= s.prefix <= subnet->prefix && s.Contains(subnet->network);
    if (!inside) {
      report.Fail(props.path() + ".addressPrefix",
                  "NetcfgSubnetRangeOutsideVnet: '" + *prefix + "' is outside the network's address space");
    }
  }
}

std::vector<Ipv4Subnet> AddressSpace(Node& props, Report& report) {
  std::vector<Ipv4Subnet> space;
  Node as = props.Get("addressSpace");
  for (Node& p : as.Array("addressPrefixes")) {
    auto subnet = p.value()->is_string() ? ParseIpv4Subnet(p.value()->get<std::string>()) : std::nullopt;
    if (!subnet) report.Fail(p.path(), "is not an IPv4 prefix like 10.0.0.0/16");
    else space.push_back(*subnet);
  }
  as.Done();
  return space;
}

Status RealizeVirtualNetwork(Node& r, const Deployed& deployed, Report& report) {
  Node props = r.Get("properties");
  std::vector<Ipv4Subnet> space = AddressSpace(props, report);
  if (space.empty()) report.Fail(props.path() + ".addressSpace.addressPrefixes", "needs at least one prefix");
  for (Node& s : props.Array("subnets")) {
    s.String("name", true);
    Node sp = s.Get("properties");
    ReadSubnet(sp, space, deployed, report);
    s.Get("id");
    s.Done();
  }
  props.Ignore("dhcpOptions", "the pool's bridge serves its own addresses; ignored");
  props.Ignore("enableDdosProtection", "not used on this host; ignored");
  props.Ignore("enableVmProtection", "not used on this host; ignored");
  props.Done();
  return report.error;
}

Status RealizeSubnet(const arm::ExpandedResource& resource, Node& r, const Deployed& deployed, Report& report) {
  auto parent = SplitChildId(resource.id, "subnets");
  const Value* vnet = parent ? FindDeployed(deployed, parent->first) : nullptr;
  if (!vnet) {
    report.Fail("name", "its virtual network is not deployed before it; add it to dependsOn");
    return report.error;
  }
  Report space_report{report.resource, Status::Ok(), {}};
  Node vnet_props(arm::FindMember(*vnet, "properties"), "", &space_report);
  std::vector<Ipv4Subnet> space = AddressSpace(vnet_props, space_report);
  Node props = r.Get("properties");
  ReadSubnet(props, space, deployed, report);
  return report.error;
}

// A deployed subnet (a subnets resource, or an entry of its virtual
// network's properties.subnets) as a scale set's pool takes it.
struct DeployedSubnet {
  std::string prefix;
  std::vector<Ipv4Subnet> address_space;      // its virtual network's
  std::optional<std::string> security_group;  // the ID of its network security group
};

std::optional<DeployedSubnet> SubnetOf(const Deployed& deployed, const std::string& id) {
  auto parent = SplitChildId(id, "subnets");
  const Value* vnet = parent ? FindDeployed(deployed, parent->first) : nullptr;
  const Value* vnet_props = vnet ? arm::FindMember(*vnet, "properties") : nullptr;
  const Value* props = nullptr;
  if (const Value* subnet = FindDeployed(deployed, id)) props = arm::FindMember(*subnet, "properties");
  const Value* subnets = vnet_props ? arm::FindMember(*vnet_props, "subnets") : nullptr;
  if (!props && subnets && subnets->is_array()) {
    for (const Value& s : *subnets) {
      const Value* name = arm::FindMember(s, "name");
      if (name && name->is_string() && EqualsIgnoreCase(name->get<std::string>(), parent->second)) {
        props = arm::FindMember(s, "properties");
      }
    }
  }
  if (!props) return std::nullopt;
  DeployedSubnet out;
  if (const Value* p = arm::FindMember(*props, "addressPrefix"); p && p->is_string()) {
    out.prefix = p->get<std::string>();
  } else if (const Value* list = arm::FindMember(*props, "addressPrefixes");
             list && list->is_array() && !list->empty() && (*list)[0].is_string()) {
    out.prefix = (*list)[0].get<std::string>();
  } else {
    return std::nullopt;
  }
  if (const Value* nsg = arm::FindMember(*props, "networkSecurityGroup")) {
    if (const Value* nsg_id = arm::FindMember(*nsg, "id"); nsg_id && nsg_id->is_string()) {
      out.security_group = nsg_id->get<std::string>();
    }
  }
  if (vnet_props) {
    Report ignored{"", Status::Ok(), {}};
    Node vp(vnet_props, "", &ignored);
    out.address_space = AddressSpace(vp, ignored);
  }
  return out;
}

// ------------------------------------------------------------ network security groups

// A security rule's body in model/network_security.h's form, its members
// read without case. `name` is the rule's own (a child resource's last
// segment).
Json SecurityRuleOf(Node& rule, const std::string& name, Report& report) {
  Node p = rule.Get("properties");
  Json props = Json::object();
  for (const char* key : {"protocol", "sourceAddressPrefix", "sourcePortRange", "destinationAddressPrefix",
                          "destinationPortRange", "access", "direction", "description"}) {
    if (auto v = p.String(key)) props[key] = *v;
  }
  for (const char* key : {"sourceAddressPrefixes", "sourcePortRanges", "destinationAddressPrefixes",
                          "destinationPortRanges"}) {
    Json list = Json::array();
    for (Node& item : p.Array(key)) {
      if (item.value()->is_string()) list.push_back(item.value()->get<std::string>());
      else report.Fail(item.path(), "must be a string, not " + arm::TypeName(*item.value()));
    }
    if (!list.empty()) props[key] = list;
  }
  if (auto priority = p.Int("priority")) props["priority"] = *priority;
  p.Refuse("sourceApplicationSecurityGroups", "application security groups do not exist on this host; give address prefixes");
  p.Refuse("destinationApplicationSecurityGroups",
           "application security groups do not exist on this host; give address prefixes");
  p.Get("provisioningState");
  p.Done();
  return Json{{"name", name}, {"properties", props}};
}

// The group of a deployed NSG: its properties.securityRules and the
// securityRules child resources deployed under it, in the pool spec's form.
Result<Json> DeployedSecurityGroup(const Deployed& deployed, const std::string& id, const std::string& resource) {
  const Value* nsg = FindDeployed(deployed, id);
  if (!nsg) return InvalidArgument(resource + ": network security group '" + id + "' is not deployed before it");
  Report report{resource, Status::Ok(), {}};
  Json rules = Json::array();
  Node props(arm::FindMember(*nsg, "properties"), "", &report);
  for (Node& rule : props.Array("securityRules")) rules.push_back(SecurityRuleOf(rule, rule.String("name").value_or(""), report));
  const std::string children = StoreKey(id) + "/securityrules/";
  for (const auto& [key, state] : deployed) {
    if (key.rfind(children, 0) != 0 || key.find('/', children.size()) != std::string::npos) continue;
    Node rule(&state, "", &report);
    // "nsg/rule" as the template names it; the ID's last segment (lower
    // case) otherwise.
    std::string name = rule.String("name").value_or(key);
    rules.push_back(SecurityRuleOf(rule, name.substr(name.rfind('/') + 1), report));
  }
  DSP_RETURN_IF_ERROR(report.error);
  auto split = SplitChildId(id, "networkSecurityGroups");
  std::string name = split ? split->second : id.substr(id.rfind('/') + 1);
  return Json{{"name", name}, {"securityRules", rules}};
}

Status RealizeSecurityGroup(const arm::ExpandedResource& resource, Node& r, Report& report) {
  Node props = r.Get("properties");
  Json rules = Json::array();
  std::vector<Node> list = props.Array("securityRules");
  for (Node& rule : list) {
    rules.push_back(SecurityRuleOf(rule, rule.String("name", true).value_or(""), report));
    rule.Get("id");
    rule.Get("type");
    rule.Done();
  }
  props.Ignore("defaultSecurityRules", "every group has Azure's default rules; ignored");
  props.Ignore("flushConnection", "a changed rule applies to new connections; ignored");
  props.Done();
  DSP_RETURN_IF_ERROR(report.error);
  auto group = ParseSecurityGroup(Json{{"name", resource.name}, {"securityRules", rules}}, props.path());
  if (!group.ok()) return InvalidArgument(report.resource + ": " + group.status().message());
  return Status::Ok();
}

Status RealizeSecurityRule(const arm::ExpandedResource& resource, Node& r, const Deployed& deployed, Report& report) {
  auto parent = SplitChildId(resource.id, "securityRules");
  if (!parent || !FindDeployed(deployed, parent->first)) {
    report.Fail("name", "its network security group is not deployed before it; add it to dependsOn");
    return report.error;
  }
  Json rule = SecurityRuleOf(r, parent->second, report);
  DSP_RETURN_IF_ERROR(report.error);
  if (auto parsed = ParseSecurityRule(rule, "properties"); !parsed.ok()) {
    return InvalidArgument(report.resource + ": " + parsed.status().message());
  }
  return Status::Ok();
}

Status RealizePublicIp(Node& r, Report& report, const HostSettings& host, Value& state) {
  Node props = r.Get("properties");
  if (auto method = props.String("publicIPAllocationMethod");
      method && !EqualsIgnoreCase(*method, "Static") && !EqualsIgnoreCase(*method, "Dynamic")) {
    report.Fail(props.path() + ".publicIPAllocationMethod", "must be Static or Dynamic, not '" + *method + "'");
  }
  if (auto version = props.String("publicIPAddressVersion"); version && !EqualsIgnoreCase(*version, "IPv4")) {
    report.Fail(props.path() + ".publicIPAddressVersion", "only IPv4 front addresses exist on this host");
  }
  Node dns = props.Get("dnsSettings");
  auto label = dns.String("domainNameLabel");
  dns.Ignore("reverseFqdn", "not used on this host; ignored");
  dns.Done();
  props.Ignore("idleTimeoutInMinutes", "each load-balancing rule has its own idle timeout here; ignored");
  props.Ignore("ipAddress", "the address is the host's front address; ignored");
  props.Done();
  r.Ignore("sku", "every front address behaves as a Standard one; ignored");
  r.Ignore("zones", "this host has one zone; ignored");
  if (!report.error.ok()) return report.error;
  Value& p = state["properties"];
  p["ipAddress"] = host.front_address;
  if (label) {
    p["dnsSettings"]["domainNameLabel"] = *label;
    p["dnsSettings"]["fqdn"] = *label + "." + host.dns_domain;
  }
  return Status::Ok();
}

// ------------------------------------------------------------ load balancers

struct ArmRule {
  std::string backend_pool;  // StoreKey of the backend pool's ID
  std::string probe;         // probe name, or empty
  Json native;               // docs/pool-spec.md's rule, "probe" by name
  int64_t backend_port = 0;
  int64_t frontend_port = 0;
};

struct ArmLoadBalancer {
  std::vector<ArmRule> rules;
  std::map<std::string, Json> probes;     // by lower-case name: native probe
  std::map<std::string, Json> nat_pools;  // by StoreKey of the NAT pool's ID: native NAT pool
};

// Reads a load balancer's properties (the resource being deployed, or one
// deployed before a scale set). `id` is its resource ID.
ArmLoadBalancer ReadLoadBalancer(Node& props, const std::string& id, const Deployed& deployed, Report& report) {
  ArmLoadBalancer lb;
  std::set<std::string> frontends;
  for (Node& f : props.Array("frontendIPConfigurations")) {
    auto name = f.String("name", true);
    Node fp = f.Get("properties");
    auto pip = fp.Id("publicIPAddress");
    if (!pip) {
      report.Fail(fp.path() + ".publicIPAddress", "a frontend needs a public IP address on this host");
    } else if (!FindDeployed(deployed, *pip)) {
      report.Fail(fp.path() + ".publicIPAddress.id", "'" + *pip + "' is not deployed before this load balancer");
    }
    fp.Ignore("privateIPAllocationMethod", "not used on this host; ignored");
    fp.Done();
    f.Get("id");
    f.Ignore("zones", "this host has one zone; ignored");
    f.Done();
    if (name) frontends.insert(StoreKey(id + "/frontendIPConfigurations/" + *name));
  }
  if (frontends.empty()) report.Fail(props.path() + ".frontendIPConfigurations", "needs at least one frontend");
  auto frontend_ok = [&](Node& n) {
    auto f = n.Id("frontendIPConfiguration", true);
    if (f && !frontends.count(StoreKey(*f))) {
      report.Fail(n.path() + ".frontendIPConfiguration.id", "'" + *f + "' is not a frontend of this load balancer");
    }
  };
  std::set<std::string> backend_pools;
  for (Node& b : props.Array("backendAddressPools")) {
    if (auto name = b.String("name", true)) backend_pools.insert(StoreKey(id + "/backendAddressPools/" + *name));
    b.Get("id");
    b.Get("properties").Done();
    b.Done();
  }
  for (Node& p : props.Array("probes")) {
    auto name = p.String("name", true);
    Node pp = p.Get("properties");
    auto protocol = pp.String("protocol", true);
    auto port = pp.Int("port", true);
    auto path = pp.String("requestPath");
    auto interval = pp.Int("intervalInSeconds");
    auto count = pp.Int("numberOfProbes");
    pp.Ignore("probeThreshold", "numberOfProbes decides here; ignored");
    pp.Done();
    p.Get("id");
    p.Done();
    if (protocol && EqualsIgnoreCase(*protocol, "Https")) {
      report.Fail(pp.path() + ".protocol", "Https probes are not supported on this host yet; use Tcp or Http");
    }
    if (!name || !protocol || !port) continue;
    Json probe = {{"name", *name}, {"protocol", EqualsIgnoreCase(*protocol, "Http") ? "Http" : *protocol}, {"port", *port}};
    if (path) probe["requestPath"] = *path;
    if (interval) probe["intervalInSeconds"] = *interval;
    if (count) probe["numberOfProbes"] = *count;
    lb.probes[ToLowerAscii(*name)] = probe;
  }
  for (Node& rule : props.Array("loadBalancingRules")) {
    auto name = rule.String("name", true);
    Node rp = rule.Get("properties");
    frontend_ok(rp);
    auto pool = rp.Id("backendAddressPool", true);
    if (pool && !backend_pools.count(StoreKey(*pool))) {
      report.Fail(rp.path() + ".backendAddressPool.id", "'" + *pool + "' is not a backend pool of this load balancer");
    }
    auto protocol = rp.String("protocol", true);
    if (protocol && !EqualsIgnoreCase(*protocol, "Tcp")) {
      report.Fail(rp.path() + ".protocol", "only Tcp rules are supported on this host, not '" + *protocol + "'");
    }
    auto frontend_port = rp.Int("frontendPort", true);
    auto backend_port = rp.Int("backendPort", true);
    auto distribution = rp.String("loadDistribution");
    auto idle = rp.Int("idleTimeoutInMinutes");
    auto probe = rp.Id("probe");
    if (rp.Bool("enableFloatingIP").value_or(false)) {
      report.Fail(rp.path() + ".enableFloatingIP", "floating IP (direct server return) is not supported on this host");
    }
    rp.Ignore("enableTcpReset", "idle connections are closed with a FIN here; ignored");
    rp.Ignore("disableOutboundSnat", "instances reach out through the host's NAT; ignored");
    rp.Done();
    rule.Get("id");
    rule.Done();
    std::string probe_name;
    if (probe) {
      auto split = SplitChildId(*probe, "probes");
      if (!split || StoreKey(split->first) != StoreKey(id) || !lb.probes.count(ToLowerAscii(split->second))) {
        report.Fail(rp.path() + ".probe.id", "'" + *probe + "' is not a probe of this load balancer");
      } else {
        probe_name = lb.probes[ToLowerAscii(split->second)]["name"].get<std::string>();
      }
    }
    if (!name || !pool || !frontend_port || !backend_port) continue;
    Json native = {{"name", *name}, {"protocol", "Tcp"}, {"frontendPort", *frontend_port}, {"backendPort", *backend_port}};
    if (!probe_name.empty()) native["probe"] = probe_name;
    if (distribution) native["loadDistribution"] = *distribution;
    if (idle) native["idleTimeoutInMinutes"] = *idle;
    lb.rules.push_back({StoreKey(*pool), probe_name, native, *backend_port, *frontend_port});
  }
  for (Node& nat : props.Array("inboundNatPools")) {
    auto name = nat.String("name", true);
    Node np = nat.Get("properties");
    frontend_ok(np);
    auto protocol = np.String("protocol", true);
    if (protocol && !EqualsIgnoreCase(*protocol, "Tcp")) {
      report.Fail(np.path() + ".protocol", "only Tcp NAT pools are supported on this host");
    }
    auto start = np.Int("frontendPortRangeStart", true);
    auto end = np.Int("frontendPortRangeEnd", true);
    auto backend = np.Int("backendPort", true);
    np.Ignore("idleTimeoutInMinutes", "NAT connections stay open until either side closes; ignored");
    np.Ignore("enableTcpReset", "not used on this host; ignored");
    if (np.Bool("enableFloatingIP").value_or(false)) {
      report.Fail(np.path() + ".enableFloatingIP", "floating IP (direct server return) is not supported on this host");
    }
    np.Done();
    nat.Get("id");
    nat.Done();
    if (!name || !start || !end || !backend) continue;
    lb.nat_pools[StoreKey(id + "/inboundNatPools/" + *name)] = {{"name", *name},
                                                                 {"protocol", "Tcp"},
                                                                 {"frontendPortRangeStart", *start},
                                                                 {"frontendPortRangeEnd", *end},
                                                                 {"backendPort", *backend}};
  }
  props.Refuse("inboundNatRules", "single NAT rules are not supported on this host yet; use inboundNatPools");
  props.Ignore("outboundRules", "instances reach out through the host's NAT; ignored");
  props.Done();
  return lb;
}

// ------------------------------------------------------------ scale sets

// A CustomScript's settings object, its members read without case as the
// extension's handler does, in model/extension.h's canonical names.
Json ScriptSettingsOf(Node n, Report& report) {
  Json out = Json::object();
  if (!n.present()) return out;
  if (!n.value()->is_object()) {
    report.Fail(n.path(), "must be an object");
    return out;
  }
  std::vector<std::string> uris;
  for (Node& u : n.Array("fileUris")) {
    if (u.value()->is_string()) uris.push_back(u.value()->get<std::string>());
    else report.Fail(u.path(), "must be a string, not " + arm::TypeName(*u.value()));
  }
  if (!uris.empty()) out["fileUris"] = uris;
  for (const char* key : {"commandToExecute", "script", "storageAccountName", "storageAccountKey"}) {
    if (auto v = n.String(key)) out[key] = *v;
  }
  if (auto v = n.Bool("skipDos2Unix")) out["skipDos2Unix"] = *v;
  if (auto v = n.Bool("enableInternalDNSCheck")) out["enableInternalDNSCheck"] = *v;
  if (auto v = n.Int("timestamp")) out["timestamp"] = *v;
  n.Refuse("managedIdentity", "managed identities do not exist on this host");
  n.Done();
  return out;
}

// extensionProfile.extensions: the CustomScripts, in the pool spec's form
// (model/extension.h), checked as the pool will check them.
std::optional<Json> ExtensionsOf(Node profile, Report& report) {
  if (!profile.present()) return std::nullopt;
  profile.Ignore("extensionsTimeBudget", "each script may run 90 minutes, as CustomScript allows; ignored");
  Json out = Json::array();
  for (Node& e : profile.Array("extensions")) {
    Json entry = {{"name", e.String("name", true).value_or("")}};
    Node p = e.Get("properties");
    Json props = Json::object();
    for (const char* key : {"publisher", "type", "typeHandlerVersion"}) props[key] = p.String(key, true).value_or("");
    if (auto v = p.Bool("autoUpgradeMinorVersion")) props["autoUpgradeMinorVersion"] = *v;
    props["settings"] = ScriptSettingsOf(p.Get("settings"), report);
    Json secret = ScriptSettingsOf(p.Get("protectedSettings"), report);
    if (!secret.empty()) props["protectedSettings"] = secret;
    p.Ignore("enableAutomaticUpgrade", "the script runs as given; ignored");
    p.Ignore("forceUpdateTag", "scripts run on new instances; change settings.timestamp to run a new one; ignored");
    p.Ignore("provisionAfterExtensions", "extensions run one after another, in the order given; ignored");
    p.Refuse("suppressFailures", "a failed script always fails its instance here");
    p.Refuse("protectedSettingsFromKeyVault", "key vaults are not supported on this host yet");
    p.Done();
    e.Done();
    entry["properties"] = props;
    out.push_back(entry);
  }
  profile.Done();
  if (!report.error.ok()) return std::nullopt;
  // The remaining rules (the kinds, one command, file names) are the pool's.
  if (auto parsed = ParseExtensions(out, profile.path() + ".extensions"); !parsed.ok()) {
    report.error = InvalidArgument(report.resource + ": " + parsed.status().message());
  }
  return out;
}

Status RealizeScaleSet(const arm::ExpandedResource& resource, Node& r, const Deployed& deployed,
                       const HostSettings& host, const Catalog& catalog, Report& report,
                       Json* spec) {
  const std::string pool_name = ToLowerAscii(resource.name);
  if (Status s = ValidatePoolName(pool_name); !s.ok()) report.Fail("name", s.message());

  Node sku = r.Get("sku");
  auto size_name = sku.String("name", true);
  auto capacity = sku.Int("capacity", true);
  sku.Ignore("tier", "sizes are looked up by name; ignored");
  sku.Done();
  std::optional<InstanceSize> size = size_name ? catalog.Size(*size_name) : std::nullopt;
  if (size_name && !size) {
    report.Fail("sku.name", "'" + *size_name + "' is not a size this host knows; known: " + catalog.SomeSizes());
  }
  if (capacity && (*capacity < 0 || *capacity > kMaxInstancesPerPool)) {
    report.Fail("sku.capacity", "must be between 0 and " + std::to_string(kMaxInstancesPerPool));
  }
  r.Ignore("plan", "marketplace terms do not apply on this host; ignored");
  r.Ignore("zones", "this host has one zone; ignored");
  r.Ignore("identity", "managed identities do not exist on this host; ignored");

  Node props = r.Get("properties");
  if (props.Bool("overprovision").value_or(false)) {
    report.Warn(props.path() + ".overprovision", "exactly capacity instances are made here; ignored");
  }
  Node upgrade = props.Get("upgradePolicy");
  upgrade.String("mode");
  upgrade.Ignore("rollingUpgradePolicy", "a pool's instances are not upgraded in place; ignored");
  upgrade.Ignore("automaticOSUpgradePolicy", "the image is the host's; ignored");
  upgrade.Done();
  Node scale_in = props.Get("scaleInPolicy");
  scale_in.Ignore("rules", "scale-in takes the instances with the fewest sessions here (docs/pool-spec.md); ignored");
  scale_in.Ignore("forceDeletion", "scale-in drains sessions here; ignored");
  scale_in.Done();
  for (const char* key : {"singlePlacementGroup", "platformFaultDomainCount", "zoneBalance", "orchestrationMode",
                          "doNotRunExtensionsOnOverprovisionedVMs", "additionalCapabilities", "automaticRepairsPolicy"}) {
    props.Ignore(key, "not used on this host; ignored");
  }

  Node vm = props.Get("virtualMachineProfile");
  if (!vm.present()) report.Fail(vm.path(), "is required");

  Node os = vm.Get("osProfile");
  if (!os.present()) report.Fail(os.path(), "is required");
  os.String("computerNamePrefix");  // host names are <pool>-<index> here
  auto admin = os.String("adminUsername", true);
  auto password = os.String("adminPassword");
  Node linux_cfg = os.Get("linuxConfiguration");
  bool no_password = linux_cfg.Bool("disablePasswordAuthentication").value_or(false);
  std::string ssh_key;
  Node ssh = linux_cfg.Get("ssh");
  std::vector<Node> keys = ssh.Array("publicKeys");
  for (size_t i = 0; i < keys.size(); ++i) {
    auto data = keys[i].String("keyData", true);
    keys[i].String("path");  // keys go to the user's authorized keys wherever the path says
    keys[i].Done();
    if (i > 0) report.Fail(keys[i].path(), "a pool's admin user takes one SSH key; add others with `dspool user key add`");
    else if (data) ssh_key = *data;
  }
  ssh.Done();
  linux_cfg.Ignore("provisionVMAgent", "every instance runs dspool's agent; ignored");
  linux_cfg.Ignore("patchSettings", "the image is the host's; ignored");
  linux_cfg.Done();
  os.Refuse("windowsConfiguration", "Windows instances do not exist on this host");
  auto custom_data = os.String("customData");
  if (custom_data && !custom_data->empty()) {
    auto script = DecodeCustomData(*custom_data, os.path() + ".customData");
    if (!script.ok() && report.error.ok()) {
      report.error = InvalidArgument(report.resource + ": " + script.status().message());
    }
  }
  os.Refuse("secrets", "certificates from a key vault are not supported on this host yet");
  os.Ignore("allowExtensionOperations", "not used on this host; ignored");
  os.Done();
  if (no_password && password) {
    report.Fail(os.path() + ".adminPassword", "is given while linuxConfiguration.disablePasswordAuthentication is true");
  }
  if (!no_password && !password && report.error.ok()) {
    report.Fail(os.path() + ".adminPassword", "is required unless linuxConfiguration.disablePasswordAuthentication is true");
  }
  if (no_password && ssh_key.empty()) {
    report.Fail(os.path() + ".linuxConfiguration.ssh.publicKeys", "a key is required when password authentication is disabled");
  }

  Node storage = vm.Get("storageProfile");
  Node image = storage.Get("imageReference");
  auto publisher = image.String("publisher");
  auto offer = image.String("offer");
  auto image_sku = image.String("sku");
  image.String("version");
  image.Refuse("id", "custom images are not supported on this host; use a publisher, offer and sku of the catalog");
  image.Done();
  if (!publisher || !offer || !image_sku) {
    report.Fail(image.path(), "needs publisher, offer and sku");
  } else if (!catalog.Image(*publisher, *offer, *image_sku)) {
    report.Fail(image.path(), "'" + *publisher + ":" + *offer + ":" + *image_sku +
                                  "' is not in this host's image catalog (docs/templates.md)");
  }
  storage.Ignore("osDisk", "instances run on a copy-on-write layer over the image; ignored");
  storage.Refuse("dataDisks", "data disks are not supported on this host; use the pool's share");
  storage.Done();

  // Network: the one NIC's one IP configuration gives the subnet and the
  // load balancer's pools.
  Node net = vm.Get("networkProfile");
  std::vector<Node> nics = net.Array("networkInterfaceConfigurations");
  if (nics.size() != 1) report.Fail(net.path() + ".networkInterfaceConfigurations", "needs exactly one network interface here");
  std::optional<std::string> subnet_id, nic_security_group;
  std::vector<std::string> backend_pools, nat_pools;
  if (!nics.empty()) {
    nics[0].String("name", true);
    Node nic = nics[0].Get("properties");
    nic.Bool("primary");
    nic_security_group = ReadSecurityGroupId(nic, deployed, report);
    nic.Ignore("enableAcceleratedNetworking", "not used on this host; ignored");
    nic.Ignore("enableIPForwarding", "not used on this host; ignored");
    nic.Ignore("dnsSettings", "instances use the host's resolver; ignored");
    std::vector<Node> ips = nic.Array("ipConfigurations");
    if (ips.size() != 1) report.Fail(nic.path() + ".ipConfigurations", "needs exactly one IP configuration here");
    if (!ips.empty()) {
      ips[0].String("name", true);
      Node ip = ips[0].Get("properties");
      subnet_id = ip.Id("subnet", true);
      for (Node& b : ip.Array("loadBalancerBackendAddressPools")) {
        if (auto id = b.String("id", true)) backend_pools.push_back(*id);
        b.Done();
      }
      for (Node& n : ip.Array("loadBalancerInboundNatPools")) {
        if (auto id = n.String("id", true)) nat_pools.push_back(*id);
        n.Done();
      }
      ip.Refuse("publicIPAddressConfiguration", "instances have no public address of their own here; use a NAT pool");
      ip.Refuse("applicationGatewayBackendAddressPools", "application gateways do not exist on this host");
      ip.Bool("primary");
      ip.Ignore("privateIPAddressVersion", "not used on this host; ignored");
      ip.Done();
      ips[0].Done();
    }
    nic.Done();
    nics[0].Done();
  }
  net.Done();
  std::optional<DeployedSubnet> subnet = subnet_id ? SubnetOf(deployed, *subnet_id) : std::nullopt;
  if (subnet_id && !subnet) {
    report.Fail(net.path() + ".networkInterfaceConfigurations[0].properties.ipConfigurations[0].properties.subnet.id",
                "'" + *subnet_id + "' is not a subnet deployed before this scale set");
  }

  std::optional<Json> extensions = ExtensionsOf(vm.Get("extensionProfile"), report);
  vm.Ignore("diagnosticsProfile", "boot diagnostics do not exist here; `dspool instance logs` shows an instance's boot");
  vm.Ignore("priority", "instances are never evicted here; ignored");
  vm.Ignore("evictionPolicy", "instances are never evicted here; ignored");
  vm.Ignore("billingProfile", "not used on this host; ignored");
  vm.Ignore("securityProfile", "not used on this host; ignored");
  vm.Done();
  props.Done();
  if (!report.error.ok()) return report.error;

  // The load balancer the pools belong to: one, whose child IDs all name.
  std::optional<std::string> lb_id;
  auto join = [&](const std::vector<std::string>& ids, const char* child_type, const char* what) -> Status {
    for (const std::string& id : ids) {
      auto split = SplitChildId(id, child_type);
      if (!split) return InvalidArgument(report.resource + ": '" + id + "' is not " + what + " ID");
      if (lb_id && StoreKey(*lb_id) != StoreKey(split->first)) {
        return InvalidArgument(report.resource + ": a pool joins the pools of one load balancer here, not of two");
      }
      lb_id = split->first;
    }
    return Status::Ok();
  };
  DSP_RETURN_IF_ERROR(join(backend_pools, "backendAddressPools", "a backend pool"));
  DSP_RETURN_IF_ERROR(join(nat_pools, "inboundNatPools", "an inbound NAT pool"));

  Json out = {{"name", pool_name},
              {"instanceCount", *capacity},
              {"size", {{"vcpus", size->vcpus}, {"memoryMiB", size->memory_mib}, {"maxProcesses", size->max_processes}}},
              {"image", {{"type", "host"}}},
              {"network", {{"subnet", subnet->prefix}}},
              // As on Azure: homes on each instance; the instances mount a
              // storage account's share themselves (docs/storage.md).
              {"share", {{"type", "none"}}}};
  Json admin_user = {{"name", *admin}};
  if (!ssh_key.empty()) admin_user["sshPublicKey"] = ssh_key;
  if (password) admin_user["password"] = *password;
  out["adminUser"] = admin_user;
  if (!subnet->address_space.empty()) {
    Json space = Json::array();
    for (const Ipv4Subnet& p : subnet->address_space) space.push_back(p.ToString());
    out["network"]["addressSpace"] = space;
  }
  if (subnet->security_group) {
    DSP_ASSIGN_OR_RETURN(out["network"]["subnetSecurityGroup"],
                         DeployedSecurityGroup(deployed, *subnet->security_group, report.resource));
  }
  if (nic_security_group) {
    DSP_ASSIGN_OR_RETURN(out["network"]["nicSecurityGroup"],
                         DeployedSecurityGroup(deployed, *nic_security_group, report.resource));
  }
  if (extensions && !extensions->empty()) out["extensions"] = *extensions;
  if (custom_data && !custom_data->empty()) out["customData"] = *custom_data;

  if (lb_id) {
    const Value* lb_state = FindDeployed(deployed, *lb_id);
    if (!lb_state) return InvalidArgument(report.resource + ": load balancer '" + *lb_id + "' is not deployed before it");
    Report lb_report{report.resource, Status::Ok(), {}};
    Node lb_props(arm::FindMember(*lb_state, "properties"), "load balancer", &lb_report);
    ArmLoadBalancer lb = ReadLoadBalancer(lb_props, *lb_id, deployed, lb_report);
    DSP_RETURN_IF_ERROR(lb_report.error);
    std::set<std::string> joined;
    for (const std::string& id : backend_pools) joined.insert(StoreKey(id));
    Json rules = Json::array(), probes = Json::array(), nats = Json::array();
    std::set<std::string> used_probes;
    for (const ArmRule& rule : lb.rules) {
      if (!joined.count(rule.backend_pool)) continue;
      if (rule.backend_port == kJupyterBackendPort) {
        out["jupyter"] = {{"frontendPort", rule.frontend_port}};
        continue;
      }
      rules.push_back(rule.native);
      if (!rule.probe.empty()) used_probes.insert(ToLowerAscii(rule.probe));
    }
    for (const std::string& p : used_probes) probes.push_back(lb.probes.at(p));
    for (const std::string& id : nat_pools) {
      auto it = lb.nat_pools.find(StoreKey(id));
      if (it == lb.nat_pools.end()) return InvalidArgument(report.resource + ": '" + id + "' is not a NAT pool of its load balancer");
      nats.push_back(it->second);
    }
    out["loadBalancer"] = {{"frontendAddress", host.front_address}, {"rules", rules}, {"probes", probes}, {"inboundNatPools", nats}};
  }
  *spec = std::move(out);
  return Status::Ok();
}

// ------------------------------------------------------------------ autoscale

// Every member name of an autoscale setting's properties, as Azure spells
// it: a template's members are matched to them without case, as ARM does.
const std::set<std::string>& AutoscaleMemberNames() {
  static const std::set<std::string> names = {
      "name", "enabled", "targetResourceUri", "targetResourceLocation", "profiles", "notifications",
      "predictiveAutoscalePolicy", "scaleMode", "scaleLookAheadTime", "capacity", "minimum", "maximum", "default",
      "rules", "fixedDate", "recurrence", "timeZone", "start", "end", "frequency", "schedule", "days", "hours",
      "minutes", "metricTrigger", "metricName", "metricNamespace", "metricResourceUri", "metricResourceLocation",
      "timeGrain", "statistic", "timeWindow", "timeAggregation", "operator", "threshold", "dimensions",
      "DimensionName", "Operator", "Values", "dividePerInstance", "scaleAction", "direction", "type", "value",
      "cooldown", "operation", "email", "sendToSubscriptionAdministrator", "sendToSubscriptionCoAdministrators",
      "customEmails", "webhooks", "serviceUri", "properties"};
  return names;
}

// `v` with its members' names spelt as Azure does (webhook properties,
// the user's own, stay as written).
Json CanonicalAutoscale(const Value& v, bool user_keys = false) {
  if (v.is_array()) {
    Json out = Json::array();
    for (const Value& item : v) out.push_back(CanonicalAutoscale(item));
    return out;
  }
  if (!v.is_object()) return v;
  Json out = Json::object();
  for (const auto& [key, value] : v.items()) {
    std::string name = key;
    if (!user_keys) {
      for (const std::string& known : AutoscaleMemberNames()) {
        if (EqualsIgnoreCase(known, key)) name = known;
      }
    }
    out[name] = CanonicalAutoscale(value, name == "properties");
  }
  return out;
}

Status RealizeAutoscale(const arm::ExpandedResource& resource, Node& r, const Deployed& deployed, Report& report,
                        Realized::Autoscale* out) {
  Node props = r.Get("properties");
  if (!props.present() || !props.value()->is_object()) {
    report.Fail("properties", "is required");
    return report.error;
  }
  Json setting = CanonicalAutoscale(*props.value());
  const std::string target = setting.value("targetResourceUri", "");
  auto scale_set = SplitChildId(target, "virtualMachineScaleSets");
  if (target.empty()) {
    report.Fail("properties.targetResourceUri", "is required");
  } else if (!scale_set || !FindDeployed(deployed, target) ||
             StoreKey(target).find("/providers/microsoft.compute/virtualmachinescalesets/") == std::string::npos) {
    report.Fail("properties.targetResourceUri",
                "'" + target + "' is not a scale set deployed before this setting; add it to dependsOn");
  }
  DSP_RETURN_IF_ERROR(report.error);
  // A rule's metric is the pool's own here.
  for (size_t i = 0; setting.contains("profiles") && setting["profiles"].is_array() && i < setting["profiles"].size(); ++i) {
    const Json& rules = setting["profiles"][i].value("rules", Json::array());
    for (size_t k = 0; rules.is_array() && k < rules.size(); ++k) {
      const Json* uri = rules[k].contains("metricTrigger") ? &rules[k]["metricTrigger"] : nullptr;
      std::string metric_uri = uri && uri->is_object() ? uri->value("metricResourceUri", "") : "";
      if (!metric_uri.empty() && StoreKey(metric_uri) != StoreKey(target)) {
        report.Fail("properties.profiles[" + std::to_string(i) + "].rules[" + std::to_string(k) +
                        "].metricTrigger.metricResourceUri",
                    "'" + metric_uri + "' is not the setting's target; a rule's metrics are the pool's own here");
        return report.error;
      }
    }
  }
  if (auto parsed = ParseAutoscaleSetting(setting, "properties", kMaxInstancesPerPool); !parsed.ok()) {
    return InvalidArgument(report.resource + ": " + parsed.status().message());
  }
  setting.erase("targetResourceUri");
  setting.erase("targetResourceLocation");
  if (!setting.contains("name")) setting["name"] = resource.name;
  report.Warn("properties", "kept with pool '" + ToLowerAscii(scale_set->second) +
                                "'; not executed yet: the pool keeps the capacity it is given (the autoscale engine "
                                "is issue 16's)");
  out->pool = ToLowerAscii(scale_set->second);
  out->setting = std::move(setting);
  return Status::Ok();
}

// ------------------------------------------------------------------ storage

// The segments of a child's name ("acct/default/share").
std::vector<std::string> NameSegments(const std::string& name) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t slash; (slash = name.find('/', start)) != std::string::npos; start = slash + 1) {
    out.push_back(name.substr(start, slash - start));
  }
  out.push_back(name.substr(start));
  return out;
}

// ARM's tags, as the API's PUT takes them.
Json TagsOf(Node& r, Report& report) {
  Node tags = r.Get("tags");
  Json out = Json::object();
  if (!tags.present()) return out;
  if (!tags.value()->is_object()) {
    report.Fail(tags.path(), "must be an object of strings");
    return out;
  }
  for (const auto& [k, v] : tags.value()->items()) {
    if (!v.is_string()) report.Fail(tags.path() + "." + k, "must be a string");
    else out[k] = v.get<std::string>();
  }
  return out;
}

Status RealizeStorageAccount(const arm::ExpandedResource& resource, Node& r, Report& report, StorageOp* op,
                             Value& state) {
  if (Status s = ValidateStorageAccountName(resource.name); !s.ok()) report.Fail("name", s.message());
  Node sku = r.Get("sku");
  auto sku_name = sku.String("name", true);
  if (sku_name) {
    if (Status s = ValidateStorageSku(*sku_name); !s.ok()) report.Fail(sku.path() + ".name", s.message());
  }
  sku.Ignore("tier", "follows from the sku's name; ignored");
  sku.Done();
  auto kind = r.String("kind", true);
  if (kind) {
    if (Status s = ValidateStorageKind(*kind); !s.ok()) report.Fail("kind", s.message());
  }
  auto location = r.String("location");
  Json tags = TagsOf(r, report);
  Node props = r.Get("properties");
  Node acls = props.Get("networkAcls");
  if (auto action = acls.String("defaultAction"); action && EqualsIgnoreCase(*action, "Deny")) {
    report.Fail(acls.path() + ".defaultAction", "network rules are not enforced on this host: Deny would not deny");
  }
  for (const char* key : {"bypass", "virtualNetworkRules", "ipRules", "resourceAccessRules"}) {
    acls.Ignore(key, "network rules are not enforced on this host; ignored");
  }
  acls.Done();
  for (const char* key : {"accessTier", "supportsHttpsTrafficOnly", "minimumTlsVersion", "allowBlobPublicAccess",
                          "allowSharedKeyAccess", "encryption", "largeFileSharesState", "isHnsEnabled",
                          "publicNetworkAccess", "allowCrossTenantReplication", "dnsEndpointType"}) {
    props.Ignore(key, "a share here is a directory of the host, reached through the instances' mounts; ignored");
  }
  props.Refuse("azureFilesIdentityBasedAuthentication",
               "identity-based authentication is not done on this host; mount with the account's key");
  props.Done();
  r.Ignore("identity", "storage accounts here have no managed identity; ignored");
  if (!report.error.ok()) return report.error;
  op->kind = StorageOp::Kind::kAccount;
  op->account = resource.name;
  op->body = {{"sku", {{"name", *sku_name}}}, {"kind", *kind}, {"tags", tags}};
  if (location) op->body["location"] = *location;
  Value& p = state["properties"];
  p["primaryEndpoints"]["file"] = "https://" + resource.name + ".file." + std::string(kStorageSuffix) + "/";
  p["primaryLocation"] = location.value_or("");
  p["statusOfPrimary"] = "available";
  return Status::Ok();
}

Status RealizeFileService(const arm::ExpandedResource& resource, Node& r, Report& report, StorageOp* op) {
  const std::vector<std::string> name = NameSegments(resource.name);
  if (name.size() != 2 || name[1] != "default") {
    report.Fail("name", "a storage account's file service is named '<account>/default', not '" + resource.name + "'");
  }
  Node props = r.Get("properties");
  Node policy = props.Get("shareDeleteRetentionPolicy");
  std::optional<int64_t> days = policy.Int("days");
  std::optional<bool> enabled = policy.Bool("enabled");
  if (Status s = ValidateShareRetention(enabled.value_or(true), days.value_or(7)); !s.ok()) {
    report.Fail(policy.path(), s.message());
  }
  policy.Ignore("allowPermanentDelete", "deleted shares are purged only when their retention ends; ignored");
  policy.Done();
  props.Ignore("cors", "shares are reached through mounts here, not HTTP; ignored");
  props.Ignore("protocolSettings", "mounts here take no SMB or NFS settings; ignored");
  props.Done();
  r.Ignore("sku", "the account's sku counts; ignored");
  if (!report.error.ok()) return report.error;
  op->kind = StorageOp::Kind::kFileService;
  op->account = name[0];
  op->body = Json{{"properties", Json::object()}};
  if (days) op->body["properties"]["shareDeleteRetentionPolicy"] = {{"days", *days}};
  return Status::Ok();
}

Status RealizeShare(const arm::ExpandedResource& resource, Node& r, Report& report, StorageOp* op) {
  const std::vector<std::string> name = NameSegments(resource.name);
  if (name.size() != 3 || name[1] != "default") {
    report.Fail("name", "a file share is named '<account>/default/<share>', not '" + resource.name + "'");
  } else if (Status s = ValidateShareName(name[2]); !s.ok()) {
    report.Fail("name", s.message());
  }
  Node props = r.Get("properties");
  Json properties = Json::object();
  if (auto quota = props.Int("shareQuota")) {
    if (Status s = ValidateShareQuota(*quota); !s.ok()) report.Fail(props.path() + ".shareQuota", s.message());
    properties["shareQuota"] = *quota;
  }
  if (auto protocols = props.String("enabledProtocols")) properties["enabledProtocols"] = *protocols;
  if (auto tier = props.String("accessTier")) properties["accessTier"] = *tier;
  Node metadata = props.Get("metadata");
  if (metadata.present()) properties["metadata"] = *metadata.value();
  props.Ignore("rootSquash", "the instances' root is always squashed on a share here; ignored");
  props.Done();
  if (!report.error.ok()) return report.error;
  op->kind = StorageOp::Kind::kShare;
  op->account = name[0];
  op->share = name[2];
  op->body = Json{{"properties", properties}};
  return Status::Ok();
}

}  // namespace

bool IsSupportedType(const std::string& type) {
  for (const char* t : {"Microsoft.Network/virtualNetworks", "Microsoft.Network/virtualNetworks/subnets",
                        "Microsoft.Network/publicIPAddresses", "Microsoft.Network/loadBalancers",
                        "Microsoft.Network/networkSecurityGroups", "Microsoft.Network/networkSecurityGroups/securityRules",
                        "Microsoft.Compute/virtualMachineScaleSets", "Microsoft.Insights/autoscaleSettings",
                        "Microsoft.Storage/storageAccounts",
                        "Microsoft.Storage/storageAccounts/fileServices",
                        "Microsoft.Storage/storageAccounts/fileServices/shares"}) {
    if (EqualsIgnoreCase(type, t)) return true;
  }
  return false;
}

Result<Realized> Realize(const arm::ExpandedResource& resource, const arm::Value& body, const Deployed& deployed,
                         const HostSettings& host, const Catalog& catalog) {
  Report report{resource.type + " '" + resource.name + "'", Status::Ok(), {}};
  if (!IsSupportedType(resource.type)) {
    return InvalidArgument(report.resource +
                           ": this resource type is not supported on this host (docs/templates.md lists the types)");
  }
  Realized out;
  out.state = Succeeded(body);
  Node r(&body, "", &report);
  SkipEnvelope(r);
  const std::string type = ToLowerAscii(resource.type);
  Status s;
  if (type == "microsoft.network/virtualnetworks") {
    s = RealizeVirtualNetwork(r, deployed, report);
  } else if (type == "microsoft.network/virtualnetworks/subnets") {
    s = RealizeSubnet(resource, r, deployed, report);
  } else if (type == "microsoft.network/publicipaddresses") {
    s = RealizePublicIp(r, report, host, out.state);
  } else if (type == "microsoft.network/networksecuritygroups") {
    s = RealizeSecurityGroup(resource, r, report);
  } else if (type == "microsoft.network/networksecuritygroups/securityrules") {
    s = RealizeSecurityRule(resource, r, deployed, report);
  } else if (type == "microsoft.network/loadbalancers") {
    Node props = r.Get("properties");
    ReadLoadBalancer(props, resource.id, deployed, report);
    s = report.error;
  } else if (type == "microsoft.insights/autoscalesettings") {
    Realized::Autoscale autoscale;
    s = RealizeAutoscale(resource, r, deployed, report, &autoscale);
    if (s.ok()) out.autoscale = std::move(autoscale);
  } else if (type == "microsoft.compute/virtualmachinescalesets") {
    Json spec;
    s = RealizeScaleSet(resource, r, deployed, host, catalog, report, &spec);
    if (s.ok()) out.pool_spec = std::move(spec);
  } else {
    StorageOp op;
    if (type == "microsoft.storage/storageaccounts") s = RealizeStorageAccount(resource, r, report, &op, out.state);
    else if (type == "microsoft.storage/storageaccounts/fileservices") s = RealizeFileService(resource, r, report, &op);
    else s = RealizeShare(resource, r, report, &op);
    if (s.ok()) out.storage = std::move(op);
  }
  DSP_RETURN_IF_ERROR(s);
  r.Done();
  DSP_RETURN_IF_ERROR(report.error);
  out.warnings = std::move(report.warnings);
  return out;
}

}  // namespace dspool::deploy
