#include "reconcile/planner.h"

#include <algorithm>
#include <limits>

namespace dspool {
namespace {

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
    case Action::Kind::kSetScaleIn: return "SetScaleIn";
    case Action::Kind::kSetStandby: return "SetStandby";
    case Action::Kind::kFreeze: return "Freeze";
    case Action::Kind::kThaw: return "Thaw";
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
  if (a.kind == Action::Kind::kCreateRecord) {
    s += " index=" + std::to_string(a.index);
    if (a.standby) s += " standby";
  }
  if (a.kind == Action::Kind::kSetPhase) s += " phase=" + std::string(InstancePhaseName(a.phase));
  if (a.kind == Action::Kind::kSetScaleIn) {
    s += " scaleIn=" + std::string(a.scale_in == ScaleIn::kNo ? "no" : ScaleInName(a.scale_in));
  }
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
      case InstancePhase::kBooting: {
        auto heard = in.last_heard.find(r.id);
        if (heard != in.last_heard.end()) silent_since = std::max(silent_since, heard->second);
        auto failed = in.provision_failed.find(r.id);
        if (!running) {
          set_phase(InstancePhase::kFailed, obs == observed.end() ? "instance vanished while booting"
                                                                  : "instance stopped while booting");
        } else if (failed != in.provision_failed.end()) {
          set_phase(InstancePhase::kFailed, failed->second);
        } else if (report != in.last_report.end() && report->second >= phase_seen) {
          set_phase(InstancePhase::kReady, "");
        } else if (in.now - silent_since > in.options.boot_timeout) {
          set_phase(InstancePhase::kFailed, "agent did not report within " + Seconds(in.options.boot_timeout));
        }
        break;
      }
      case InstancePhase::kReady: {
        const bool frozen = running && obs->second->frozen;
        if (!running) {
          set_phase(InstancePhase::kFailed,
                    obs == observed.end() ? "instance vanished" : "instance stopped unexpectedly");
        } else if (r.standby) {
          // Its agent is frozen, or about to be: silence says nothing.
          auto cpu = in.cpu_percent.find(r.id);
          const bool quiet = cpu != in.cpu_percent.end() && cpu->second < in.options.quiet_cpu_percent;
          if (!frozen && (quiet || in.now - phase_seen >= in.options.standby_settle)) {
            out.push_back({Action::Kind::kFreeze, r.pool, r.id, r.index, {}, "standby"});
          }
        } else if (in.now - silent_since > in.options.report_timeout) {
          set_phase(InstancePhase::kFailed, "agent silent for more than " + Seconds(in.options.report_timeout));
        } else if (frozen) {
          out.push_back({Action::Kind::kThaw, r.pool, r.id, r.index, {}, "taken from standby"});
        }
        break;
      }
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

    if ((!networks.count(pool.name()) || in.stale_networks.count(pool.name())) && !busy_net) {
      out.push_back({Action::Kind::kEnsureNetwork, pool.name(), {}, 0, {}, ""});
    }

    // `live` counts towards the size; `marked` is what scale-in is
    // draining; `standbys` wait, frozen, for a scale-out.
    std::vector<const Instance*> live, marked, standbys;
    std::set<int64_t> used_indexes;
    for (const Instance* r : mine) {
      used_indexes.insert(r->index);
      if (!IsLive(phase_after[r->id])) continue;
      if (r->standby) {
        standbys.push_back(r);
      } else {
        (r->scale_in == ScaleIn::kNo ? live : marked).push_back(r);
      }
    }
    // Ready ones first (they serve at once), then the lowest index.
    std::stable_sort(standbys.begin(), standbys.end(), [&](const Instance* a, const Instance* b) {
      bool a_ready = phase_after[a->id] == InstancePhase::kReady;
      bool b_ready = phase_after[b->id] == InstancePhase::kReady;
      if (a_ready != b_ready) return a_ready;
      return a->index < b->index;
    });
    // Replaces whatever this pass planned for `r` before: scale-in wins.
    auto replace_steps = [&](const Instance* r, Action step) {
      out.erase(std::remove_if(out.begin(), out.end(), [&](const Action& a) { return a.id == r->id; }), out.end());
      out.push_back(std::move(step));
    };
    auto set_scale_in = [&](const Instance* r, ScaleIn scale_in, std::string reason) {
      Action step{Action::Kind::kSetScaleIn, r->pool, r->id, r->index, {}, std::move(reason)};
      step.scale_in = scale_in;
      replace_steps(r, std::move(step));
    };
    auto remove = [&](const Instance* r, std::string reason) {
      replace_steps(r, {Action::Kind::kSetPhase, r->pool, r->id, r->index, InstancePhase::kDeleting, std::move(reason)});
    };
    int64_t want = pool.spec.instance_count;
    int64_t have = static_cast<int64_t>(live.size());
    std::set<InstanceId> taken_back;
    if (have < want) {
      // Take back what scale-in is draining, most sessions first: it serves
      // at once. One marked kNow is going whatever happens.
      std::vector<const Instance*> order = ScaleInOrder(marked, in.sessions);
      for (auto it = order.rbegin(); it != order.rend() && have < want; ++it) {
        const Instance* r = *it;
        if (r->scale_in != ScaleIn::kDrain || in.busy_instances.count(r->id)) continue;
        set_scale_in(r, ScaleIn::kNo, "scale-up took it back");
        taken_back.insert(r->id);
        ++have;
      }
    }
    // Then standbys: taking one is a store step, even while its provision
    // or freeze is in flight (planner.h).
    size_t standbys_taken = 0;
    for (; have < want && standbys_taken < standbys.size(); ++standbys_taken, ++have) {
      const Instance* r = standbys[standbys_taken];
      replace_steps(r, {Action::Kind::kSetStandby, r->pool, r->id, r->index, {}, "scale-out took a standby"});
    }
    auto hold = in.create_not_before.find(pool.name());
    bool held = hold != in.create_not_before.end() && in.now < hold->second;
    // New records at the lowest free index below `max_index`; fewer than
    // `n` if Deleting records still hold the addresses.
    auto create = [&](int64_t n, int64_t max_index, bool standby) {
      int64_t index = 0;
      for (int64_t k = 0; k < n; ++k) {
        while (used_indexes.count(index)) ++index;
        if (index >= max_index) break;
        used_indexes.insert(index);
        Action step{Action::Kind::kCreateRecord, pool.name(), {}, index, {}, ""};
        step.standby = standby;
        out.push_back(std::move(step));
      }
    };
    if (have < want && !held) {
      create(want - have, MaxInstancesFor(pool.spec.network), /*standby=*/false);
    } else if (have > want) {
      std::vector<const Instance*> order = ScaleInOrder(live, in.sessions);
      for (int64_t k = 0; k < have - want; ++k) {
        const Instance* r = order[k];
        if (in.busy_instances.count(r->id)) {
          // Its provision is in flight; retire it next pass rather than race it.
          continue;
        }
        if (r->phase == InstancePhase::kReady) {
          set_scale_in(r, ScaleIn::kDrain, "scale-in: no new connections; deleted when its last session ends");
        } else {
          remove(r, "scale-in");
        }
      }
    }

    // Standbys: as many as standbyCount, where the pool's addresses and NAT
    // slots allow. A new one waits while a standby taken is still frozen:
    // its boot would compete with the thaw and the first login.
    const auto standbys_left = static_cast<int64_t>(standbys.size() - standbys_taken);
    const int64_t standby_want = pool.spec.standby_count;
    const bool thawing = standbys_taken > 0 || std::any_of(mine.begin(), mine.end(), [&](const Instance* r) {
      auto obs = observed.find(r->id);
      return !r->standby && obs != observed.end() && obs->second->frozen;
    });
    if (standbys_left < standby_want && !held && !thawing) {
      create(standby_want - standbys_left, MaxInstanceCount(pool.spec), /*standby=*/true);
    } else if (standbys_left > standby_want) {
      // The last ones in the order of taking go first: not yet Ready, then
      // the highest index.
      int64_t excess = standbys_left - standby_want;
      for (auto it = standbys.rbegin(); excess > 0 && it != standbys.rend() - standbys_taken; ++it, --excess) {
        const Instance* r = *it;
        if (in.busy_instances.count(r->id)) continue;  // its provision or freeze first
        remove(r, "standbyCount is " + std::to_string(standby_want));
      }
    }

    // What scale-in marked goes when nothing of a user's is left on it.
    for (const Instance* r : marked) {
      if (taken_back.count(r->id) || in.busy_instances.count(r->id)) continue;
      auto seen = in.scale_in_seen.find(r->id);
      auto marked_for = in.now - (seen == in.scale_in_seen.end() ? in.now : seen->second);
      auto count = in.sessions.find(r->id);
      if (r->scale_in == ScaleIn::kNow) {
        remove(r, "scale-in, forced");
      } else if (r->phase != InstancePhase::kReady) {
        remove(r, "scale-in");
      } else if (count != in.sessions.end() && count->second == 0 && marked_for >= in.options.scale_in_settle) {
        remove(r, "scale-in: its last session ended");
      } else if (pool.spec.drain_timeout_minutes &&
                 marked_for >= std::chrono::minutes(*pool.spec.drain_timeout_minutes)) {
        remove(r, "scale-in: drainTimeoutMinutes (" + std::to_string(*pool.spec.drain_timeout_minutes) +
                      ") passed with " +
                      (count == in.sessions.end() ? std::string("an unknown number of")
                                                  : std::to_string(count->second)) +
                      " sessions open");
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

std::vector<const Instance*> ScaleInOrder(std::vector<const Instance*> candidates,
                                          const std::map<InstanceId, int64_t>& sessions) {
  auto open = [&](const Instance* r) {
    auto it = sessions.find(r->id);
    return it == sessions.end() ? std::numeric_limits<int64_t>::max() : it->second;
  };
  std::stable_sort(candidates.begin(), candidates.end(), [&](const Instance* a, const Instance* b) {
    if (a->draining != b->draining) return a->draining;
    bool a_ready = a->phase == InstancePhase::kReady;
    bool b_ready = b->phase == InstancePhase::kReady;
    if (a_ready != b_ready) return !a_ready;
    if (open(a) != open(b)) return open(a) < open(b);
    return a->index > b->index;
  });
  return candidates;
}

std::optional<int64_t> CountToWake(const Pool& pool, const std::vector<Instance>& instances) {
  if (pool.state != PoolState::kActive) return std::nullopt;
  int64_t drained = 0;
  for (const Instance& i : instances) {
    drained += i.pool == pool.name() && i.draining && i.scale_in == ScaleIn::kNo && !i.standby &&
               i.phase != InstancePhase::kDeleting;
  }
  if (pool.spec.instance_count > drained) return std::nullopt;
  return drained + 1;
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
