#include "model/pool.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace dspool {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool IsCleanAbsolutePath(const std::string& p) {
  if (p.empty() || p[0] != '/') return false;
  if (p.size() > 1 && p.back() == '/') return false;
  if (p.find("//") != std::string::npos) return false;
  if (p.find_first_of(std::string("\0\n:, \t", 6)) != std::string::npos) return false;
  size_t pos = 0;
  while (pos != std::string::npos) {
    size_t next = p.find('/', pos + 1);
    std::string part = p.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
    if (part == "." || part == "..") return false;
    pos = next;
  }
  return true;
}

}  // namespace

Status ValidatePoolName(const std::string& name) {
  if (name.empty() || name.size() > kMaxPoolNameLength || !(name[0] >= 'a' && name[0] <= 'z') ||
      !std::all_of(name.begin(), name.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; }) ||
      name.back() == '-') {
    return InvalidArgument("'" + name + "' is not a valid pool name: use 1-" +
                           std::to_string(kMaxPoolNameLength) +
                           " lowercase letters, digits or '-', starting with a letter");
  }
  return Status::Ok();
}

Status CheckShareSource(const std::string& source, const std::string& resolved, const std::string& data_dir) {
  // `inner` is `outer` or lies below it (both clean absolute paths).
  auto within = [](const std::string& inner, const std::string& outer) {
    return inner == outer || outer == "/" || inner.rfind(outer + "/", 0) == 0;
  };
  const std::string shown = source == resolved ? source : source + " (" + resolved + ")";
  auto refuse = [&](const std::string& why) { return InvalidArgument("share.source: " + shown + " " + why); };
  for (const char* system : {"/", "/etc", "/usr", "/var", "/root", "/boot", "/home", "/proc", "/sys", "/dev",
                             "/run", "/tmp"}) {
    if (resolved == system) return refuse("is a system directory; give a directory of its own, such as /srv/dspool-share");
  }
  for (const char* kernel : {"/proc", "/sys", "/dev", "/run", "/boot"}) {
    if (within(resolved, kernel)) return refuse(std::string("lies under ") + kernel);
  }
  if (within(resolved, data_dir)) return refuse("lies in the server's data directory " + data_dir);
  if (within(data_dir, resolved)) return refuse("holds the server's data directory " + data_dir);
  return Status::Ok();
}

Result<PoolSpec> ParsePoolSpec(const Json& json) {
  PoolSpec spec;
  JsonReader r(json, "");
  std::string name;
  r.Required("name", &name);
  if (r.ok() && !ValidatePoolName(name).ok()) r.Fail("name", ValidatePoolName(name).message());
  spec.name = PoolName(name);

  r.Required("instanceCount", &spec.instance_count);
  if (r.ok() && (spec.instance_count < 0 || spec.instance_count > kMaxInstancesPerPool)) {
    r.Fail("instanceCount", "must be between 0 and " + std::to_string(kMaxInstancesPerPool));
  }
  r.Optional("standbyCount", &spec.standby_count);
  if (r.ok() && (spec.standby_count < 0 || spec.standby_count > kMaxInstancesPerPool)) {
    r.Fail("standbyCount", "must be between 0 and " + std::to_string(kMaxInstancesPerPool));
  }
  if (r.Has("drainTimeoutMinutes")) {
    int64_t minutes = 0;
    r.Optional("drainTimeoutMinutes", &minutes);
    if (r.ok() && (minutes < 0 || minutes > kMaxDrainTimeoutMinutes)) {
      r.Fail("drainTimeoutMinutes", "must be between 0 (delete at once) and " +
                                        std::to_string(kMaxDrainTimeoutMinutes) + " (a week)");
    }
    spec.drain_timeout_minutes = minutes;
  }

  JsonReader size = r.Object("size");
  size.Optional("vcpus", &spec.size.vcpus);
  size.Optional("memoryMiB", &spec.size.memory_mib);
  size.Optional("maxProcesses", &spec.size.max_processes);
  if (r.ok() && (spec.size.vcpus < 1 || spec.size.vcpus > 256)) size.Fail("vcpus", "must be between 1 and 256");
  if (r.ok() && (spec.size.memory_mib < 128 || spec.size.memory_mib > (int64_t{1} << 22))) {
    size.Fail("memoryMiB", "must be between 128 and 4194304");
  }
  if (r.ok() && (spec.size.max_processes < 64 || spec.size.max_processes > 1'000'000)) {
    size.Fail("maxProcesses", "must be between 64 and 1000000");
  }
  DSP_RETURN_IF_ERROR(size.Finish());

  JsonReader image = r.Object("image");
  std::string image_type = "host";
  image.Optional("type", &image_type);
  if (r.ok() && image_type != "host") {
    image.Fail("type", "'" + image_type + "' is not supported; the only image type is 'host'");
  }
  DSP_RETURN_IF_ERROR(image.Finish());

  JsonReader net = r.Object("network", /*required=*/true);
  std::string subnet;
  net.Required("subnet", &subnet);
  if (r.ok()) {
    auto parsed = ParseIpv4Subnet(subnet);
    if (!parsed) {
      net.Fail("subnet", "'" + subnet + "' is not an IPv4 subnet like 10.231.0.0/24 (host bits must be zero)");
    } else if (parsed->prefix < 16 || parsed->prefix > 28) {
      net.Fail("subnet", "prefix length must be between /16 and /28");
    } else {
      spec.network.subnet = *parsed;
      if (MaxInstancesFor(spec.network) < spec.instance_count) {
        r.Fail("instanceCount", "exceeds the " + std::to_string(MaxInstancesFor(spec.network)) +
                                    " addresses of network.subnet " + subnet);
      }
    }
  }
  std::vector<std::string> space;
  net.Optional("addressSpace", &space);
  for (size_t i = 0; r.ok() && i < space.size(); ++i) {
    auto prefix = ParseIpv4Subnet(space[i]);
    const std::string key = "addressSpace[" + std::to_string(i) + "]";
    if (!prefix) net.Fail(key, "'" + space[i] + "' is not an IPv4 prefix like 10.0.0.0/16 (host bits must be zero)");
    else spec.network.address_space.push_back(*prefix);
  }
  if (r.ok() && !space.empty()) {
    const Ipv4Subnet& sub = spec.network.subnet;
    bool inside = false;
    for (const Ipv4Subnet& p : spec.network.address_space) inside |= p.prefix <= sub.prefix && p.Contains(sub.network);
    if (!inside) net.Fail("addressSpace", "does not hold network.subnet " + sub.ToString());
  }
  const Json* subnet_group = net.Raw("subnetSecurityGroup");
  const Json* nic_group = net.Raw("nicSecurityGroup");
  DSP_RETURN_IF_ERROR(net.Finish());
  for (auto [json, key, slot] : {std::tuple{subnet_group, "subnetSecurityGroup", &spec.network.security.subnet},
                                 std::tuple{nic_group, "nicSecurityGroup", &spec.network.security.nic}}) {
    if (!json) continue;
    const std::string path = net.PathOf(key);
    DSP_ASSIGN_OR_RETURN(SecurityGroup group, ParseSecurityGroup(*json, path));
    DSP_RETURN_IF_ERROR(CheckPrefixesAgainstSubnet(group, spec.network.subnet, path));
    *slot = std::move(group);
  }

  JsonReader share = r.Object("share", /*required=*/true);
  std::string share_type;
  share.Required("type", &share_type);
  if (r.ok() && share_type != "bind" && share_type != "none") {
    share.Fail("type", "'" + share_type + "' is not supported; use 'bind' (a host directory) or 'none'");
  }
  if (r.ok() && share_type == "none") {
    // Azure's layout: homes on each instance; files of worth on a storage
    // share the instances mount themselves (docs/storage.md).
    spec.share = ShareSpec{ShareType::kNone, "", ""};
    for (const char* key : {"source", "mountPath"}) {
      if (share.Has(key)) share.Fail(key, "is not used with type 'none'");
    }
  } else {
    share.Required("source", &spec.share.source);
    if (r.ok() && !IsCleanAbsolutePath(spec.share.source)) {
      share.Fail("source", "must be a clean absolute path, got '" + spec.share.source + "'");
    }
    share.Optional("mountPath", &spec.share.mount_path);
    if (r.ok() && (!IsCleanAbsolutePath(spec.share.mount_path) || spec.share.mount_path == "/")) {
      share.Fail("mountPath", "must be a clean absolute path other than /, got '" + spec.share.mount_path + "'");
    }
  }
  DSP_RETURN_IF_ERROR(share.Finish());

  if (const Json* lb = r.Raw("loadBalancer"); lb != nullptr && r.ok()) {
    DSP_ASSIGN_OR_RETURN(spec.load_balancer, ParseLoadBalancer(*lb, "loadBalancer"));
    for (size_t i = 0; i < spec.load_balancer->nat_pools.size(); ++i) {
      const NatPool& nat = spec.load_balancer->nat_pools[i];
      if (nat.size() < spec.instance_count) {
        r.Fail("instanceCount", std::to_string(spec.instance_count) + " instances need more than the " +
                                    std::to_string(nat.size()) + " ports of loadBalancer.inboundNatPools[" +
                                    std::to_string(i) + "] (" + nat.name + ")");
      }
    }
  }

  r.Optional("customData", &spec.custom_data);
  if (!spec.custom_data.empty() && r.ok()) {
    if (auto script = DecodeCustomData(spec.custom_data, "customData"); !script.ok()) return script.status();
  }
  if (const Json* extensions = r.Raw("extensions"); extensions != nullptr && r.ok()) {
    DSP_ASSIGN_OR_RETURN(spec.extensions, ParseExtensions(*extensions, "extensions"));
  }

  if (r.Raw("jupyter") != nullptr && r.ok()) {
    JsonReader jupyter = r.Object("jupyter");
    JupyterSpec j;
    jupyter.Optional("frontendPort", &j.frontend_port);
    jupyter.Optional("certificateFile", &j.certificate_file);
    jupyter.Optional("keyFile", &j.key_file);
    jupyter.Optional("cullIdleMinutes", &j.cull_idle_minutes);
    if (r.ok() && (j.frontend_port < 1 || j.frontend_port > 65535)) {
      jupyter.Fail("frontendPort", "must be between 1 and 65535");
    }
    if (r.ok() && j.certificate_file.empty() != j.key_file.empty()) {
      jupyter.Fail(j.key_file.empty() ? "keyFile" : "certificateFile",
                   "give certificateFile and keyFile together, or neither (a self-signed certificate)");
    }
    for (auto [field, path] : {std::pair{"certificateFile", &j.certificate_file}, {"keyFile", &j.key_file}}) {
      if (r.ok() && !path->empty() && !IsCleanAbsolutePath(*path)) {
        jupyter.Fail(field, "must be a clean absolute path, got '" + *path + "'");
      }
    }
    if (r.ok() && (j.cull_idle_minutes < 0 || j.cull_idle_minutes > 7 * 24 * 60)) {
      jupyter.Fail("cullIdleMinutes", "must be between 0 (never) and 10080 (a week)");
    }
    if (r.ok() && spec.load_balancer) {
      for (size_t i = 0; i < spec.load_balancer->rules.size(); ++i) {
        if (spec.load_balancer->rules[i].frontend_port == j.frontend_port) {
          jupyter.Fail("frontendPort", std::to_string(j.frontend_port) + " is also loadBalancer.rules[" +
                                           std::to_string(i) + "].frontendPort");
        }
      }
      for (size_t i = 0; i < spec.load_balancer->nat_pools.size(); ++i) {
        const NatPool& nat = spec.load_balancer->nat_pools[i];
        if (r.ok() && nat.frontend_port_start <= j.frontend_port && j.frontend_port <= nat.frontend_port_end) {
          jupyter.Fail("frontendPort", std::to_string(j.frontend_port) + " lies in loadBalancer.inboundNatPools[" +
                                           std::to_string(i) + "]");
        }
      }
    }
    DSP_RETURN_IF_ERROR(jupyter.Finish());
    spec.jupyter = j;
  }

  JsonReader admin = r.Object("adminUser", /*required=*/true);
  admin.Required("name", &spec.admin.name);
  admin.Optional("sshPublicKey", &spec.admin.ssh_public_key);
  admin.Optional("password", &spec.admin.password);
  admin.Optional("passwordHash", &spec.admin.password_hash);
  if (r.ok() && spec.admin.ssh_public_key.empty() && spec.admin.password.empty() &&
      spec.admin.password_hash.empty()) {
    admin.Fail("", "needs sshPublicKey, password or passwordHash");
  }
  if (r.ok() && !spec.admin.password.empty() && !spec.admin.password_hash.empty()) {
    admin.Fail("password", "give password or passwordHash, not both");
  }
  DSP_RETURN_IF_ERROR(admin.Finish());

  const Json* autoscale = r.Raw("autoscale");
  DSP_RETURN_IF_ERROR(r.Finish());
  if (autoscale) {
    DSP_ASSIGN_OR_RETURN(spec.autoscale, ParseAutoscaleSetting(*autoscale, "autoscale", MaxInstanceCount(spec)));
  }
  return spec;
}

namespace {

Json NetworkToJson(const NetworkSpec& net) {
  Json out = {{"subnet", net.subnet.ToString()}};
  if (!net.address_space.empty()) {
    Json space = Json::array();
    for (const Ipv4Subnet& p : net.address_space) space.push_back(p.ToString());
    out["addressSpace"] = space;
  }
  if (net.security.subnet) out["subnetSecurityGroup"] = SecurityGroupToJson(*net.security.subnet);
  if (net.security.nic) out["nicSecurityGroup"] = SecurityGroupToJson(*net.security.nic);
  return out;
}

}  // namespace

Json PoolSpecToJson(const PoolSpec& spec, Secrets secrets) {
  Json admin = {{"name", spec.admin.name}};
  if (!spec.admin.ssh_public_key.empty()) admin["sshPublicKey"] = spec.admin.ssh_public_key;
  if (!spec.admin.password_hash.empty()) admin["passwordHash"] = spec.admin.password_hash;
  Json out = {
      {"name", spec.name.value()},
      {"instanceCount", spec.instance_count},
      {"size",
       {{"vcpus", spec.size.vcpus},
        {"memoryMiB", spec.size.memory_mib},
        {"maxProcesses", spec.size.max_processes}}},
      {"image", {{"type", "host"}}},
      {"network", NetworkToJson(spec.network)},
      {"share", spec.share.type == ShareType::kNone
                    ? Json{{"type", "none"}}
                    : Json{{"type", "bind"}, {"source", spec.share.source}, {"mountPath", spec.share.mount_path}}},
      {"adminUser", admin},
  };
  if (spec.standby_count) out["standbyCount"] = spec.standby_count;
  if (spec.drain_timeout_minutes) out["drainTimeoutMinutes"] = *spec.drain_timeout_minutes;
  if (spec.load_balancer) out["loadBalancer"] = LoadBalancerToJson(*spec.load_balancer);
  if (spec.jupyter) {
    Json j = {{"frontendPort", spec.jupyter->frontend_port}, {"cullIdleMinutes", spec.jupyter->cull_idle_minutes}};
    if (!spec.jupyter->certificate_file.empty()) {
      j["certificateFile"] = spec.jupyter->certificate_file;
      j["keyFile"] = spec.jupyter->key_file;
    }
    out["jupyter"] = j;
  }
  if (!spec.extensions.empty()) out["extensions"] = ExtensionsToJson(spec.extensions, secrets);
  if (!spec.custom_data.empty()) out["customData"] = secrets == Secrets::kInclude ? spec.custom_data : "[secure]";
  if (spec.autoscale) out["autoscale"] = AutoscaleSettingToJson(*spec.autoscale);
  return out;
}

std::string_view PoolStateName(PoolState s) { return s == PoolState::kActive ? "active" : "deleting"; }

Json PoolToJson(const Pool& pool) {
  Json out = {
      {"spec", PoolSpecToJson(pool.spec, Secrets::kInclude)},
      {"state", PoolStateName(pool.state)},
      {"createdAt", ToUnixMillis(pool.created_at)},
      {"updatedAt", ToUnixMillis(pool.updated_at)},
      {"generation", pool.generation},
      {"idBase", pool.id_base},
  };
  if (pool.autoscale_last_action) {
    out["autoscaleLastAction"] = ToUnixMillis(*pool.autoscale_last_action);
    out["autoscaleCooldown"] = pool.autoscale_cooldown_seconds;
  }
  return out;
}

Result<Pool> PoolFromJson(const Json& json) {
  if (!json.is_object() || !json.contains("spec")) return Internal("stored pool is malformed");
  Pool pool;
  DSP_ASSIGN_OR_RETURN(pool.spec, ParsePoolSpec(json["spec"]));
  try {
    pool.state = json.at("state").get<std::string>() == "deleting" ? PoolState::kDeleting : PoolState::kActive;
    pool.created_at = FromUnixMillis(json.at("createdAt").get<int64_t>());
    pool.updated_at = FromUnixMillis(json.at("updatedAt").get<int64_t>());
    pool.generation = json.at("generation").get<int64_t>();
    pool.id_base = json.value("idBase", int64_t{0});
    if (json.contains("autoscaleLastAction")) {
      pool.autoscale_last_action = FromUnixMillis(json.at("autoscaleLastAction").get<int64_t>());
      pool.autoscale_cooldown_seconds = json.value("autoscaleCooldown", int64_t{0});
    }
  } catch (const Json::exception& e) {
    return Internal(std::string("stored pool is malformed: ") + e.what());
  }
  return pool;
}

Result<int64_t> AllocateIdBase(const std::vector<Pool>& pools) {
  std::set<int64_t> used;
  for (const Pool& p : pools) used.insert(p.id_base);
  for (int64_t k = 0; k < kMaxPools; ++k) {
    int64_t base = kFirstIdBase + k * kInstanceIdCount;
    if (!used.count(base)) return base;
  }
  return ResourceExhausted("all " + std::to_string(kMaxPools) + " id blocks for pools are in use");
}

int64_t MaxInstanceCount(const PoolSpec& spec) {
  int64_t max = std::min(kMaxInstancesPerPool, MaxInstancesFor(spec.network));
  if (spec.load_balancer) {
    if (auto nat = NatCapacity(*spec.load_balancer)) max = std::min(max, *nat);
  }
  return max;
}

std::string BridgeName(const PoolName& pool) { return "dsp-" + pool.value(); }

uint32_t GatewayAddress(const NetworkSpec& net) { return net.subnet.network + 1; }

TagAddresses PoolTagAddresses(const NetworkSpec& net) {
  TagAddresses tags;
  tags.virtual_network = net.address_space.empty() ? std::vector<Ipv4Subnet>{net.subnet} : net.address_space;
  tags.load_balancer = GatewayAddress(net);
  return tags;
}

uint32_t InstanceAddress(const NetworkSpec& net, int64_t index) {
  return net.subnet.network + 2 + static_cast<uint32_t>(index);
}

int64_t MaxInstancesFor(const NetworkSpec& net) {
  // Host addresses minus the gateway, capped at the pool maximum.
  int64_t hosts = static_cast<int64_t>(net.subnet.HostCount()) - 1;
  return std::clamp<int64_t>(hosts, 0, kMaxInstancesPerPool * 4);
}

std::string InstanceHostname(const PoolName& pool, int64_t index) { return pool.value() + std::to_string(index); }

std::vector<std::string> ProvisioningSteps(const PoolSpec& spec) {
  std::vector<std::string> out;
  if (!spec.custom_data.empty()) out.push_back(kCustomDataName);
  for (const ExtensionSpec& e : spec.extensions) out.push_back(e.name);
  return out;
}

}  // namespace dspool
