// ProviderConformance: the tests every ComputeProvider passes
// (provider/compute_provider.h), so the fake cannot promise what lxc does not
// do: idempotent calls, labels that List gives back, networks that come and
// go, instances independent of each other.
//
// A value-parameterized GoogleTest suite over a factory that builds a
// ProviderFixture. Instantiate it in the implementation's test:
//
//   INSTANTIATE_TEST_SUITE_P(Fake, ProviderConformance,
//                            ::testing::Values(ProviderFactory(MakeFakeFixture)));
//
// Link dspool_provider_testing whole (the tests register themselves from a
// static library), as for the store conformance suite.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "provider/compute_provider.h"

namespace dspool {

struct ProviderFixture {
  std::unique_ptr<ComputeProvider> provider;
  // A network the tests create and delete; no other user of the host has it.
  PoolNetwork network;
  // A request for instance `index` on `network`, whose init keeps running.
  std::function<InstanceRequest(int64_t index)> request;
  // Removes whatever a failed test left (best effort), then the fixture's
  // own files.
  std::function<void()> cleanup;
};

// FailedPrecondition means "cannot run here" (not root, no overlayfs): the
// tests skip with its message, or fail where every test must run
// (base/testing/cannot_run.h). A factory returns it only for what the host
// lacks, never for a provider that fails on a host able to run it: any
// other error fails the tests.
using ProviderFactory = std::function<Result<ProviderFixture>()>;

class ProviderConformance : public ::testing::TestWithParam<ProviderFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  ComputeProvider& provider() { return *fixture_.provider; }
  const PoolNetwork& network() const { return fixture_.network; }
  InstanceRequest Request(int64_t index) { return fixture_.request(index); }
  // The provider's instances of this fixture's pool.
  std::vector<ProviderInstance> Mine();
  bool NetworkListed();

 private:
  ProviderFixture fixture_;
  bool ready_ = false;
};

}  // namespace dspool
