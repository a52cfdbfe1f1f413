// The provider conformance suite on real LXC containers (label:
// integration; needs root). Each test gets its own root directory, pool name
// and a subnet no host route covers.
#include "provider/lxc/lxc_provider.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>
#include <sstream>

#include "base/testing/cannot_run.h"

#include "os/fs.h"
#include "os/net.h"
#include "provider/testing/conformance.h"

namespace dspool {
namespace {

Result<Ipv4Subnet> FreeSubnet() {
  DSP_ASSIGN_OR_RETURN(auto routes, ListIpv4Routes());
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    Ipv4Subnet candidate{(10u << 24) | (233u << 16) | ((rd() % 250 + 1) << 8), 24};
    bool taken = std::any_of(routes.begin(), routes.end(), [&](const RouteEntry& r) {
      return r.destination.prefix > 0 && r.destination.Overlaps(candidate);
    });
    if (!taken) return candidate;
  }
  return Unavailable("no free /24 in 10.233.0.0/16");
}

// On a host that CheckHost accepts.
Result<ProviderFixture> MakeLxcFixtureHere() {
  char tmpl[] = "/tmp/dspool-lxc-conf-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return ErrnoStatus("mkdtemp", errno);
  std::string root = tmpl;
  chmod(tmpl, 0711);
  auto provider = LxcProvider::Create(root + "/lxc");
  auto subnet = FreeSubnet();
  if (!provider.ok() || !subnet.ok()) {
    RemoveTree(root).IgnoreError();
    return !provider.ok() ? provider.status() : subnet.status();
  }
  ProviderFixture f;
  std::string pool = "pc" + std::to_string(std::random_device()() % 100000);
  f.network = PoolNetwork{PoolName(pool), BridgeName(PoolName(pool)), subnet->network + 1, 24};
  f.request = [net = f.network, subnet = *subnet](int64_t index) {
    InstanceRequest r;
    r.id = InstanceId(net.pool.value() + "-" + std::to_string(index) + "-t");
    r.pool = net.pool;
    r.index = index;
    r.hostname = InstanceHostname(net.pool, index);
    r.size = InstanceSize{1, 256, 256};
    r.network = net;
    r.address = subnet.network + 2 + static_cast<uint32_t>(index);
    r.init_command = {"/bin/sleep", "infinity"};
    r.root_host_id = kFirstIdBase + (kMaxPools - 1) * kInstanceIdCount;  // a block the tests' servers do not use
    r.user_id_first = 20000;
    r.user_id_last = 59999;
    return r;
  };
  ComputeProvider* p = provider->get();
  f.cleanup = [p, pool, root] {
    if (auto all = p->List(); all.ok()) {
      for (const auto& i : *all) p->Destroy(i.id).IgnoreError();
    }
    p->DeleteNetwork(PoolName(pool)).IgnoreError();
    RemoveTree(root).IgnoreError();
  };
  f.provider = std::move(*provider);
  return f;
}

// FailedPrecondition only where the host lacks what LXC needs (the suite
// cannot run here); on a host that has it, any failure fails the tests.
Result<ProviderFixture> MakeLxcFixture() {
  DSP_RETURN_IF_ERROR(LxcProvider::CheckHost());
  auto f = MakeLxcFixtureHere();
  if (!f.ok()) return Internal("this host can run LXC, but the fixture failed: " + f.status().ToString());
  return f;
}

// What the kernel says of the freezer cgroup of instance `id`'s processes:
// cgroup v1's freezer.state ("FROZEN" once every task has stopped), or v2's
// cgroup.events ("frozen 1").
std::string KernelFreezerState(const InstanceId& id) {
  auto pids = ListDir("/proc");
  if (!pids.ok()) return "cannot list /proc";
  const std::string payload = "lxc.payload." + id.value();
  for (const std::string& pid : *pids) {
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cgroups = ReadFile("/proc/" + pid + "/cgroup");
    if (!cgroups.ok()) continue;
    std::istringstream lines(*cgroups);
    for (std::string line; std::getline(lines, line);) {
      size_t at = line.find(":/" + payload);
      if (at == std::string::npos) continue;
      std::string path = line.substr(at + 1);
      if (line.find(":freezer:") != std::string::npos) {
        auto state = ReadFile("/sys/fs/cgroup/freezer" + path + "/freezer.state");
        return state.ok() ? *state : state.status().ToString();
      }
      if (line.rfind("0::", 0) == 0 && access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
        auto events = ReadFile("/sys/fs/cgroup" + path + "/cgroup.events");
        return events.ok() && events->find("frozen 1") != std::string::npos ? "FROZEN\n" : "THAWED\n";
      }
    }
  }
  return "no process of " + id.value();
}

TEST(LxcProviderTest, FreezeStopsEveryProcessAndThawResumesThem) {
  auto fixture = MakeLxcFixture();
  if (!fixture.ok() && fixture.status().code() == StatusCode::kFailedPrecondition) {
    DSP_CANNOT_RUN_HERE("provider unavailable here: " << fixture.status().message());
  }
  ASSERT_TRUE(fixture.ok()) << fixture.status();
  ComputeProvider& provider = *fixture->provider;
  ASSERT_TRUE(provider.EnsureNetwork(fixture->network).ok());
  InstanceRequest req = fixture->request(0);
  ASSERT_TRUE(provider.Provision(req).ok());
  EXPECT_EQ(KernelFreezerState(req.id), "THAWED\n");
  Status s = provider.Freeze(req.id);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(KernelFreezerState(req.id), "FROZEN\n");
  s = provider.Thaw(req.id);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(KernelFreezerState(req.id), "THAWED\n");
  fixture->cleanup();
}

INSTANTIATE_TEST_SUITE_P(Lxc, ProviderConformance, ::testing::Values(ProviderFactory(MakeLxcFixture)),
                         [](const auto&) { return std::string("lxc"); });

}  // namespace
}  // namespace dspool
