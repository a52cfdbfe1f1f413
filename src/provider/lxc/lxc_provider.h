// LxcProvider: pool instances as LXC system containers on this host.
//
// One container per instance, in dspool's own lxcpath (<data dir>/lxc), named
// by the instance id. Each has:
//   - its hostname, and one veth on the pool's bridge ("dsp-<pool>") with its
//     own IPv4 address; the host end is named "dspv<hash of id>" so a
//     leftover is recognisable
//   - a copy-on-write root: the image (the host's "/") as the read-only lower
//     layer of an overlay whose upper layer lives in the container's directory
//   - CPU, memory and process-count limits from the instance size (cgroup v1
//     or v2, whichever the host runs)
//   - the bind mounts of the request (the share, the agent's run directory,
//     the dspool binary)
//   - the request's init command (the agent) as PID 1
// Labels: <lxcpath>/<id>/dspool.json records pool, index and id. It is
// written before anything else, so even a half-made container is listed and
// cleaned up.
//
// The overlay is mounted inside the container's mount namespace, and the veth
// and cgroups die with the container, so a destroyed instance leaves nothing
// on the host but what Destroy removes: its directory.
//
// Thread safety: as ComputeProvider. liblxc is called from the calling thread.
#pragma once

#include <memory>
#include <string>

#include "provider/compute_provider.h"

namespace dspool {

class LxcProvider final : public ComputeProvider {
 public:
  // Checks that liblxc, overlayfs and cgroups are usable and that `lxcpath`
  // can be created; FailedPrecondition naming what is missing otherwise.
  static Result<std::unique_ptr<LxcProvider>> Create(const std::string& lxcpath);

  std::string Name() const override { return "lxc"; }
  Status EnsureNetwork(const PoolNetwork& network) override;
  Status DeleteNetwork(const PoolName& pool) override;
  Result<std::vector<PoolName>> ListNetworks() override;
  Status Provision(const InstanceRequest& request) override;
  Status Destroy(const InstanceId& id) override;
  Result<std::vector<ProviderInstance>> List() override;

  // The host-side name of an instance's veth.
  static std::string VethName(const InstanceId& id);

 private:
  LxcProvider(std::string lxcpath, bool cgroup2) : lxcpath_(std::move(lxcpath)), cgroup2_(cgroup2) {}
  std::string Dir(const InstanceId& id) const { return lxcpath_ + "/" + id.value(); }

  const std::string lxcpath_;
  const bool cgroup2_;  // unified hierarchy only
};

}  // namespace dspool
