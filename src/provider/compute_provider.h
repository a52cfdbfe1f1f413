// ComputeProvider: creates, lists and destroys the machines that back pool
// instances, and the per-pool networks they attach to.
//
// A provider is told *what* an instance is (InstanceRequest, fully resolved by
// the server: addresses, mounts, limits, the agent command) and keeps no state
// of its own besides what it can list back: every instance it makes carries
// its pool, index and id in the provider's own labels, so a restarted server
// adopts what exists and removes what should not (see reconcile/planner.h).
//
// Every operation is idempotent, because a server can die between any two
// calls and the reconciler will repeat the last one:
//   Provision of an instance that is already running succeeds and changes
//   nothing; of one that exists half-made, replaces it.
//   Destroy of an absent instance succeeds.
//   Freeze of a frozen instance, and Thaw of a running one, succeed.
//   EnsureNetwork of an existing network succeeds; DeleteNetwork of an absent
//   one succeeds.
//
// Implementations: lxc (provider/lxc), fake (provider/fake, for tests).
// Thread safety: all methods may be called concurrently, but never two
// concurrent calls for the same instance id or the same pool's network (the
// reconciler guarantees it).
#pragma once

#include <string>
#include <vector>

#include "base/ids.h"
#include "base/result.h"
#include "model/pool.h"
#include "os/unique_fd.h"

namespace dspool {

// How a bind mount shows its files' owners inside an instance.
enum class MountIds {
  kHost,   // as on the host (ids the instance does not map show as nobody)
  kImage,  // as the image: host system ids (root, ...) are the instance's
  kUsers,  // the pool users' ids are the same inside and on the host; every
           // other id (root among them) is unmapped, so the instance's root
           // can neither own nor chown files there
};

struct BindMount {
  std::string source;  // host path (directory or file)
  std::string target;  // path inside the instance
  bool read_only = false;
  MountIds ids = MountIds::kHost;
  friend bool operator==(const BindMount&, const BindMount&) = default;
};

struct PoolNetwork {
  PoolName pool;
  std::string bridge;  // host interface name
  uint32_t gateway = 0;  // the bridge's address
  int prefix = 24;
  // The pool's network security groups as they apply between its
  // instances (LayersWithinSubnet); empty: the bridge passes everything.
  std::vector<FilterLayer> filter;
  friend bool operator==(const PoolNetwork&, const PoolNetwork&) = default;
};

// The network of a pool with `spec`.
inline PoolNetwork PoolNetworkOf(const PoolSpec& spec) {
  const NetworkSpec& net = spec.network;
  return PoolNetwork{spec.name, BridgeName(spec.name), GatewayAddress(net), net.subnet.prefix,
                     LayersWithinSubnet(net.security, InstanceAddress(net, 0), PoolTagAddresses(net))};
}

// The ids an instance maps (InstanceRequest's fields of the same names).
struct InstanceIds {
  int64_t root_host_id = 0;
  int64_t user_id_first = 0;
  int64_t user_id_last = 0;
};

struct InstanceRequest {
  InstanceId id;
  PoolName pool;
  int64_t index = 0;
  std::string hostname;
  InstanceSize size;
  PoolNetwork network;
  uint32_t address = 0;
  std::vector<BindMount> mounts;
  // The instance's first process (its init); the agent.
  std::vector<std::string> init_command;
  // Isolation. The instance runs in a user namespace mapping its ids
  // 0..kInstanceIdCount-1 to host ids root_host_id..; its root is no host
  // root. Ids user_id_first..user_id_last are the pool users' (see
  // MountIds::kUsers).
  int64_t root_host_id = 0;
  int64_t user_id_first = 0;
  int64_t user_id_last = 0;
  // Host paths the instance must not see through its image: directories
  // show empty, files are absent.
  std::vector<std::string> masked_paths;
};

struct ProviderInstance {
  InstanceId id;
  PoolName pool;
  int64_t index = 0;
  bool running = false;  // false: it exists but is stopped or half-made
  bool frozen = false;   // running, with every process stopped by Freeze
  friend bool operator==(const ProviderInstance&, const ProviderInstance&) = default;
};

class ComputeProvider {
 public:
  virtual ~ComputeProvider() = default;

  // A short name for messages and metrics ("lxc", "fake").
  virtual std::string Name() const = 0;

  virtual Status EnsureNetwork(const PoolNetwork& network) = 0;
  virtual Status DeleteNetwork(const PoolName& pool) = 0;
  // Pools whose network exists.
  virtual Result<std::vector<PoolName>> ListNetworks() = 0;

  // Creates and starts the instance. Returns once its init process runs;
  // readiness (the agent's first report) is the server's business.
  virtual Status Provision(const InstanceRequest& request) = 0;
  // Stops the instance if running and removes everything it had on the host
  // (root layer, network interfaces, cgroups, mounts).
  virtual Status Destroy(const InstanceId& id) = 0;
  // Stops every process of a running instance where it is (the cgroup
  // freezer): it keeps its memory, sockets and addresses and uses no CPU
  // until Thaw. FailedPrecondition if it is not running; NotFound if absent.
  virtual Status Freeze(const InstanceId& id) = 0;
  // Lets a frozen instance's processes run on. NotFound if absent.
  virtual Status Thaw(const InstanceId& id) = 0;
  // Every instance this provider manages, on this host.
  virtual Result<std::vector<ProviderInstance>> List() = 0;

  // A mount that a running instance's agent attaches itself (a storage
  // share its script mounts; docs/storage.md): `mount.source` bound,
  // detached, its ids as `mount.ids` shows them to an instance whose ids
  // are `ids` (InstanceRequest's root_host_id and user ids). The server
  // passes the descriptor to the agent, which attaches it where the
  // instance wants it: the host never resolves a path inside the instance.
  // FailedPrecondition where instances cannot take mounts so.
  virtual Result<UniqueFd> OpenMount(const BindMount& mount, const InstanceIds& ids) = 0;
};

}  // namespace dspool
