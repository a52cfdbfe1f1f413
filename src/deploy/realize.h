// Realize: one evaluated ARM resource → what it is on this host. Pure: it
// reads the resource's body and the resources deployed before it, and says
// what the deployment must do (a scale set's native pool spec) and what
// reference() answers for the resource afterwards. docs/templates.md gives,
// per type, every field: realised, accepted and ignored (with the warning
// this returns), or refused.
//
//   Microsoft.Network/virtualNetworks (+ /subnets)  the pools' subnets
//   Microsoft.Network/publicIPAddresses             the host's front address
//   Microsoft.Network/loadBalancers                 rules, probes, NAT pools
//   Microsoft.Network/networkSecurityGroups (+ /securityRules)
//                                                   the rules of the pools
//                                                   whose subnet or NIC name
//                                                   the group
//   Microsoft.Compute/virtualMachineScaleSets       a pool (native spec)
//   Microsoft.Insights/autoscaleSettings            a pool's autoscale setting
//   Microsoft.Storage/storageAccounts (+ /fileServices, /fileServices/shares)
//                                                   a storage account, its
//                                                   retention, its shares
//
// A scale set's spec takes its subnet, load balancer and network security
// groups from the resources its ipConfigurations name, which must be
// deployed before it (a group's securityRules children too).
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "deploy/catalog.h"
#include "model/json_reader.h"
#include "template/template.h"

namespace dspool::deploy {

// Where resources land on this host.
struct HostSettings {
  // A public IP's address: the address the pools' frontends listen on.
  std::string front_address = "0.0.0.0";
  // dnsSettings.domainNameLabel L gives the FQDN "L.<dns_domain>".
  std::string dns_domain = "dspool.internal";
};

// The resources deployed in the group so far, by StoreKey of their ID: each
// as reference(id, 'Full') answers (apiVersion, location, sku, properties
// with provisioningState, ...).
using Deployed = std::map<std::string, arm::Value>;

// What a Microsoft.Storage resource asks of the host: the body of the API's
// PUT for it (docs/api.md).
struct StorageOp {
  enum class Kind { kAccount, kFileService, kShare };
  Kind kind = Kind::kAccount;
  std::string account;
  std::string share;  // kShare
  // kAccount: {"location", "sku": {"name"}, "kind", "tags"}; kFileService:
  // {"properties": {"shareDeleteRetentionPolicy": {"days"}}}; kShare:
  // {"properties": {"shareQuota", "enabledProtocols", "accessTier",
  // "metadata"}}.
  Json body;
  // kAccount: the keys an account made new gets (the deployer's, not
  // Realize's: secret).
  std::array<std::string, 2> keys;
};

struct Realized {
  // The resource as reference(..., 'Full') answers for it from now on.
  arm::Value state;
  // Fields accepted and ignored, each a sentence naming the field.
  std::vector<std::string> warnings;
  // A scale set: its pool in docs/pool-spec.md's form (adminUser.password
  // in plain text: transient, hashed by the pool's creation).
  std::optional<Json> pool_spec;
  // A storage account, its file service or a share.
  std::optional<StorageOp> storage;
  // An autoscale setting: the pool it targets and the setting in the pool
  // spec's `autoscale` form (model/autoscale.h), kept with the pool.
  struct Autoscale {
    std::string pool;
    Json setting;
  };
  std::optional<Autoscale> autoscale;
};

// Errors are InvalidArgument naming the resource and the field
// ("Microsoft.Compute/virtualMachineScaleSets 'pool': sku.name: ...").
Result<Realized> Realize(const arm::ExpandedResource& resource, const arm::Value& body, const Deployed& deployed,
                         const HostSettings& host, const Catalog& catalog);

// True if Realize knows the type (compared without case).
bool IsSupportedType(const std::string& type);

}  // namespace dspool::deploy
