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
#pragma once

#include <string>

#include "base/clock.h"
#include "base/ids.h"
#include "base/result.h"
#include "model/json_reader.h"

namespace dspool {

enum class InstancePhase { kPending, kBooting, kReady, kFailed, kDeleting };
std::string_view InstancePhaseName(InstancePhase phase);
Result<InstancePhase> ParseInstancePhase(std::string_view name);

struct Instance {
  InstanceId id;
  PoolName pool;
  int64_t index = 0;
  InstancePhase phase = InstancePhase::kPending;
  std::string reason;  // why it is Failed or Deleting; empty otherwise
  std::string address;  // IPv4 on the pool's bridge
  TimePoint created_at;
  TimePoint phase_since;
  friend bool operator==(const Instance&, const Instance&) = default;
};

Json InstanceToJson(const Instance& instance);
Result<Instance> InstanceFromJson(const Json& json);

// What an instance's agent last said. Kept in memory only: it is refreshed
// every few seconds, and a restarted server waits for the next one.
struct InstanceReport {
  TimePoint received_at;
  bool sshd_listening = false;
  double cpu_percent = 0;
  int64_t memory_used_bytes = 0;
  int64_t memory_limit_bytes = 0;
  int64_t ssh_sessions = 0;
  int64_t users_rendered = 0;
};

Json InstanceReportToJson(const InstanceReport& report);
// Parses an agent's report body (untrusted input).
Result<InstanceReport> ParseInstanceReport(const Json& json);

}  // namespace dspool
