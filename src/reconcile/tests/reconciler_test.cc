#include "reconcile/reconciler.h"

#include <gtest/gtest.h>

#include <memory>

#include "provider/fake/fake_provider.h"
#include "store/memory/memory_store.h"
#include "store/forwarding_store.h"

namespace dspool {
namespace {

using std::chrono::seconds;

// Counts mutations (store writes and provider changes); when the budget runs
// out, that mutation and every later one fail, as if the process had died.
class CrashBudget {
 public:
  explicit CrashBudget(int64_t budget) : left_(budget) {}
  Status Take() {
    if (left_ < 0) return Status::Ok();  // unlimited
    if (left_ == 0) {
      crashed_ = true;
      return Aborted("simulated crash");
    }
    --left_;
    return Status::Ok();
  }
  bool crashed() const { return crashed_; }
  int64_t used(int64_t initial) const { return initial - left_; }

 private:
  int64_t left_;
  bool crashed_ = false;
};

class CrashingStore final : public ForwardingStore {
 public:
  CrashingStore(StateStore& inner, CrashBudget& budget) : ForwardingStore(inner), budget_(budget) {}
  Status Write(const WriteBatch& b) override {
    DSP_RETURN_IF_ERROR(budget_.Take());
    if (before_write) before_write(b);
    return ForwardingStore::Write(b);
  }

  // Another writer's turn just before each write (the API's, in tests).
  std::function<void(const WriteBatch&)> before_write;

 private:
  CrashBudget& budget_;
};

Pool MakePool(const std::string& name, int64_t count) {
  Pool p;
  p.spec.name = PoolName(name);
  p.spec.instance_count = count;
  p.spec.network.subnet = *ParseIpv4Subnet("10.231.0.0/24");
  return p;
}

// One simulated "server life": a reconciler over the shared store and
// provider, optionally dying after `budget` mutations.
class Harness {
 public:
  Harness() = default;

  void StartLife(int64_t budget) {
    budget_ = std::make_unique<CrashBudget>(budget);
    crashing_store_ = std::make_unique<CrashingStore>(store_, *budget_);
    provider_.SetMutationHook([this](const std::string&) { return budget_->Take(); });
    auto build = [](const Pool& pool, const Instance& r) -> Result<InstanceRequest> {
      InstanceRequest req;
      req.id = r.id;
      req.pool = r.pool;
      req.index = r.index;
      req.hostname = InstanceHostname(pool.name(), r.index);
      req.address = InstanceAddress(pool.spec.network, r.index);
      return req;
    };
    reconciler_ = std::make_unique<Reconciler>(
        *crashing_store_, provider_, clock_, build, [](std::function<void()> f) { f(); },
        [this] { return std::to_string(++suffix_); },
        [this](const std::vector<InstanceId>& ids) {
          std::map<InstanceId, int64_t> known;
          for (const InstanceId& id : ids) {
            auto it = sessions_.find(id);
            known[id] = it == sessions_.end() ? 0 : it->second;
          }
          return known;
        },
        ReconcilerOptions{});
  }

  // Runs passes a simulated second apart, playing every running instance's
  // agent, until nothing is left to do (for longer than the planner's
  // waits: scale-in's settle time), the budget is spent, or `max_passes` is
  // reached. Returns true if it converged.
  bool Converge(int max_passes = 60) {
    int quiet = 0;
    for (int i = 0; i < max_passes; ++i) {
      ReportAlive();
      auto plan = reconciler_->RunPass();
      if (budget_->crashed()) return false;
      EXPECT_TRUE(plan.ok()) << plan.status();
      quiet = plan.ok() && plan->empty() && reconciler_->Idle() ? quiet + 1 : 0;
      if (quiet > 3) return true;
      clock_.Advance(seconds(1));
    }
    return false;
  }

  // Every running instance's agent reports, but those in killed_ and the
  // frozen.
  void ReportAlive() {
    for (const auto& inst : *provider_.List()) {
      if (inst.running && !inst.frozen && !killed_.count(inst.id)) {
        InstanceReport report{clock_.Now(), /*sshd_listening=*/true};
        report.cpu_percent = 0.5;  // quiet
        reconciler_->RecordReport(inst.id, report);
      }
    }
  }

  // The API's write of a pool's spec.
  void ChangeSpec(const std::string& pool, const std::function<void(PoolSpec&)>& change) {
    Pool p = *store_.GetPool(PoolName(pool));
    int64_t gen = p.generation;
    change(p.spec);
    ++p.generation;
    ASSERT_TRUE(store_.Write(WriteBatch().Add(WriteBatch::UpdatePool{p, gen})).ok());
  }
  void SetCount(const std::string& pool, int64_t count) {
    ChangeSpec(pool, [count](PoolSpec& spec) { spec.instance_count = count; });
  }
  void SetStandbyCount(const std::string& pool, int64_t count) {
    ChangeSpec(pool, [count](PoolSpec& spec) { spec.standby_count = count; });
  }

  void MarkDeleting(const std::string& pool) {
    Pool p = *store_.GetPool(PoolName(pool));
    int64_t gen = p.generation;
    p.state = PoolState::kDeleting;
    ++p.generation;
    ASSERT_TRUE(store_.Write(WriteBatch().Add(WriteBatch::UpdatePool{p, gen})).ok());
  }

  // The invariants after convergence: each live pool has exactly its count of
  // Ready records and its standbyCount of Ready standbys, distinct indexes,
  // each backed by one running instance, frozen if and only if a standby,
  // and the provider has nothing else.
  void ExpectConverged() {
    auto pools = *store_.ListPools();
    auto records = *store_.ListInstances({});
    auto observed = *provider_.List();
    size_t want_total = 0;
    for (const Pool& p : pools) {
      ASSERT_EQ(p.state, PoolState::kActive) << "deleting pool still recorded";
      want_total += static_cast<size_t>(p.spec.instance_count + p.spec.standby_count);
      std::set<int64_t> indexes;
      int64_t standbys = 0;
      for (const Instance& r : records) {
        if (r.pool != p.name()) continue;
        EXPECT_EQ(r.phase, InstancePhase::kReady) << r.id;
        EXPECT_TRUE(indexes.insert(r.index).second) << "duplicate index " << r.index;
        standbys += r.standby;
      }
      EXPECT_EQ(indexes.size(), static_cast<size_t>(p.spec.instance_count + p.spec.standby_count)) << p.name();
      EXPECT_EQ(standbys, p.spec.standby_count) << p.name();
    }
    EXPECT_EQ(records.size(), want_total);
    ASSERT_EQ(observed.size(), records.size()) << "orphan or missing instance";
    for (const Instance& r : records) {
      auto it = std::find_if(observed.begin(), observed.end(),
                             [&](const ProviderInstance& o) { return o.id == r.id; });
      ASSERT_NE(it, observed.end()) << r.id;
      EXPECT_TRUE(it->running);
      EXPECT_EQ(it->frozen, r.standby) << r.id;
    }
    EXPECT_EQ(provider_.ListNetworks()->size(), pools.size());
  }

  MemoryStore store_;
  FakeProvider provider_;
  SimulatedClock clock_;
  std::unique_ptr<CrashBudget> budget_;
  std::unique_ptr<CrashingStore> crashing_store_;
  std::unique_ptr<Reconciler> reconciler_;
  std::set<InstanceId> killed_;
  std::map<InstanceId, int64_t> sessions_;  // open sessions on an instance; absent: none
  int suffix_ = 0;
};

TEST(ReconcilerTest, BringsUpScalesAndDeletesAPool) {
  Harness h;
  h.StartLife(-1);
  ASSERT_TRUE(h.store_.Write(WriteBatch().Add(WriteBatch::CreatePool{MakePool("a", 2)})).ok());
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
  auto records = *h.store_.ListInstances({});
  EXPECT_EQ(records[0].address, "10.231.0.2");
  EXPECT_EQ(records[1].address, "10.231.0.3");

  h.SetCount("a", 3);
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
  h.SetCount("a", 1);
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
  EXPECT_EQ(h.store_.ListInstances({})->at(0).index, 0);

  h.MarkDeleting("a");
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
  EXPECT_TRUE(h.store_.ListPools()->empty());
  EXPECT_TRUE(h.provider_.List()->empty());

  // Every change left an event.
  std::vector<std::string> actions;
  for (const Event& e : *h.store_.ListEvents(0, 1000)) actions.push_back(e.action);
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "instance.create"), 3);
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "instance.ready"), 3);
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "instance.delete"), 3);
  EXPECT_EQ(actions.back(), "pool.deleted");
}

TEST(ReconcilerTest, FailedProvisionIsReplacedWithBackoff) {
  Harness h;
  h.StartLife(-1);
  h.provider_.FailNextProvision(2, Unavailable("no memory for containers"));
  h.provider_.SetHalfMadeOnFailure(true);
  ASSERT_TRUE(h.store_.Write(WriteBatch().Add(WriteBatch::CreatePool{MakePool("a", 1)})).ok());
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
  EXPECT_EQ(h.provider_.provision_calls(), 3);
  int failed = 0;
  for (const Event& e : *h.store_.ListEvents(0, 1000)) {
    if (e.action == "instance.failed") {
      ++failed;
      EXPECT_EQ(e.detail, "provision failed: no memory for containers");
    }
  }
  EXPECT_EQ(failed, 2);
  EXPECT_EQ(h.reconciler_->counters().instances_failed, 2);
}

TEST(ReconcilerTest, CrashedInstanceIsReplaced) {
  Harness h;
  h.StartLife(-1);
  ASSERT_TRUE(h.store_.Write(WriteBatch().Add(WriteBatch::CreatePool{MakePool("a", 2)})).ok());
  ASSERT_TRUE(h.Converge());
  InstanceId victim = h.store_.ListInstances({})->at(0).id;
  h.provider_.Kill(victim);
  h.killed_.insert(victim);
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
  for (const Instance& r : *h.store_.ListInstances({})) EXPECT_NE(r.id, victim);
}

TEST(ReconcilerTest, SilentAgentIsReplaced) {
  Harness h;
  h.StartLife(-1);
  ASSERT_TRUE(h.store_.Write(WriteBatch().Add(WriteBatch::CreatePool{MakePool("a", 1)})).ok());
  ASSERT_TRUE(h.Converge());
  InstanceId victim = h.store_.ListInstances({})->at(0).id;
  h.killed_.insert(victim);  // still running, but its agent no longer reports
  auto failed = [&] {
    auto events = *h.store_.TailEvents(100);
    return std::any_of(events.begin(), events.end(), [&](const Event& e) {
      return e.action == "instance.failed" && e.subject == "instance/" + victim.value() &&
             e.detail == "agent silent for more than 30s";
    });
  };
  for (int i = 0; i < 30; ++i) {
    h.clock_.Advance(seconds(1));
    ASSERT_TRUE(h.reconciler_->RunPass().ok());
  }
  EXPECT_FALSE(failed()) << "failed after 30 s of silence, which is not more than report_timeout";
  h.clock_.Advance(seconds(1));
  ASSERT_TRUE(h.reconciler_->RunPass().ok());
  EXPECT_TRUE(failed());
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
}

// The host's clock is set an hour ahead, then two hours back, while the
// agents report as usual: no instance is failed, replaced or restarted, and
// a booting one still becomes ready.
TEST(ReconcilerTest, WallClockStepsReplaceNothing) {
  Harness h;
  h.StartLife(-1);
  ASSERT_TRUE(h.store_.Write(WriteBatch().Add(WriteBatch::CreatePool{MakePool("a", 2)})).ok());
  ASSERT_TRUE(h.Converge());
  h.SetCount("a", 3);  // the third is created and provisioned, not yet reported
  ASSERT_TRUE(h.reconciler_->RunPass().ok());
  ASSERT_TRUE(h.reconciler_->RunPass().ok());
  const int provisions = h.provider_.provision_calls();
  const auto before = *h.store_.ListEvents(0, 1000);
  for (Duration step : {Duration(std::chrono::hours(1)), Duration(-std::chrono::hours(2))}) {
    h.clock_.StepWall(step);
    ASSERT_TRUE(h.Converge());
    h.ExpectConverged();
  }
  EXPECT_EQ(h.provider_.provision_calls(), provisions);
  EXPECT_EQ(h.reconciler_->counters().instances_failed, 0);
  EXPECT_EQ(h.reconciler_->counters().instances_destroyed, 0);
  EXPECT_EQ(h.store_.ListInstances({})->size(), 3u);
  for (const Event& e : *h.store_.ListEvents(0, 1000)) {
    EXPECT_NE(e.action, "instance.failed") << e.detail;
  }
  // And the reason it matters: the silence rule still fails a quiet agent,
  // after report_timeout of monotonic time, whatever the wall clock did.
  InstanceId victim = h.store_.ListInstances({})->at(0).id;
  h.killed_.insert(victim);
  for (int i = 0; i < 30; ++i) {
    h.clock_.Advance(seconds(1));
    h.ReportAlive();
    ASSERT_TRUE(h.reconciler_->RunPass().ok());
  }
  EXPECT_EQ(h.reconciler_->counters().instances_failed, 0) << "30 s of silence is within report_timeout";
  h.clock_.Advance(seconds(1));
  h.ReportAlive();
  ASSERT_TRUE(h.reconciler_->RunPass().ok());
  EXPECT_EQ(h.reconciler_->counters().instances_failed, 1);
}

TEST(ReconcilerTest, DrainSetBetweenPlanAndStepIsKept) {
  Harness h;
  h.StartLife(-1);
  ASSERT_TRUE(h.store_.Write(WriteBatch().Add(WriteBatch::CreatePool{MakePool("a", 1)})).ok());
  bool drained = false;
  h.crashing_store_->before_write = [&](const WriteBatch& batch) {
    for (const WriteBatch::Op& op : batch.ops()) {
      auto* update = std::get_if<WriteBatch::UpdateInstance>(&op);
      if (drained || !update || update->instance.phase != InstancePhase::kReady) continue;
      Instance draining = update->expected;
      draining.draining = true;
      EXPECT_TRUE(h.store_.Write(WriteBatch().Add(WriteBatch::UpdateInstance{draining, update->expected})).ok());
      drained = true;
    }
  };
  ASSERT_TRUE(h.Converge());
  ASSERT_TRUE(drained);
  auto records = *h.store_.ListInstances({});
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].phase, InstancePhase::kReady);
  EXPECT_TRUE(records[0].draining);
  auto events = *h.store_.ListEvents(0, 1000);
  EXPECT_EQ(std::count_if(events.begin(), events.end(), [](const Event& e) { return e.action == "instance.ready"; }),
            1);
}

TEST(ReconcilerTest, ScaleInKeepsAnInstanceUntilItsLastSessionEnds) {
  Harness h;
  h.StartLife(-1);
  ASSERT_TRUE(h.store_.Write(WriteBatch().Add(WriteBatch::CreatePool{MakePool("a", 2)})).ok());
  ASSERT_TRUE(h.Converge());
  auto records = *h.store_.ListInstances({});
  ASSERT_EQ(records.size(), 2u);
  const InstanceId busy = records[0].id, quieter = records[1].id;
  h.sessions_[busy] = 3;
  h.sessions_[quieter] = 1;

  h.SetCount("a", 1);
  ASSERT_TRUE(h.Converge());
  records = *h.store_.ListInstances({});
  ASSERT_EQ(records.size(), 2u) << "an instance with a session open was deleted";
  auto marked = std::find_if(records.begin(), records.end(), [&](const Instance& r) { return r.id == quieter; });
  ASSERT_NE(marked, records.end());
  EXPECT_EQ(marked->scale_in, ScaleIn::kDrain) << "scale-in takes the one with the fewest sessions";
  EXPECT_EQ(marked->phase, InstancePhase::kReady);

  // A restarted server keeps waiting (and counts a drain timeout afresh).
  h.StartLife(-1);
  ASSERT_TRUE(h.Converge());
  EXPECT_EQ(h.store_.ListInstances({})->size(), 2u);

  h.sessions_[quieter] = 0;  // its user logged out
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
  records = *h.store_.ListInstances({});
  EXPECT_EQ(records[0].id, busy);
  auto events = *h.store_.ListEvents(0, 1000);
  auto deleting = std::find_if(events.begin(), events.end(), [](const Event& e) { return e.action == "instance.deleting"; });
  ASSERT_NE(deleting, events.end());
  EXPECT_EQ(deleting->subject, "instance/" + quieter.value());
  EXPECT_EQ(deleting->detail, "scale-in: its last session ended");
  EXPECT_EQ(std::count_if(events.begin(), events.end(), [](const Event& e) { return e.action == "instance.scale-in"; }),
            1);
}

TEST(ReconcilerTest, AStandbyIsFrozenTakenByAScaleOutThawedAndReplaced) {
  Harness h;
  h.StartLife(-1);
  Pool pool = MakePool("a", 0);
  pool.spec.standby_count = 1;
  ASSERT_TRUE(h.store_.Write(WriteBatch().Add(WriteBatch::CreatePool{pool})).ok());
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
  const Instance standby = h.store_.ListInstances({})->at(0);
  ASSERT_TRUE(standby.standby);

  // Frozen for an hour: its agent cannot report, and nothing fails it.
  for (int i = 0; i < 60; ++i) {
    h.clock_.Advance(std::chrono::minutes(1));
    ASSERT_TRUE(h.reconciler_->RunPass().ok());
  }
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
  EXPECT_EQ(h.store_.ListInstances({})->at(0).id, standby.id);

  const int provisions = h.provider_.provision_calls();
  h.SetCount("a", 1);
  // One pass takes it (a store step); the next, planned at once, thaws it.
  ASSERT_TRUE(h.reconciler_->RunPass().ok());
  ASSERT_TRUE(h.reconciler_->RunPass().ok());
  EXPECT_EQ(h.provider_.thaw_calls(), 1);
  auto taken = *h.store_.GetInstance(standby.id);
  EXPECT_FALSE(taken.standby);
  EXPECT_EQ(taken.phase, InstancePhase::kReady);
  // Its last report is an hour old: silence counts from when it was taken.
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
  EXPECT_EQ(h.provider_.provision_calls(), provisions + 1) << "one new standby, and no new instance";
  auto records = *h.store_.ListInstances({});
  ASSERT_EQ(records.size(), 2u);
  EXPECT_TRUE(std::any_of(records.begin(), records.end(), [&](const Instance& r) {
    return r.id == standby.id && !r.standby;
  }));

  std::vector<std::string> actions;
  for (const Event& e : *h.store_.ListEvents(0, 1000)) {
    if (e.subject == "instance/" + standby.id.value()) actions.push_back(e.action);
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"instance.create", "instance.booting", "instance.ready",
                                               "instance.standby.take"}));

  // Fewer standbys wanted: the extra one goes.
  h.SetStandbyCount("a", 0);
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
}

TEST(ReconcilerTest, AdoptsWhatExistsAfterRestart) {
  Harness h;
  h.StartLife(-1);
  ASSERT_TRUE(h.store_.Write(WriteBatch().Add(WriteBatch::CreatePool{MakePool("a", 2)})).ok());
  ASSERT_TRUE(h.Converge());
  int provisions = h.provider_.provision_calls();
  h.StartLife(-1);  // a new server life over the same store and provider
  ASSERT_TRUE(h.Converge());
  h.ExpectConverged();
  EXPECT_EQ(h.provider_.provision_calls(), provisions) << "a restart must not rebuild healthy instances";
}

// The scenario every crash test runs: bring up 3, scale to 1, scale to 2,
// delete the pool, with a second pool that stays, whose scale-out takes its
// standby.
void RunScenario(Harness& h, const std::function<void()>& after_crash) {
  auto step = [&](const std::function<void()>& change) {
    if (change) change();
    while (!h.Converge()) {
      ASSERT_TRUE(h.budget_->crashed()) << "did not converge without a crash";
      after_crash();
    }
    h.ExpectConverged();
  };
  step([&] {
    ASSERT_TRUE(h.store_.Write(WriteBatch().Add(WriteBatch::CreatePool{MakePool("a", 3)})).ok());
    Pool b = MakePool("b", 1);
    b.spec.standby_count = 1;
    ASSERT_TRUE(h.store_.Write(WriteBatch().Add(WriteBatch::CreatePool{b})).ok());
  });
  step([&] { h.SetCount("a", 1); });
  step([&] { h.SetCount("a", 2); });
  step([&] { h.SetCount("b", 2); });  // takes b's standby
  step([&] { h.MarkDeleting("a"); });
  EXPECT_EQ(h.store_.ListPools()->size(), 1u);
  EXPECT_EQ(h.provider_.List()->size(), 3u);
}

class CrashAtEveryStepTest : public ::testing::TestWithParam<bool /*half-made on failure*/> {};

TEST_P(CrashAtEveryStepTest, ConvergesWithNoDuplicateAndNoOrphan) {
  // First count the mutations of an uninterrupted run.
  int64_t total = 0;
  {
    Harness h;
    h.StartLife(1'000'000);
    RunScenario(h, [] {});
    total = h.budget_->used(1'000'000);
  }
  ASSERT_GT(total, 20);
  for (int64_t k = 0; k < total; ++k) {
    SCOPED_TRACE("crash at mutation " + std::to_string(k));
    Harness h;
    h.provider_.SetHalfMadeOnFailure(GetParam());
    h.StartLife(k);
    RunScenario(h, [&] { h.StartLife(-1); });
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(HalfMade, CrashAtEveryStepTest, ::testing::Bool());

}  // namespace
}  // namespace dspool
