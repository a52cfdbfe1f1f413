// Resource groups and template deployments: the routes under /v1/groups
// (docs/api.md), in az's shapes, and the pools that deployments make
// through the Api's own pool code (deploy::PoolControl). Internal to the
// api module; the Api owns one.
//
// A deployment is validated in the request (an error is the answer, and
// nothing is written); then its record is written and it runs on a thread
// of its own, which the caller follows with GET. A running deployment can
// be cancelled; the server's stop cancels them all, and a deployment that
// was Running when the server stopped is marked Failed at the next start.
//
// Thread safety: the handlers may be called concurrently.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "api/api.h"
#include "deploy/deployer.h"

namespace dspool {

class Deployments final : private deploy::PoolControl {
 public:
  static constexpr const char* kSubscriptionIdKey = "subscription_id";  // meta
  Deployments(Api& api, StateStore& store, const Clock& clock, const DeploymentOptions& options);
  // Cancels the running deployments and waits for them.
  ~Deployments() override;

  Result<Response> PutGroup(const std::string& group, const Request& r, const std::string& actor);
  Result<Response> GetGroup(const std::string& group);
  Result<Response> ListGroups();
  // Deletes the group's resources (a scale set's pool is deleted), its
  // deployments and the group. 409 while one of its deployments runs.
  Result<Response> DeleteGroup(const std::string& group, const std::string& actor);

  // Body: {"template": TEXT or object, "parameters": {name: {"value"}},
  // "mode", "templateLink", "source"}.
  Result<Response> PutDeployment(const std::string& group, const std::string& name, const Request& r,
                                 const std::string& actor);
  Result<Response> Validate(const std::string& group, const std::string& name, const Request& r,
                            const std::string& actor);
  Result<Response> WhatIf(const std::string& group, const std::string& name, const Request& r,
                          const std::string& actor);
  Result<Response> GetDeployment(const std::string& group, const std::string& name);
  Result<Response> ListDeployments(const std::string& group);
  Result<Response> ListOperations(const std::string& group, const std::string& name);
  Result<Response> DeleteDeployment(const std::string& group, const std::string& name);
  Result<Response> Cancel(const std::string& group, const std::string& name);

  // The installation's subscription ID (made at first use).
  Result<std::string> SubscriptionId() { return StableGuid(kSubscriptionIdKey); }

 private:
  struct Running {
    std::string key;  // StoreKey(group) + "/" + StoreKey(name)
    std::atomic<bool> cancelled{false};
    std::atomic<bool> done{false};  // set by the thread as it returns
    bool joined = false;             // guarded by mu_
    std::thread thread;
  };

  // deploy::PoolControl, on the Api's pool code.
  Result<Json> CheckPool(const Json& spec, const std::string& owner, const ExtensionArtifacts& artifacts,
                         std::vector<std::string>* missing) override;
  Result<std::string> ApplyPool(const Json& spec, const std::string& owner, const std::string& actor,
                                const ExtensionArtifacts& artifacts) override;
  Status WaitReady(const std::string& pool, int64_t count, std::chrono::milliseconds timeout,
                   const std::atomic<bool>& cancelled) override;
  Status DeletePool(const std::string& pool, const std::string& actor) override;
  Status CheckAutoscale(const std::string& pool, const Json& setting, const Json* planned) override;
  Status SetAutoscale(const std::string& pool, const std::optional<Json>& setting, const std::string& actor) override;

  // The existing pool `spec` names, if any: OK when it is `owner`'s and
  // differs in instanceCount at most (sets *scale then), else the error.
  Result<std::optional<Pool>> OwnedPool(const PoolSpec& spec, const std::string& owner, std::optional<int64_t>* scale);
  Result<deploy::DeployRequest> ReadRequest(const std::string& group, const std::string& name, const Request& r,
                                            const std::string& actor);
  std::string NewGuid();
  // The installation's subscription and tenant IDs, made once (meta).
  Result<std::string> StableGuid(const std::string& meta_key);
  Result<deploy::Deployer*> GetDeployer();
  // The deployment's thread while it runs; nullptr once its record is
  // final (then the thread is joined). REQUIRES: mu_ held.
  Running* FindRunning(const std::string& group, const std::string& name);
  static std::string RunKey(const std::string& group, const std::string& name);
  // The Succeeded deployment of `group` that `on_error` (ARM's
  // onErrorDeployment) names: the one it names, or the latest other than
  // `name`. Errors as ARM's when there is none or it cannot be deployed
  // again.
  Result<Deployment> RollbackTarget(const std::string& group, const std::string& name, const OrderedJson& on_error);
  // After `failed` failed: deploys its rollback target again, on the
  // calling thread (`cancelled`, the failed deployment's, ends it too), and
  // logs how that went.
  void RollBack(deploy::Deployer& deployer, const deploy::DeployRequest& failed, const std::atomic<bool>& cancelled);
  void Reap();  // joins the finished threads; REQUIRES: mu_ held
  // Marks the deployments the last server left Running as Failed.
  void FailInterrupted();

  Api& api_;
  StateStore& store_;
  const Clock& clock_;
  const DeploymentOptions& options_;

  std::mutex random_mu_;    // NewGuid's own: Start (under mu_) asks for GUIDs
  std::mt19937_64 random_;  // guarded by random_mu_
  std::mutex mu_;
  std::unique_ptr<deploy::Deployer> deployer_;  // made at first use; guarded by mu_
  std::list<Running> running_;                  // guarded by mu_
  // Each deployment's secure parameter values, by RunKey, for a rollback
  // to deploy it again: in memory only (never stored), so a rollback to a
  // deployment with secure parameters that ran before the server started
  // is refused. Its own lock: a deployment's thread reads it (a rollback)
  // while ~Deployments holds mu_ to join that thread.
  std::mutex secure_mu_;
  std::map<std::string, arm::Value> secure_values_;  // guarded by secure_mu_
};

}  // namespace dspool
