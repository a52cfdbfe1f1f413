// The reconcile planner: a pure function from (desired, recorded, observed,
// now) to the next steps. No I/O, no clock, no randomness: every decision the
// reconciler makes is made here and tested exhaustively in planner_test.cc.
//
// Level-triggered: the plan depends only on the current state, never on what
// happened before, so a pass after a crash at any point continues the work.
// One pass emits at most one step per instance, and none for an instance or
// network with a provider call in flight, but one: taking a standby, a store
// step that only clears its flag, is not held back by its Provision or
// Freeze (what those calls do holds for a standby and an instance alike).
//
// The rules, in order:
//   1. An instance the provider has but no record names is an orphan: destroy.
//   2. Records move through the phases of model/instance.h:
//        Pending  → Provision (then the loop sets Booting)
//        Booting  → Ready when the agent has reported healthy (sshd
//                   listening, the pool's extensions Succeeded) since the
//                   phase began; Failed if the instance is gone or stopped,
//                   an extension failed, or the agent is silent past
//                   boot_timeout
//        Ready    → Failed if gone or stopped, or silent past report_timeout;
//                   a standby is frozen (Freeze) once quiet (PlanOptions)
//                   and not expected to report;
//                   an instance that is frozen but no longer a standby is
//                   thawed (Thaw), and fails if silent past report_timeout
//                   from when it was taken
//        Failed   → Deleting (keeping the reason)
//        Deleting → Destroy while the provider has it, then remove the record
//      A record of a deleted (or deleting) pool → Deleting.
//   3. Size: live records (Pending, Booting, Ready) that are neither
//      standbys nor marked for scale-in are compared with the pool's
//      instanceCount.
//      Missing ones: instances scale-in is draining are taken back first
//      (they serve at once), then standbys (SetStandby: Ready ones first,
//      then the lowest index; thawed next pass), then new ones are created
//      at the lowest free
//      index (indexes are never shared between records, so a replacement
//      never collides with the address of the instance it replaces). After a
//      failure the loop may hold back creation (create_not_before).
//      Excess ones, in ScaleInOrder: one not yet Ready is deleted at once (it
//      never had a session); a Ready one is marked ScaleIn::kDrain, which
//      takes it out of the gateway's rotation.
//      Marked ones are deleted when marked kNow (`pool scale --force`), or
//      when they have had no session for a pass at least `scale_in_settle`
//      after the mark (what the gateway routed to it just before is counted
//      by then), or when the pool's drainTimeoutMinutes has passed since
//      the mark; until then they keep their users' sessions.
//      Standbys: live standby records are compared with the pool's
//      standbyCount. Missing ones are created (after any backoff, and once
//      no standby taken is still frozen: a boot would compete with the
//      thaw and the first login) at the lowest free index below
//      MaxInstanceCount, so that a standby always has an address and NAT
//      slot it may keep when taken; excess ones are deleted, not Ready ones
//      first, then the highest index.
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
  Duration scale_in_settle = std::chrono::seconds(2);
  // A Ready standby is frozen once its agent reports it quiet (less CPU
  // than this, in % of one CPU), or at the latest this long after it
  // turned Ready: frozen mid-start (a Jupyter pool's zygote importing
  // Notebook), it would finish starting when taken, beside the user.
  double quiet_cpu_percent = 5;
  Duration standby_settle = std::chrono::seconds(60);
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
  // A healthy report: sshd listens and every extension of the pool has
  // Succeeded. `last_heard` is any report: a Booting instance whose
  // extensions still run is not silent.
  std::map<InstanceId, MonoTime> last_report;
  std::map<InstanceId, MonoTime> last_heard;
  std::map<InstanceId, MonoTime> phase_seen;
  // Instances whose agent reported a provisioning step (customData, an
  // extension) Failed, with the reason.
  std::map<InstanceId, std::string> provision_failed;
  // The CPU use each instance's agent last reported (% of one CPU), for
  // those whose agent could tell.
  std::map<InstanceId, double> cpu_percent;
  // Since when this server has seen each record marked for scale-in (as
  // phase_seen: a restarted server starts the drain timeout afresh, erring
  // towards keeping sessions).
  std::map<InstanceId, MonoTime> scale_in_seen;
  // Open SSH sessions and notebook servers on each instance, for those whose
  // count is known (an instance missing here has a count nobody knows yet:
  // scale-in waits for it).
  std::map<InstanceId, int64_t> sessions;
  std::set<InstanceId> busy_instances;
  std::set<PoolName> busy_networks;
  // Networks that exist but whose pool's security rules this server has
  // not applied to them (changed since, or not since it started).
  std::set<PoolName> stale_networks;
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
    kCreateRecord,    // pool, index, standby: a new Pending record
    kProvision,       // id
    kSetPhase,        // id, phase, reason
    kSetScaleIn,      // id, scale_in, reason
    kSetStandby,      // id, reason: clears the standby flag (a scale-out takes it)
    kFreeze,          // id (a Ready standby)
    kThaw,            // id (frozen, no longer a standby)
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
  ScaleIn scale_in = ScaleIn::kNo;
  bool standby = false;

  friend bool operator==(const Action&, const Action&) = default;
};

std::string_view ActionKindName(Action::Kind kind);
std::string DescribeAction(const Action& action);

std::vector<Action> Plan(const PlanInput& input);

// The order in which scale-in takes instances from `candidates`: drained by
// an admin first (they chose them), then not yet Ready (no session lost),
// then the fewest open sessions (`sessions`; unknown counts as most), then
// the highest index.
std::vector<const Instance*> ScaleInOrder(std::vector<const Instance*> candidates,
                                          const std::map<InstanceId, int64_t>& sessions);

// Wake-on-connect: a connection waits on `pool` and no instance can take it.
// The instanceCount that makes the pool want one instance that is not
// drained (drained instances count towards instanceCount until scale-in
// removes them; instances scale-in is draining do not, so raising the count
// takes one of them back first), or nullopt if it wants one already
// (instances starting, failed ones being replaced) or is being deleted.
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
