// LxcProvider: pool instances as LXC system containers on this host.
//
// Everything lives under one root directory (<data dir>/lxc):
//   containers/<id>/    the lxcpath: one container per instance, named by id
//   networks/<pool>     a marker per bridge this provider made; only those
//                       bridges are ever listed or deleted, so two dspool
//                       servers (or anything else naming links "dsp-*") on
//                       one host never take each other's networks
// Each container has:
//   - its hostname, and one veth on the pool's bridge ("dsp-<pool>") with its
//     own IPv4 address; the host end is named "dspv<hash of id>" so a
//     leftover is recognisable
//   - a user namespace: ids 0..65535 inside are root_host_id.. on the host,
//     so the instance's root is an unprivileged host user (one block per
//     pool)
//   - a copy-on-write root: the image (the host's "/", idmapped so its
//     system files belong to the instance's root) as the read-only lower
//     layer of an overlay whose upper layer lives in the container's
//     directory and masks what the instance must not see (masked_paths)
//   - CPU, memory and process-count limits from the instance size (cgroup v1
//     or v2, whichever the host runs)
//   - the bind mounts of the request (the share, the agent's run directory,
//     the dspool binary)
//   - the request's init command (the agent) as PID 1
// Labels: <lxcpath>/<id>/dspool.json records pool, index and id. It is
// written before anything else, so even a half-made container is listed and
// cleaned up.
//
// The overlay and idmapped views are mounted on the host only while the
// container starts, then detached: the container keeps its own copies. The
// veth and cgroups die with the container, so a destroyed instance leaves
// nothing on the host but what Destroy removes: its directory.
//
// Create installs the nftables table "inet dspool": instances reach their own
// bridge and nothing else of the host (see docs/security.md). It also sets
// up transparent routing, so the gateway can connect to an instance from its
// client's address (IP_TRANSPARENT) and still get the answers: a packet
// that comes in from a pool's bridge ("dsp-*") and belongs to a transparent
// socket of this host is marked kTransparentMark (the table's prerouting
// chain, `socket transparent 1`), and marked packets are delivered locally
// (rule kTransparentRulePriority: fwmark → table kTransparentTable, which
// routes everything to lo). Both are host-wide, one for every bridge and
// every dspool server, labelled by their numbers, and installed again at
// every Create (idempotent); they touch only packets of transparent sockets
// from the bridges. Where they cannot be installed (no nft `socket`
// expression, a refused rule), transparent_connect() is false and says why.
//
// Needs root, Linux 5.12+ (idmapped mounts), and an entry for root in
// /etc/subuid and /etc/subgid covering the pools' id blocks (liblxc maps ids
// with newuidmap when it is installed); Create checks it.
//
// Thread safety: as ComputeProvider. liblxc is called from the calling thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "os/cgroup.h"
#include "os/mounts.h"
#include "provider/compute_provider.h"

struct lxc_container;  // liblxc's, from <lxc/lxccontainer.h> (included by the .cc only)

namespace dspool {

class LxcProvider final : public ComputeProvider {
 public:
  // What this host must offer before anything is made: root, overlayfs, a
  // cgroup hierarchy (v1 or v2). FailedPrecondition naming what is missing
  // otherwise. (Tests tell "cannot run here" from a failure with it.)
  static Status CheckHost();
  // CheckHost, then checks that liblxc's ids, firewall and `root` can be
  // set up, and does it; FailedPrecondition naming what is missing
  // otherwise.
  static Result<std::unique_ptr<LxcProvider>> Create(const std::string& root);

  std::string Name() const override { return "lxc"; }
  Status EnsureNetwork(const PoolNetwork& network) override;
  Status DeleteNetwork(const PoolName& pool) override;
  Result<std::vector<PoolName>> ListNetworks() override;
  Status Provision(const InstanceRequest& request) override;
  Status Destroy(const InstanceId& id) override;
  Status Freeze(const InstanceId& id) override;
  Status Thaw(const InstanceId& id) override;
  Result<std::vector<ProviderInstance>> List() override;
  Result<UniqueFd> OpenMount(const BindMount& mount, const InstanceIds& ids) override;

  // The host-side name of an instance's veth.
  static std::string VethName(const InstanceId& id);

  // Transparent routing (above): 0x6473 is "ds".
  static constexpr uint32_t kTransparentMark = 0x6473;
  static constexpr uint32_t kTransparentTable = 0x6473;
  static constexpr uint32_t kTransparentRulePriority = 0x6473;
  // OK if the host delivers the answers to the gateway's transparent
  // connections (set up by Create); otherwise why not, and the gateway
  // connects from the bridge's address.
  const Status& transparent_connect() const { return transparent_; }

 private:
  LxcProvider(const std::string& root, bool cgroup2, CgroupPlacement server_cgroups, Status transparent)
      : lxcpath_(root + "/containers"),
        networks_dir_(root + "/networks"),
        cgroup2_(cgroup2),
        server_cgroups_(std::move(server_cgroups)),
        transparent_(std::move(transparent)) {}
  std::string Dir(const InstanceId& id) const { return lxcpath_ + "/" + id.value(); }
  // Builds the instance's root: masks in the upper layer, the image as an
  // idmapped lower layer, the overlay of both at <dir>/rootfs.
  Status PrepareRoot(const InstanceRequest& request, const std::string& dir);
  // The host path to bind for mount `k`: its source, or an idmapped view of
  // it at <dir>/mnt/<k> (MountIds).
  Result<std::string> PrepareMount(const InstanceRequest& request, const std::string& dir, size_t k,
                                   const BindMount& mount);
  // The image's view of host ids: system ids (0..999, nobody) are the
  // instance's; files of any other host id show as nobody.
  static std::vector<IdMapping> ImageIds(int64_t root_host_id);
  // How a mount of `ids` kind shows host ids to an instance of `instance`'s
  // ids (MountIds); empty for kHost (no mapping).
  static Result<std::vector<IdMapping>> MountMapping(MountIds ids, const InstanceIds& instance);
  Status StartContainer(const InstanceRequest& request, const std::string& dir);
  // Freeze (`frozen`) and Thaw: sets the container's freezer and waits
  // until the kernel says every task has stopped, or runs again.
  Status SetFrozen(const InstanceId& id, bool frozen);
  // Whether the kernel says every task of running container `c` is frozen.
  Result<bool> ReadFrozen(lxc_container* c);
  // Lazily unmounts every host mount under `dir` (the instance keeps its own).
  void DetachMounts(const std::string& dir);
  // Attaches the host end of every running instance of `pool` to its bridge
  // (after the bridge was re-created under them).
  Status AttachInstances(const PoolNetwork& network);

  const std::string lxcpath_;
  const std::string networks_dir_;
  std::mutex networks_mu_;  // EnsureNetwork, DeleteNetwork and ListNetworks are serialised
  const bool cgroup2_;  // unified hierarchy only
  // Where the server ran when the provider was made; it returns there after
  // every container start (liblxc moves it into the container's monitor
  // cgroup).
  const CgroupPlacement server_cgroups_;
  const Status transparent_;
};

}  // namespace dspool
