#include "os/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/testing/cannot_run.h"
#include "os/fs.h"
#include "os/process.h"
#include "os/unique_fd.h"

namespace dspool {
namespace {

// Runs `body` on a thread that first moves into a new, empty network
// namespace, so nothing the test does can touch the host's links. The
// namespace (and every link in it) disappears when the thread ends. Returns
// the errno of unshare, 0 on success (the body ran only then).
int RunInNewNetworkNamespace(const std::function<void()>& body) {
  int unshare_errno = 0;
  std::thread t([&]() {
    if (::unshare(CLONE_NEWNET) != 0) {
      unshare_errno = errno;
      return;
    }
    body();
  });
  t.join();
  return unshare_errno;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

#define DSP_SKIP_WITHOUT_NET_ADMIN(rc)                                                                      \
  if ((rc) == EPERM) DSP_CANNOT_RUN_HERE("needs root with CAP_NET_ADMIN to create a network namespace (EPERM)"); \
  ASSERT_EQ((rc), 0) << "unshare(CLONE_NEWNET) failed: " << ::strerror(rc)

class NetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) DSP_CANNOT_RUN_HERE("needs root (CAP_NET_ADMIN) and a private network namespace");
  }
};

TEST_F(NetTest, BridgeAddressRouteLifecycle) {
  const std::string br = "dsptest-br0";
  int rc = RunInNewNetworkNamespace([&]() {
    // Safety first: this must be a fresh namespace, not the host's.
    auto links = ListLinks();
    ASSERT_TRUE(links.ok()) << links.status();
    ASSERT_EQ(*links, std::vector<std::string>{"lo"}) << "not in an empty network namespace; stopping";

    EXPECT_FALSE(*LinkExists(br));
    ASSERT_TRUE(CreateBridge(br).ok());
    EXPECT_EQ(CreateBridge(br).code(), StatusCode::kAlreadyExists);
    EXPECT_TRUE(*LinkExists(br));
    EXPECT_TRUE(Contains(*ListLinks(), br));

    uint32_t addr = *ParseIpv4("10.250.9.1");
    ASSERT_TRUE(AddIpv4Address(br, addr, 24).ok());
    Status again = AddIpv4Address(br, addr, 24);
    EXPECT_TRUE(again.ok()) << "adding the same address twice must be idempotent: " << again;
    ASSERT_TRUE(SetLinkUp(br).ok());
    EXPECT_TRUE(SetLinkUp(br).ok());

    auto routes = ListIpv4Routes();
    ASSERT_TRUE(routes.ok()) << routes.status();
    RouteEntry expected{*ParseIpv4Subnet("10.250.9.0/24"), br};
    EXPECT_TRUE(std::find(routes->begin(), routes->end(), expected) != routes->end())
        << "no 10.250.9.0/24 route on " << br << " among " << routes->size() << " routes";

    auto ports = ListBridgePorts(br);
    ASSERT_TRUE(ports.ok()) << ports.status();
    EXPECT_TRUE(ports->empty());

    ASSERT_TRUE(DeleteLink(br).ok());
    EXPECT_FALSE(*LinkExists(br));
    EXPECT_EQ(DeleteLink(br).code(), StatusCode::kNotFound);
    routes = ListIpv4Routes();
    ASSERT_TRUE(routes.ok()) << routes.status();
    for (const RouteEntry& r : *routes) EXPECT_NE(r.interface, br);
  });
  DSP_SKIP_WITHOUT_NET_ADMIN(rc);
}

TEST_F(NetTest, BridgePortsAreAttachedAndListed) {
  Status veth;
  int rc = RunInNewNetworkNamespace([&]() {
    ASSERT_EQ(*ListLinks(), std::vector<std::string>{"lo"}) << "not in an empty network namespace; stopping";
    ASSERT_TRUE(CreateBridge("dsptest-br1").ok());
    // Test scaffolding only: dspool itself never runs `ip`. The child inherits
    // this thread's network namespace.
    veth = RunChecked({"ip", "link", "add", "dsptest-v0", "type", "veth", "peer", "name", "dsptest-v1"});
    if (!veth.ok()) return;
    ASSERT_TRUE(SetLinkMaster("dsptest-v0", "dsptest-br1").ok());
    EXPECT_TRUE(SetLinkMaster("dsptest-v0", "dsptest-br1").ok()) << "attaching twice is idempotent";
    EXPECT_EQ(SetLinkMaster("dsptest-none", "dsptest-br1").code(), StatusCode::kNotFound);
    auto ports = ListBridgePorts("dsptest-br1");
    ASSERT_TRUE(ports.ok()) << ports.status();
    EXPECT_EQ(*ports, std::vector<std::string>{"dsptest-v0"});
    EXPECT_EQ(ListBridgePorts("dsptest-none").status().code(), StatusCode::kNotFound);
    ASSERT_TRUE(DeleteLink("dsptest-br1").ok());
    EXPECT_TRUE(*LinkExists("dsptest-v0")) << "deleting a bridge releases its ports";
  });
  DSP_SKIP_WITHOUT_NET_ADMIN(rc);
  if (!veth.ok()) DSP_CANNOT_RUN_HERE("cannot create a veth pair with `ip` for the test: " << veth);
}

TEST_F(NetTest, MarkedLocalDeliveryIsOneRuleAndOneRouteHoweverOftenEnsured) {
  Result<ProcessResult> rules = InvalidArgument("not run"), routes = InvalidArgument("not run");
  int rc = RunInNewNetworkNamespace([&]() {
    ASSERT_EQ(*ListLinks(), std::vector<std::string>{"lo"}) << "not in an empty network namespace; stopping";
    ASSERT_TRUE(SetLinkUp("lo").ok());
    for (int i = 0; i < 3; ++i) {
      Status s = EnsureMarkedLocalDelivery(0x6473, 25715, 25715);
      ASSERT_TRUE(s.ok()) << s;
    }
    EXPECT_EQ(EnsureMarkedLocalDelivery(0, 25715, 25715).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(EnsureMarkedLocalDelivery(1, 254, 25715).code(), StatusCode::kInvalidArgument);  // main
    EXPECT_EQ(EnsureMarkedLocalDelivery(1, 255, 25715).code(), StatusCode::kInvalidArgument);  // local
    EXPECT_EQ(EnsureMarkedLocalDelivery(1, 25715, 0).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(EnsureMarkedLocalDelivery(1, 25715, 32766).code(), StatusCode::kInvalidArgument);
    // Test scaffolding only: dspool itself never runs `ip`.
    rules = RunProcess({"ip", "-4", "rule", "list"});
    routes = RunProcess({"ip", "-4", "route", "show", "table", "25715"});
  });
  DSP_SKIP_WITHOUT_NET_ADMIN(rc);
  if (!rules.ok()) DSP_CANNOT_RUN_HERE("cannot run `ip rule list` for the test: " << rules.status());
  ASSERT_TRUE(routes.ok()) << routes.status();
  const std::string& listed = rules->stdout_text;
  EXPECT_NE(listed.find("25715:\tfrom all fwmark 0x6473 lookup 25715"), std::string::npos) << listed;
  EXPECT_EQ(listed.find("fwmark 0x6473"), listed.rfind("fwmark 0x6473")) << "one rule, not one per call: " << listed;
  EXPECT_EQ(routes->stdout_text.rfind("local default dev lo proto static scope host", 0), 0u) << routes->stdout_text;
}

TEST_F(NetTest, ErrorsOnMissingLinksAndBadInput) {
  int rc = RunInNewNetworkNamespace([&]() {
    ASSERT_EQ(*ListLinks(), std::vector<std::string>{"lo"}) << "not in an empty network namespace; stopping";
    EXPECT_EQ(SetLinkUp("dsptest-none").code(), StatusCode::kNotFound);
    EXPECT_EQ(AddIpv4Address("dsptest-none", 0x0AFA0901, 24).code(), StatusCode::kNotFound);
    EXPECT_EQ(DeleteLink("dsptest-none").code(), StatusCode::kNotFound);
    EXPECT_EQ(AddIpv4Address("lo", 0x0AFA0901, 0).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(AddIpv4Address("lo", 0x0AFA0901, 33).code(), StatusCode::kInvalidArgument);
    for (const char* bad : {"", "a-name-that-is-too-long", "with space", "a/b", "a:b", "."}) {
      EXPECT_EQ(CreateBridge(bad).code(), StatusCode::kInvalidArgument) << "'" << bad << "'";
      EXPECT_EQ(LinkExists(bad).status().code(), StatusCode::kInvalidArgument) << "'" << bad << "'";
    }
    EXPECT_EQ(CreateBridge("lo").code(), StatusCode::kAlreadyExists);
    // lo has no route in the main table until it is up.
    ASSERT_TRUE(SetLinkUp("lo").ok());
    auto routes = ListIpv4Routes();
    ASSERT_TRUE(routes.ok()) << routes.status();
    for (const RouteEntry& r : *routes) EXPECT_NE(r.destination.network >> 24, 127u) << "local table leaked in";
  });
  DSP_SKIP_WITHOUT_NET_ADMIN(rc);
}

}  // namespace
}  // namespace dspool

namespace dspool {
namespace {

TEST(TcpPortFreeTest, SeesAListenerAndRefusesBadAddresses) {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  uint16_t port = ntohs(addr.sin_port);
  auto taken = TcpPortFree("127.0.0.1", port);
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_FALSE(*taken);
  listener.reset();
  auto free = TcpPortFree("127.0.0.1", port);
  ASSERT_TRUE(free.ok()) << free.status();
  EXPECT_TRUE(*free);
  EXPECT_EQ(TcpPortFree("localhost", port).status().code(), StatusCode::kInvalidArgument);
  auto foreign = TcpPortFree("192.0.2.1", port);  // TEST-NET-1: not on this host
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.status().message().find("bind 192.0.2.1:" + std::to_string(port)), std::string::npos)
      << foreign.status();
}

}  // namespace
}  // namespace dspool

namespace dspool {
namespace {

TEST(PortListTest, ParsesAndFormatsTheKernelsForm) {
  auto ports = ParsePortList("8000,50000-50002,22\n");
  ASSERT_TRUE(ports.ok()) << ports.status();
  EXPECT_EQ(*ports, (std::set<uint16_t>{22, 8000, 50000, 50001, 50002}));
  EXPECT_EQ(FormatPortList(*ports), "22,8000,50000-50002");
  EXPECT_EQ(FormatPortList({}), "");
  EXPECT_TRUE(ParsePortList("\n")->empty());
  EXPECT_EQ(FormatPortList({65534, 65535}), "65534-65535");
  for (const char* bad : {"80,", "x", "10-5", "65536", "1-", "-3", "80 ,81"}) {
    auto r = ParsePortList(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ParsePortList("10-5").status().message(),
            "'10-5' is not a port or a range of ports (\"8000\", \"50000-50099\")");
}

TEST(PortListTest, ReservedPortsRoundTripThroughAFile) {
  // The real file is the host's; its form is the same.
  char dir[] = "/tmp/dspool-ports.XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/reserved";
  ASSERT_TRUE(WriteFileAtomic(path, "\n", 0600).ok());
  EXPECT_TRUE(ReadReservedPorts(path)->empty());
  ASSERT_TRUE(WriteReservedPorts({2200, 50000, 50001}, path).ok());
  EXPECT_EQ(*ReadFile(path), "2200,50000-50001\n");
  EXPECT_EQ(*ReadReservedPorts(path), (std::set<uint16_t>{2200, 50000, 50001}));
  ASSERT_TRUE(WriteFileAtomic(path, "2200,oops\n", 0600).ok());
  EXPECT_EQ(ReadReservedPorts(path).status().message(),
            path + ": 'oops' is not a port or a range of ports (\"8000\", \"50000-50099\")");
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace dspool
