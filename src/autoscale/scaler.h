// Scaler: the loop side of autoscale. Each run evaluates every active
// pool's enabled setting (engine.h) on the metrics registry and the open
// sessions, and hands what it decided to the API, which writes the count,
// the run's memory and an event in one batch. A run that was held back
// (cooldown, flapping, the range, open sessions) is recorded as an event
// too, once for each new reason, so `dspool events` says why a pool has
// its size without a line every minute.
//
// The server calls RunOnce every autoscale interval (a minute, as Azure's
// job; configurable), on its sweep thread: RunOnce from one thread at a
// time; Last from any.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "autoscale/engine.h"
#include "metrics/registry.h"
#include "model/pool.h"
#include "store/state_store.h"

namespace dspool::autoscale {

struct ScalerHooks {
  // Open SSH sessions and notebook servers on each instance.
  std::function<std::map<InstanceId, int64_t>(const std::vector<InstanceId>& ids)> open_sessions;
  // Brings the pool from e.count to e.target with e.memory, recording
  // e.summary (Api::ApplyAutoscale). Aborted: the count changed meanwhile.
  std::function<Status(const PoolName& pool, const Evaluation& e)> apply;
  // Records a run that changed nothing but was held back, or whose reason
  // is new (an event `autoscale.blocked`).
  std::function<void(const PoolName& pool, const Evaluation& e)> record;
};

// The engine's metrics for one pool, from the registry.
class RegistryView final : public MetricView {
 public:
  RegistryView(const metrics::Registry& registry, PoolName pool) : registry_(registry), pool_(std::move(pool)) {}
  std::vector<double> Grains(const std::string& metric, const std::string& statistic, int64_t grain_seconds,
                             TimePoint from, TimePoint to) const override {
    return registry_.Grains(pool_, metric, statistic, grain_seconds, from, to);
  }

 private:
  const metrics::Registry& registry_;
  PoolName pool_;
};

class Scaler {
 public:
  Scaler(StateStore& store, const metrics::Registry& metrics, ScalerHooks hooks);

  // One run for every active pool with an enabled setting, at wall time
  // `now`. Failures are logged, each naming its pool; the next run tries
  // again.
  void RunOnce(TimePoint now);

  // The last run of `pool` (nullopt before its first).
  std::optional<Evaluation> Last(const PoolName& pool) const;

 private:
  StateStore& store_;
  const metrics::Registry& metrics_;
  ScalerHooks hooks_;
  mutable std::mutex mu_;
  std::map<std::string, Evaluation> last_;    // by pool; guarded by mu_
  std::map<std::string, std::string> shown_;  // by pool: the held-back reason last recorded
};

}  // namespace dspool::autoscale
