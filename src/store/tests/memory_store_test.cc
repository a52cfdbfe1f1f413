#include "store/memory/memory_store.h"

#include <memory>

#include "store/testing/conformance.h"

namespace dspool {
namespace {

INSTANTIATE_TEST_SUITE_P(Memory, StateStoreConformance,
                         ::testing::Values(StateStoreFactory([] { return std::make_unique<MemoryStore>(); })));

}  // namespace
}  // namespace dspool
