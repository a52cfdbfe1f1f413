#include "provider/fake/fake_provider.h"

#include "provider/testing/conformance.h"

namespace dspool {
namespace {

Result<ProviderFixture> MakeFakeFixture() {
  ProviderFixture f;
  f.provider = std::make_unique<FakeProvider>();
  f.network = PoolNetwork{PoolName("conf"), "dsp-conf", 0x0AE90001, 24};
  f.request = [net = f.network](int64_t index) {
    InstanceRequest r;
    r.id = InstanceId("conf-" + std::to_string(index) + "-x");
    r.pool = net.pool;
    r.index = index;
    r.network = net;
    return r;
  };
  return f;
}

INSTANTIATE_TEST_SUITE_P(Fake, ProviderConformance, ::testing::Values(ProviderFactory(MakeFakeFixture)),
                         [](const auto&) { return std::string("fake"); });

TEST(FakeProviderTest, ScriptedFailureLeavesHalfMadeInstance) {
  FakeProvider p;
  PoolNetwork net{PoolName("a"), "dsp-a", 1, 24};
  ASSERT_TRUE(p.EnsureNetwork(net).ok());
  p.SetHalfMadeOnFailure(true);
  p.FailNextProvision(1, Unavailable("boom"));
  InstanceRequest r;
  r.id = InstanceId("a-0-x");
  r.pool = net.pool;
  EXPECT_EQ(p.Provision(r).code(), StatusCode::kUnavailable);
  ASSERT_EQ(p.List()->size(), 1u);
  EXPECT_FALSE(p.List()->at(0).running);
  EXPECT_TRUE(p.Provision(r).ok());
  EXPECT_TRUE(p.List()->at(0).running);
  EXPECT_EQ(p.DeleteNetwork(net.pool).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dspool
