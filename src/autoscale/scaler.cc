#include "autoscale/scaler.h"

#include "base/log.h"

namespace dspool::autoscale {
namespace {

constexpr std::string_view kLog = "autoscale";

}  // namespace

Scaler::Scaler(StateStore& store, const metrics::Registry& metrics, ScalerHooks hooks)
    : store_(store), metrics_(metrics), hooks_(std::move(hooks)) {}

void Scaler::RunOnce(TimePoint now) {
  auto pools = store_.ListPools();
  if (!pools.ok()) {
    DSP_LOG(kWarning, kLog) << "listing the pools: " << pools.status();
    return;
  }
  std::map<std::string, Evaluation> last;
  for (const Pool& pool : *pools) {
    if (pool.state != PoolState::kActive || !pool.spec.autoscale || !pool.spec.autoscale->enabled) continue;
    const std::string name = pool.name().value();
    auto instances = store_.ListInstances(pool.name());
    if (!instances.ok()) {
      DSP_LOG(kWarning, kLog) << "pool '" << name << "': listing its instances: " << instances.status();
      continue;
    }
    std::vector<InstanceId> ids;
    for (const Instance& i : *instances) ids.push_back(i.id);
    int64_t sessions = 0;
    for (const auto& [id, n] : hooks_.open_sessions(ids)) sessions += n;

    Memory memory{.last_action = pool.autoscale_last_action, .cooldown_seconds = pool.autoscale_cooldown_seconds};
    Evaluation e = Evaluate(*pool.spec.autoscale, Input{.count = pool.spec.instance_count, .open_sessions = sessions, .now = now},
                            memory, RegistryView(metrics_, pool.name()));
    if (e.target != e.count) {
      Status s = hooks_.apply(pool.name(), e);
      if (s.ok()) {
        DSP_LOG(kInfo, kLog) << "pool '" << name << "': " << e.summary;
        shown_.erase(name);
      } else if (s.code() == StatusCode::kAborted) {
        DSP_LOG(kInfo, kLog) << "pool '" << name << "': " << s.message() << "; the next run decides again";
      } else {
        DSP_LOG(kWarning, kLog) << "pool '" << name << "': " << e.summary << ": " << s;
      }
    } else if (!e.blocked.empty() && shown_[name] != e.blocked) {
      hooks_.record(pool.name(), e);
      shown_[name] = e.blocked;
    } else if (e.blocked.empty()) {
      shown_.erase(name);
    }
    last[name] = std::move(e);
  }
  for (auto it = shown_.begin(); it != shown_.end();) it = last.count(it->first) ? std::next(it) : shown_.erase(it);
  std::lock_guard lock(mu_);
  last_ = std::move(last);
}

std::optional<Evaluation> Scaler::Last(const PoolName& pool) const {
  std::lock_guard lock(mu_);
  auto it = last_.find(pool.value());
  if (it == last_.end()) return std::nullopt;
  return it->second;
}

}  // namespace dspool::autoscale
