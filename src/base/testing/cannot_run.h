// A test that cannot run on this host (not root, no mount namespace, no
// LXC, no overlayfs, a program missing) says so, and why:
//
//   if (geteuid() != 0) DSP_CANNOT_RUN_HERE("mount tests need root");
//
// Where every test must run, that is a failure: when DSPOOL_REQUIRE_ALL=1 is
// in the environment, as .ci/run sets it for CI (README.md, "Tests").
// Elsewhere it is a skip (GTEST_SKIP), which CTest reports as skipped, never
// as passed (gtest_discover_tests marks a test whose output holds
// "[  SKIPPED ]" skipped; cmake/dspool.cmake). Like GTEST_SKIP and
// GTEST_FAIL it returns from the function it is in; the argument may stream
// (`"no veth: " << status`).
//
// Only for what the host lacks: anything else that goes wrong while setting
// up a test is a failure everywhere.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string_view>

namespace dspool {

// True when DSPOOL_REQUIRE_ALL=1: a test that cannot run here fails.
inline bool RequireAllTests() {
  const char* v = ::getenv("DSPOOL_REQUIRE_ALL");
  return v != nullptr && std::string_view(v) == "1";
}

}  // namespace dspool

#define DSP_CANNOT_RUN_HERE(why)                                                              \
  do {                                                                                        \
    if (::dspool::RequireAllTests()) {                                                        \
      GTEST_FAIL() << why << " (DSPOOL_REQUIRE_ALL=1: a test that cannot run here fails)"; \
    } else {                                                                                  \
      GTEST_SKIP() << why;                                                                    \
    }                                                                                         \
  } while (0)
