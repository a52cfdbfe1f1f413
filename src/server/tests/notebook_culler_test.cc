#include "server/notebook_culler.h"

#include <gtest/gtest.h>

#include <set>

namespace dspool {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

// The gateway's sessions and the agents' listings, as a test sets them.
class FakeCullerHooks final : public CullerHooks {
 public:
  std::vector<Notebook> notebooks;
  std::map<InstanceId, Result<std::vector<JupyterServer>>> listings;
  std::set<InstanceId> gone;  // instances that no longer exist
  std::vector<std::pair<InstanceId, std::string>> stopped;
  std::vector<std::string> forgotten;
  int list_calls = 0;

  std::vector<Notebook> Notebooks() override { return notebooks; }
  Result<std::vector<JupyterServer>> ListServers(const InstanceId& id) override {
    ++list_calls;
    auto it = listings.find(id);
    if (it == listings.end()) return Unavailable("instance " + id.value() + ": no answer");
    return it->second;
  }
  bool InstanceExists(const InstanceId& id) override { return !gone.count(id); }
  Status StopServer(const InstanceId& id, const std::string& user) override {
    stopped.push_back({id, user});
    return Status::Ok();
  }
  void ForgetSession(const PoolName&, const std::string& user) override {
    forgotten.push_back(user);
    std::erase_if(notebooks, [&](const Notebook& n) { return n.session.user == user; });
  }
};

class NotebookCullerTest : public ::testing::Test {
 protected:
  NotebookCullerTest() {
    Pool pool;
    pool.spec.name = PoolName("team");
    pool.spec.jupyter = JupyterSpec{};
    pool.spec.jupyter->cull_idle_minutes = 60;
    pools_.push_back(pool);
  }

  // `user`'s Ready session on instance i-1, last traffic now, and the
  // agent's listing of its server: idle for `idle`.
  void AddServer(const std::string& user, Duration idle) {
    NotebookSession s;
    s.user = user;
    s.state = NotebookSession::State::kReady;
    s.instance = InstanceId("i-1");
    s.last_traffic = clock_.Monotonic();
    s.last_activity = clock_.Now();
    hooks_.notebooks.push_back({PoolName("team"), s});
    JupyterServer server;
    server.user = user;
    server.state = JupyterState::kReady;
    server.idle_for = idle;
    hooks_.listings.try_emplace(InstanceId("i-1"), std::vector<JupyterServer>{});
    Servers().push_back(server);
  }
  // The agent's listing of instance i-1.
  std::vector<JupyterServer>& Servers() { return *hooks_.listings.at(InstanceId("i-1")); }
  // Time passes for the agent too: every listed server has been idle `d`
  // longer.
  void Advance(Duration d) {
    clock_.Advance(d);
    for (auto& [id, list] : hooks_.listings) {
      if (!list.ok()) continue;
      for (JupyterServer& s : *list) *s.idle_for += d;
    }
  }

  SimulatedClock clock_;
  FakeCullerHooks hooks_;
  NotebookCuller culler_{clock_, hooks_};
  std::vector<Pool> pools_;
};

TEST_F(NotebookCullerTest, CullsAtTheCullTimeAndNotBefore) {
  AddServer("alice", Duration(0));
  Advance(minutes(59) + seconds(59));
  culler_.Check(pools_);
  EXPECT_TRUE(hooks_.stopped.empty()) << "a second short of an hour";
  ASSERT_TRUE(culler_.Activity(PoolName("team"), "alice").has_value());
  Advance(seconds(1));
  culler_.Check(pools_);
  ASSERT_EQ(hooks_.stopped.size(), 1u);
  EXPECT_EQ(hooks_.stopped[0].second, "alice");
  EXPECT_EQ(hooks_.forgotten, std::vector<std::string>{"alice"});
  EXPECT_EQ(culler_.culled(), 1);
  EXPECT_FALSE(culler_.Activity(PoolName("team"), "alice").has_value());
}

TEST_F(NotebookCullerTest, TrafficOrActivityOrWorkKeepsAServer) {
  AddServer("traffic", Duration(0));
  AddServer("activity", Duration(0));
  AddServer("busy", Duration(0));
  Advance(minutes(61));
  hooks_.notebooks[0].session.last_traffic = clock_.Monotonic() - minutes(5);  // the browser is there
  Servers()[1].idle_for = minutes(5);                                        // the notebook did something
  Servers()[2].busy_kernels = 1;                                             // a long cell runs
  culler_.Check(pools_);
  EXPECT_TRUE(hooks_.stopped.empty());
  EXPECT_EQ(hooks_.list_calls, 1) << "one listing per instance and round";
  EXPECT_EQ(culler_.Activity(PoolName("team"), "busy")->busy_kernels, 1) << "kept for session list";
}

TEST_F(NotebookCullerTest, StepsOfTheWallClockCullNothing) {
  AddServer("alice", Duration(0));
  Advance(minutes(10));
  for (Duration step : {Duration(std::chrono::hours(2)), Duration(-std::chrono::hours(5))}) {
    clock_.StepWall(step);
    culler_.Check(pools_);
  }
  EXPECT_TRUE(hooks_.stopped.empty());
  EXPECT_EQ(culler_.culled(), 0);
}

// An instance that is gone is the gateway's to forget (its routing table
// drops it): the culler neither forgets nor stops anything for it.
TEST_F(NotebookCullerTest, AnUnansweringAgentIsAskedAgainAndAGoneInstanceLeftToTheGateway) {
  AddServer("alice", Duration(0));
  hooks_.listings.insert_or_assign(InstanceId("i-1"), Unavailable("instance i-1: no answer"));
  Advance(minutes(61));
  culler_.Check(pools_);
  EXPECT_TRUE(hooks_.forgotten.empty()) << "its agent may answer next round";
  EXPECT_TRUE(hooks_.stopped.empty());
  hooks_.gone.insert(InstanceId("i-1"));
  culler_.Check(pools_);
  EXPECT_TRUE(hooks_.forgotten.empty());
  EXPECT_TRUE(hooks_.stopped.empty());
}

// The gateway forgot alice's server (its instance went): its figures go
// too, so a new server of hers does not show the old one's.
TEST_F(NotebookCullerTest, FiguresOfAServerTheGatewayForgotAreDropped) {
  AddServer("alice", Duration(0));
  Servers()[0].busy_kernels = 2;
  culler_.Check(pools_);
  ASSERT_EQ(culler_.Activity(PoolName("team"), "alice")->busy_kernels, 2);
  hooks_.notebooks.clear();
  culler_.Check(pools_);
  EXPECT_FALSE(culler_.Activity(PoolName("team"), "alice").has_value());
}

TEST_F(NotebookCullerTest, AServerTheAgentNoLongerHasIsForgotten) {
  AddServer("alice", Duration(0));
  Servers()[0].state = JupyterState::kExited;
  culler_.Check(pools_);
  EXPECT_EQ(hooks_.forgotten, std::vector<std::string>{"alice"});
}

TEST_F(NotebookCullerTest, ZeroMeansNeverAndPoolsWithoutJupyterAreLeftAlone) {
  AddServer("alice", Duration(0));
  pools_[0].spec.jupyter->cull_idle_minutes = 0;
  Advance(std::chrono::hours(24 * 30));
  culler_.Check(pools_);
  EXPECT_TRUE(hooks_.stopped.empty());
  pools_[0].spec.jupyter.reset();
  culler_.Check(pools_);
  EXPECT_EQ(hooks_.list_calls, 1) << "no listing for a pool without jupyter";
}

}  // namespace
}  // namespace dspool
