// Pool: the desired state of one pool of instances, as the user wrote it
// (PoolSpec) plus what the server keeps about it (Pool).
//
// The native spec is JSON; docs/pool-spec.md documents every field. Parsing is
// strict: unknown fields and bad values are errors naming their JSON path.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/result.h"
#include "model/autoscale.h"
#include "model/extension.h"
#include "model/ipv4.h"
#include "model/json_reader.h"
#include "model/load_balancer.h"
#include "model/network_security.h"

namespace dspool {

struct InstanceSize {
  int64_t vcpus = 1;
  int64_t memory_mib = 1024;
  int64_t max_processes = 4096;
  friend bool operator==(const InstanceSize&, const InstanceSize&) = default;
};

enum class ImageType { kHost };  // the host's root file system, read-only, under a copy-on-write layer

struct ImageSpec {
  ImageType type = ImageType::kHost;
  friend bool operator==(const ImageSpec&, const ImageSpec&) = default;
};

struct NetworkSpec {
  Ipv4Subnet subnet;  // the pool's bridge takes the first host address
  // The virtual network's prefixes (the VirtualNetwork service tag); they
  // hold the subnet. Empty: the subnet alone.
  std::vector<Ipv4Subnet> address_space;
  // The groups on the subnet and on the instances' NICs
  // (model/network_security.h), enforced by the gateway and on the bridge.
  NetworkSecurity security;
  friend bool operator==(const NetworkSpec&, const NetworkSpec&) = default;
};

// kBind: a host directory, mounted in every instance; the users' homes
// and notebook folders are on it. kNone: Azure's layout, for pools made
// from templates: homes are each instance's own (/home/<user>), and files of
// worth live on a storage account's share that the instances mount
// (docs/storage.md).
enum class ShareType { kBind, kNone };

struct ShareSpec {
  ShareType type = ShareType::kBind;
  std::string source;                           // host directory (absolute); kBind only
  std::string mount_path = "/datamnt/dsvmshare";  // inside every instance; kBind only
  friend bool operator==(const ShareSpec&, const ShareSpec&) = default;
};

// The pool's first user, created with the pool. Secrets: `password` is only
// ever present in a request being processed; it is hashed at once and never
// stored, logged or returned.
struct AdminUserSpec {
  std::string name;
  std::string ssh_public_key;
  std::string password;       // plain text, transient
  std::string password_hash;  // crypt(3) string
  friend bool operator==(const AdminUserSpec&, const AdminUserSpec&) = default;
};

// The pool's Jupyter address: the gateway logs users in (pool identity)
// and routes /user/<name>/ to each user's own notebook server in the pool.
// It listens on the loadBalancer's frontendAddress (all interfaces without
// one).
// The port of JupyterHub on the reference's DSVM: a template's
// load-balancing rule to it becomes the pool's Jupyter frontend, and
// network security rules see the Jupyter frontend's connections going to
// it, whatever port the frontend listens on.
inline constexpr int64_t kJupyterBackendPort = 8000;

struct JupyterSpec {
  int64_t frontend_port = 8000;  // as the reference's JupyterHub rule
  std::string certificate_file;  // PEM chain; empty: a self-signed one made for the pool
  std::string key_file;          // PEM; given with certificate_file or not at all
  int64_t cull_idle_minutes = 60;  // a server idle this long is stopped; 0: never
  friend bool operator==(const JupyterSpec&, const JupyterSpec&) = default;
};

struct PoolSpec {
  PoolName name;
  int64_t instance_count = 1;
  // Instances kept booted and frozen beyond instance_count, for a scale-out
  // to take at once (model/instance.h, standby). They use addresses (and NAT
  // slots) the pool's instances leave free: never more than
  // MaxInstanceCount(spec) - instance_count exist.
  int64_t standby_count = 0;
  // How long scale-in waits for a chosen instance's last SSH session and
  // notebook server to end before deleting it anyway; nullopt: as long as
  // they last (model/instance.h, ScaleIn).
  std::optional<int64_t> drain_timeout_minutes;
  InstanceSize size;
  ImageSpec image;
  NetworkSpec network;
  ShareSpec share;
  AdminUserSpec admin;
  // The pool's front address; absent: instances are reached only on their
  // own addresses.
  std::optional<LoadBalancerSpec> load_balancer;
  std::optional<JupyterSpec> jupyter;
  // Scripts run as root in each new instance before it is Ready
  // (model/extension.h; docs/extensions.md).
  std::vector<ExtensionSpec> extensions;
  // Base64 of a shell script each new instance runs first (DecodeCustomData;
  // a secret, as protected settings are).
  std::string custom_data;
  // Azure's autoscale setting for the pool (model/autoscale.h), from a
  // template's Microsoft.Insights/autoscaleSettings: validated and kept
  // with the pool; the autoscale engine (issue 16) will execute it.
  std::optional<AutoscaleSetting> autoscale;
  friend bool operator==(const PoolSpec&, const PoolSpec&) = default;
};

inline constexpr int64_t kMaxInstancesPerPool = 100;
inline constexpr int64_t kMaxDrainTimeoutMinutes = 10080;  // a week
// Ids mapped into an instance (uids and gids 0..65535), and where on the host
// the pools' blocks of them start.
inline constexpr int64_t kInstanceIdCount = 65536;
inline constexpr int64_t kFirstIdBase = 1'000'000;
inline constexpr int64_t kMaxPools = 1000;  // as a VM scale set's single placement group
inline constexpr size_t kMaxPoolNameLength = 11;      // "dsp-<name>" must fit IFNAMSIZ

// Parses and validates a user-written spec. Errors are InvalidArgument and
// name the JSON path ("network.subnet: ..."). Checks that need the host
// (route collisions, the share directory) are the server's, not this.
Result<PoolSpec> ParsePoolSpec(const Json& json);
// share.source against the host's own directories: `resolved` is the
// source with every symlink resolved (what a mount would reach), and
// `data_dir` the server's. Refused, InvalidArgument naming share.source: a
// system directory (/, /etc, /usr, /var, /root, /boot, /home, /proc, /sys,
// /dev, /run, /tmp), anything under /proc, /sys, /dev, /run or /boot, the
// data directory, anything in it, and anything that holds it.
Status CheckShareSource(const std::string& source, const std::string& resolved, const std::string& data_dir);
// The spec in the documented JSON form; `password` is never written, and
// the extensions' protected settings only as `secrets` says (kInclude for
// the server's own state, kRedact for answers).
Json PoolSpecToJson(const PoolSpec& spec, Secrets secrets);

// What an instance of the pool runs before it is Ready, by the names its
// agent reports them under: customData first, then each extension.
std::vector<std::string> ProvisioningSteps(const PoolSpec& spec);

Status ValidatePoolName(const std::string& name);
// The most instances the pool may have: the subnet's addresses, the NAT
// pools' port ranges and kMaxInstancesPerPool, whichever is least.
int64_t MaxInstanceCount(const PoolSpec& spec);

enum class PoolState { kActive, kDeleting };
std::string_view PoolStateName(PoolState s);

struct Pool {
  PoolSpec spec;
  PoolState state = PoolState::kActive;
  TimePoint created_at;
  TimePoint updated_at;
  int64_t generation = 1;  // bumped by every change of the spec
  // Host uid and gid of the instances' root. Each pool's instances map ids
  // 0..kInstanceIdCount-1 onto id_base.., a block no other pool shares.
  int64_t id_base = 0;
  // What its autoscale setting's runs remember (autoscale/engine.h's
  // Memory): when a rule last changed the count, and that rule's cooldown.
  std::optional<TimePoint> autoscale_last_action;
  int64_t autoscale_cooldown_seconds = 0;

  const PoolName& name() const { return spec.name; }
  friend bool operator==(const Pool&, const Pool&) = default;
};

// The lowest id block (kFirstIdBase + k * kInstanceIdCount) no pool in
// `pools` uses; ResourceExhausted after kMaxPools blocks.
Result<int64_t> AllocateIdBase(const std::vector<Pool>& pools);

// The server's state form (protected settings included).
Json PoolToJson(const Pool& pool);
Result<Pool> PoolFromJson(const Json& json);

// Network layout derived from the spec: the bridge's name and address, and
// the address of the instance with a given index.
std::string BridgeName(const PoolName& pool);
uint32_t GatewayAddress(const NetworkSpec& net);
// What the service tags hold for the pool: its address space (or subnet)
// and the bridge's address.
TagAddresses PoolTagAddresses(const NetworkSpec& net);
// REQUIRES: index < MaxInstancesFor(net).
uint32_t InstanceAddress(const NetworkSpec& net, int64_t index);
int64_t MaxInstancesFor(const NetworkSpec& net);
std::string InstanceHostname(const PoolName& pool, int64_t index);

}  // namespace dspool
