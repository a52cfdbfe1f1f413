#include "provider/fake/fake_provider.h"

namespace dspool {

Status FakeProvider::BeforeMutation(const std::string& op) {
  if (!hook_) return Status::Ok();
  return hook_(op);
}

Status FakeProvider::EnsureNetwork(const PoolNetwork& network) {
  std::lock_guard lock(mu_);
  DSP_RETURN_IF_ERROR(BeforeMutation("EnsureNetwork " + network.pool.value()));
  networks_.insert(network.pool);
  return Status::Ok();
}

Status FakeProvider::DeleteNetwork(const PoolName& pool) {
  std::lock_guard lock(mu_);
  DSP_RETURN_IF_ERROR(BeforeMutation("DeleteNetwork " + pool.value()));
  for (const auto& [id, inst] : instances_) {
    if (inst.request.pool == pool) {
      return FailedPrecondition("network of pool '" + pool.value() + "' is in use by " + id.value());
    }
  }
  networks_.erase(pool);
  return Status::Ok();
}

Result<std::vector<PoolName>> FakeProvider::ListNetworks() {
  std::lock_guard lock(mu_);
  return std::vector<PoolName>(networks_.begin(), networks_.end());
}

Status FakeProvider::Provision(const InstanceRequest& request) {
  std::lock_guard lock(mu_);
  ++provision_calls_;
  if (Status s = BeforeMutation("Provision " + request.id.value()); !s.ok()) {
    if (half_made_on_failure_ && !instances_.count(request.id)) instances_[request.id] = {request, false};
    return s;
  }
  if (!networks_.count(request.pool)) {
    return FailedPrecondition("network of pool '" + request.pool.value() + "' does not exist");
  }
  auto it = instances_.find(request.id);
  if (it != instances_.end() && it->second.running) return Status::Ok();
  if (fail_next_ > 0) {
    --fail_next_;
    if (half_made_on_failure_) instances_[request.id] = {request, false};
    return fail_status_;
  }
  instances_[request.id] = {request, true};
  return Status::Ok();
}

Status FakeProvider::Freeze(const InstanceId& id) {
  std::lock_guard lock(mu_);
  DSP_RETURN_IF_ERROR(BeforeMutation("Freeze " + id.value()));
  auto it = instances_.find(id);
  if (it == instances_.end()) return NotFound("instance " + id.value() + " does not exist");
  if (!it->second.running) return FailedPrecondition("instance " + id.value() + " is not running");
  it->second.frozen = true;
  return Status::Ok();
}

Status FakeProvider::Thaw(const InstanceId& id) {
  std::lock_guard lock(mu_);
  ++thaw_calls_;
  DSP_RETURN_IF_ERROR(BeforeMutation("Thaw " + id.value()));
  auto it = instances_.find(id);
  if (it == instances_.end()) return NotFound("instance " + id.value() + " does not exist");
  it->second.frozen = false;
  return Status::Ok();
}

Status FakeProvider::Destroy(const InstanceId& id) {
  std::lock_guard lock(mu_);
  ++destroy_calls_;
  DSP_RETURN_IF_ERROR(BeforeMutation("Destroy " + id.value()));
  instances_.erase(id);
  return Status::Ok();
}

Result<std::vector<ProviderInstance>> FakeProvider::List() {
  std::lock_guard lock(mu_);
  std::vector<ProviderInstance> out;
  for (const auto& [id, inst] : instances_) {
    out.push_back({id, inst.request.pool, inst.request.index, inst.running, inst.running && inst.frozen});
  }
  return out;
}

void FakeProvider::FailNextProvision(int n, Status status) {
  std::lock_guard lock(mu_);
  fail_next_ = n;
  fail_status_ = std::move(status);
}

void FakeProvider::Kill(const InstanceId& id) {
  std::lock_guard lock(mu_);
  auto it = instances_.find(id);
  if (it != instances_.end()) it->second.running = it->second.frozen = false;
}

void FakeProvider::SetMutationHook(std::function<Status(const std::string&)> hook) {
  std::lock_guard lock(mu_);
  hook_ = std::move(hook);
}

void FakeProvider::SetHalfMadeOnFailure(bool on) {
  std::lock_guard lock(mu_);
  half_made_on_failure_ = on;
}

int FakeProvider::provision_calls() const {
  std::lock_guard lock(mu_);
  return provision_calls_;
}

int FakeProvider::destroy_calls() const {
  std::lock_guard lock(mu_);
  return destroy_calls_;
}

int FakeProvider::thaw_calls() const {
  std::lock_guard lock(mu_);
  return thaw_calls_;
}

std::vector<InstanceRequest> FakeProvider::Requests() const {
  std::lock_guard lock(mu_);
  std::vector<InstanceRequest> out;
  for (const auto& [_, inst] : instances_) out.push_back(inst.request);
  return out;
}

}  // namespace dspool
