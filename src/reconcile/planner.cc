#include "reconcile/planner.h"

#include <algorithm>

namespace dspool {
namespace {

bool IsLive(InstancePhase p) {
  return p == InstancePhase::kPending || p == InstancePhase::kBooting || p == InstancePhase::kReady;
}

std::string Seconds(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + "s";
}

}  // namespace

std::string_view ActionKindName(Action::Kind kind) {
  switch (kind) {
    case Action::Kind::kEnsureNetwork: return "EnsureNetwork";
    case Action::Kind::kDeleteNetwork: return "DeleteNetwork";
    case Action::Kind::kRemovePool: return "RemovePool";
    case Action::Kind::kCreateRecord: return "CreateRecord";
    case Action::Kind::kProvision: return "Provision";
    case Action::Kind::kSetPhase: return "SetPhase";
    case Action::Kind::kDestroy: return "Destroy";
    case Action::Kind::kRemoveRecord: return "RemoveRecord";
    case Action::Kind::kDestroyOrphan: return "DestroyOrphan";
  }
  return "?";
}

std::string DescribeAction(const Action& a) {
  std::string s(ActionKindName(a.kind));
  s += " pool=" + a.pool.value();
  if (!a.id.empty()) s += " id=" + a.id.value();
  if (a.kind == Action::Kind::kCreateRecord) s += " index=" + std::to_string(a.index);
  if (a.kind == Action::Kind::kSetPhase) s += " phase=" + std::string(InstancePhaseName(a.phase));
  if (!a.reason.empty()) s += " (" + a.reason + ")";
  return s;
}

std::vector<Action> Plan(const PlanInput& in) {
  std::vector<Action> out;
  std::map<PoolName, const Pool*> pools;
  for (const Pool& p : in.pools) pools[p.name()] = &p;
  std::map<InstanceId, const ProviderInstance*> observed;
  for (const ProviderInstance& o : in.observed) observed[o.id] = &o;
  std::set<InstanceId> recorded;
  for (const Instance& r : in.records) recorded.insert(r.id);
  std::set<PoolName> networks(in.networks.begin(), in.networks.end());

  // 1. Orphans.
  for (const ProviderInstance& o : in.observed) {
    if (!recorded.count(o.id) && !in.busy_instances.count(o.id)) {
      out.push_back({Action::Kind::kDestroyOrphan, o.pool, o.id, o.index, {}, "no record"});
    }
  }

  // 2. Phases. `phase_after` is each record's phase once this pass's
  // transitions are applied; sizing (3) counts from it.
  std::map<InstanceId, InstancePhase> phase_after;
  for (const Instance& r : in.records) {
    phase_after[r.id] = r.phase;
    if (in.busy_instances.count(r.id)) continue;
    auto set_phase = [&](InstancePhase phase, std::string reason) {
      out.push_back({Action::Kind::kSetPhase, r.pool, r.id, r.index, phase, std::move(reason)});
      phase_after[r.id] = phase;
    };
    auto pool_it = pools.find(r.pool);
    bool pool_gone = pool_it == pools.end() || pool_it->second->state == PoolState::kDeleting;
    if (pool_gone && r.phase != InstancePhase::kDeleting) {
      set_phase(InstancePhase::kDeleting, "pool deleted");
      continue;
    }
    auto obs = observed.find(r.id);
    bool running = obs != observed.end() && obs->second->running;
    auto report = in.last_report.find(r.id);
    auto seen = in.phase_seen.find(r.id);
    const MonoTime phase_seen = seen == in.phase_seen.end() ? in.now : seen->second;
    MonoTime silent_since = phase_seen;
    if (report != in.last_report.end()) silent_since = std::max(silent_since, report->second);
    switch (r.phase) {
      case InstancePhase::kPending:
        out.push_back({Action::Kind::kProvision, r.pool, r.id, r.index, {}, {}});
        break;
      case InstancePhase::kBooting:
        if (!running) {
          set_phase(InstancePhase::kFailed, obs == observed.end() ? "instance vanished while booting"
                                                                  : "instance stopped while booting");
        } else if (report != in.last_report.end() && report->second >= phase_seen) {
          set_phase(InstancePhase::kReady, "");
        } else if (in.now - silent_since > in.options.boot_timeout) {
          set_phase(InstancePhase::kFailed, "agent did not report within " + Seconds(in.options.boot_timeout));
        }
        break;
      case InstancePhase::kReady:
        if (!running) {
          set_phase(InstancePhase::kFailed,
                    obs == observed.end() ? "instance vanished" : "instance stopped unexpectedly");
        } else if (in.now - silent_since > in.options.report_timeout) {
          set_phase(InstancePhase::kFailed, "agent silent for more than " + Seconds(in.options.report_timeout));
        }
        break;
      case InstancePhase::kFailed:
        set_phase(InstancePhase::kDeleting, r.reason);
        break;
      case InstancePhase::kDeleting:
        if (obs != observed.end()) {
          out.push_back({Action::Kind::kDestroy, r.pool, r.id, r.index, {}, r.reason});
        } else {
          out.push_back({Action::Kind::kRemoveRecord, r.pool, r.id, r.index, {}, r.reason});
        }
        break;
    }
  }

  // 3. Size, and 4. networks.
  for (const Pool& pool : in.pools) {
    std::vector<const Instance*> mine;
    for (const Instance& r : in.records) {
      if (r.pool == pool.name()) mine.push_back(&r);
    }
    bool has_observed = std::any_of(in.observed.begin(), in.observed.end(),
                                    [&](const ProviderInstance& o) { return o.pool == pool.name(); });
    bool busy_net = in.busy_networks.count(pool.name()) > 0;

    if (pool.state == PoolState::kDeleting) {
      if (mine.empty() && !has_observed && !busy_net) {
        if (networks.count(pool.name())) {
          out.push_back({Action::Kind::kDeleteNetwork, pool.name(), {}, 0, {}, "pool deleted"});
        } else {
          out.push_back({Action::Kind::kRemovePool, pool.name(), {}, 0, {}, ""});
        }
      }
      continue;
    }

    if (!networks.count(pool.name()) && !busy_net) {
      out.push_back({Action::Kind::kEnsureNetwork, pool.name(), {}, 0, {}, ""});
    }

    std::vector<const Instance*> live;
    std::set<int64_t> used_indexes;
    for (const Instance* r : mine) {
      used_indexes.insert(r->index);
      if (IsLive(phase_after[r->id])) live.push_back(r);
    }
    int64_t want = pool.spec.instance_count;
    int64_t have = static_cast<int64_t>(live.size());
    auto hold = in.create_not_before.find(pool.name());
    bool held = hold != in.create_not_before.end() && in.now < hold->second;
    if (have < want && !held) {
      int64_t max_index = MaxInstancesFor(pool.spec.network);
      int64_t index = 0;
      for (int64_t k = have; k < want; ++k) {
        while (used_indexes.count(index)) ++index;
        if (index >= max_index) break;  // wait for Deleting records to free an address
        used_indexes.insert(index);
        out.push_back({Action::Kind::kCreateRecord, pool.name(), {}, index, {}, ""});
      }
    } else if (have > want) {
      // Draining first (an admin already chose them), then not-yet-ready
      // (least work lost), then the highest index.
      std::sort(live.begin(), live.end(), [&](const Instance* a, const Instance* b) {
        if (a->draining != b->draining) return a->draining;
        bool a_ready = phase_after[a->id] == InstancePhase::kReady;
        bool b_ready = phase_after[b->id] == InstancePhase::kReady;
        if (a_ready != b_ready) return !a_ready;
        return a->index > b->index;
      });
      for (int64_t k = 0; k < have - want; ++k) {
        const Instance* r = live[k];
        if (in.busy_instances.count(r->id)) {
          // Its provision is in flight; retire it next pass rather than race it.
          continue;
        }
        // Drop any earlier step this pass planned for it: scale-in wins.
        out.erase(std::remove_if(out.begin(), out.end(),
                                 [&](const Action& a) { return a.id == r->id; }),
                  out.end());
        out.push_back({Action::Kind::kSetPhase, r->pool, r->id, r->index, InstancePhase::kDeleting, "scale-in"});
      }
    }
  }

  // Networks whose pool no longer exists.
  for (const PoolName& net : in.networks) {
    if (!pools.count(net) && !in.busy_networks.count(net)) {
      bool in_use = std::any_of(in.observed.begin(), in.observed.end(),
                                [&](const ProviderInstance& o) { return o.pool == net; });
      if (!in_use) out.push_back({Action::Kind::kDeleteNetwork, net, {}, 0, {}, "no such pool"});
    }
  }
  return out;
}

std::optional<int64_t> CountToWake(const Pool& pool, const std::vector<Instance>& instances) {
  if (pool.state != PoolState::kActive) return std::nullopt;
  int64_t draining = 0;
  for (const Instance& i : instances) {
    draining += i.pool == pool.name() && i.draining && i.phase != InstancePhase::kDeleting;
  }
  if (pool.spec.instance_count > draining) return std::nullopt;
  return draining + 1;
}

bool NotebookIdle(MonoTime last_traffic, const JupyterServer& report, MonoTime now, std::chrono::minutes cull) {
  if (cull.count() <= 0) return false;
  // Only on fresh figures: an unresponsive server's counts are from its last
  // good poll, which may predate the cell now running.
  if (report.state != JupyterState::kReady) return false;
  if (report.busy_kernels > 0 || report.busy_terminals > 0) return false;
  if (now - last_traffic < cull) return false;
  return !report.idle_for || *report.idle_for >= cull;
}

}  // namespace dspool
