#include "gateway/balancer.h"

#include <gtest/gtest.h>

#include <map>

namespace dspool {
namespace {

std::vector<Backend> Backends(int n) {
  std::vector<Backend> out;
  for (int i = 0; i < n; ++i) out.push_back({InstanceId("p-" + std::to_string(i) + "-x"), i, true, false, 0});
  return out;
}

FlowKey Client(uint32_t i, uint16_t port = 40000) {
  return FlowKey{0x0A000000u + i, port, 0x7F000001u, 22, Protocol::kTcp};
}

TEST(BalancerTest, NoEligibleBackend) {
  EXPECT_FALSE(PickBackend(Distribution::kSourceIP, Client(1), {}).has_value());
  auto b = Backends(2);
  b[0].in_rotation = false;
  b[1].draining = true;
  for (auto mode : {Distribution::kDefault, Distribution::kSourceIP, Distribution::kLeastConnections}) {
    EXPECT_FALSE(PickBackend(mode, Client(1), b).has_value());
  }
}

TEST(BalancerTest, SkipsDrainingAndOutOfRotation) {
  auto b = Backends(3);
  b[0].draining = true;
  b[2].in_rotation = false;
  for (uint32_t c = 0; c < 100; ++c) EXPECT_EQ(*PickBackend(Distribution::kSourceIP, Client(c), b), b[1].id);
}

TEST(BalancerTest, SourceIpIsStickyAcrossConnections) {
  auto b = Backends(4);
  for (uint32_t c = 0; c < 200; ++c) {
    auto first = PickBackend(Distribution::kSourceIP, Client(c, 1000), b);
    EXPECT_EQ(PickBackend(Distribution::kSourceIP, Client(c, 2000), b), first);
    EXPECT_EQ(PickBackend(Distribution::kSourceIPProtocol, Client(c, 1000), b),
              PickBackend(Distribution::kSourceIPProtocol, Client(c, 3000), b));
  }
}

TEST(BalancerTest, DefaultSpreadsOneClientsConnections) {
  auto b = Backends(4);
  std::map<InstanceId, int> seen;
  for (uint16_t port = 1000; port < 1400; ++port) ++seen[*PickBackend(Distribution::kDefault, Client(7, port), b)];
  EXPECT_EQ(seen.size(), 4u);
}

TEST(BalancerTest, HashSpreadsClientsEvenly) {
  auto b = Backends(5);
  std::map<InstanceId, int> count;
  for (uint32_t c = 0; c < 5000; ++c) ++count[*PickBackend(Distribution::kSourceIP, Client(c), b)];
  ASSERT_EQ(count.size(), 5u);
  for (const auto& [id, n] : count) {
    EXPECT_GT(n, 800) << id;
    EXPECT_LT(n, 1200) << id;
  }
}

TEST(BalancerTest, RemovingABackendMovesOnlyItsClients) {
  auto b = Backends(5);
  std::vector<InstanceId> before;
  for (uint32_t c = 0; c < 2000; ++c) before.push_back(*PickBackend(Distribution::kSourceIP, Client(c), b));
  InstanceId removed = b[2].id;
  b[2].in_rotation = false;
  int moved = 0;
  for (uint32_t c = 0; c < 2000; ++c) {
    InstanceId now = *PickBackend(Distribution::kSourceIP, Client(c), b);
    if (before[c] != removed) {
      EXPECT_EQ(now, before[c]) << "client " << c << " was not on the removed instance but moved";
    } else {
      EXPECT_NE(now, removed);
      ++moved;
    }
  }
  EXPECT_GT(moved, 0);
}

TEST(BalancerTest, AddingABackendMovesOnlyClientsItWins) {
  auto b = Backends(4);
  std::vector<InstanceId> before;
  for (uint32_t c = 0; c < 2000; ++c) before.push_back(*PickBackend(Distribution::kSourceIP, Client(c), b));
  b.push_back({InstanceId("p-4-x"), 4, true, false, 0});
  int moved = 0;
  for (uint32_t c = 0; c < 2000; ++c) {
    InstanceId now = *PickBackend(Distribution::kSourceIP, Client(c), b);
    if (now != before[c]) {
      EXPECT_EQ(now, b[4].id);
      ++moved;
    }
  }
  EXPECT_GT(moved, 250);  // about a fifth of 2000
  EXPECT_LT(moved, 550);
}

TEST(BalancerTest, LeastConnections) {
  auto b = Backends(3);
  b[0].active_connections = 5;
  b[1].active_connections = 2;
  b[2].active_connections = 2;
  EXPECT_EQ(*PickBackend(Distribution::kLeastConnections, Client(1), b), b[1].id);  // tie: lowest index
  b[1].draining = true;
  EXPECT_EQ(*PickBackend(Distribution::kLeastConnections, Client(1), b), b[2].id);
}

TEST(BalancerTest, ModeNames) {
  for (auto mode : {Distribution::kDefault, Distribution::kSourceIP, Distribution::kSourceIPProtocol,
                    Distribution::kLeastConnections}) {
    EXPECT_EQ(*ParseDistribution(DistributionName(mode)), mode);
  }
  EXPECT_EQ(ParseDistribution("sourceip").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dspool
