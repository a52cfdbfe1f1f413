// Reconciler: the loop that turns the planner's steps into store writes and
// provider calls.
//
//        ┌──────────────────────────── RunPass ────────────────────────────┐
//        │ 1. apply finished provider calls (Pending→Booting, →Failed,      │
//        │    record removal), with events                                  │
//        │ 2. read pools + records (store), instances + networks (provider) │
//        │ 3. Plan(...)                      (pure, reconcile/planner.h)    │
//        │ 4. store steps now; provider steps handed to the executor        │
//        └───────▲──────────────────────────────────────────┬───────────────┘
//                │ every `interval`, or at once when poked  │ provider call done
//                └───────────── Poke() ◄────────────────────┘
//
// Only the loop creates, removes and moves the phase of instance records, and
// only from RunPass, so a record's phase never changes between the plan and
// its step. The API sets one thing on records, the draining flag: every
// update of a record is an UpdateInstance conditioned on the record as read,
// so a phase step made again on the fresh record keeps the flag, and the
// API's write keeps the phase. (The standby flag is the loop's, as the
// phase: set when it creates a standby's record, cleared when a scale-out
// takes it.) Provider calls run on the executor, at most
// one per instance (and per pool network) at a time; their outcome is
// applied by the next pass, which re-reads the record first.
//
// Crash safety: every store step is one atomic WriteBatch, and every provider
// call is idempotent (compute_provider.h), so killing the process at any
// moment and starting a new Reconciler on the same store and provider
// converges to the same result. reconciler_test.cc checks this at every step.
//
// Time: silence, boot timeouts and backoff are measured on the clock's
// monotonic reading, from what this loop itself saw (a report arriving, a
// record in a phase); records and events carry wall times for people. A
// step of the wall clock, either way, replaces no instance.
//
// Thread safety: RunPass must not run concurrently with itself (Start runs it
// on one background thread). RecordReport, LastReport and Poke are
// thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "model/instance.h"
#include "provider/compute_provider.h"
#include "reconcile/planner.h"
#include "store/state_store.h"

namespace dspool {

struct ReconcilerOptions {
  PlanOptions plan;
  Duration interval = std::chrono::seconds(2);
  Duration min_backoff = std::chrono::seconds(1);
  Duration max_backoff = std::chrono::seconds(60);
};

// Resolves what the provider needs to build an instance (mounts, paths, the
// agent command): the server's business, injected.
using RequestBuilder = std::function<Result<InstanceRequest>(const Pool&, const Instance&)>;
// Runs a task, now or later, on some thread.
using Executor = std::function<void(std::function<void()>)>;
// A short random string for instance ids ("3fa9c1").
using SuffixSource = std::function<std::string()>;
// The open SSH sessions and notebook servers on each of `ids`, for those
// whose count is known (PlanInput::sessions). Called once a pass, holding no
// lock of the reconciler's.
using SessionCounter = std::function<std::map<InstanceId, int64_t>(const std::vector<InstanceId>& ids)>;

struct ReconcilerCounters {
  int64_t passes = 0;
  int64_t actions = 0;
  int64_t provider_errors = 0;
  int64_t instances_created = 0;
  int64_t instances_failed = 0;
  int64_t instances_destroyed = 0;
  int64_t orphans_destroyed = 0;
};

class Reconciler {
 public:
  Reconciler(StateStore& store, ComputeProvider& provider, const Clock& clock, RequestBuilder build_request,
             Executor executor, SuffixSource suffix, SessionCounter sessions, ReconcilerOptions options);
  ~Reconciler();
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // One pass. Returns the steps it took (store steps done, provider steps
  // started); a store error aborts the pass and is returned.
  Result<std::vector<Action>> RunPass();

  // True when no provider call is in flight and the last pass had nothing
  // to do.
  bool Idle() const;

  void RecordReport(const InstanceId& id, const InstanceReport& report);
  std::optional<InstanceReport> LastReport(const InstanceId& id) const;

  // Background loop. Start at most once; Stop waits for the loop thread (not
  // for provider calls already handed to the executor).
  void Start();
  void Stop();
  void Poke();

  ReconcilerCounters counters() const;

 private:
  struct Completion {
    Action action;
    Status status;
  };

  void Dispatch(const Action& action, const std::vector<Pool>& pools, const std::vector<Instance>& records);
  Status ApplyCompletions();
  Status ApplyStoreStep(const Action& action, const std::vector<Pool>& pools,
                        const std::vector<Instance>& records);
  Status SetPhase(const Instance& record, InstancePhase phase, const std::string& reason);
  Status SetScaleIn(const Instance& record, ScaleIn scale_in, const std::string& reason);
  // Clears the standby flag: the instance counts towards its pool and gets
  // connections (the next pass thaws it).
  Status TakeStandby(const Instance& record, const std::string& reason);
  // Writes `change` applied to `record`, with `event`, conditioned on the
  // record as read. The API may have changed the draining flag meanwhile: on
  // a conflict the change is made again on the fresh record, while its
  // phase, scale-in mark and standby flag are still the ones the step was
  // planned on (only the loop moves them, so that holds unless it was
  // removed). Returns the record written, or nullopt if it moved on (the
  // next pass plans again).
  Result<std::optional<Instance>> UpdateRecord(const Instance& record, const std::function<void(Instance&)>& change,
                                               const Event& event);
  void NoteFailure(const PoolName& pool);
  void Loop();

  StateStore& store_;
  ComputeProvider& provider_;
  const Clock& clock_;
  RequestBuilder build_request_;
  Executor executor_;
  SuffixSource suffix_;
  SessionCounter sessions_;
  ReconcilerOptions options_;

  struct SeenReport {
    InstanceReport report;
    MonoTime at;  // when it came
  };
  mutable std::mutex mu_;  // guards everything below
  std::map<InstanceId, SeenReport> reports_;
  // Each record's phase as this loop last saw it, and since when (PlanInput).
  std::map<InstanceId, std::pair<InstancePhase, MonoTime>> phase_seen_;
  // Since when this loop has seen each record marked for scale-in.
  std::map<InstanceId, MonoTime> scale_in_seen_;
  std::set<InstanceId> busy_instances_;
  std::set<PoolName> busy_networks_;
  // The security rules each pool's network got from this loop's last
  // EnsureNetwork (PoolNetwork::filter).
  std::map<PoolName, std::vector<FilterLayer>> applied_filters_;
  std::deque<Completion> completions_;
  std::map<PoolName, std::pair<MonoTime, Duration>> backoff_;  // not-before, current step
  std::map<std::string, std::string> last_error_;  // key → message, to log each error once
  bool last_pass_empty_ = false;
  ReconcilerCounters counters_;
  bool poked_ = false;
  bool stopping_ = false;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace dspool
