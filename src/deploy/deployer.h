// Deployer: runs one template deployment into a resource group, as ARM
// does (arm-templates.md §7): validate everything first, then deploy the
// resources in dependency order, each an operation of the deployment
// record, then the outputs. The record, its operations and the group's
// resources are written to the store as they change, so `deployment
// group show` and `deployment operation group list` follow progress.
//
//   Plan (Validate)   load the template (parameters, expansion), evaluate
//                     every resource and Realize it, on the states earlier
//                     ones leave; nothing is written. An error here is the
//                     whole answer: no record, no resource.
//   Run               the plan, for real: a scale set's pool is created (or
//                     scaled) through PoolControl and waited for; every
//                     resource is stored as deployed (secure values left
//                     out); Complete mode deletes the group's resources the
//                     template no longer has.
//
// Re-deploying the same template changes nothing: resources whose body is
// unchanged are stored again and their pools left alone.
//
// Thread safety: a Deployer may run several deployments at once (one per
// thread); PoolControl and the store must be thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "deploy/realize.h"
#include "model/deployment.h"
#include "model/event.h"
#include "model/extension.h"
#include "model/storage.h"
#include "store/state_store.h"
#include "template/template.h"
#include "template/what_if.h"

namespace dspool::deploy {

// What a deployment asks of the pools: implemented by the API, which
// creates pools as `POST /v1/pools` does.
class PoolControl {
 public:
  virtual ~PoolControl() = default;
  // Checks a pool spec (docs/pool-spec.md form) as creating it would,
  // against the host and the other pools, without writing anything. An
  // existing pool of that name is fine when `owner` (a resource ID) owns it.
  // Returns the spec for ApplyPool: the same, with its admin's password
  // replaced by the password's hash (so the plan holds no plain text, and
  // it is hashed once). A new pool's relative fileUris are read from
  // `artifacts`: those it lacks fail the check, their paths in `*missing`.
  virtual Result<Json> CheckPool(const Json& spec, const std::string& owner, const ExtensionArtifacts& artifacts,
                                 std::vector<std::string>* missing) = 0;
  // Creates the pool, or brings the existing one to `spec`: nothing if it
  // is the same, a scale if instanceCount differs, new rules if its network
  // security groups do; any other change is FailedPrecondition naming the
  // field. Returns "Created" or "OK".
  virtual Result<std::string> ApplyPool(const Json& spec, const std::string& owner, const std::string& actor,
                                        const ExtensionArtifacts& artifacts) = 0;
  // Checks an autoscale setting (the pool spec's `autoscale` form) against
  // the pool it targets: `planned` (its spec in this deployment), else the
  // existing pool; nothing is written.
  virtual Status CheckAutoscale(const std::string& pool, const Json& setting, const Json* planned) = 0;
  // Keeps `setting` with the pool (nullopt: removes the pool's).
  virtual Status SetAutoscale(const std::string& pool, const std::optional<Json>& setting, const std::string& actor) = 0;
  // Waits until the pool has `count` Ready instances (OK), one of its
  // instances failed (the error says which and why), or `timeout` passed
  // (DeadlineExceeded). `cancelled` ends the wait with Aborted.
  virtual Status WaitReady(const std::string& pool, int64_t count, std::chrono::milliseconds timeout,
                           const std::atomic<bool>& cancelled) = 0;
  virtual Status DeletePool(const std::string& pool, const std::string& actor) = 0;
};

// What a deployment asks of storage accounts: implemented by the API
// (api/storage.h), with the code of its storage routes.
class StorageControl {
 public:
  virtual ~StorageControl() = default;
  // The account `name` when `group` has it; nullopt when no account has the
  // name; FailedPrecondition (StorageAccountAlreadyTaken) when another
  // group's has it.
  virtual Result<std::optional<StorageAccount>> FindAccount(const std::string& group, const std::string& name) = 0;
  // Two new keys, for an account a deployment is to make.
  virtual std::array<std::string, 2> NewKeys() = 0;
  // Puts what `op` says into `group`, as the API's PUT does (an account
  // made new gets `op.keys`). Returns "Created" or "OK".
  virtual Result<std::string> ApplyStorage(const std::string& group, const StorageOp& op, const std::string& actor) = 0;
  // Complete mode: deletes the account (its shares soft-deleted) or the
  // share that resource `type` `name` ("acct", "acct/default/share") is.
  // NotFound when it is gone already.
  virtual Status DeleteStorage(const std::string& group, const std::string& type, const std::string& name,
                               const std::string& actor) = 0;
};

struct DeployRequest {
  std::string group;
  std::string name;                  // the deployment's
  std::string mode = "Incremental";  // or "Complete"
  std::string template_text;
  std::string template_source = "template";  // for messages: the file or URI
  std::string template_link;                 // the URI it came from; empty for a file
  // The files a local template's relative fileUris name, sent with it (an
  // http(s) template's resolve next to its URL instead).
  ExtensionArtifacts artifacts;
  arm::Value parameters = arm::Value::object();  // assembled: name → {"value": v}
  std::string actor;
  // --rollback-on-error (Deployment::on_error); null without.
  OrderedJson on_error;
};

struct DeployerOptions {
  std::string subscription_id;
  std::string tenant_id;
  HostSettings host;
  // How long a scale set's instances may take to become Ready.
  std::chrono::milliseconds ready_timeout = std::chrono::minutes(20);
};

// One resource of a plan: expanded, evaluated, realised.
struct PlannedResource {
  arm::ExpandedResource resource;
  arm::Value body;  // as evaluated (secure values included: memory only)
  Realized realized;
};

struct Plan {
  std::unique_ptr<arm::Template> tmpl;
  std::vector<PlannedResource> resources;  // in deploy order
  std::vector<std::string> warnings;
  arm::DeploymentContext context;
  std::vector<std::string> secrets;  // the secure parameters' values and the accounts' keys, left out of what is stored
  // The storage accounts listKeys() may name: the group's, and those the
  // plan makes (with their new keys), by StoreKey of their ID.
  std::map<std::string, StorageAccount> accounts;
};

// The parameters of `request` whose declared type is secure (securestring,
// secureObject), as {name: {"value"}}: never stored (Deployment::source).
arm::Value SecureParameterValues(const DeployRequest& request, const Plan& plan);

class Deployer {
 public:
  Deployer(StateStore& store, const Clock& clock, PoolControl& pools, StorageControl& storage, const Catalog& catalog,
           DeployerOptions options, std::function<std::string()> new_guid);

  // Validates `request`: a Plan, or an ArmError (also as the Status).
  Result<Plan> Validate(const DeployRequest& request, arm::ArmError* error);

  // The changes `request` would make, resource by resource (Complete mode:
  // with the deletions).
  Result<std::vector<arm::ResourceChange>> WhatIf(const DeployRequest& request, arm::ArmError* error);

  // The record of `request` as `plan` would start it, in `state`, without
  // operations (`validate` answers it with Succeeded).
  Deployment NewRecord(const DeployRequest& request, const Plan& plan, ProvisioningState state) const;
  // Writes the record (Running, one Accepted operation per resource) and
  // returns it; the caller then calls Run, on any thread.
  Result<Deployment> Start(const DeployRequest& request, const Plan& plan);
  // Deploys `plan` under the record Start wrote; returns the final record.
  Deployment Run(const DeployRequest& request, Plan plan, Deployment record, const std::atomic<bool>& cancelled);

 private:
  arm::DeploymentContext ContextFor(const ResourceGroup& group, const DeployRequest& request) const;
  // The group's stored resources as reference() sees them.
  Result<Deployed> StoredResources(const std::string& group);
  // The storage account a realised `op` puts, with its keys (the existing
  // account's, or new ones, which `op` then carries); into plan->accounts,
  // and its keys into plan->secrets.
  Status PlanAccount(const DeployRequest& request, StorageOp& op, Plan* plan);
  // listKeys() of storage account `id`: one `plan` makes or has seen, or
  // one of any group's found now (then remembered, its keys as secrets).
  Result<arm::Value> ListKeys(const std::string& id, Plan* plan);
  ArmResource ToStored(const DeployRequest& request, const PlannedResource& p, const std::vector<std::string>& secrets) const;
  // Writes the record (and `event`); a failure is logged.
  void Save(const Deployment& record, const std::optional<Event>& event = std::nullopt);

  StateStore& store_;
  const Clock& clock_;
  PoolControl& pools_;
  StorageControl& storage_;
  const Catalog& catalog_;
  DeployerOptions options_;
  std::function<std::string()> new_guid_;
};

// A string with every secret in it replaced by "[secure]"; objects and
// arrays walked.
arm::Value Redact(const arm::Value& v, const std::vector<std::string>& secrets);

}  // namespace dspool::deploy
