// The gateway's control channel end to end, in one process: a
// GatewayService (with a real Gateway on loopback) on a Unix socket in a
// temporary directory, driven by a GatewayClient.
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "gateway/client.h"
#include "gateway/service.h"
#include "net/socket.h"
#include "net/unix_socket.h"

namespace dspool {
namespace {

constexpr const char* kKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAsDfSdchIXBDskRtcDOzDKEHH+e6vlnFY2yuSF2eBwd test@dspool";
constexpr auto kBound = std::chrono::seconds(20);

// A pool with one rule on 127.0.0.1:`port` and no instance.
Pool PoolOnPort(uint16_t port) {
  const std::string spec = R"({"name": "team", "instanceCount": 0, "network": {"subnet": "10.231.0.0/24"},
    "share": {"type": "bind", "source": "/srv/s"}, "adminUser": {"name": "dsvmuser", "sshPublicKey": ")" +
                           std::string(kKey) + R"("},
    "loadBalancer": {"frontendAddress": "127.0.0.1",
      "rules": [{"name": "web", "frontendPort": )" +
                           std::to_string(port) + R"(, "backendPort": 8080, "probe": "p"}],
      "probes": [{"name": "p", "protocol": "Tcp", "port": 8080}]}})";
  Pool p;
  p.spec = ParsePoolSpec(Json::parse(spec)).value();
  return p;
}

uint16_t FreePort() {
  uint16_t port = 0;
  auto fd = ListenTcp("127.0.0.1", 0, 1, &port);
  EXPECT_TRUE(fd.ok());
  return port;
}

class Events final : public GatewayEvents {
 public:
  void WakePool(const PoolName& pool) override {
    std::lock_guard lock(mu_);
    woken.push_back(pool.value());
    cv_.notify_all();
  }
  void StartNotebook(const PoolName&, const std::string&, const std::string&) override {}
  bool AwaitWake() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kBound, [&] { return !woken.empty(); });
  }
  std::vector<std::string> woken;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dspool-control-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    socket_ = dir_ + "/gateway.sock";
  }
  void TearDown() override {
    client_.reset();
    service_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartService() {
    GatewayOptions options;
    options.session_key = std::string(32, 'k');
    GatewayServiceOptions service_options;
    service_options.data_dir = dir_;
    service_options.info = GatewayInfo{::getpid(), "test", "/bin/true", std::chrono::system_clock::now(),
                                       kGatewayProtocol, 0};
    auto service = GatewayService::Create(options, service_options);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = std::move(*service);
    auto listener = ListenUnixStream(socket_, 0600);
    ASSERT_TRUE(listener.ok()) << listener.status();
    ASSERT_TRUE(service_->Start(std::move(*listener)).ok());
  }
  void StartClient() {
    GatewayClientOptions options;
    options.socket_path = socket_;
    options.retry_interval = std::chrono::milliseconds(20);
    client_ = std::make_unique<GatewayClient>(options, events_);
    ASSERT_TRUE(client_->Start().ok());
  }
  // Whether something accepts on 127.0.0.1:`port` within kBound.
  static bool Listens(uint16_t port) {
    const auto until = std::chrono::steady_clock::now() + kBound;
    while (std::chrono::steady_clock::now() < until) {
      if (ConnectTcp(0x7f000001, port, std::chrono::milliseconds(500)).ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::string dir_, socket_;
  Events events_;
  std::unique_ptr<GatewayService> service_;
  std::unique_ptr<GatewayClient> client_;
};

TEST_F(ControlTest, WithoutAGatewayAndNoWayToStartOneTheClientSaysSo) {
  GatewayClientOptions options;
  options.socket_path = socket_;
  GatewayClient client(options, events_);
  Status s = client.Start();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find(socket_), std::string::npos) << s;
}

TEST_F(ControlTest, CallsAnswersAndAWakeAcrossTheChannel) {
  StartService();
  StartClient();
  auto info = client_->Info();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->pid, ::getpid());
  EXPECT_EQ(info->protocol, kGatewayProtocol);

  const uint16_t port = FreePort();
  ASSERT_TRUE(client_->Apply({PoolOnPort(port)}, {}, {{"alice", "$y$hash"}}).ok());
  // A connection finds no instance: held, and the server is asked to wake
  // the pool.
  auto held = ConnectTcp(0x7f000001, port, std::chrono::seconds(5));
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_TRUE(events_.AwaitWake());
  EXPECT_EQ(events_.woken.front(), "team");

  EXPECT_FALSE(client_->Health(InstanceId("team-0-x")).has_value()) << "no such backend";
  auto connections = client_->Connections();
  ASSERT_TRUE(connections.ok());
  EXPECT_TRUE(connections->empty()) << "held, not relayed";
  auto metrics = client_->Metrics();
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->find("dspool_gateway_held_total 1"), std::string::npos) << *metrics;

  // A listener the host cannot give is the apply's error, by address.
  auto taken = ListenTcp("127.0.0.1", 0, 1, nullptr);
  uint16_t taken_port = LocalEndpoint(*taken)->port;
  Status s = client_->Apply({PoolOnPort(taken_port)}, {}, {});
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("127.0.0.1:" + std::to_string(taken_port)), std::string::npos) << s;
}

TEST_F(ControlTest, ANewGatewayGetsTheLastRecordsWhenTheClientLinksAgain) {
  StartService();
  StartClient();
  const uint16_t port = FreePort();
  ASSERT_TRUE(client_->Apply({PoolOnPort(port)}, {}, {}).ok());
  ASSERT_TRUE(Listens(port));
  service_->Stop();
  service_.reset();
  // Between gateways: calls fail at once, records are kept.
  const uint16_t second = FreePort();
  EXPECT_TRUE(client_->Apply({PoolOnPort(port), PoolOnPort(second)}, {}, {}).ok());
  StartService();
  EXPECT_TRUE(Listens(port)) << "the new gateway was given the records";
}

TEST_F(ControlTest, ABadMessageEndsTheLinkNotTheGateway) {
  StartService();
  auto raw = ConnectUnixStream(socket_);
  ASSERT_TRUE(raw.ok());
  auto hello = ReadFrame(raw->get(), kMaxControlFrame);
  ASSERT_TRUE(hello.ok());
  EXPECT_EQ(Json::parse(*hello)["event"], "hello");
  ASSERT_TRUE(WriteFrame(raw->get(), R"({"id": 1, "call": "nonsense"})").ok());
  auto answer = ReadFrame(raw->get(), kMaxControlFrame);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(Json::parse(*answer)["error"]["message"], "gateway control: unknown call 'nonsense'");
  ASSERT_TRUE(WriteFrame(raw->get(), "not json").ok());
  auto closed = ReadFrame(raw->get(), kMaxControlFrame);
  EXPECT_EQ(closed.status().message(), "closed") << "a message that is no call drops the controller";
  StartClient();
  EXPECT_TRUE(client_->Info().ok()) << "the gateway serves the next one";
}

}  // namespace
}  // namespace dspool
