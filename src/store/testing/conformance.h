// StateStoreConformance: the tests every StateStore implementation passes
// (store/state_store.h), so MemoryStore and SqliteStore cannot drift apart.
//
// A value-parameterized GoogleTest suite. The parameter is a factory that
// returns a fresh, empty store; every test calls it once, in SetUp, and
// destroys the store before the next test. An implementation's test
// instantiates the suite:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, StateStoreConformance, ::testing::Values(StateStoreFactory(
//       [] { return std::make_unique<MemoryStore>(); })));
//
// The tests are defined in conformance.cc and register themselves during
// static initialisation, which the linker skips for an unreferenced object of
// a static library: link dspool_store_testing whole
// ("$<LINK_LIBRARY:WHOLE_ARCHIVE,dspool_store_testing>"), or the suite
// silently runs nothing.
//
// Test data keeps times to whole milliseconds: that is the precision stores
// keep (SqliteStore stores Unix milliseconds).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "store/state_store.h"

namespace dspool {

// Returns a new, empty store, or nullptr after reporting a test failure.
using StateStoreFactory = std::function<std::unique_ptr<StateStore>()>;

class StateStoreConformance : public ::testing::TestWithParam<StateStoreFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  StateStore& store() { return *store_; }

 private:
  std::unique_ptr<StateStore> store_;
};

}  // namespace dspool
