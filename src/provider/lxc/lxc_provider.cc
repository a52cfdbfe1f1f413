#include "provider/lxc/lxc_provider.h"

#include <lxc/lxccontainer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/log.h"
#include "model/json_reader.h"
#include "os/cgroup.h"
#include "os/fs.h"
#include "os/mounts.h"
#include "os/process.h"
#include "os/net.h"
#include "provider/lxc/bridge_filter.h"

namespace dspool {
namespace {

constexpr const char* kLog = "lxc";
constexpr const char* kLabelFile = "dspool.json";
constexpr int kStartTimeoutSeconds = 30;
constexpr int kStopTimeoutSeconds = 10;

// Owns one lxc_container reference.
struct ContainerRef {
  lxc_container* c = nullptr;
  ContainerRef(const std::string& name, const std::string& lxcpath)
      : c(lxc_container_new(name.c_str(), lxcpath.c_str())) {}
  ~ContainerRef() {
    if (c != nullptr) lxc_container_put(c);
  }
  ContainerRef(const ContainerRef&) = delete;
  ContainerRef& operator=(const ContainerRef&) = delete;
};

// liblxc's state name ("STOPPED", "RUNNING", "FROZEN", ...).
std::string StateOf(lxc_container* c) {
  const char* state = c != nullptr ? c->state(c) : nullptr;
  return state != nullptr ? state : "STOPPED";
}

std::string LxcError(lxc_container* c, const std::string& what) {
  std::string msg = what;
  if (c->error_string != nullptr && *c->error_string) msg += ": " + std::string(c->error_string);
  return msg;
}

// FNV-1a, enough to give each id a distinct 10-hex-digit interface suffix.
uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

std::string MountEntry(const BindMount& m, bool is_file) {
  // lxc.mount.entry paths are relative to the rootfs.
  std::string target = m.target.substr(1);
  return m.source + " " + target + " none bind," + (is_file ? "create=file" : "create=dir") +
         (m.read_only ? ",ro" : "") + " 0 0";
}

// liblxc maps an unprivileged container's ids with newuidmap/newgidmap when
// they are installed, and those allow only ranges /etc/subuid and subgid
// grant. Grants root the pools' id blocks once, by appending a line.
Status EnsureRootSubordinateIds(const std::string& file) {
  const int64_t first = kFirstIdBase, count = kMaxPools * kInstanceIdCount;
  std::string text = ReadFile(file).value_or("");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string user, start_text, count_text;
    if (!std::getline(fields, user, ':') || !std::getline(fields, start_text, ':') ||
        !std::getline(fields, count_text)) {
      continue;
    }
    if (user != "root" && user != "0") continue;
    try {
      int64_t start = std::stoll(start_text), n = std::stoll(count_text);
      if (start <= first && start + n >= first + count) return Status::Ok();
    } catch (...) {
      continue;
    }
  }
  if (!text.empty() && text.back() != '\n') text += '\n';
  text += "root:" + std::to_string(first) + ":" + std::to_string(count) + "\n";
  DSP_LOG(kInfo, kLog) << "granting root the ids " << first << "-" << first + count - 1 << " in " << file
                       << " for unprivileged instances";
  return WriteFileAtomic(file, text, 0644);
}

// The first ERROR line liblxc logged (the cause; later ones are fallout),
// without its prefix, or a pointer to the log.
std::string FirstLogError(const std::string& log_path) {
  auto text = ReadFile(log_path);
  if (text.ok()) {
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      size_t at = line.find(" ERROR ");
      if (at == std::string::npos) continue;
      size_t msg = line.find(" - ", at);
      msg = line.find(" - ", msg + 3);  // after "file:function:line - "
      return msg == std::string::npos ? line.substr(at + 7) : line.substr(msg + 3);
    }
  }
  return "see " + log_path;
}

// Instances talk to their own pool's bridge and to nothing else of the
// host: no new connection from any pool's bridge to the host, and no
// traffic between bridges. Where br_netfilter makes bridged frames pass the
// forward hook, traffic within one bridge is let through by the set
// `same_bridge` (one "dsp-x" . "dsp-x" element per network). Replies to
// connections the host makes (the gateway, later) pass. One table for every
// dspool server on the host: installing it again replaces the rules and
// keeps the set's elements.
constexpr const char* kFirewall = R"(table inet dspool {
  set same_bridge { type ifname . ifname; }
  chain input { type filter hook input priority filter; policy accept; }
  chain forward { type filter hook forward priority filter; policy accept; }
}
flush chain inet dspool input
flush chain inet dspool forward
table inet dspool {
  chain input {
    iifname "dsp-*" ct state established,related accept
    iifname "dsp-*" counter drop
  }
  chain forward {
    iifname . oifname @same_bridge accept
    iifname "dsp-*" counter drop
    oifname "dsp-*" counter drop
  }
}
)";

Status RunNft(const std::string& script, const std::string& what) {
  RunOptions opts;
  opts.stdin_text = script;
  opts.timeout = std::chrono::seconds(10);
  return RunChecked({"/usr/sbin/nft", "-f", "-"}, opts).WithPrefix(what);
}

Status InstallFirewall() { return RunNft(kFirewall, "nftables rules for the pools' bridges"); }

// LxcProvider's transparent routing: the mark, in the same table. Apart
// from kFirewall, so a kernel without the `socket` expression keeps the
// firewall and loses only the clients' addresses.
Status InstallTransparentRouting() {
  const std::string mark = std::to_string(LxcProvider::kTransparentMark);
  const std::string script = R"(table inet dspool {
  chain prerouting { type filter hook prerouting priority mangle; policy accept; }
}
flush chain inet dspool prerouting
table inet dspool {
  chain prerouting {
    iifname "dsp-*" meta l4proto tcp socket transparent 1 meta mark set )" +
                             mark + R"(
  }
}
)";
  DSP_RETURN_IF_ERROR(RunNft(script, "nftables rule marking the answers to transparent connections"));
  return EnsureMarkedLocalDelivery(LxcProvider::kTransparentMark, LxcProvider::kTransparentTable,
                                   LxcProvider::kTransparentRulePriority);
}

std::string SameBridgeElement(const std::string& bridge) {
  return "{ \"" + bridge + "\" . \"" + bridge + "\" }";
}

}  // namespace

std::string LxcProvider::VethName(const InstanceId& id) {
  char buf[16];
  snprintf(buf, sizeof(buf), "dspv%010llx",
           static_cast<unsigned long long>(Fnv1a(id.value()) & 0xffffffffffull));
  return buf;
}

Status LxcProvider::CheckHost() {
  if (geteuid() != 0) return FailedPrecondition("the lxc provider needs root (run `dspool server` as root)");
  std::ifstream filesystems("/proc/filesystems");
  std::string line;
  bool overlay = false;
  while (std::getline(filesystems, line)) overlay |= line.find("\toverlay") != std::string::npos;
  if (!overlay) return FailedPrecondition("the kernel has no overlay file system (modprobe overlay)");
  struct stat st;
  if (::stat("/sys/fs/cgroup/cgroup.controllers", &st) != 0 && ::stat("/sys/fs/cgroup/memory", &st) != 0) {
    return FailedPrecondition("no usable cgroup hierarchy under /sys/fs/cgroup");
  }
  return Status::Ok();
}

Result<std::unique_ptr<LxcProvider>> LxcProvider::Create(const std::string& root) {
  DSP_RETURN_IF_ERROR(CheckHost());
  struct stat st;
  bool cgroup2 = ::stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
  for (const char* file : {"/etc/subuid", "/etc/subgid"}) DSP_RETURN_IF_ERROR(EnsureRootSubordinateIds(file));
  // The containers' directories are walked by liblxc from inside the
  // instances' user namespaces: every directory down to them must be
  // traversable by others (0711 is enough; nothing need be listable).
  DSP_RETURN_IF_ERROR(MakeDirs(root, 0711));
  ::chmod(root.c_str(), 0711);
  for (std::string dir = root; !dir.empty(); dir = dir.substr(0, dir.rfind('/'))) {
    if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus(dir, errno);
    if (!(st.st_mode & S_IXOTH)) {
      return FailedPrecondition(dir + " must be traversable by others for unprivileged instances (chmod o+x " + dir +
                                ")");
    }
  }
  DSP_RETURN_IF_ERROR(MakeDirs(root + "/containers", 0711));
  DSP_RETURN_IF_ERROR(InstallFirewall());
  Status transparent = InstallTransparentRouting();
  if (!transparent.ok()) {
    DSP_LOG(kWarning, kLog) << "instances will see the bridge's address, not their clients': " << transparent;
  }
  DSP_RETURN_IF_ERROR(MakeDirs(root + "/networks", 0700));
  DSP_ASSIGN_OR_RETURN(CgroupPlacement server_cgroups, CurrentCgroups());
  DSP_LOG(kInfo, kLog) << "liblxc " << lxc_get_version() << ", root " << root << ", cgroup "
                       << (cgroup2 ? "v2" : "v1");
  return std::unique_ptr<LxcProvider>(new LxcProvider(root, cgroup2, std::move(server_cgroups), std::move(transparent)));
}

Status LxcProvider::EnsureNetwork(const PoolNetwork& net) {
  std::lock_guard lock(networks_mu_);
  // The marker first: a bridge is never made without it, so it is never
  // left behind unowned.
  DSP_RETURN_IF_ERROR(WriteFileAtomic(networks_dir_ + "/" + net.pool.value(), net.bridge + "\n", 0600));
  DSP_ASSIGN_OR_RETURN(bool exists, LinkExists(net.bridge));
  if (!exists) {
    Status s = CreateBridge(net.bridge);
    if (!s.ok() && s.code() != StatusCode::kAlreadyExists) return s.WithPrefix("bridge " + net.bridge);
  }
  DSP_RETURN_IF_ERROR(AddIpv4Address(net.bridge, net.gateway, net.prefix).WithPrefix("bridge " + net.bridge));
  DSP_RETURN_IF_ERROR(SetLinkUp(net.bridge).WithPrefix("bridge " + net.bridge));
  // The pool's security rules before traffic within the bridge is let
  // through; the bridge hands its frames to them (bridge_filter.h).
  if (!net.filter.empty()) DSP_RETURN_IF_ERROR(SetBridgeNetfilter(net.bridge, true));
  DSP_RETURN_IF_ERROR(RunNft(BridgeFilterScript(net), "network security rules on " + net.bridge));
  DSP_RETURN_IF_ERROR(RunNft("add element inet dspool same_bridge " + SameBridgeElement(net.bridge) + "\n",
                             "let traffic within " + net.bridge));
  return AttachInstances(net);
}

Status LxcProvider::AttachInstances(const PoolNetwork& net) {
  DSP_ASSIGN_OR_RETURN(std::vector<ProviderInstance> instances, List());
  for (const ProviderInstance& inst : instances) {
    if (inst.pool != net.pool || !inst.running) continue;
    std::string veth = VethName(inst.id);
    DSP_ASSIGN_OR_RETURN(bool exists, LinkExists(veth));
    if (!exists) continue;
    DSP_RETURN_IF_ERROR(SetLinkMaster(veth, net.bridge));
  }
  return Status::Ok();
}

Status LxcProvider::DeleteNetwork(const PoolName& pool) {
  std::lock_guard lock(networks_mu_);
  Status s = DeleteLink(BridgeName(pool));
  if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  // Absent already (a repeated delete) is fine.
  RunNft("delete element inet dspool same_bridge " + SameBridgeElement(BridgeName(pool)) + "\n", "")
      .IgnoreError();
  DSP_RETURN_IF_ERROR(RunNft(RemoveBridgeFilterScript(pool), "removing the network security rules of " +
                                                                 BridgeName(pool)));
  return RemoveTree(networks_dir_ + "/" + pool.value());
}

Result<std::vector<PoolName>> LxcProvider::ListNetworks() {
  std::lock_guard lock(networks_mu_);
  DSP_ASSIGN_OR_RETURN(std::vector<std::string> marked, ListDir(networks_dir_));
  std::vector<PoolName> out;
  for (const std::string& pool : marked) {
    DSP_ASSIGN_OR_RETURN(bool exists, LinkExists(BridgeName(PoolName(pool))));
    if (exists) {
      out.emplace_back(pool);
    } else {
      // The bridge is gone (a reboot, someone's `ip link del`): forget it
      // and its security rules, so the reconciler makes it again or lets
      // its pool go. Under the lock, so this never races EnsureNetwork's
      // marker-then-bridge.
      DSP_RETURN_IF_ERROR(RunNft(RemoveBridgeFilterScript(PoolName(pool)), "removing the network security rules of " +
                                                                             BridgeName(PoolName(pool))));
      DSP_RETURN_IF_ERROR(RemoveTree(networks_dir_ + "/" + pool));
    }
  }
  return out;
}

Status LxcProvider::PrepareRoot(const InstanceRequest& req, const std::string& dir) {
  const auto root_id = static_cast<uid_t>(req.root_host_id);
  // The upper layer stays the host root's alone (0700) while the masks are
  // made in it by name, and goes to the instance's root only then: no
  // process of the instance's uid can reach it meanwhile.
  DSP_RETURN_IF_ERROR(EnsureDir(dir + "/delta", 0700, FileOwner{0, 0}));
  DSP_RETURN_IF_ERROR(EnsureDir(dir + "/work", 0755, FileOwner{root_id, root_id}));
  DSP_RETURN_IF_ERROR(MakeDirs(dir + "/lower", 0755));
  DSP_RETURN_IF_ERROR(MakeDirs(dir + "/rootfs", 0755));
  // Masks go into the upper layer before the overlay is mounted. A path
  // under a masked directory is hidden already: making it would bring its
  // parents back into view.
  std::vector<std::string> masks = req.masked_paths;
  std::sort(masks.begin(), masks.end(), [](const std::string& a, const std::string& b) { return a.size() < b.size(); });
  std::vector<std::string> hidden_dirs;
  for (const std::string& path : masks) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || path == "/") continue;
    bool hidden = std::any_of(hidden_dirs.begin(), hidden_dirs.end(),
                              [&](const std::string& d) { return path.rfind(d + "/", 0) == 0; });
    if (hidden) continue;
    if (S_ISDIR(st.st_mode)) {
      hidden_dirs.push_back(path);
      DSP_RETURN_IF_ERROR(MakeOpaqueDir(dir + "/delta" + path, st.st_mode & 07777, root_id, root_id));
    } else {
      DSP_RETURN_IF_ERROR(MakeWhiteout(dir + "/delta" + path));
    }
    // The parents just made in the upper layer stand for the image's
    // root-owned directories: they belong to the instance's root, or it
    // could not write in /etc.
    for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
      std::string parent = dir + "/delta" + path.substr(0, slash);
      if (::lchown(parent.c_str(), root_id, root_id) != 0) return ErrnoStatus("chown " + parent, errno);
    }
  }
  DSP_RETURN_IF_ERROR(EnsureDir(dir + "/delta", 0755, FileOwner{root_id, root_id}));
  // The image: the host's "/" alone (no submounts), read-only, with its
  // system ids (0..999, nobody) shown as the instance's. Files of any other
  // host id appear as nobody, so the instance's root cannot read them.
  DSP_ASSIGN_OR_RETURN(UniqueFd image_ns, MakeUserNamespace(ImageIds(req.root_host_id)));
  // Set-user-id programs (sudo) work: their owner is the instance's root.
  DSP_RETURN_IF_ERROR(MountIdmapped("/", dir + "/lower", image_ns.get(), /*read_only=*/true, /*allow_suid=*/true));
  return MountOverlay(dir + "/lower", dir + "/delta", dir + "/work", dir + "/rootfs");
}

std::vector<IdMapping> LxcProvider::ImageIds(int64_t root_host_id) {
  return {{0, root_host_id, 1000}, {65534, root_host_id + 65534, 2}};
}

Result<std::vector<IdMapping>> LxcProvider::MountMapping(MountIds ids, const InstanceIds& instance) {
  switch (ids) {
    case MountIds::kHost:
      return std::vector<IdMapping>{};
    case MountIds::kImage:
      return ImageIds(instance.root_host_id);
    case MountIds::kUsers: {
      int64_t count = instance.user_id_last - instance.user_id_first + 1;
      if (instance.user_id_first < 1 || count < 1 || instance.user_id_last >= kInstanceIdCount) {
        return InvalidArgument("user ids " + std::to_string(instance.user_id_first) + "-" +
                               std::to_string(instance.user_id_last) + " must lie within 1.." +
                               std::to_string(kInstanceIdCount - 1));
      }
      return std::vector<IdMapping>{
          {instance.user_id_first, instance.root_host_id + instance.user_id_first, count}};
    }
  }
  return InvalidArgument("unknown mount ids");
}

Result<UniqueFd> LxcProvider::OpenMount(const BindMount& m, const InstanceIds& ids) {
  DSP_ASSIGN_OR_RETURN(std::vector<IdMapping> mapping, MountMapping(m.ids, ids));
  if (mapping.empty()) return InvalidArgument("a mount an agent attaches maps its ids (not MountIds::kHost)");
  DSP_ASSIGN_OR_RETURN(UniqueFd ns, MakeUserNamespace(mapping));
  return OpenIdmapped(m.source, ns.get(), m.read_only);
}

Result<std::string> LxcProvider::PrepareMount(const InstanceRequest& req, const std::string& dir, size_t k,
                                              const BindMount& m) {
  if (m.ids == MountIds::kHost) return m.source;
  DSP_ASSIGN_OR_RETURN(std::vector<IdMapping> mapping,
                       MountMapping(m.ids, InstanceIds{req.root_host_id, req.user_id_first, req.user_id_last}));
  struct stat st;
  if (::stat(m.source.c_str(), &st) != 0) return ErrnoStatus("mount source " + m.source, errno);
  std::string target = dir + "/mnt/" + std::to_string(k);
  DSP_RETURN_IF_ERROR(MakeDirs(dir + "/mnt", 0755));
  if (S_ISDIR(st.st_mode)) {
    DSP_RETURN_IF_ERROR(MakeDirs(target, 0755));
  } else {
    DSP_RETURN_IF_ERROR(WriteFileAtomic(target, "", 0644));
  }
  DSP_ASSIGN_OR_RETURN(UniqueFd ns, MakeUserNamespace(mapping));
  DSP_RETURN_IF_ERROR(MountIdmapped(m.source, target, ns.get(), m.read_only));
  return target;
}

Status LxcProvider::Provision(const InstanceRequest& req) {
  const std::string name = req.id.value();
  {
    ContainerRef ref(name, lxcpath_);
    if (ref.c == nullptr) return Internal("liblxc could not allocate container " + name);
    if (ref.c->is_running(ref.c)) return Status::Ok();
  }
  if (req.root_host_id < kFirstIdBase) {
    return InvalidArgument("instance " + name + ": root_host_id must be at least " + std::to_string(kFirstIdBase));
  }
  // Whatever exists is half-made: start over.
  DSP_RETURN_IF_ERROR(Destroy(req.id));

  const std::string dir = Dir(req.id);
  DSP_RETURN_IF_ERROR(MakeDirs(dir, 0755));
  Json labels = {{"id", name}, {"pool", req.pool.value()}, {"index", req.index}};
  DSP_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + kLabelFile, labels.dump() + "\n", 0600));
  Status s = StartContainer(req, dir);
  // The instance holds its own copies of its mounts; the host needs none of
  // them, started or not.
  DetachMounts(dir);
  return s;
}

Status LxcProvider::StartContainer(const InstanceRequest& req, const std::string& dir) {
  const std::string name = req.id.value();
  DSP_RETURN_IF_ERROR(PrepareRoot(req, dir));

  ContainerRef ref(name, lxcpath_);
  lxc_container* c = ref.c;
  if (c == nullptr) return Internal("liblxc could not allocate container " + name);
  const std::string idmap = "0 " + std::to_string(req.root_host_id) + " " + std::to_string(kInstanceIdCount);
  std::vector<std::pair<std::string, std::string>> config = {
      {"lxc.include", "/usr/share/lxc/config/common.conf"},
      {"lxc.include", "/usr/share/lxc/config/userns.conf"},
      {"lxc.idmap", "u " + idmap},
      {"lxc.idmap", "g " + idmap},
      {"lxc.uts.name", req.hostname},
      {"lxc.rootfs.path", "dir:" + dir + "/rootfs"},
      {"lxc.mount.auto", "proc:mixed sys:mixed cgroup:mixed"},
      {"lxc.autodev", "1"},
      {"lxc.tty.max", "0"},
      {"lxc.pty.max", "64"},
      {"lxc.apparmor.profile", "unconfined"},
      {"lxc.net.0.type", "veth"},
      {"lxc.net.0.link", req.network.bridge},
      {"lxc.net.0.name", "eth0"},
      {"lxc.net.0.veth.pair", VethName(req.id)},
      {"lxc.net.0.flags", "up"},
      {"lxc.net.0.ipv4.address", FormatIpv4(req.address) + "/" + std::to_string(req.network.prefix)},
      {"lxc.net.0.ipv4.gateway", FormatIpv4(req.network.gateway)},
      {"lxc.log.file", dir + "/lxc.log"},
      {"lxc.log.level", "WARN"},
  };
  const int64_t memory_bytes = req.size.memory_mib * 1024 * 1024;
  const int64_t period_us = 100000;
  if (cgroup2_) {
    config.push_back({"lxc.cgroup2.memory.max", std::to_string(memory_bytes)});
    config.push_back({"lxc.cgroup2.memory.swap.max", "0"});
    config.push_back({"lxc.cgroup2.cpu.max", std::to_string(req.size.vcpus * period_us) + " " +
                                                 std::to_string(period_us)});
    config.push_back({"lxc.cgroup2.pids.max", std::to_string(req.size.max_processes)});
  } else {
    config.push_back({"lxc.cgroup.memory.limit_in_bytes", std::to_string(memory_bytes)});
    config.push_back({"lxc.cgroup.cpu.cfs_period_us", std::to_string(period_us)});
    config.push_back({"lxc.cgroup.cpu.cfs_quota_us", std::to_string(req.size.vcpus * period_us)});
    config.push_back({"lxc.cgroup.pids.max", std::to_string(req.size.max_processes)});
  }
  for (size_t k = 0; k < req.mounts.size(); ++k) {
    const BindMount& m = req.mounts[k];
    struct stat st;
    if (::stat(m.source.c_str(), &st) != 0) return ErrnoStatus("mount source " + m.source, errno);
    DSP_ASSIGN_OR_RETURN(std::string source, PrepareMount(req, dir, k, m));
    config.push_back({"lxc.mount.entry", MountEntry(BindMount{source, m.target, m.read_only, m.ids},
                                                    !S_ISDIR(st.st_mode))});
  }
  for (const auto& [key, value] : config) {
    if (!c->set_config_item(c, key.c_str(), value.c_str())) {
      return Internal(LxcError(c, "container " + name + ": cannot set " + key + " = " + value));
    }
  }
  if (!c->save_config(c, nullptr)) return Internal(LxcError(c, "container " + name + ": cannot save config"));

  std::vector<char*> argv;
  for (const std::string& arg : req.init_command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  c->want_daemonize(c, true);
  c->want_close_all_fds(c, true);
  bool started = c->start(c, 0, argv.data());
  // liblxc moved this process into the container's monitor cgroup (see
  // os/cgroup.h): back to where the server runs.
  if (Status s = JoinCgroups(server_cgroups_); !s.ok()) {
    DSP_LOG(kWarning, kLog) << "after starting " << name << ", the server could not return to its cgroup: " << s;
  }
  if (!started) {
    return Unavailable(LxcError(c, "container " + name + " did not start") + ": " + FirstLogError(dir + "/lxc.log"));
  }
  if (!c->wait(c, "RUNNING", kStartTimeoutSeconds)) {
    return DeadlineExceeded("container " + name + " not running after " + std::to_string(kStartTimeoutSeconds) + "s");
  }
  DSP_LOG(kInfo, kLog) << "started " << name << " (" << req.hostname << ", " << FormatIpv4(req.address) << ")";
  return Status::Ok();
}

void LxcProvider::DetachMounts(const std::string& dir) {
  auto mounts = MountsUnder(dir);
  if (!mounts.ok()) return;
  for (const std::string& m : *mounts) {
    if (Status s = Unmount(m, /*detach=*/true); !s.ok() && s.code() != StatusCode::kNotFound) {
      DSP_LOG(kWarning, kLog) << s;
    }
  }
}

Status LxcProvider::Destroy(const InstanceId& id) {
  const std::string name = id.value();
  {
    ContainerRef ref(name, lxcpath_);
    lxc_container* c = ref.c;
    if (c == nullptr) return Internal("liblxc could not allocate container " + name);
    if (c->is_running(c)) {
      // The agent is PID 1 and has nothing to save (user files are on the
      // share): a hard stop is the right speed.
      if (!c->stop(c)) return Internal(LxcError(c, "container " + name + ": cannot stop"));
      if (!c->wait(c, "STOPPED", kStopTimeoutSeconds)) {
        return DeadlineExceeded("container " + name + " still running after stop");
      }
    }
  }
  // liblxc removes the container's cgroups when it stops, unless a process
  // was still in one then (before os/cgroup.h's fix, this server; a start
  // cut short by a crash): whatever is left goes now.
  for (const char* kind : {"lxc.monitor.", "lxc.payload."}) {
    // Busy: liblxc's monitor may still be on its way out, and removes it.
    Status s = RemoveTopCgroup(kind + name);
    if (s.code() == StatusCode::kFailedPrecondition) {
      DSP_LOG(kInfo, kLog) << s;
    } else if (!s.ok()) {
      DSP_LOG(kWarning, kLog) << s;
    }
  }
  // Mounts a crashed Provision left on the host go first, so that nothing
  // below removes files through them.
  DetachMounts(Dir(id));
  return RemoveTree(Dir(id));
}

Status LxcProvider::Freeze(const InstanceId& id) { return SetFrozen(id, true); }

Status LxcProvider::Thaw(const InstanceId& id) { return SetFrozen(id, false); }

// liblxc's freeze and unfreeze would do, but under cgroup v1 they read the
// state back once a second: a freeze not done at the first read returns a
// second later, and a thaw behind it waits as long. So the freezer is set
// through liblxc's cgroup items and read back every millisecond. (liblxc's
// own state() then still says RUNNING: List reads the freezer.)
Status LxcProvider::SetFrozen(const InstanceId& id, bool frozen) {
  const std::string name = id.value();
  ContainerRef ref(name, lxcpath_);
  lxc_container* c = ref.c;
  if (c == nullptr) return Internal("liblxc could not allocate container " + name);
  if (!c->is_defined(c)) return NotFound("container " + name + " does not exist");
  if (StateOf(c) == "STOPPED") {
    // Nothing runs to thaw; nothing can be frozen.
    return frozen ? FailedPrecondition("container " + name + " is stopped, not running") : Status::Ok();
  }
  const char* item = cgroup2_ ? "cgroup.freeze" : "freezer.state";
  const char* value = cgroup2_ ? (frozen ? "1" : "0") : (frozen ? "FROZEN" : "THAWED");
  const std::string what = "container " + name + ": cannot " + (frozen ? "freeze" : "thaw");
  if (!c->set_cgroup_item(c, item, value)) return Internal(LxcError(c, what + " (" + item + ")"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kStopTimeoutSeconds);
  for (;;) {
    DSP_ASSIGN_OR_RETURN(bool now_frozen, ReadFrozen(c));
    if (now_frozen == frozen) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline) {
      return DeadlineExceeded(what + ": not done after " + std::to_string(kStopTimeoutSeconds) + "s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Result<bool> LxcProvider::ReadFrozen(lxc_container* c) {
  // v1: freezer.state reads FREEZING until every task has stopped, then
  // FROZEN; v2: cgroup.events says "frozen 1" then.
  const char* item = cgroup2_ ? "cgroup.events" : "freezer.state";
  char buf[256] = {};
  if (c->get_cgroup_item(c, item, buf, sizeof(buf) - 1) < 0) {
    return Internal(LxcError(c, "container " + std::string(c->name) + ": cannot read " + item));
  }
  return std::string_view(buf).find(cgroup2_ ? "frozen 1" : "FROZEN") != std::string_view::npos;
}

Result<std::vector<ProviderInstance>> LxcProvider::List() {
  char** names = nullptr;
  int n = list_all_containers(lxcpath_.c_str(), &names, nullptr);
  std::set<std::string> seen;
  if (n > 0) {
    for (int i = 0; i < n; ++i) {
      seen.insert(names[i]);
      free(names[i]);
    }
    free(names);
  }
  // Directories with a label but no config are half-made; list them too.
  DSP_ASSIGN_OR_RETURN(std::vector<std::string> dirs, ListDir(lxcpath_));
  for (const std::string& d : dirs) seen.insert(d);

  std::vector<ProviderInstance> out;
  for (const std::string& name : seen) {
    ProviderInstance inst;
    inst.id = InstanceId(name);
    auto labels_text = ReadFile(Dir(inst.id) + "/" + kLabelFile);
    Json labels;
    if (labels_text.ok() && ParseJsonText(*labels_text, kLabelFile, &labels).ok() && labels.is_object() &&
        labels.value("id", "") == name) {
      inst.pool = PoolName(labels.value("pool", ""));
      inst.index = labels.value("index", int64_t{0});
    } else {
      // Not labelled: not ours to adopt, but in our lxcpath, so ours to remove.
      inst.pool = PoolName("");
    }
    ContainerRef ref(name, lxcpath_);
    inst.running = StateOf(ref.c) != "STOPPED";  // liblxc's is_running
    if (inst.running) {
      // As the kernel says: a freeze in flight reads FREEZING, not frozen.
      auto frozen = ReadFrozen(ref.c);
      inst.frozen = frozen.ok() && *frozen;
    }
    out.push_back(std::move(inst));
  }
  return out;
}

}  // namespace dspool
