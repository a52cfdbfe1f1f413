#include "reconcile/reconciler.h"

#include <algorithm>

#include "base/log.h"
#include "base/thread_name.h"

namespace dspool {
namespace {

constexpr const char* kLog = "reconcile";
constexpr const char* kActor = "reconcile";
// Writes of a record that another writer keeps changing give up after this
// many tries; the next pass tries again.
constexpr int kMaxRecordUpdateAttempts = 3;

Event MakeEvent(const Clock& clock, std::string action, std::string subject, std::string detail) {
  return Event{0, clock.Now(), kActor, std::move(action), std::move(subject), std::move(detail)};
}

std::string Subject(const InstanceId& id) { return "instance/" + id.value(); }

const Instance* FindRecord(const std::vector<Instance>& records, const InstanceId& id) {
  for (const Instance& r : records) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

const Pool* FindPool(const std::vector<Pool>& pools, const PoolName& name) {
  for (const Pool& p : pools) {
    if (p.name() == name) return &p;
  }
  return nullptr;
}

}  // namespace

Reconciler::Reconciler(StateStore& store, ComputeProvider& provider, const Clock& clock,
                       RequestBuilder build_request, Executor executor, SuffixSource suffix,
                       SessionCounter sessions, ReconcilerOptions options)
    : store_(store),
      provider_(provider),
      clock_(clock),
      build_request_(std::move(build_request)),
      executor_(std::move(executor)),
      suffix_(std::move(suffix)),
      sessions_(std::move(sessions)),
      options_(options) {}

Reconciler::~Reconciler() { Stop(); }

Result<std::vector<Action>> Reconciler::RunPass() {
  DSP_RETURN_IF_ERROR(ApplyCompletions());

  PlanInput in;
  DSP_ASSIGN_OR_RETURN(in.pools, store_.ListPools());
  DSP_ASSIGN_OR_RETURN(in.records, store_.ListInstances());
  auto observed = provider_.List();
  auto networks = provider_.ListNetworks();
  if (!observed.ok() || !networks.ok()) {
    // Without the provider's view no step is safe; try again next pass.
    Status s = observed.ok() ? networks.status() : observed.status();
    std::lock_guard lock(mu_);
    if (last_error_["list"] != s.message()) {
      DSP_LOG(kError, kLog) << provider_.Name() << " provider cannot list: " << s;
      last_error_["list"] = s.message();
    }
    ++counters_.provider_errors;
    return s;
  }
  in.observed = std::move(*observed);
  in.networks = std::move(*networks);
  in.now = clock_.Monotonic();
  in.options = options_.plan;
  std::vector<InstanceId> ready;
  for (const Instance& r : in.records) {
    if (r.phase == InstancePhase::kReady) ready.push_back(r.id);
  }
  in.sessions = sessions_(ready);
  {
    std::lock_guard lock(mu_);
    last_error_.erase("list");
    std::map<InstanceId, const Pool*> pool_of;
    for (const Instance& r : in.records) pool_of[r.id] = FindPool(in.pools, r.pool);
    for (const auto& [id, report] : reports_) {
      in.last_heard[id] = report.at;
      const Pool* pool = pool_of.count(id) ? pool_of[id] : nullptr;
      const Provisioning provisioning =
          pool ? InstanceProvisioned(ProvisioningSteps(pool->spec), report.report) : Provisioning{true, std::nullopt};
      if (provisioning.failure) in.provision_failed[id] = *provisioning.failure;
      if (report.report.sshd_listening && provisioning.done) in.last_report[id] = report.at;
      if (report.report.cpu_percent) in.cpu_percent[id] = *report.report.cpu_percent;
    }
    // A record seen in a phase for the first time (a server that just
    // started, or a phase another writer set) is seen from now on.
    std::map<InstanceId, std::pair<InstancePhase, MonoTime>> seen;
    for (const Instance& r : in.records) {
      auto it = phase_seen_.find(r.id);
      seen[r.id] = it != phase_seen_.end() && it->second.first == r.phase ? it->second
                                                                          : std::pair{r.phase, in.now};
      in.phase_seen[r.id] = seen[r.id].second;
    }
    phase_seen_ = std::move(seen);
    std::map<InstanceId, MonoTime> marked;
    for (const Instance& r : in.records) {
      if (r.scale_in == ScaleIn::kNo) continue;
      auto it = scale_in_seen_.find(r.id);
      marked[r.id] = in.scale_in_seen[r.id] = it != scale_in_seen_.end() ? it->second : in.now;
    }
    scale_in_seen_ = std::move(marked);
    in.busy_instances = busy_instances_;
    in.busy_networks = busy_networks_;
    for (const Pool& pool : in.pools) {
      auto applied = applied_filters_.find(pool.name());
      if (applied == applied_filters_.end() || applied->second != PoolNetworkOf(pool.spec).filter) {
        in.stale_networks.insert(pool.name());
      }
    }
    for (const auto& [pool, b] : backoff_) in.create_not_before[pool] = b.first;
  }

  std::vector<Action> plan = Plan(in);
  for (const Action& action : plan) {
    switch (action.kind) {
      case Action::Kind::kEnsureNetwork:
      case Action::Kind::kDeleteNetwork:
      case Action::Kind::kProvision:
      case Action::Kind::kDestroy:
      case Action::Kind::kDestroyOrphan:
      case Action::Kind::kFreeze:
      case Action::Kind::kThaw:
        Dispatch(action, in.pools, in.records);
        break;
      default:
        DSP_RETURN_IF_ERROR(ApplyStoreStep(action, in.pools, in.records));
        break;
    }
  }
  std::lock_guard lock(mu_);
  ++counters_.passes;
  counters_.actions += static_cast<int64_t>(plan.size());
  last_pass_empty_ = plan.empty();
  // A store step always makes progress (a new record waits to be
  // provisioned, a failed one to be deleted): plan again at once.
  // Provider steps poke the loop when they finish.
  bool store_step = std::any_of(plan.begin(), plan.end(), [](const Action& a) {
    return a.kind == Action::Kind::kCreateRecord || a.kind == Action::Kind::kSetPhase ||
           a.kind == Action::Kind::kSetScaleIn || a.kind == Action::Kind::kSetStandby ||
           a.kind == Action::Kind::kRemoveRecord || a.kind == Action::Kind::kRemovePool;
  });
  if (store_step) poked_ = true;
  return plan;
}

void Reconciler::Dispatch(const Action& action, const std::vector<Pool>& pools,
                          const std::vector<Instance>& records) {
  std::function<Status()> call;
  switch (action.kind) {
    case Action::Kind::kEnsureNetwork: {
      const Pool* pool = FindPool(pools, action.pool);
      PoolNetwork net = PoolNetworkOf(pool->spec);
      call = [this, net] {
        Status s = provider_.EnsureNetwork(net);
        if (s.ok()) {
          std::lock_guard lock(mu_);
          applied_filters_[net.pool] = net.filter;
        }
        return s;
      };
      break;
    }
    case Action::Kind::kDeleteNetwork:
      call = [this, pool = action.pool] {
        Status s = provider_.DeleteNetwork(pool);
        if (s.ok()) {
          std::lock_guard lock(mu_);
          applied_filters_.erase(pool);
        }
        return s;
      };
      break;
    case Action::Kind::kProvision: {
      const Instance* record = FindRecord(records, action.id);
      auto request = build_request_(*FindPool(pools, action.pool), *record);
      if (!request.ok()) {
        call = [status = request.status()] { return status; };
      } else {
        call = [this, request = std::move(*request)] { return provider_.Provision(request); };
      }
      break;
    }
    case Action::Kind::kDestroy:
    case Action::Kind::kDestroyOrphan:
      call = [this, id = action.id] { return provider_.Destroy(id); };
      break;
    case Action::Kind::kFreeze:
      call = [this, id = action.id] { return provider_.Freeze(id); };
      break;
    case Action::Kind::kThaw:
      call = [this, id = action.id] { return provider_.Thaw(id); };
      break;
    default:
      return;
  }
  bool network = action.kind == Action::Kind::kEnsureNetwork || action.kind == Action::Kind::kDeleteNetwork;
  {
    std::lock_guard lock(mu_);
    if (network) {
      busy_networks_.insert(action.pool);
    } else {
      busy_instances_.insert(action.id);
    }
  }
  DSP_LOG(kDebug, kLog) << "start " << DescribeAction(action);
  executor_([this, action, call = std::move(call)] {
    Status status = call();
    {
      std::lock_guard lock(mu_);
      completions_.push_back({action, status});
      poked_ = true;
    }
    cv_.notify_all();
  });
}

Status Reconciler::ApplyCompletions() {
  std::deque<Completion> done;
  {
    std::lock_guard lock(mu_);
    done.swap(completions_);
  }
  while (!done.empty()) {
    Completion c = std::move(done.front());
    done.pop_front();
    const Action& a = c.action;
    bool network = a.kind == Action::Kind::kEnsureNetwork || a.kind == Action::Kind::kDeleteNetwork;
    {
      std::lock_guard lock(mu_);
      if (network) {
        busy_networks_.erase(a.pool);
      } else {
        busy_instances_.erase(a.id);
      }
      std::string key = std::string(ActionKindName(a.kind)) + " " + (network ? a.pool.value() : a.id.value());
      if (!c.status.ok()) {
        ++counters_.provider_errors;
        if (last_error_[key] != c.status.message()) {
          DSP_LOG(kWarning, kLog) << DescribeAction(a) << " failed: " << c.status;
          last_error_[key] = c.status.message();
        }
      } else {
        last_error_.erase(key);
      }
    }
    Status s;
    switch (a.kind) {
      case Action::Kind::kProvision: {
        auto record = store_.GetInstance(a.id);
        if (!record.ok() || record->phase != InstancePhase::kPending) break;  // moved on meanwhile
        if (c.status.ok()) {
          s = SetPhase(*record, InstancePhase::kBooting, "");
        } else {
          NoteFailure(a.pool);
          s = SetPhase(*record, InstancePhase::kFailed, "provision failed: " + c.status.message());
        }
        break;
      }
      case Action::Kind::kDestroy:
        if (c.status.ok()) {
          auto record = store_.GetInstance(a.id);
          if (!record.ok()) break;
          WriteBatch batch;
          batch.Add(WriteBatch::DeleteInstance{a.id});
          batch.Add(WriteBatch::AppendEvent{MakeEvent(clock_, "instance.delete", Subject(a.id), a.reason)});
          s = store_.Write(batch);
          if (s.ok()) {
            std::lock_guard lock(mu_);
            reports_.erase(a.id);
            ++counters_.instances_destroyed;
          }
        }
        break;
      case Action::Kind::kFreeze:
        if (c.status.ok()) DSP_LOG(kInfo, kLog) << "instance " << a.id << " stands by, frozen";
        break;
      case Action::Kind::kThaw:
        if (c.status.ok()) DSP_LOG(kInfo, kLog) << "instance " << a.id << " thawed: " << a.reason;
        break;
      case Action::Kind::kDestroyOrphan:
        if (c.status.ok()) {
          WriteBatch batch;
          batch.Add(WriteBatch::AppendEvent{
              MakeEvent(clock_, "instance.orphan.delete", Subject(a.id), "provider had it, no record did")});
          s = store_.Write(batch);
          std::lock_guard lock(mu_);
          ++counters_.orphans_destroyed;
        }
        break;
      default:
        break;
    }
    if (!s.ok()) {
      // Put the rest back; this pass ends here.
      std::lock_guard lock(mu_);
      for (auto it = done.rbegin(); it != done.rend(); ++it) completions_.push_front(*it);
      return s;
    }
  }
  return Status::Ok();
}

Status Reconciler::ApplyStoreStep(const Action& a, const std::vector<Pool>& pools,
                                  const std::vector<Instance>& records) {
  switch (a.kind) {
    case Action::Kind::kCreateRecord: {
      const Pool* pool = FindPool(pools, a.pool);
      Instance r;
      r.id = InstanceId(a.pool.value() + "-" + std::to_string(a.index) + "-" + suffix_());
      r.pool = a.pool;
      r.index = a.index;
      r.phase = InstancePhase::kPending;
      r.address = FormatIpv4(InstanceAddress(pool->spec.network, a.index));
      r.created_at = r.phase_since = clock_.Now();
      r.standby = a.standby;
      WriteBatch batch;
      batch.Add(WriteBatch::PutInstance{r});
      batch.Add(WriteBatch::AppendEvent{MakeEvent(clock_, "instance.create", Subject(r.id),
                                                  "index " + std::to_string(a.index) + ", address " + r.address +
                                                      (r.standby ? ", a standby" : ""))});
      DSP_RETURN_IF_ERROR(store_.Write(batch));
      std::lock_guard lock(mu_);
      ++counters_.instances_created;
      return Status::Ok();
    }
    case Action::Kind::kSetPhase: {
      const Instance* r = FindRecord(records, a.id);
      return SetPhase(*r, a.phase, a.reason);
    }
    case Action::Kind::kSetScaleIn: {
      const Instance* r = FindRecord(records, a.id);
      return SetScaleIn(*r, a.scale_in, a.reason);
    }
    case Action::Kind::kSetStandby: {
      const Instance* r = FindRecord(records, a.id);
      return TakeStandby(*r, a.reason);
    }
    case Action::Kind::kRemoveRecord: {
      WriteBatch batch;
      batch.Add(WriteBatch::DeleteInstance{a.id});
      batch.Add(WriteBatch::AppendEvent{MakeEvent(clock_, "instance.delete", Subject(a.id), a.reason)});
      return store_.Write(batch);
    }
    case Action::Kind::kRemovePool: {
      WriteBatch batch;
      batch.Add(WriteBatch::DeletePool{a.pool});
      batch.Add(WriteBatch::AppendEvent{
          MakeEvent(clock_, "pool.deleted", "pool/" + a.pool.value(), "all instances and the network are gone")});
      DSP_RETURN_IF_ERROR(store_.Write(batch));
      std::lock_guard lock(mu_);
      backoff_.erase(a.pool);
      return Status::Ok();
    }
    default:
      return Internal("not a store step: " + DescribeAction(a));
  }
}

Result<std::optional<Instance>> Reconciler::UpdateRecord(const Instance& record,
                                                         const std::function<void(Instance&)>& change,
                                                         const Event& event) {
  Instance current = record;
  for (int attempt = 1;; ++attempt) {
    Instance r = current;
    change(r);
    WriteBatch batch;
    batch.Add(WriteBatch::UpdateInstance{r, current});
    batch.Add(WriteBatch::AppendEvent{event});
    Status s = store_.Write(batch);
    if (s.ok()) return std::optional<Instance>(std::move(r));
    if (s.code() != StatusCode::kAborted || attempt == kMaxRecordUpdateAttempts) return s;
    auto fresh = store_.GetInstance(record.id);
    if (!fresh.ok() || fresh->phase != record.phase || fresh->scale_in != record.scale_in ||
        fresh->standby != record.standby) {
      return std::optional<Instance>();
    }
    current = *fresh;
  }
}

Status Reconciler::SetScaleIn(const Instance& record, ScaleIn scale_in, const std::string& reason) {
  std::string action = scale_in == ScaleIn::kNo ? "instance.scale-in.cancel" : "instance.scale-in";
  DSP_ASSIGN_OR_RETURN(auto written, UpdateRecord(record, [&](Instance& r) { r.scale_in = scale_in; },
                                                  MakeEvent(clock_, action, Subject(record.id), reason)));
  if (written) DSP_LOG(kInfo, kLog) << "instance " << record.id << ": " << reason;
  return Status::Ok();
}

Status Reconciler::TakeStandby(const Instance& record, const std::string& reason) {
  DSP_ASSIGN_OR_RETURN(auto written, UpdateRecord(record, [](Instance& r) { r.standby = false; },
                                                  MakeEvent(clock_, "instance.standby.take", Subject(record.id), reason)));
  if (!written) return Status::Ok();
  DSP_LOG(kInfo, kLog) << "instance " << record.id << ": " << reason;
  // Its agent was frozen: silence counts from now, as for a new phase.
  std::lock_guard lock(mu_);
  phase_seen_[record.id] = {record.phase, clock_.Monotonic()};
  return Status::Ok();
}

Status Reconciler::SetPhase(const Instance& record, InstancePhase phase, const std::string& reason) {
  std::string action = "instance." + std::string(InstancePhaseName(phase));
  for (char& ch : action) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto change = [&](Instance& r) {
    r.phase = phase;
    r.reason = reason;
    r.phase_since = clock_.Now();  // for people; the loop's decisions use phase_seen_
  };
  DSP_ASSIGN_OR_RETURN(auto written, UpdateRecord(record, change, MakeEvent(clock_, action, Subject(record.id), reason)));
  if (!written) return Status::Ok();
  const Instance& r = *written;
  {
    std::lock_guard lock(mu_);
    phase_seen_[r.id] = {phase, clock_.Monotonic()};
  }
  if (phase == InstancePhase::kFailed) {
    DSP_LOG(kWarning, kLog) << "instance " << r.id << " failed: " << reason;
    std::lock_guard lock(mu_);
    ++counters_.instances_failed;
  } else if (phase == InstancePhase::kReady) {
    DSP_LOG(kInfo, kLog) << "instance " << r.id << " is ready at " << r.address;
    std::lock_guard lock(mu_);
    backoff_.erase(r.pool);
  }
  return Status::Ok();
}

void Reconciler::NoteFailure(const PoolName& pool) {
  std::lock_guard lock(mu_);
  auto& [not_before, step] = backoff_[pool];
  step = step.count() == 0 ? options_.min_backoff : std::min(step * 2, options_.max_backoff);
  not_before = clock_.Monotonic() + step;
}

bool Reconciler::Idle() const {
  std::lock_guard lock(mu_);
  return busy_instances_.empty() && busy_networks_.empty() && completions_.empty() && last_pass_empty_;
}

void Reconciler::RecordReport(const InstanceId& id, const InstanceReport& report) {
  {
    std::lock_guard lock(mu_);
    // What can move the instance's phase wakes the loop: its first report,
    // sshd listening, an extension finishing.
    bool first = !reports_.count(id) || (!reports_[id].report.sshd_listening && report.sshd_listening) ||
                 reports_[id].report.extensions != report.extensions;
    reports_[id] = {report, clock_.Monotonic()};
    if (!first) return;
    poked_ = true;
  }
  cv_.notify_all();
}

std::optional<InstanceReport> Reconciler::LastReport(const InstanceId& id) const {
  std::lock_guard lock(mu_);
  auto it = reports_.find(id);
  if (it == reports_.end()) return std::nullopt;
  return it->second.report;
}

ReconcilerCounters Reconciler::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

void Reconciler::Start() {
  thread_ = std::thread([this] {
    SetThreadName("reconciler");
    Loop();
  });
}

void Reconciler::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Reconciler::Poke() {
  {
    std::lock_guard lock(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

void Reconciler::Loop() {
  for (;;) {
    auto result = RunPass();
    if (!result.ok()) {
      DSP_LOG(kDebug, kLog) << "pass ended early: " << result.status();
    }
    std::unique_lock lock(mu_);
    // The background loop runs on real time; tests drive RunPass directly.
    cv_.wait_for(lock, options_.interval, [this] { return poked_ || stopping_; });
    if (stopping_) return;
    poked_ = false;
  }
}

}  // namespace dspool
