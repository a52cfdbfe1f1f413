// FakeProvider: an in-memory ComputeProvider with scriptable failures, for
// unit tests and simulations. Instances "run" as soon as they are provisioned.
//
// Scripting:
//   FailNextProvision(n, status)   the next n Provision calls fail
//   Kill(id)                       the instance stops, as if it crashed
//                                  (frozen or not)
//   SetMutationHook(f)             f runs before every mutating call; if it
//                                  returns an error, the call fails with it and
//                                  changes nothing (crash injection)
//   SetHalfMadeOnFailure(true)     a failed Provision (scripted or by the hook)
//                                  leaves a stopped instance behind, as an
//                                  interrupted real one would
//
// Thread safety: all methods are safe to call concurrently.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "provider/compute_provider.h"

namespace dspool {

class FakeProvider final : public ComputeProvider {
 public:
  std::string Name() const override { return "fake"; }
  Status EnsureNetwork(const PoolNetwork& network) override;
  Status DeleteNetwork(const PoolName& pool) override;
  Result<std::vector<PoolName>> ListNetworks() override;
  Status Provision(const InstanceRequest& request) override;
  Status Destroy(const InstanceId& id) override;
  Status Freeze(const InstanceId& id) override;
  Status Thaw(const InstanceId& id) override;
  Result<std::vector<ProviderInstance>> List() override;
  Result<UniqueFd> OpenMount(const BindMount&, const InstanceIds&) override {
    return FailedPrecondition("the fake provider's instances take no mounts");
  }

  void FailNextProvision(int n, Status status);
  void Kill(const InstanceId& id);
  void SetMutationHook(std::function<Status(const std::string& op)> hook);
  void SetHalfMadeOnFailure(bool on);

  // Observations for tests.
  int provision_calls() const;
  int destroy_calls() const;
  int thaw_calls() const;
  std::vector<InstanceRequest> Requests() const;  // of the instances that exist

 private:
  Status BeforeMutation(const std::string& op);

  mutable std::mutex mu_;
  struct FakeInstance {
    InstanceRequest request;
    bool running = false;
    bool frozen = false;
  };
  std::map<InstanceId, FakeInstance> instances_;
  std::set<PoolName> networks_;
  int fail_next_ = 0;
  Status fail_status_;
  bool half_made_on_failure_ = false;
  std::function<Status(const std::string&)> hook_;
  int provision_calls_ = 0;
  int destroy_calls_ = 0;
  int thaw_calls_ = 0;
};

}  // namespace dspool
