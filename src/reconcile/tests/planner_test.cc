#include "reconcile/planner.h"

#include <algorithm>

#include <gtest/gtest.h>

namespace dspool {
namespace {

using Kind = Action::Kind;
using std::chrono::seconds;

class PlannerTest : public ::testing::Test {
 protected:
  PlannerTest() {
    in_.now = MonoTime(seconds(1'000'000));
  }

  Pool& AddPool(const std::string& name, int64_t count) {
    Pool p;
    p.spec.name = PoolName(name);
    p.spec.instance_count = count;
    p.spec.network.subnet = *ParseIpv4Subnet("10.231.0.0/28");
    in_.pools.push_back(p);
    in_.networks.push_back(p.name());
    return in_.pools.back();
  }

  Instance& AddRecord(const std::string& pool, int64_t index, InstancePhase phase, bool observed = true,
                      bool running = true) {
    Instance r;
    r.pool = PoolName(pool);
    r.index = index;
    r.id = InstanceId(pool + "-" + std::to_string(index));
    r.phase = phase;
    in_.phase_seen[r.id] = in_.now - seconds(10);
    in_.records.push_back(r);
    if (observed) in_.observed.push_back({r.id, r.pool, index, running});
    if (phase == InstancePhase::kReady) in_.last_report[r.id] = in_.now - seconds(1);
    return in_.records.back();
  }

  std::vector<Action> Plan() { return dspool::Plan(in_); }

  PlanInput in_;
};

TEST_F(PlannerTest, EmptyPoolCreatesNetworkAndRecords) {
  AddPool("a", 2);
  in_.networks.clear();
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].kind, Kind::kEnsureNetwork);
  EXPECT_EQ(plan[1].kind, Kind::kCreateRecord);
  EXPECT_EQ(plan[1].index, 0);
  EXPECT_EQ(plan[2].index, 1);
}

TEST_F(PlannerTest, SteadyStateDoesNothing) {
  AddPool("a", 2);
  AddRecord("a", 0, InstancePhase::kReady);
  AddRecord("a", 1, InstancePhase::kReady);
  EXPECT_TRUE(Plan().empty());
}

TEST_F(PlannerTest, AStaleNetworkIsEnsuredAgainWhileItsInstancesGoOn) {
  AddPool("a", 1);
  AddRecord("a", 0, InstancePhase::kReady);
  in_.stale_networks.insert(PoolName("a"));  // its security rules changed
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kEnsureNetwork);
  in_.busy_networks.insert(PoolName("a"));
  EXPECT_TRUE(Plan().empty());
}

TEST_F(PlannerTest, PendingIsProvisionedUnlessBusy) {
  AddPool("a", 1);
  AddRecord("a", 0, InstancePhase::kPending, /*observed=*/false);
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kProvision);
  in_.busy_instances.insert(InstanceId("a-0"));
  EXPECT_TRUE(Plan().empty());
}

TEST_F(PlannerTest, BootingBecomesReadyOnReportAfterPhaseStart) {
  AddPool("a", 1);
  Instance& r = AddRecord("a", 0, InstancePhase::kBooting);
  EXPECT_TRUE(Plan().empty());
  in_.last_report[r.id] = in_.phase_seen[r.id] - seconds(1);  // before the phase began
  EXPECT_TRUE(Plan().empty());
  in_.last_report[r.id] = in_.phase_seen[r.id] + seconds(1);
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kSetPhase);
  EXPECT_EQ(plan[0].phase, InstancePhase::kReady);
}

TEST_F(PlannerTest, BootTimeoutFailsAndReplaces) {
  AddPool("a", 1);
  Instance& r = AddRecord("a", 0, InstancePhase::kBooting);
  in_.phase_seen[r.id] = in_.now - seconds(120);
  EXPECT_TRUE(Plan().empty()) << "120 s is not more than boot_timeout";
  in_.phase_seen[r.id] = in_.now - seconds(121);
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].phase, InstancePhase::kFailed);
  EXPECT_EQ(plan[0].reason, "agent did not report within 120s");
  EXPECT_EQ(plan[1].kind, Kind::kCreateRecord);
  EXPECT_EQ(plan[1].index, 1);  // index 0 stays with the failed record
}

TEST_F(PlannerTest, ABootingInstanceWhoseExtensionsRunIsNotSilentAndOneThatFailedFails) {
  AddPool("a", 1);
  Instance& r = AddRecord("a", 0, InstancePhase::kBooting);
  in_.phase_seen[r.id] = in_.now - seconds(600);
  in_.last_heard[r.id] = in_.now - seconds(2);  // reporting, its script still running
  EXPECT_TRUE(Plan().empty());
  in_.provision_failed[r.id] = "extension 'files' failed: Enable failed: exit status 1";
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].phase, InstancePhase::kFailed);
  EXPECT_EQ(plan[0].reason, "extension 'files' failed: Enable failed: exit status 1");
  EXPECT_EQ(plan[1].kind, Kind::kCreateRecord);
}

TEST_F(PlannerTest, SilenceCountsFromWhatThisServerSaw) {
  AddPool("a", 1);
  Instance& r = AddRecord("a", 0, InstancePhase::kReady);
  in_.last_report.clear();
  // A server that just started has seen the phase only since then, however
  // old the record's wall-clock phase_since.
  r.phase_since = TimePoint{};
  in_.phase_seen.erase(r.id);
  EXPECT_TRUE(Plan().empty());
  in_.phase_seen[r.id] = in_.now - seconds(5);
  EXPECT_TRUE(Plan().empty());
  in_.phase_seen[r.id] = in_.now - seconds(30);
  EXPECT_TRUE(Plan().empty()) << "30 s is not more than report_timeout";
  in_.phase_seen[r.id] = in_.now - seconds(31);
  auto plan = Plan();
  ASSERT_GE(plan.size(), 1u);
  EXPECT_EQ(plan[0].phase, InstancePhase::kFailed);
  EXPECT_EQ(plan[0].reason, "agent silent for more than 30s");
  in_.last_report[r.id] = in_.now - seconds(30);
  EXPECT_TRUE(Plan().empty()) << "a report 30 s ago";
}

TEST_F(PlannerTest, StoppedReadyInstanceFailsThenIsDeletedAndReplaced) {
  AddPool("a", 1);
  AddRecord("a", 0, InstancePhase::kReady, /*observed=*/true, /*running=*/false);
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].phase, InstancePhase::kFailed);
  EXPECT_EQ(plan[0].reason, "instance stopped unexpectedly");
  EXPECT_EQ(plan[1].kind, Kind::kCreateRecord);

  in_.records[0].phase = InstancePhase::kFailed;
  in_.records[0].reason = "instance stopped unexpectedly";
  plan = Plan();
  EXPECT_EQ(plan[0].phase, InstancePhase::kDeleting);
  EXPECT_EQ(plan[0].reason, "instance stopped unexpectedly");

  in_.records[0].phase = InstancePhase::kDeleting;
  plan = Plan();
  EXPECT_EQ(plan[0].kind, Kind::kDestroy);
  in_.observed.clear();
  plan = Plan();
  EXPECT_EQ(plan[0].kind, Kind::kRemoveRecord);
}

TEST_F(PlannerTest, ScaleInRemovesNotReadyFirstThenHighestIndex) {
  AddPool("a", 1);
  AddRecord("a", 0, InstancePhase::kReady);
  AddRecord("a", 1, InstancePhase::kBooting);
  AddRecord("a", 2, InstancePhase::kReady);
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].id.value(), "a-1");
  EXPECT_EQ(plan[0].reason, "scale-in");
  EXPECT_EQ(plan[1].id.value(), "a-2");
}

TEST_F(PlannerTest, ScaleInDrainsDrainedOnesFirst) {
  AddPool("a", 2);
  AddRecord("a", 0, InstancePhase::kReady).draining = true;
  AddRecord("a", 1, InstancePhase::kBooting);
  AddRecord("a", 2, InstancePhase::kReady);
  AddRecord("a", 3, InstancePhase::kReady).draining = true;
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 2u);
  // Both drained ones, highest index first; the booting one, which would
  // go first otherwise, stays. Ready ones are not deleted: scale-in drains
  // them, and they go when their sessions end.
  EXPECT_EQ(plan[0].id.value(), "a-3");
  EXPECT_EQ(plan[1].id.value(), "a-0");
  for (const Action& a : plan) {
    EXPECT_EQ(a.kind, Kind::kSetScaleIn);
    EXPECT_EQ(a.scale_in, ScaleIn::kDrain);
  }
  // Drained alone, without scale-in, removes nothing.
  in_.pools[0].spec.instance_count = 4;
  EXPECT_TRUE(Plan().empty());
}

TEST_F(PlannerTest, ScaleInDeletesWhatIsNotReadyAtOnce) {
  AddPool("a", 1);
  AddRecord("a", 0, InstancePhase::kReady);
  AddRecord("a", 1, InstancePhase::kBooting);
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0], (Action{Kind::kSetPhase, PoolName("a"), InstanceId("a-1"), 1, InstancePhase::kDeleting,
                             "scale-in"}));
}

TEST_F(PlannerTest, ScaleInTakesTheFewestSessionsFirstAndUnknownLast) {
  AddPool("a", 1);
  for (int64_t k = 0; k < 4; ++k) AddRecord("a", k, InstancePhase::kReady);
  in_.sessions = {{InstanceId("a-0"), 3}, {InstanceId("a-1"), 0}, {InstanceId("a-2"), 1}};  // a-3: unknown
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].id.value(), "a-1");
  EXPECT_EQ(plan[1].id.value(), "a-2");
  EXPECT_EQ(plan[2].id.value(), "a-0");
}

TEST_F(PlannerTest, AnInstanceScaleInDrainsGoesOnlyWhenItsLastSessionEnded) {
  AddPool("a", 1);
  AddRecord("a", 0, InstancePhase::kReady);
  AddRecord("a", 1, InstancePhase::kReady).scale_in = ScaleIn::kDrain;
  const InstanceId id("a-1");
  in_.scale_in_seen[id] = in_.now - seconds(60);
  in_.sessions[id] = 2;
  EXPECT_TRUE(Plan().empty()) << "sessions open: it waits";
  in_.sessions.erase(id);
  EXPECT_TRUE(Plan().empty()) << "a count nobody knows yet: it waits";
  in_.sessions[id] = 0;
  in_.scale_in_seen[id] = in_.now - seconds(1);
  EXPECT_TRUE(Plan().empty()) << "no session, but marked too recently for the count to cover the last routes";
  in_.scale_in_seen[id] = in_.now - in_.options.scale_in_settle;
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0], (Action{Kind::kSetPhase, PoolName("a"), id, 1, InstancePhase::kDeleting,
                             "scale-in: its last session ended"}));
}

TEST_F(PlannerTest, DrainTimeoutCapsTheWait) {
  AddPool("a", 0).spec.drain_timeout_minutes = 30;
  AddRecord("a", 0, InstancePhase::kReady).scale_in = ScaleIn::kDrain;
  const InstanceId id("a-0");
  in_.sessions[id] = 2;
  in_.scale_in_seen[id] = in_.now - std::chrono::minutes(29);
  EXPECT_TRUE(Plan().empty());
  in_.scale_in_seen[id] = in_.now - std::chrono::minutes(30);
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].phase, InstancePhase::kDeleting);
  EXPECT_EQ(plan[0].reason, "scale-in: drainTimeoutMinutes (30) passed with 2 sessions open");
  // Without a timeout it waits as long as the sessions last.
  in_.pools[0].spec.drain_timeout_minutes.reset();
  in_.scale_in_seen[id] = in_.now - std::chrono::hours(24 * 30);
  EXPECT_TRUE(Plan().empty());
}

TEST_F(PlannerTest, ForcedScaleInDeletesAtOnce) {
  AddPool("a", 0);
  AddRecord("a", 0, InstancePhase::kReady).scale_in = ScaleIn::kNow;
  in_.sessions[InstanceId("a-0")] = 5;
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0], (Action{Kind::kSetPhase, PoolName("a"), InstanceId("a-0"), 0, InstancePhase::kDeleting,
                             "scale-in, forced"}));
}

TEST_F(PlannerTest, ScaleUpTakesBackWhatScaleInDrainsBeforeCreating) {
  AddPool("a", 3);
  AddRecord("a", 0, InstancePhase::kReady);
  AddRecord("a", 1, InstancePhase::kReady).scale_in = ScaleIn::kDrain;
  AddRecord("a", 2, InstancePhase::kReady).scale_in = ScaleIn::kDrain;
  AddRecord("a", 3, InstancePhase::kReady).scale_in = ScaleIn::kNow;  // going whatever happens
  in_.sessions = {{InstanceId("a-1"), 1}, {InstanceId("a-2"), 4}};
  auto plan = Plan();
  // Two missing: both drained ones come back (most sessions first), the
  // forced one still goes, nothing is created.
  ASSERT_EQ(plan.size(), 3u);
  Action back{Kind::kSetScaleIn, PoolName("a"), InstanceId("a-2"), 2, {}, "scale-up took it back"};
  EXPECT_EQ(plan[0], back);
  back.id = InstanceId("a-1");
  back.index = 1;
  EXPECT_EQ(plan[1], back);
  EXPECT_EQ(plan[2].id.value(), "a-3");
  EXPECT_EQ(plan[2].phase, InstancePhase::kDeleting);
  in_.pools[0].spec.instance_count = 4;
  plan = Plan();
  EXPECT_EQ(std::count_if(plan.begin(), plan.end(), [](const Action& a) { return a.kind == Kind::kCreateRecord; }), 1);
}

TEST_F(PlannerTest, ScaleInSkipsBusyInstance) {
  AddPool("a", 0);
  AddRecord("a", 0, InstancePhase::kPending, /*observed=*/false);
  in_.busy_instances.insert(InstanceId("a-0"));
  EXPECT_TRUE(Plan().empty());
}

TEST_F(PlannerTest, ScaleInReplacesPlannedProvision) {
  AddPool("a", 0);
  AddRecord("a", 0, InstancePhase::kPending, /*observed=*/false);
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kSetPhase);
  EXPECT_EQ(plan[0].phase, InstancePhase::kDeleting);
}

TEST_F(PlannerTest, OrphansAreDestroyed) {
  AddPool("a", 0);
  in_.observed.push_back({InstanceId("a-7-zz"), PoolName("a"), 7, true});
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kDestroyOrphan);
  EXPECT_EQ(plan[0].id.value(), "a-7-zz");
}

TEST_F(PlannerTest, DeletingPoolTearsDownInOrder) {
  Pool& p = AddPool("a", 2);
  p.state = PoolState::kDeleting;
  AddRecord("a", 0, InstancePhase::kReady);
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].phase, InstancePhase::kDeleting);
  EXPECT_EQ(plan[0].reason, "pool deleted");

  in_.records[0].phase = InstancePhase::kDeleting;
  plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kDestroy);

  in_.records.clear();
  in_.observed.clear();
  plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kDeleteNetwork);

  in_.networks.clear();
  plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kRemovePool);
}

TEST_F(PlannerTest, RecordOfVanishedPoolIsDeleted) {
  AddRecord("gone", 0, InstancePhase::kReady);
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].phase, InstancePhase::kDeleting);
}

TEST_F(PlannerTest, NetworkWithoutPoolIsDeleted) {
  in_.networks.push_back(PoolName("stale"));
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kDeleteNetwork);
  EXPECT_EQ(plan[0].pool.value(), "stale");
}

TEST_F(PlannerTest, IndexesAreNotReusedWhileTaken) {
  AddPool("a", 3);
  AddRecord("a", 0, InstancePhase::kReady);
  AddRecord("a", 2, InstancePhase::kDeleting);
  auto plan = Plan();
  // Destroy a-2, and create the two missing at indexes 1 and 3.
  std::vector<int64_t> created;
  for (const Action& a : plan) {
    if (a.kind == Kind::kCreateRecord) created.push_back(a.index);
  }
  EXPECT_EQ(created, (std::vector<int64_t>{1, 3}));
}

TEST_F(PlannerTest, CreationWaitsForFreeAddresses) {
  AddPool("a", 13);  // a /28 holds 13 instances
  for (int i = 0; i < 13; ++i) AddRecord("a", i, InstancePhase::kDeleting);
  for (const Action& a : Plan()) EXPECT_NE(a.kind, Kind::kCreateRecord);
}

TEST_F(PlannerTest, BackoffHoldsCreation) {
  AddPool("a", 1);
  in_.create_not_before[PoolName("a")] = in_.now + seconds(1);
  EXPECT_TRUE(Plan().empty());
  in_.create_not_before[PoolName("a")] = in_.now;
  EXPECT_EQ(Plan().size(), 1u);
}

// ---- standbys ----

// The creations of `plan`, as (index, standby).
std::vector<std::pair<int64_t, bool>> Created(const std::vector<Action>& plan) {
  std::vector<std::pair<int64_t, bool>> out;
  for (const Action& a : plan) {
    if (a.kind == Kind::kCreateRecord) out.push_back({a.index, a.standby});
  }
  return out;
}

TEST_F(PlannerTest, StandbysAreCreatedBeyondTheInstanceCount) {
  AddPool("a", 1).spec.standby_count = 2;
  using Made = std::vector<std::pair<int64_t, bool>>;
  EXPECT_EQ(Created(Plan()), (Made{{0, false}, {1, true}, {2, true}}));

  AddRecord("a", 0, InstancePhase::kReady);
  AddRecord("a", 1, InstancePhase::kBooting).standby = true;
  EXPECT_EQ(Created(Plan()), (Made{{2, true}})) << "a booting standby counts";
  AddRecord("a", 2, InstancePhase::kFailed).standby = true;
  EXPECT_EQ(Created(Plan()), (Made{{3, true}})) << "a failed one is replaced";
}

TEST_F(PlannerTest, StandbysUseOnlyTheAddressesTheInstancesLeave) {
  AddPool("a", 12).spec.standby_count = 3;  // a /28 holds 13 instances
  for (int i = 0; i < 12; ++i) AddRecord("a", i, InstancePhase::kReady);
  EXPECT_EQ(Created(Plan()), (std::vector<std::pair<int64_t, bool>>{{12, true}}));
}

TEST_F(PlannerTest, BackoffHoldsStandbysToo) {
  AddPool("a", 0).spec.standby_count = 1;
  in_.create_not_before[PoolName("a")] = in_.now + seconds(1);
  EXPECT_TRUE(Plan().empty());
}

TEST_F(PlannerTest, AReadyStandbyIsFrozenOnceQuietOrAfterTheSettleTime) {
  AddPool("a", 0).spec.standby_count = 1;
  Instance& r = AddRecord("a", 0, InstancePhase::kReady);
  r.standby = true;
  in_.phase_seen[r.id] = in_.now - seconds(1);
  EXPECT_TRUE(Plan().empty()) << "its CPU use is not known yet";
  in_.cpu_percent[r.id] = 40;  // a Jupyter pool's zygote importing Notebook
  EXPECT_TRUE(Plan().empty()) << "still starting";
  in_.cpu_percent[r.id] = 4.9;
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kFreeze);
  in_.cpu_percent[r.id] = 40;
  in_.phase_seen[r.id] = in_.now - seconds(60);
  plan = Plan();
  ASSERT_EQ(plan.size(), 1u) << "busy for a minute: frozen anyway";
  EXPECT_EQ(plan[0].kind, Kind::kFreeze);
}

TEST_F(PlannerTest, AReadyStandbyIsFrozenAndItsSilenceIsNoFailure) {
  AddPool("a", 0).spec.standby_count = 1;
  Instance& r = AddRecord("a", 0, InstancePhase::kReady);
  r.standby = true;
  in_.cpu_percent[r.id] = 1;
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kFreeze);
  EXPECT_EQ(plan[0].id, r.id);
  in_.busy_instances.insert(r.id);
  EXPECT_TRUE(Plan().empty()) << "the freeze is in flight";
  in_.busy_instances.clear();

  in_.observed.back().frozen = true;
  in_.phase_seen[r.id] = in_.now - std::chrono::hours(24);
  in_.last_report[r.id] = in_.now - std::chrono::hours(24);
  EXPECT_TRUE(Plan().empty()) << "a frozen standby cannot report";

  in_.observed.back().running = false;
  in_.observed.back().frozen = false;
  plan = Plan();
  ASSERT_GE(plan.size(), 1u);
  EXPECT_EQ(plan[0].phase, InstancePhase::kFailed);
  EXPECT_EQ(plan[0].reason, "instance stopped unexpectedly");
}

TEST_F(PlannerTest, AStandbyIsNoInstanceOfThePool) {
  AddPool("a", 1).spec.standby_count = 1;
  AddRecord("a", 0, InstancePhase::kReady).standby = true;
  in_.observed.back().frozen = true;
  AddRecord("a", 1, InstancePhase::kReady);
  EXPECT_TRUE(Plan().empty()) << "one instance and one standby: as wanted";
}

TEST_F(PlannerTest, ScaleOutTakesAReadyStandbyFirstAndReplacesItOnceThawed) {
  AddPool("a", 1).spec.standby_count = 2;
  AddRecord("a", 0, InstancePhase::kBooting).standby = true;
  Instance& taken = AddRecord("a", 1, InstancePhase::kReady);
  taken.standby = true;
  in_.observed.back().frozen = true;
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u) << "no new standby's boot competes with the thaw";
  EXPECT_EQ(plan[0].kind, Kind::kSetStandby);
  EXPECT_EQ(plan[0].id, InstanceId("a-1"));
  EXPECT_EQ(plan[0].reason, "scale-out took a standby");

  taken.standby = false;
  plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kThaw);

  in_.observed.back().frozen = false;
  EXPECT_EQ(Created(Plan()), (std::vector<std::pair<int64_t, bool>>{{2, true}}));
}

TEST_F(PlannerTest, ScaleOutTakesStandbysBeforeCreatingAndEvenWhileTheirCallIsInFlight) {
  AddPool("a", 3);
  AddRecord("a", 0, InstancePhase::kReady).scale_in = ScaleIn::kDrain;
  AddRecord("a", 1, InstancePhase::kReady).standby = true;
  in_.busy_instances.insert(InstanceId("a-1"));  // its freeze
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].kind, Kind::kSetScaleIn) << "what scale-in drains is taken back first";
  EXPECT_EQ(plan[1].kind, Kind::kSetStandby);
  EXPECT_EQ(plan[1].id, InstanceId("a-1"));
  EXPECT_EQ(Created(plan), (std::vector<std::pair<int64_t, bool>>{{2, false}}));
}

TEST_F(PlannerTest, ATakenStandbyIsThawedAndFailsIfItStaysSilent) {
  AddPool("a", 1);
  Instance& r = AddRecord("a", 0, InstancePhase::kReady);
  in_.observed.back().frozen = true;
  in_.last_report[r.id] = in_.now - std::chrono::hours(1);  // before its freeze
  in_.phase_seen[r.id] = in_.now - seconds(1);              // when it was taken
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].kind, Kind::kThaw);

  in_.phase_seen[r.id] = in_.now - seconds(31);
  plan = Plan();
  ASSERT_GE(plan.size(), 1u);
  EXPECT_EQ(plan[0].phase, InstancePhase::kFailed);
  EXPECT_EQ(plan[0].reason, "agent silent for more than 30s");
}

TEST_F(PlannerTest, ExcessStandbysGoNotReadyFirstThenHighestIndex) {
  AddPool("a", 0).spec.standby_count = 1;
  AddRecord("a", 0, InstancePhase::kReady).standby = true;
  in_.observed.back().frozen = true;
  AddRecord("a", 1, InstancePhase::kBooting).standby = true;
  AddRecord("a", 2, InstancePhase::kReady).standby = true;
  in_.observed.back().frozen = true;
  AddRecord("a", 3, InstancePhase::kPending).standby = true;
  in_.busy_instances.insert(InstanceId("a-3"));  // its provision
  std::vector<InstanceId> removed;
  for (const Action& a : Plan()) {
    if (a.kind == Kind::kSetPhase && a.phase == InstancePhase::kDeleting) {
      removed.push_back(a.id);
      EXPECT_EQ(a.reason, "standbyCount is 1");
    }
  }
  // a-3 is the first to go, but its provision is in flight: next pass.
  EXPECT_EQ(removed, (std::vector<InstanceId>{InstanceId("a-1"), InstanceId("a-2")}));
}

}  // namespace
}  // namespace dspool

namespace dspool {
namespace {

TEST_F(PlannerTest, CountToWakeRaisesAPoolAtZeroOrAllDrainingAndNothingElse) {
  Pool zero = AddPool("a", 0);
  EXPECT_EQ(CountToWake(zero, in_.records), 1);

  Pool starting = AddPool("b", 1);  // its instance is on its way
  EXPECT_EQ(CountToWake(starting, in_.records), std::nullopt);

  Pool failing = AddPool("c", 1);
  AddRecord("c", 0, InstancePhase::kFailed);  // being replaced: nothing to raise
  EXPECT_EQ(CountToWake(failing, in_.records), std::nullopt);

  Pool drained = AddPool("d", 2);
  AddRecord("d", 0, InstancePhase::kReady).draining = true;
  AddRecord("d", 1, InstancePhase::kReady).draining = true;
  AddRecord("a", 5, InstancePhase::kReady).draining = true;  // another pool's: not counted
  EXPECT_EQ(CountToWake(drained, in_.records), 3);
  AddRecord("d", 2, InstancePhase::kDeleting).draining = true;  // leaving: not counted
  EXPECT_EQ(CountToWake(drained, in_.records), 3);

  Pool deleting = AddPool("e", 0);
  deleting.state = PoolState::kDeleting;
  EXPECT_EQ(CountToWake(deleting, in_.records), std::nullopt);

  // What scale-in drains does not count towards the size: raising the
  // count to 1 takes it back (ScaleUpTakesBack...), and it serves at once.
  Pool scaling_in = AddPool("f", 0);
  AddRecord("f", 0, InstancePhase::kReady).scale_in = ScaleIn::kDrain;
  EXPECT_EQ(CountToWake(scaling_in, in_.records), 1);
}

}  // namespace
}  // namespace dspool

namespace dspool {
namespace {

TEST(NotebookIdleTest, OnlyQuietServersWithNothingRunningAreIdle) {
  const MonoTime now = MonoTime(std::chrono::hours(1'000));
  const auto hour = std::chrono::minutes(60);
  JupyterServer quiet;
  quiet.state = JupyterState::kReady;
  quiet.idle_for = std::chrono::minutes(61);
  quiet.last_activity = FromUnixMillis(1'800'000'000'000);  // a wall time: read by no decision
  EXPECT_TRUE(NotebookIdle(now - std::chrono::minutes(61), quiet, now, hour));
  EXPECT_FALSE(NotebookIdle(now - std::chrono::minutes(59), quiet, now, hour)) << "recent traffic";
  EXPECT_FALSE(NotebookIdle(now - std::chrono::minutes(61), quiet, now, std::chrono::minutes(0))) << "never cull";

  JupyterServer computing = quiet;  // a long cell: the browser is long gone
  computing.busy_kernels = 1;
  EXPECT_FALSE(NotebookIdle(now - std::chrono::hours(5), computing, now, hour));
  JupyterServer terminal = quiet;  // `make` running in a terminal
  terminal.busy_terminals = 1;
  EXPECT_FALSE(NotebookIdle(now - std::chrono::hours(5), terminal, now, hour));
  JupyterServer recent = quiet;  // the notebook saw activity the gateway did not
  recent.idle_for = std::chrono::minutes(5);
  EXPECT_FALSE(NotebookIdle(now - std::chrono::hours(5), recent, now, hour));
  JupyterServer stale = quiet;  // the agent's last poll failed: its counts may be old
  stale.state = JupyterState::kUnresponsive;
  EXPECT_FALSE(NotebookIdle(now - std::chrono::hours(5), stale, now, hour));
  JupyterServer unpolled = quiet;
  unpolled.idle_for.reset();
  EXPECT_TRUE(NotebookIdle(now - std::chrono::hours(5), unpolled, now, hour));
}

}  // namespace
}  // namespace dspool
