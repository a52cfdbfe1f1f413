#include "provider/testing/conformance.h"

#include <algorithm>

#include "base/testing/cannot_run.h"

namespace dspool {

void ProviderConformance::SetUp() {
  Result<ProviderFixture> fixture = GetParam()();
  if (!fixture.ok() && fixture.status().code() == StatusCode::kFailedPrecondition) {
    DSP_CANNOT_RUN_HERE("provider unavailable here: " << fixture.status().message());
  }
  ASSERT_TRUE(fixture.ok()) << fixture.status();
  fixture_ = std::move(*fixture);
  ready_ = true;
}

void ProviderConformance::TearDown() {
  if (ready_ && fixture_.cleanup) fixture_.cleanup();
}

std::vector<ProviderInstance> ProviderConformance::Mine() {
  auto all = provider().List();
  EXPECT_TRUE(all.ok()) << all.status();
  std::vector<ProviderInstance> mine;
  if (!all.ok()) return mine;
  for (const ProviderInstance& i : *all) {
    if (i.pool == network().pool) mine.push_back(i);
  }
  std::sort(mine.begin(), mine.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  return mine;
}

bool ProviderConformance::NetworkListed() {
  auto nets = provider().ListNetworks();
  EXPECT_TRUE(nets.ok()) << nets.status();
  return nets.ok() && std::find(nets->begin(), nets->end(), network().pool) != nets->end();
}

TEST_P(ProviderConformance, NetworksAreIdempotent) {
  EXPECT_FALSE(NetworkListed());
  ASSERT_TRUE(provider().EnsureNetwork(network()).ok());
  ASSERT_TRUE(provider().EnsureNetwork(network()).ok());
  EXPECT_TRUE(NetworkListed());
  ASSERT_TRUE(provider().DeleteNetwork(network().pool).ok());
  EXPECT_FALSE(NetworkListed());
  EXPECT_TRUE(provider().DeleteNetwork(network().pool).ok()) << "deleting an absent network succeeds";
}

TEST_P(ProviderConformance, ProvisionListsLabelsAndIsIdempotent) {
  ASSERT_TRUE(provider().EnsureNetwork(network()).ok());
  InstanceRequest req = Request(3);
  Status s = provider().Provision(req);
  ASSERT_TRUE(s.ok()) << s;
  auto mine = Mine();
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0], (ProviderInstance{req.id, req.pool, 3, true}));

  s = provider().Provision(req);
  EXPECT_TRUE(s.ok()) << "provisioning a running instance again succeeds: " << s;
  EXPECT_EQ(Mine().size(), 1u);

  ASSERT_TRUE(provider().Destroy(req.id).ok());
  EXPECT_TRUE(Mine().empty());
  EXPECT_TRUE(provider().Destroy(req.id).ok()) << "destroying an absent instance succeeds";
  EXPECT_TRUE(provider().DeleteNetwork(network().pool).ok());
}

TEST_P(ProviderConformance, InstancesAreIndependent) {
  ASSERT_TRUE(provider().EnsureNetwork(network()).ok());
  InstanceRequest a = Request(0), b = Request(1);
  ASSERT_TRUE(provider().Provision(a).ok());
  ASSERT_TRUE(provider().Provision(b).ok());
  ASSERT_EQ(Mine().size(), 2u);
  ASSERT_TRUE(provider().Destroy(a.id).ok());
  auto mine = Mine();
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0].id, b.id);
  EXPECT_TRUE(mine[0].running);
  ASSERT_TRUE(provider().Destroy(b.id).ok());
  EXPECT_TRUE(provider().DeleteNetwork(network().pool).ok());
}

TEST_P(ProviderConformance, FreezeAndThawAreIdempotentAndListed) {
  ASSERT_TRUE(provider().EnsureNetwork(network()).ok());
  InstanceRequest req = Request(2);
  ASSERT_TRUE(provider().Provision(req).ok());
  Status s = provider().Freeze(req.id);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Mine(), (std::vector<ProviderInstance>{{req.id, req.pool, 2, /*running=*/true, /*frozen=*/true}}));
  s = provider().Freeze(req.id);
  EXPECT_TRUE(s.ok()) << "freezing a frozen instance succeeds: " << s;

  s = provider().Thaw(req.id);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Mine(), (std::vector<ProviderInstance>{{req.id, req.pool, 2, true, false}}));
  s = provider().Thaw(req.id);
  EXPECT_TRUE(s.ok()) << "thawing a running instance succeeds: " << s;

  // A frozen instance is destroyed like any other.
  ASSERT_TRUE(provider().Freeze(req.id).ok());
  s = provider().Destroy(req.id);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(Mine().empty());
  EXPECT_EQ(provider().Freeze(req.id).code(), StatusCode::kNotFound);
  EXPECT_EQ(provider().Thaw(req.id).code(), StatusCode::kNotFound);
  EXPECT_TRUE(provider().DeleteNetwork(network().pool).ok());
}

TEST_P(ProviderConformance, DestroyOfUnknownIdSucceeds) {
  EXPECT_TRUE(provider().Destroy(InstanceId(network().pool.value() + "-9-none")).ok());
}

}  // namespace dspool
