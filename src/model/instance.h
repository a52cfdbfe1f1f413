// Instance: one member of a pool, as the server records it, and the health
// report its agent sends.
//
// Phases (stored; the reconcile planner moves them, see reconcile/planner.h):
//
//            create record           provider create+start ok
//   (none) ──────────────► Pending ───────────────────────────► Booting
//                            │  provider error                    │ agent reports healthy
//                            ▼                                    ▼
//                          Failed ◄──────────────────────────── Ready
//                            │   container gone, agent silent     │
//                            │   past the deadline                │ scale-in, pool deleted
//                            ▼                                    ▼
//                         Deleting ◄──────────────────────────────┘
//                            │ provider destroy ok
//                            ▼
//                         (record removed)
//
// Failed and Deleting instances do not count towards the pool's size, so a
// failed instance is replaced while it is being cleaned up.
//
// Draining (set by `dspool instance drain`, any phase but Deleting) is not a
// phase: a draining instance keeps its phase, gets no new connections from
// the gateway while its open ones go on, and is the first one scale-in
// chooses.
//
// Scale-in is not a phase either. A Ready instance that scale-in chose is
// marked (ScaleIn::kDrain): it gets no new connections and no longer counts
// towards the pool's size, and the planner moves it to Deleting once its
// last SSH session and notebook server have ended, or the pool's
// drainTimeoutMinutes has passed; a scale-up takes it back first. `pool
// scale --force` marks ScaleIn::kNow: deleted at once.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/result.h"
#include "model/extension.h"
#include "model/json_reader.h"
#include "model/jupyter.h"

namespace dspool {

enum class InstancePhase { kPending, kBooting, kReady, kFailed, kDeleting };
std::string_view InstancePhaseName(InstancePhase phase);
Result<InstancePhase> ParseInstancePhase(std::string_view name);

// Pending, Booting or Ready: counts towards its pool's size.
inline bool IsLive(InstancePhase p) {
  return p == InstancePhase::kPending || p == InstancePhase::kBooting || p == InstancePhase::kReady;
}

enum class ScaleIn { kNo, kDrain, kNow };
std::string_view ScaleInName(ScaleIn s);  // "", "drain", "now"

struct Instance {
  InstanceId id;
  PoolName pool;
  int64_t index = 0;
  InstancePhase phase = InstancePhase::kPending;
  std::string reason;  // why it is Failed or Deleting; empty otherwise
  std::string address;  // IPv4 on the pool's bridge
  TimePoint created_at;
  TimePoint phase_since;
  bool draining = false;  // JSON "draining"; records written before it existed read as false
  ScaleIn scale_in = ScaleIn::kNo;  // JSON "scaleIn" ("drain", "now"), absent for kNo
  bool standby = false;  // JSON "standby", absent for false

  // Gets no new connections: drained by an admin, chosen by scale-in, or a
  // standby.
  bool closed_to_new() const { return draining || scale_in != ScaleIn::kNo || standby; }
  friend bool operator==(const Instance&, const Instance&) = default;
};

Json InstanceToJson(const Instance& instance);
Result<Instance> InstanceFromJson(const Json& json);

// What an instance's agent last said. Kept in memory only: it is refreshed
// every few seconds, and a restarted server waits for the next one.
struct InstanceReport {
  TimePoint received_at;
  bool sshd_listening = false;
  // nullopt: the agent could not tell yet (the first report, no cgroup).
  std::optional<double> cpu_percent;
  std::optional<int64_t> memory_used_bytes;
  int64_t memory_limit_bytes = 0;
  int64_t ssh_sessions = 0;
  int64_t notebook_servers = 0;  // the users' Jupyter servers running on it
  int64_t users_rendered = 0;
  // Notebook servers that ended without being asked to since the last
  // report that reached the server (each is reported once).
  std::vector<NotebookExit> notebook_exits;
  // The pool's extensions as the agent runs them, in the pool's order;
  // empty until it has fetched them (the instance is not Ready before each
  // has Succeeded: InstanceProvisioned).
  std::vector<ExtensionStatus> extensions;
};

// Where `report` leaves an instance of a pool that runs `steps` (its
// customData and extensions): provisioned (every one Succeeded), failed
// (the reason names the one that failed, with its message), or neither yet.
struct Provisioning {
  bool done = false;
  std::optional<std::string> failure;
};
// `steps`: the pool's ProvisioningSteps.
Provisioning InstanceProvisioned(const std::vector<std::string>& steps, const InstanceReport& report);

Json InstanceReportToJson(const InstanceReport& report);
// Parses an agent's report body (untrusted input).
Result<InstanceReport> ParseInstanceReport(const Json& json);

// What the gateway last saw of an instance. Observed, never stored.
struct InstanceHealth {
  std::string state;         // "healthy" | "unhealthy" | "probing" (never answered yet) | "unprobed" (no probe)
  bool in_rotation = false;  // gets new connections from the pool's rules
  int64_t connections = 0;   // open relayed connections to it now
  friend bool operator==(const InstanceHealth&, const InstanceHealth&) = default;
};

// {"state", "inRotation", "connections"}
Json InstanceHealthToJson(const InstanceHealth& health);

}  // namespace dspool
