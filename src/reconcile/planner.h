// The reconcile planner: a pure function from (desired, recorded, observed,
// now) to the next steps. No I/O, no clock, no randomness: every decision the
// reconciler makes is made here and tested exhaustively in planner_test.cc.
//
// Level-triggered: the plan depends only on the current state, never on what
// happened before, so a pass after a crash at any point continues the work.
// One pass emits at most one step per instance, and none for an instance or
// network with a provider call in flight.
//
// The rules, in order:
//   1. An instance the provider has but no record names is an orphan: destroy.
//   2. Records move through the phases of model/instance.h:
//        Pending  → Provision (then the loop sets Booting)
//        Booting  → Ready when the agent has reported since the phase began;
//                   Failed if the instance is gone or stopped, or silent past
//                   boot_timeout
//        Ready    → Failed if gone or stopped, or silent past report_timeout
//        Failed   → Deleting (keeping the reason)
//        Deleting → Destroy while the provider has it, then remove the record
//      A record of a deleted (or deleting) pool → Deleting.
//   3. Size: live records (Pending, Booting, Ready) are compared with the
//      pool's instanceCount. Missing ones are created at the lowest free index
//      (indexes are never shared between records, so a replacement never
//      collides with the address of the instance it replaces). Excess ones are
//      removed: draining ones first (`dspool instance drain` chose them), then
//      not-yet-ready ones, then the highest index. After a failure the loop
//      may hold back creation (create_not_before).
//   4. Networks: every active pool gets one. A deleting pool, once it has no
//      record and no instance left, loses its network, then its record. A
//      network with no pool is deleted.
#pragma once

#include <map>
#include <set>
#include <vector>

#include "base/clock.h"
#include "model/instance.h"
#include "model/jupyter.h"
#include "model/pool.h"
#include "provider/compute_provider.h"

namespace dspool {

struct PlanOptions {
  Duration boot_timeout = std::chrono::seconds(120);
  Duration report_timeout = std::chrono::seconds(30);
};

struct PlanInput {
  std::vector<Pool> pools;
  std::vector<Instance> records;
  std::vector<ProviderInstance> observed;
  std::vector<PoolName> networks;
  // This server's own observations, on the monotonic clock (base/clock.h):
  // when it last had a healthy report from each instance's agent, and since
  // when it has seen each record in its current phase (set when the loop
  // moves the phase, or when a server that just started first reads the
  // record). Silence is measured from the later of the two, so neither a
  // restarted server nor a step of the wall clock fails an instance; a
  // record missing from `phase_seen` counts as seen `now`. The records' own
  // phase_since is a wall time, for people.
  std::map<InstanceId, MonoTime> last_report;
  std::map<InstanceId, MonoTime> phase_seen;
  std::set<InstanceId> busy_instances;
  std::set<PoolName> busy_networks;
  // No new records for a pool before this time (backoff after failures).
  std::map<PoolName, MonoTime> create_not_before;
  MonoTime now;
  PlanOptions options;
};

struct Action {
  enum class Kind {
    kEnsureNetwork,   // pool
    kDeleteNetwork,   // pool
    kRemovePool,      // pool: delete the pool's record
    kCreateRecord,    // pool, index: a new Pending record
    kProvision,       // id
    kSetPhase,        // id, phase, reason
    kDestroy,         // id (a record in Deleting)
    kRemoveRecord,    // id
    kDestroyOrphan,   // id, pool (no record)
  };
  Kind kind;
  PoolName pool;
  InstanceId id;
  int64_t index = 0;
  InstancePhase phase = InstancePhase::kPending;
  std::string reason;

  friend bool operator==(const Action&, const Action&) = default;
};

std::string_view ActionKindName(Action::Kind kind);
std::string DescribeAction(const Action& action);

std::vector<Action> Plan(const PlanInput& input);

// Wake-on-connect: a connection waits on `pool` and no instance can take it.
// The instanceCount that makes the pool want one instance that is not
// draining (draining instances count towards instanceCount until scale-in
// removes them), or nullopt if it wants one already (instances starting,
// failed ones being replaced) or is being deleted.
std::optional<int64_t> CountToWake(const Pool& pool, const std::vector<Instance>& instances);

// Culling: whether a user's notebook server is idle for `cull` (zero:
// never): no request or WebSocket traffic through the gateway since
// `last_traffic`, nothing the notebook itself counts as activity for as
// long (the agent's `idle_for`), no busy kernel and no command running in a terminal,
// by figures the agent has just read (state ready, not unresponsive). A
// long computation keeps its server however quiet the browser is
// (JupyterHub's culler counts only traffic and would stop it).
bool NotebookIdle(MonoTime last_traffic, const JupyterServer& report, MonoTime now, std::chrono::minutes cull);

}  // namespace dspool
