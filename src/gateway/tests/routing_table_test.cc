#include "gateway/routing_table.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

Pool PoolWithLb(const std::string& name, const std::string& address, int64_t ssh_port, int64_t nat_start,
                int64_t nat_end) {
  Pool p;
  p.spec.name = PoolName(name);
  p.spec.instance_count = 2;
  LoadBalancerSpec lb;
  lb.frontend_address = address;
  lb.probes = {{"sshprobe", ProbeProtocol::kTcp, 22, "", 5, 2}};
  lb.rules = {{"SSH", ssh_port, 22, "sshprobe", Distribution::kSourceIP, 30}};
  lb.nat_pools = {{"sshnat", nat_start, nat_end, 22}};
  p.spec.load_balancer = lb;
  return p;
}

Instance Inst(const std::string& pool, int64_t index, InstancePhase phase) {
  Instance i;
  i.id = InstanceId(pool + "-" + std::to_string(index));
  i.pool = PoolName(pool);
  i.index = index;
  i.phase = phase;
  i.address = "10.231.0." + std::to_string(2 + index);
  return i;
}

TEST(RoutingTableTest, RulesAndNatSlots) {
  std::vector<Pool> pools = {PoolWithLb("team", "0.0.0.0", 22, 50000, 50002)};
  std::vector<Instance> instances = {Inst("team", 1, InstancePhase::kReady), Inst("team", 0, InstancePhase::kBooting),
                                     Inst("team", 2, InstancePhase::kDeleting)};
  RoutingTable t = BuildRoutingTable(pools, instances);
  ASSERT_EQ(t.listeners.size(), 4u);
  EXPECT_EQ(t.listeners[0].port, 22);
  ASSERT_TRUE(t.listeners[0].rule.has_value());
  EXPECT_EQ(t.listeners[0].rule->distribution, Distribution::kSourceIP);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(t.listeners[1 + k].port, 50000 + k);
    EXPECT_EQ(t.listeners[1 + k].nat_index, k);
    EXPECT_EQ(t.listeners[1 + k].backend_port, 22);
  }
  const auto& backends = t.backends[PoolName("team")];
  ASSERT_EQ(backends.size(), 2u);  // the deleting one is gone
  EXPECT_EQ(backends[0].index, 0);
  EXPECT_FALSE(backends[0].ready);
  EXPECT_TRUE(backends[1].ready);
  EXPECT_FALSE(backends[1].draining);
  EXPECT_EQ(backends[1].address, 0x0AE70003u);
  EXPECT_EQ(t.probes[PoolName("team")].size(), 1u);
}

// SSH clients speak first: the gateway waits for them before it connects.
// Other ports' servers may speak first (a greeting, a banner).
TEST(RoutingTableTest, ListenersToPort22WaitForTheClient) {
  Pool pool = PoolWithLb("team", "0.0.0.0", 22, 50000, 50000);
  pool.spec.load_balancer->rules.push_back({"web", 8080, 8888, "sshprobe", Distribution::kDefault, 30});
  pool.spec.load_balancer->nat_pools.push_back({"other", 51000, 51000, 2222});
  RoutingTable t = BuildRoutingTable({pool}, {});
  std::map<uint16_t, bool> waits;
  for (const Listener& l : t.listeners) waits[l.port] = l.client_speaks_first;
  EXPECT_EQ(waits, (std::map<uint16_t, bool>{{22, true}, {8080, false}, {50000, true}, {51000, false}}));
}

TEST(RoutingTableTest, DrainingComesFromTheRecord) {
  std::vector<Instance> instances = {Inst("team", 0, InstancePhase::kReady), Inst("team", 1, InstancePhase::kReady),
                                     Inst("team", 2, InstancePhase::kBooting)};
  instances[1].draining = true;
  instances[2].draining = true;
  RoutingTable t = BuildRoutingTable({PoolWithLb("team", "0.0.0.0", 22, 50000, 50002)}, instances);
  const auto& backends = t.backends[PoolName("team")];
  ASSERT_EQ(backends.size(), 3u);
  EXPECT_FALSE(backends[0].draining);
  EXPECT_TRUE(backends[0].ready);
  // Draining keeps the backend (its open connections and NAT slot stay), marked.
  EXPECT_TRUE(backends[1].draining);
  EXPECT_TRUE(backends[1].ready);
  EXPECT_TRUE(backends[2].draining);
  EXPECT_FALSE(backends[2].ready);
}

TEST(RoutingTableTest, AStandbyIsNoBackend) {
  std::vector<Instance> instances = {Inst("team", 0, InstancePhase::kReady), Inst("team", 1, InstancePhase::kReady)};
  instances[1].standby = true;  // frozen: no probe, no rule, no NAT slot
  RoutingTable t = BuildRoutingTable({PoolWithLb("team", "0.0.0.0", 22, 50000, 50002)}, instances);
  const auto& backends = t.backends[PoolName("team")];
  ASSERT_EQ(backends.size(), 1u);
  EXPECT_EQ(backends[0].index, 0);
}

TEST(RoutingTableTest, DeletingPoolsAndPoolsWithoutLbHaveNoListeners) {
  Pool deleting = PoolWithLb("a", "0.0.0.0", 22, 50000, 50001);
  deleting.state = PoolState::kDeleting;
  Pool plain;
  plain.spec.name = PoolName("b");
  RoutingTable t = BuildRoutingTable({deleting, plain}, {});
  EXPECT_TRUE(t.listeners.empty());
}

TEST(RoutingTableTest, FrontendPortCollisionsBetweenPools) {
  std::vector<Pool> existing = {PoolWithLb("a", "0.0.0.0", 22, 50000, 50099)};
  EXPECT_TRUE(CheckFrontendPorts(PoolWithLb("b", "0.0.0.0", 2222, 51000, 51099).spec, existing).ok());
  Status s = CheckFrontendPorts(PoolWithLb("b", "127.0.0.2", 22, 51000, 51099).spec, existing);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "loadBalancer: rule SSH of pool 'b' (ports 22-22) collides with rule SSH of pool 'a'");
  s = CheckFrontendPorts(PoolWithLb("b", "0.0.0.0", 2222, 50050, 50150).spec, existing);
  EXPECT_EQ(s.message(),
            "loadBalancer: NAT pool sshnat of pool 'b' (ports 50050-50150) collides with NAT pool sshnat of pool 'a'");
  // Different specific addresses may share a port.
  std::vector<Pool> specific = {PoolWithLb("a", "127.0.0.2", 22, 50000, 50099)};
  EXPECT_TRUE(CheckFrontendPorts(PoolWithLb("b", "127.0.0.3", 22, 50000, 50099).spec, specific).ok());
  // A pool never collides with itself (updates).
  EXPECT_TRUE(CheckFrontendPorts(existing[0].spec, existing).ok());
}

}  // namespace
}  // namespace dspool
