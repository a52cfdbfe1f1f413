// The gateway on real loopback sockets: instances are small servers on
// 127.0.0.2, .3, ... that greet with their name and echo; time (holds,
// probe intervals, silence) is a fake clock the tests move.
#include "gateway/gateway.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "http/client.h"
#include "http/server.h"
#include "identity/password.h"
#include "model/ipv4.h"
#include "net/socket.h"

namespace dspool {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint32_t kClientAddress = 0x7f000001;  // 127.0.0.1
uint32_t InstanceAddress(int index) { return 0x7f000002 + static_cast<uint32_t>(index); }  // 127.0.0.2 + index

bool WaitFor(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

void SetTimeouts(int fd) {
  timeval tv = {30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

// Reads one line ("b0\n"); empty at EOF or on error.
std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (::recv(fd, &c, 1, 0) == 1) {
    if (c == '\n') return line;
    line += c;
  }
  return line;
}

// A stand-in for an instance's sshd: greets each connection with its name
// ("b<index>") and echoes what it gets.
class FakeInstance {
 public:
  FakeInstance(int index, uint16_t port) : name_("b" + std::to_string(index)) {
    auto listener = ListenTcp(FormatIpv4(InstanceAddress(index)), port, 64, &port_);
    EXPECT_TRUE(listener.ok()) << listener.status();
    if (listener.ok()) listener_ = std::move(*listener);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~FakeInstance() {
    StopListening();
    stop_ = true;
    for (auto& t : workers_) t.join();
  }
  // Stops listening (probes fail from now on); open connections go on.
  void StopListening() {
    if (!listening_.exchange(false)) return;
    acceptor_.join();
    listener_.reset();
  }
  uint16_t port() const { return port_; }
  // Connections it accepted (the gateway's and its probes').
  int accepted() const { return accepted_; }
  // The peers of those connections, as this instance saw them.
  std::vector<TcpEndpoint> peers() const {
    std::lock_guard lock(mu_);
    return peers_;
  }

 private:
  void AcceptLoop() {
    while (listening_) {
      auto fd = AcceptTcp(listener_, milliseconds(10));
      if (!fd.ok()) continue;
      sockaddr_in peer{};
      socklen_t len = sizeof(peer);
      if (::getpeername(fd->get(), reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
        std::lock_guard lock(mu_);
        peers_.push_back(TcpEndpoint{ntohl(peer.sin_addr.s_addr), ntohs(peer.sin_port)});
      }
      ++accepted_;
      workers_.emplace_back([this, fd = std::make_shared<UniqueFd>(std::move(*fd))] {
        SetTimeouts(fd->get());
        std::string hello = name_ + "\n";
        if (::send(fd->get(), hello.data(), hello.size(), MSG_NOSIGNAL) < 0) return;
        char buf[4096];
        while (!stop_) {
          ssize_t n = ::recv(fd->get(), buf, sizeof(buf), 0);
          if (n <= 0) break;
          if (::send(fd->get(), buf, static_cast<size_t>(n), MSG_NOSIGNAL) < 0) break;
        }
      });
    }
  }
  std::string name_;
  UniqueFd listener_;
  uint16_t port_ = 0;
  std::atomic<bool> listening_{true};
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  mutable std::mutex mu_;
  std::vector<TcpEndpoint> peers_;  // guarded by mu_
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

class RecordingHooks : public GatewayHooks {
 public:
  void WakePool(const PoolName& pool) override {
    std::lock_guard lock(mu_);
    woken_.push_back(pool.value());
  }
  std::optional<std::string> PasswordHash(const std::string& user) override {
    if (user != "alice") return std::nullopt;
    return *HashPassword("alice's password");
  }
  void StartNotebook(const PoolName& pool, const std::string& user, const std::string& token) override {
    std::lock_guard lock(mu_);
    notebook_starts_.push_back(pool.value() + "/" + user + "/" + token);
  }
  std::vector<std::string> notebook_starts() {
    std::lock_guard lock(mu_);
    return notebook_starts_;
  }
  std::vector<std::string> woken() {
    std::lock_guard lock(mu_);
    return woken_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> woken_;
  std::vector<std::string> notebook_starts_;
};

// A port free on 127.0.0.1 now (bound and let go).
uint16_t FreePort() {
  uint16_t port = 0;
  auto fd = ListenTcp("127.0.0.1", 0, 1, &port);
  EXPECT_TRUE(fd.ok());
  return port;
}

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StartGateway(Options());
    // One backend port shared by every fake instance, as sshd's 22 is.
    auto probe = ListenTcp(FormatIpv4(InstanceAddress(0)), 0, 1, &backend_port_);
    ASSERT_TRUE(probe.ok());
    frontend_port_ = FreePort();
    web_port_ = FreePort();
  }
  GatewayOptions Options() {
    GatewayOptions options;
    options.clock = &clock_;
    options.connect_timeout = milliseconds(2000);
    return options;
  }
  // Replaces the gateway (SetUp started one with Options()).
  void StartGateway(const GatewayOptions& options) {
    if (gateway_) gateway_->Stop();
    auto gateway = Gateway::Create(options, hooks_);
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = std::move(*gateway);
    ASSERT_TRUE(gateway_->Start().ok());
  }
  void TearDown() override {
    gateway_->Stop();
    instances_.clear();
  }

  FakeInstance& StartInstance(int index) {
    instances_[index] = std::make_unique<FakeInstance>(index, backend_port_);
    return *instances_[index];
  }

  // Pool "team" on 127.0.0.1:frontend_port_, rule SSH → backend_port_ with
  // a Tcp probe on the same port, and `backends` (index, ready, draining).
  struct B {
    int index;
    bool ready = true;
    bool draining = false;
  };
  RoutingTable Table(const std::vector<B>& backends, Distribution mode = Distribution::kDefault,
                     bool with_probe = true) {
    RoutingTable t;
    LbRule rule;
    rule.name = "SSH";
    rule.frontend_port = frontend_port_;
    rule.backend_port = backend_port_;
    rule.distribution = mode;
    if (with_probe) rule.probe = "ssh";
    Listener l;
    l.address = kClientAddress;
    l.port = frontend_port_;
    l.pool = PoolName("team");
    l.rule = rule;
    l.backend_port = backend_port_;
    t.listeners.push_back(l);
    for (const B& b : backends) {
      RouteBackend r;
      r.id = InstanceId("i" + std::to_string(b.index));
      r.index = b.index;
      r.address = InstanceAddress(b.index);
      r.ready = b.ready;
      r.draining = b.draining;
      t.backends[PoolName("team")].push_back(r);
    }
    t.backends[PoolName("team")];  // the pool exists even with no backend
    if (with_probe) {
      ProbeSpec p;
      p.name = "ssh";
      p.port = backend_port_;
      p.interval_seconds = 5;
      p.number_of_probes = 2;
      t.probes[PoolName("team")] = {p};
    }
    return t;
  }
  // The same rule as Table's, to an SSH backend: the client speaks first.
  // Without a probe, so that only the gateway's relayed connections reach
  // the instances.
  RoutingTable SshTable(const std::vector<B>& backends) {
    RoutingTable t = Table(backends, Distribution::kDefault, /*with_probe=*/false);
    for (Listener& l : t.listeners) l.client_speaks_first = true;
    return t;
  }

  // Connects a client to the frontend, from `source` (127.0.0.x).
  UniqueFd Dial(uint16_t port = 0, uint32_t source = kClientAddress) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(source);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port ? port : frontend_port_);
    sa.sin_addr.s_addr = htonl(kClientAddress);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << strerror(errno);
    SetTimeouts(fd.get());
    return fd;
  }

  // Which instance a new connection reaches ("b0", ...).
  std::string Reach(uint16_t port = 0, uint32_t source = kClientAddress) {
    UniqueFd fd = Dial(port, source);
    return ReadLine(fd.get());
  }

  void Advance(milliseconds d) { clock_.Advance(d); }
  // Moves the clock by one probe interval and waits for the probes it
  // causes (`expected` more of them).
  void ProbeRound(uint64_t expected) {
    uint64_t before = gateway_->counters().probes;
    Advance(seconds(5));
    ApplyAgain();  // wakes the loop, which reads the new time
    ASSERT_TRUE(WaitFor([&] { return gateway_->counters().probes >= before + expected; }));
  }
  void ApplyAgain() { ASSERT_TRUE(gateway_->Apply(last_).ok()); }
  // Returns once the loop has run its timers at the current time: Apply
  // returns when the loop has applied the table, before that turn's timers;
  // the second runs on the next turn.
  void Settle() {
    ApplyAgain();
    ApplyAgain();
  }
  // `t` with pool "team"'s Jupyter address on 127.0.0.1:web_port_.
  RoutingTable WithWeb(RoutingTable t) {
    t.web.push_back({kClientAddress, web_port_, PoolName("team"), "", ""});
    return t;
  }
  // A request to that address; an empty response (and a failure) if it
  // got none.
  Response WebCall(const std::string& method, const std::string& target, const std::string& body,
                   const std::vector<std::pair<std::string, std::string>>& headers) {
    auto r = Client::Do(Endpoint::Tcp("127.0.0.1", web_port_), method, target, body, headers, seconds(10));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : Response{};
  }
  static std::string HeaderOf(const Response& r, const std::string& name) {
    for (const auto& [n, v] : r.headers) {
      if (n == name) return v;
    }
    return "";
  }
  void Apply(RoutingTable t) {
    last_ = t;
    Status s = gateway_->Apply(std::move(t));
    ASSERT_TRUE(s.ok()) << s;
  }
  bool Healthy(int index) {
    auto h = gateway_->Health(InstanceId("i" + std::to_string(index)));
    return h && h->in_rotation;
  }

  SimulatedClock clock_;
  RecordingHooks hooks_;
  std::unique_ptr<Gateway> gateway_;
  uint16_t backend_port_ = 0;
  uint16_t web_port_ = 0;
  uint16_t frontend_port_ = 0;
  std::map<int, std::unique_ptr<FakeInstance>> instances_;
  RoutingTable last_;
};

TEST_F(GatewayTest, RelaysToAnInstanceOnceItsProbeAnswers) {
  StartInstance(0);
  Apply(Table({{0}}));
  ASSERT_TRUE(WaitFor([&] { return Healthy(0); }));
  UniqueFd client = Dial();
  EXPECT_EQ(ReadLine(client.get()), "b0");
  ASSERT_EQ(::send(client.get(), "ping\n", 5, 0), 5);
  EXPECT_EQ(ReadLine(client.get()), "ping");
  auto health = gateway_->Health(InstanceId("i0"));
  ASSERT_TRUE(health);
  EXPECT_EQ(health->state, "healthy");
  EXPECT_EQ(health->connections, 1);
  client.reset();
  ASSERT_TRUE(WaitFor([&] { return gateway_->Health(InstanceId("i0"))->connections == 0; }));
  // The loop counts the connection once it has handed it to a relay, which
  // may have relayed and closed it by then.
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().connections_relayed == 1u; }));
  GatewayCounters c = gateway_->counters();
  EXPECT_EQ(c.connections_relayed, 1u);
  EXPECT_EQ(c.bytes_client_to_backend, 5u);
  EXPECT_EQ(c.held_total, 0u);
  EXPECT_TRUE(hooks_.woken().empty());
}

TEST_F(GatewayTest, APoolAtZeroHoldsTheConnectionWakesAndRelaysWhenAnInstanceComes) {
  Apply(Table({}));
  UniqueFd client = Dial();
  // The client speaks first, as an SSH client does: it must reach the instance.
  ASSERT_EQ(::send(client.get(), "SSH-2.0-test\n", 13, 0), 13);
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_now == 1; }));
  EXPECT_EQ(hooks_.woken(), std::vector<std::string>{"team"});
  // Not Ready yet: still held.
  Apply(Table({{0, /*ready=*/false}}));
  StartInstance(0);
  Apply(Table({{0}}));
  EXPECT_EQ(ReadLine(client.get()), "b0");
  EXPECT_EQ(ReadLine(client.get()), "SSH-2.0-test");
  GatewayCounters c = gateway_->counters();
  EXPECT_EQ(c.held_total, 1u);
  EXPECT_EQ(c.held_now, 0u);
  EXPECT_EQ(c.wake_requests, 1u);
}

// A wake's capacity may be taken back (the pool scaled to zero again)
// before a waiting client is served, and nothing else may happen (no new
// table, no new client): the waiting connection asks again every second.
TEST_F(GatewayTest, AWaitingConnectionAsksForAWakeAgainEverySecondUntilServed) {
  Apply(Table({}));
  UniqueFd client = Dial();
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_now == 1; }));
  EXPECT_EQ(gateway_->counters().wake_requests, 1u);
  // Within the second, a new table (the wake's instance came and went): no
  // second wake yet.
  Advance(milliseconds(500));
  Apply(Table({}));
  EXPECT_EQ(gateway_->counters().wake_requests, 1u);
  // Then only time passes.
  Advance(milliseconds(500));
  gateway_->Wake();
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().wake_requests == 2; }));
  Advance(seconds(1));
  gateway_->Wake();
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().wake_requests == 3; }));
  EXPECT_EQ(hooks_.woken(), (std::vector<std::string>{"team", "team", "team"}));

  // Served: the asking stops.
  StartInstance(0);
  Apply(Table({{0}}));
  EXPECT_EQ(ReadLine(client.get()), "b0");
  Advance(seconds(5));
  gateway_->Wake();
  Settle();
  EXPECT_EQ(gateway_->counters().wake_requests, 3u);
}

// The once-a-second limit is for connections that go on waiting: once all
// were served, a new wait asks at once, whenever the last wake was.
TEST_F(GatewayTest, AWaitAfterAllWereServedAsksForAWakeAtOnce) {
  Apply(Table({}));
  UniqueFd first = Dial();
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_now == 1; }));
  EXPECT_EQ(gateway_->counters().wake_requests, 1u);
  StartInstance(0);
  Apply(Table({{0}}));
  EXPECT_EQ(ReadLine(first.get()), "b0");

  Advance(milliseconds(200));
  Apply(Table({}));  // scaled back to zero within the second
  UniqueFd second = Dial();
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_now == 1; }));
  EXPECT_EQ(gateway_->counters().wake_requests, 2u);
  EXPECT_EQ(hooks_.woken(), (std::vector<std::string>{"team", "team"}));
}

TEST_F(GatewayTest, AHoldTimesOutWithACleanClose) {
  Apply(Table({}));
  UniqueFd client = Dial();
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_now == 1; }));
  Advance(seconds(120) - milliseconds(1));
  Settle();
  EXPECT_EQ(gateway_->counters().held_now, 1u) << "closed before the hold timeout";
  EXPECT_EQ(gateway_->counters().hold_timeouts, 0u);
  Advance(milliseconds(1));
  ApplyAgain();
  char c;
  EXPECT_EQ(::recv(client.get(), &c, 1, 0), 0);  // FIN, not RST
  EXPECT_EQ(gateway_->counters().hold_timeouts, 1u);
  EXPECT_EQ(gateway_->counters().held_now, 0u);
}

TEST_F(GatewayTest, AClientThatLeavesWhileHeldIsDropped) {
  Apply(Table({}));
  {
    UniqueFd client = Dial();
    ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_now == 1; }));
  }
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_now == 0; }));
  EXPECT_EQ(gateway_->counters().hold_abandoned, 1u);
}

// ---- SSH ports: the client speaks first ----

constexpr std::string_view kBanner = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";

void SendAll(const UniqueFd& fd, std::string_view data) {
  ASSERT_EQ(::send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
}

TEST_F(GatewayTest, ASilentClientReachesNoInstanceAndIsClosedAfterTheFirstBytesTimeout) {
  FakeInstance& instance = StartInstance(0);
  Apply(SshTable({{0}}));
  UniqueFd client = Dial();
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().awaiting_first_bytes == 1; }));
  Advance(seconds(10) - milliseconds(1));
  Settle();
  EXPECT_EQ(gateway_->counters().awaiting_first_bytes, 1u) << "closed before the first-bytes timeout";
  EXPECT_EQ(gateway_->counters().first_bytes_timeouts, 0u);
  Advance(milliseconds(1));
  ApplyAgain();
  char c;
  EXPECT_EQ(::recv(client.get(), &c, 1, 0), 0);  // FIN, not RST
  GatewayCounters counters = gateway_->counters();
  EXPECT_EQ(counters.first_bytes_timeouts, 1u);
  EXPECT_EQ(counters.awaiting_first_bytes, 0u);
  EXPECT_EQ(counters.connections_relayed, 0u);
  EXPECT_EQ(counters.connect_failures, 0u);
  EXPECT_EQ(instance.accepted(), 0) << "a silent client cost the instance a connection";
}

TEST_F(GatewayTest, AClientThatSpeaksIsConnectedAndTheInstanceGetsExactlyItsBytes) {
  FakeInstance& instance = StartInstance(0);
  Apply(SshTable({{0}}));
  UniqueFd client = Dial();
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().awaiting_first_bytes == 1; }));
  EXPECT_EQ(instance.accepted(), 0);
  // The banner in two pieces: the first byte alone, then the rest.
  SendAll(client, kBanner.substr(0, 1));
  EXPECT_EQ(ReadLine(client.get()), "b0");
  SendAll(client, kBanner.substr(1));
  EXPECT_EQ(ReadLine(client.get()) + "\n", kBanner);  // the echo, \r and all
  SendAll(client, "ping\n");
  EXPECT_EQ(ReadLine(client.get()), "ping");
  client.reset();
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().connections_active == 0; }));
  GatewayCounters counters = gateway_->counters();
  EXPECT_EQ(counters.connections_relayed, 1u);
  EXPECT_EQ(counters.bytes_client_to_backend, kBanner.size() + 5);
  EXPECT_EQ(counters.awaiting_first_bytes, 0u);
  EXPECT_EQ(counters.first_bytes_timeouts, 0u);
  EXPECT_EQ(instance.accepted(), 1);
}

TEST_F(GatewayTest, OnlyAddressesThatMayLeaveTheHostAreUsedAsASource) {
  EXPECT_FALSE(MayConnectFromClient(0x7f000001));  // 127.0.0.1
  EXPECT_FALSE(MayConnectFromClient(0x7f0a0b0c));  // 127.10.11.12
  EXPECT_FALSE(MayConnectFromClient(0x00000000));
  EXPECT_TRUE(MayConnectFromClient(0x0afa0102));   // 10.250.1.2
  EXPECT_TRUE(MayConnectFromClient(0xc0000201));   // 192.0.2.1
}

TEST_F(GatewayTest, ALoopbackClientIsConnectedFromTheHostsAddressAndItsMappingIsListedUntilItCloses) {
  GatewayOptions options = Options();
  options.transparent_connect = true;
  StartGateway(options);
  FakeInstance& instance = StartInstance(0);
  Apply(SshTable({{0}}));
  EXPECT_TRUE(gateway_->Connections().empty());
  const uint32_t source = 0x7f000009;  // 127.0.0.9
  UniqueFd client = Dial(0, source);
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  ASSERT_EQ(::getsockname(client.get(), reinterpret_cast<sockaddr*>(&local), &len), 0);
  SendAll(client, kBanner);
  EXPECT_EQ(ReadLine(client.get()), "b0");

  std::vector<RelayedConnection> listed = gateway_->Connections();
  ASSERT_EQ(listed.size(), 1u);
  const RelayedConnection& r = listed[0];
  EXPECT_EQ(r.pool, PoolName("team"));
  EXPECT_EQ(r.instance, InstanceId("i0"));
  EXPECT_TRUE(r.ssh);
  EXPECT_EQ(r.client_address, source);
  EXPECT_EQ(r.client_port, ntohs(local.sin_port));
  EXPECT_EQ(r.frontend_port, frontend_port_);
  EXPECT_EQ(r.instance_address, InstanceAddress(0));
  EXPECT_EQ(r.instance_port, backend_port_);
  EXPECT_EQ(r.started, clock_.Now());
  // Loopback never leaves as a source: the instance sees the gateway's
  // own end, and the listing says which one (what sshd logs).
  EXPECT_FALSE(r.transparent);
  ASSERT_EQ(instance.peers().size(), 1u);
  EXPECT_EQ(r.seen_address, instance.peers()[0].ip);
  EXPECT_EQ(r.seen_port, instance.peers()[0].port);
  EXPECT_NE(r.seen_address, source);
  EXPECT_EQ(gateway_->Health(InstanceId("i0"))->connections, 1);

  client.reset();
  ASSERT_TRUE(WaitFor([&] { return gateway_->Connections().empty(); }));
  EXPECT_EQ(gateway_->Health(InstanceId("i0"))->connections, 0);
}

TEST_F(GatewayTest, AClientThatLeavesWithoutAWordReachesNoInstance) {
  FakeInstance& instance = StartInstance(0);
  Apply(SshTable({{0}}));
  {
    UniqueFd client = Dial();
    ASSERT_TRUE(WaitFor([&] { return gateway_->counters().awaiting_first_bytes == 1; }));
  }
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().awaiting_first_bytes == 0; }));
  EXPECT_EQ(gateway_->counters().connections_relayed, 0u);
  EXPECT_EQ(gateway_->counters().first_bytes_timeouts, 0u);
  EXPECT_EQ(instance.accepted(), 0);
}

// Waiting for the client's first bytes never delays a wake: the pool is
// asked for capacity at the accept; the connection is held once it speaks.
TEST_F(GatewayTest, APoolAtZeroIsWokenAtTheAcceptBeforeTheClientSpeaks) {
  Apply(SshTable({}));
  UniqueFd client = Dial();
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().wake_requests == 1; }));
  EXPECT_EQ(hooks_.woken(), std::vector<std::string>{"team"});
  EXPECT_EQ(gateway_->counters().awaiting_first_bytes, 1u);
  EXPECT_EQ(gateway_->counters().held_now, 0u) << "held before it spoke";
  SendAll(client, kBanner);
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_now == 1; }));
  EXPECT_EQ(gateway_->counters().awaiting_first_bytes, 0u);
  EXPECT_EQ(gateway_->counters().wake_requests, 1u) << "asked twice within the second";
  StartInstance(0);
  Apply(SshTable({{0}}));
  EXPECT_EQ(ReadLine(client.get()), "b0");
  EXPECT_EQ(ReadLine(client.get()) + "\n", kBanner);
}

// A silent connection asks for a wake once, at its accept; only one that
// has spoken keeps asking while it waits.
TEST_F(GatewayTest, ASilentConnectionAsksForNoWakeAfterItsAccept) {
  Apply(SshTable({}));
  UniqueFd client = Dial();
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().wake_requests == 1; }));
  Advance(seconds(1));
  gateway_->Wake();
  Settle();
  EXPECT_EQ(gateway_->counters().wake_requests, 1u);
  EXPECT_EQ(gateway_->counters().awaiting_first_bytes, 1u);
}

TEST_F(GatewayTest, AnAddressAtItsPendingLimitLosesItsOldestSilentConnectionNotAUsersWaitingOne) {
  GatewayOptions options = Options();
  options.max_pending_per_address = 4;
  StartGateway(options);
  Apply(SshTable({}));  // at zero: a user who spoke is held, pending
  UniqueFd user = Dial();
  SendAll(user, kBanner);
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_now == 1; }));
  // A flood from the user's own address (one NAT): three fill it up...
  std::vector<UniqueFd> silent;
  for (int i = 0; i < 3; ++i) {
    silent.push_back(Dial());
    ASSERT_TRUE(WaitFor([&] { return gateway_->counters().awaiting_first_bytes == silent.size(); }));
  }
  EXPECT_EQ(gateway_->counters().pending_evicted, 0u);
  // ...and each one more closes the oldest silent one.
  for (size_t i = 0; i < 2; ++i) {
    silent.push_back(Dial());
    char c;
    EXPECT_EQ(::recv(silent[i].get(), &c, 1, 0), 0) << "silent connection " << i;
    EXPECT_EQ(gateway_->counters().pending_evicted, i + 1);
  }
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().connections_accepted == 6; }));
  EXPECT_EQ(gateway_->counters().awaiting_first_bytes, 3u);
  // Another address has its own limit.
  UniqueFd other = Dial(0, 0x7f000102);
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().awaiting_first_bytes == 4; }));
  EXPECT_EQ(gateway_->counters().pending_evicted, 2u);
  // The user, held all along, is served.
  StartInstance(0);
  Apply(SshTable({{0}}));
  EXPECT_EQ(ReadLine(user.get()), "b0");
  EXPECT_EQ(ReadLine(user.get()) + "\n", kBanner);
}

// With nothing silent to close, the limit closes the address's oldest.
TEST_F(GatewayTest, AnAddressAtItsPendingLimitWithNoSilentConnectionLosesItsOldest) {
  GatewayOptions options = Options();
  options.max_pending_per_address = 2;
  StartGateway(options);
  Apply(SshTable({}));
  std::vector<UniqueFd> users;
  for (int i = 0; i < 2; ++i) {
    users.push_back(Dial());
    SendAll(users.back(), kBanner);
    ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_now == users.size(); }));
  }
  users.push_back(Dial());
  SendAll(users.back(), kBanner);
  // Closed with its banner unread: a reset rather than a FIN.
  char c;
  ssize_t n = ::recv(users[0].get(), &c, 1, 0);
  EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << n << " " << strerror(errno);
  EXPECT_EQ(gateway_->counters().pending_evicted, 1u);
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_total == 3; }));
  EXPECT_EQ(gateway_->counters().held_now, 2u);
}

// Ports other than SSH's connect at once: their servers may speak first.
TEST_F(GatewayTest, APortThatIsNotSshConnectsAtOnceForAServerThatSpeaksFirst) {
  FakeInstance& instance = StartInstance(0);
  Apply(Table({{0}}, Distribution::kDefault, /*with_probe=*/false));
  UniqueFd client = Dial();
  EXPECT_EQ(ReadLine(client.get()), "b0");  // the client said nothing
  EXPECT_EQ(instance.accepted(), 1);
  EXPECT_EQ(gateway_->counters().awaiting_first_bytes, 0u);
}

TEST_F(GatewayTest, BadFloodOptionsAreRefusedByName) {
  GatewayOptions options = Options();
  options.first_bytes_timeout = milliseconds(0);
  auto gateway = Gateway::Create(options, hooks_);
  ASSERT_FALSE(gateway.ok());
  EXPECT_EQ(gateway.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(gateway.status().message().find("first-bytes timeout"), std::string::npos) << gateway.status();
  options = Options();
  options.max_pending_per_address = 0;
  gateway = Gateway::Create(options, hooks_);
  ASSERT_FALSE(gateway.ok());
  EXPECT_EQ(gateway.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(gateway.status().message().find("per client address"), std::string::npos) << gateway.status();
}

// Out of descriptors, a listener rests instead of failing its accept at
// every turn, and takes the waiting connection once it can.
TEST_F(GatewayTest, AListenerOutOfDescriptorsPausesAndAcceptsAgainLater) {
  StartInstance(0);
  Apply(Table({{0}}, Distribution::kDefault, /*with_probe=*/false));
  rlimit before;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  std::vector<UniqueFd> filler;
  UniqueFd client;
  {
    rlimit tight = before;
    tight.rlim_cur = std::min<rlim_t>(before.rlim_cur, 1024);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
    for (UniqueFd fd; (fd = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC))).valid();) {
      filler.push_back(std::move(fd));
    }
    int full = errno;
    filler.pop_back();  // one left: the client's socket
    client = Dial();
    bool paused = WaitFor([&] { return gateway_->counters().accept_pauses == 1; });
    Settle();  // a listener still watched would fail again at every turn
    filler.clear();
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &before), 0);
    ASSERT_EQ(full, EMFILE);
    ASSERT_TRUE(paused);
  }
  EXPECT_EQ(gateway_->counters().accept_pauses, 1u);
  EXPECT_EQ(gateway_->counters().connections_accepted, 0u);
  Advance(seconds(1));
  gateway_->Wake();
  EXPECT_EQ(ReadLine(client.get()), "b0");
  EXPECT_EQ(gateway_->counters().accept_pauses, 1u);
}

TEST_F(GatewayTest, FailingProbesTakeAnInstanceOutAfterNumberOfProbesAndOpenSessionsGoOn) {
  StartInstance(0);
  FakeInstance& one = StartInstance(1);
  Apply(Table({{0}, {1}}));
  ASSERT_TRUE(WaitFor([&] { return Healthy(0) && Healthy(1); }));
  // An open session on instance 1.
  UniqueFd session;
  for (int i = 0; i < 50 && !session.valid(); ++i) {
    UniqueFd fd = Dial();
    if (ReadLine(fd.get()) == "b1") session = std::move(fd);
  }
  ASSERT_TRUE(session.valid());

  // Its sshd stops listening (the session's own connection stays).
  one.StopListening();
  ProbeRound(2);
  EXPECT_TRUE(Healthy(1)) << "one failure is not numberOfProbes (2)";
  ProbeRound(2);
  EXPECT_FALSE(Healthy(1));
  EXPECT_EQ(gateway_->Health(InstanceId("i1"))->state, "unhealthy");
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Reach(), "b0");
  EXPECT_GE(gateway_->counters().probe_transitions, 3u);  // two in, one out
}

TEST_F(GatewayTest, SourceIpAffinityKeepsClientsWhenAnotherInstanceLeaves) {
  for (int i = 0; i < 3; ++i) StartInstance(i);
  Apply(Table({{0}, {1}, {2}}, Distribution::kSourceIP));
  ASSERT_TRUE(WaitFor([&] { return Healthy(0) && Healthy(1) && Healthy(2); }));
  std::map<uint32_t, std::string> where;
  for (uint32_t s = 0; s < 12; ++s) {
    uint32_t source = 0x7f000100 + s;  // 127.0.1.x
    where[source] = Reach(0, source);
    EXPECT_EQ(Reach(0, source), where[source]) << "same client, same instance";
  }
  Apply(Table({{0}, {1}}, Distribution::kSourceIP));  // instance 2 is gone
  for (const auto& [source, name] : where) {
    if (name != "b2") {
      EXPECT_EQ(Reach(0, source), name) << FormatIpv4(source);
    }
  }
}

TEST_F(GatewayTest, DrainingAndNotReadyInstancesGetNoNewConnections) {
  StartInstance(0);
  StartInstance(1);
  StartInstance(2);
  Apply(Table({{0}, {1, true, /*draining=*/true}, {2, /*ready=*/false}}));
  ASSERT_TRUE(WaitFor([&] { return Healthy(0); }));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Reach(), "b0");
  EXPECT_FALSE(gateway_->Health(InstanceId("i1"))->in_rotation);
}

TEST_F(GatewayTest, LeastConnectionsSpreadsOpenSessions) {
  StartInstance(0);
  StartInstance(1);
  Apply(Table({{0}, {1}}, Distribution::kLeastConnections));
  ASSERT_TRUE(WaitFor([&] { return Healthy(0) && Healthy(1); }));
  UniqueFd a = Dial();
  std::string first = ReadLine(a.get());
  UniqueFd b = Dial();
  std::string second = ReadLine(b.get());
  EXPECT_NE(first, second);
}

TEST_F(GatewayTest, WithoutAProbeReadyInstancesAreInRotation) {
  StartInstance(0);
  Apply(Table({{0}}, Distribution::kDefault, /*with_probe=*/false));
  EXPECT_EQ(Reach(), "b0");
  EXPECT_EQ(gateway_->Health(InstanceId("i0"))->state, "unprobed");
}

TEST_F(GatewayTest, NatPortsReachTheirInstanceAndAnEmptySlotIsRefused) {
  StartInstance(0);
  StartInstance(1);
  RoutingTable t = Table({{0}, {1}});
  uint16_t nat_start = FreePort();
  uint16_t nat_ports[3] = {nat_start, FreePort(), FreePort()};
  for (int k = 0; k < 3; ++k) {
    Listener l;
    l.address = kClientAddress;
    l.port = nat_ports[k];
    l.pool = PoolName("team");
    l.nat_index = k;
    l.backend_port = backend_port_;
    t.listeners.push_back(l);
  }
  Apply(t);
  EXPECT_EQ(Reach(nat_ports[0]), "b0");
  EXPECT_EQ(Reach(nat_ports[1]), "b1");
  EXPECT_EQ(Reach(nat_ports[2]), "");  // closed: no instance 2
  EXPECT_EQ(gateway_->counters().refused, 1u);
}

// A group whose rules are `rules` (Azure's form), for pool "team".
std::shared_ptr<const RouteSecurity> Security(const std::vector<Json>& rules) {
  auto group = ParseSecurityGroup(Json{{"name", "nsg"}, {"securityRules", rules}}, "nsg");
  EXPECT_TRUE(group.ok()) << group.status();
  auto s = std::make_shared<RouteSecurity>();
  s->groups.subnet = group.ok() ? *group : SecurityGroup{};
  s->tags = TagAddresses{{*ParseIpv4Subnet("10.0.0.0/24")}, *ParseIpv4("10.0.0.1")};
  s->destination = *ParseIpv4("10.0.0.2");
  return s;
}

Json InboundRule(const std::string& name, int64_t priority, const std::string& access, const std::string& source,
                 const std::string& port) {
  return {{"name", name},
          {"properties",
           {{"protocol", "Tcp"},
            {"sourceAddressPrefix", source},
            {"sourcePortRange", "*"},
            {"destinationAddressPrefix", "*"},
            {"destinationPortRange", port},
            {"access", access},
            {"priority", priority},
            {"direction", "Inbound"}}}};
}

TEST_F(GatewayTest, ANetworkSecurityRuleResetsADeniedClientBeforeItWakesAnything) {
  RoutingTable t = SshTable({});
  const uint32_t other_client = *ParseIpv4("127.0.0.200");
  t.security[PoolName("team")] = Security({InboundRule("deny-one", 100, "Deny", "127.0.0.1", "*"),
                                           InboundRule("ssh", 200, "Allow", "Internet", std::to_string(backend_port_))});
  Apply(t);
  UniqueFd denied = Dial();
  char byte;
  errno = 0;
  EXPECT_EQ(::recv(denied.get(), &byte, 1, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
  EXPECT_EQ(gateway_->counters().denied, 1u);
  // Another address is allowed: it is held for the pool at zero, which wakes.
  UniqueFd allowed = Dial(0, other_client);
  ASSERT_EQ(::send(allowed.get(), "SSH-2.0-test\n", 13, 0), 13);
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_now == 1; }));
  EXPECT_EQ(hooks_.woken(), std::vector<std::string>{"team"});
  EXPECT_EQ(gateway_->counters().denied, 1u);
  // Without the group everyone passes again.
  t.security.clear();
  Apply(t);
  UniqueFd again = Dial();
  ASSERT_EQ(::send(again.get(), "SSH-2.0-test\n", 13, 0), 13);
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().held_now == 2; }));
}

TEST_F(GatewayTest, AProbeDeniedByARuleFailsAndTheInstanceStaysOutOfRotation) {
  StartInstance(0);
  RoutingTable t = Table({{0}});
  t.security[PoolName("team")] = Security({InboundRule("no-probes", 100, "Deny", "AzureLoadBalancer", "*"),
                                           InboundRule("all", 200, "Allow", "*", "*")});
  Apply(t);
  ProbeRound(1);
  ProbeRound(1);
  EXPECT_FALSE(Healthy(0));
  EXPECT_GE(gateway_->counters().probe_failures, 2u);
  // The default rules let the load balancer probe.
  t.security[PoolName("team")] = Security({});
  Apply(t);
  ProbeRound(1);
  ASSERT_TRUE(WaitFor([&] { return Healthy(0); }));
}

TEST_F(GatewayTest, TheJupyterAddressResetsADeniedClientBeforeItsFirstRequest) {
  RoutingTable t = WithWeb(Table({{0}}, Distribution::kDefault, /*with_probe=*/false));
  t.security[PoolName("team")] = Security({InboundRule("no-jupyter", 100, "Deny", "127.0.0.1", "8000")});
  Apply(t);
  auto r = Client::Do(Endpoint::Tcp("127.0.0.1", web_port_), "GET", "/hub/login", "", {}, seconds(10));
  EXPECT_FALSE(r.ok());
  ASSERT_TRUE(WaitFor([&] { return gateway_->counters().denied == 1u; }));
  // The rule names Jupyter's port (8000, whatever the frontend's): another rule lets it in.
  t.security[PoolName("team")] = Security({InboundRule("jupyter", 100, "Allow", "Internet", "8000")});
  Apply(t);
  EXPECT_EQ(WebCall("GET", "/hub/login", "", {}).status, 200);
}

TEST_F(GatewayTest, AnInstanceThatRefusesIsSkippedForTheNextOne) {
  StartInstance(0);
  Apply(Table({{0}, {1}}, Distribution::kDefault, /*with_probe=*/false));
  // Instance 1 is "ready" without a probe but nothing listens there.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Reach(), "b0");
}

TEST_F(GatewayTest, ListenErrorsNameTheAddressAndCheckListenNamesTheField) {
  uint16_t taken = 0;
  auto holder = ListenTcp("127.0.0.1", 0, 1, &taken);
  ASSERT_TRUE(holder.ok());
  RoutingTable t = Table({});
  t.listeners[0].port = taken;
  Status s = gateway_->Apply(t);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("127.0.0.1:" + std::to_string(taken)), std::string::npos) << s;

  PoolSpec spec;
  spec.name = PoolName("other");
  LoadBalancerSpec lb;
  lb.frontend_address = "127.0.0.1";
  LbRule rule;
  rule.name = "SSH";
  rule.frontend_port = taken;
  rule.backend_port = 22;
  lb.rules.push_back(rule);
  spec.load_balancer = lb;
  s = gateway_->CheckListen(spec);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("loadBalancer.rules[0].frontendPort"), std::string::npos) << s;
  EXPECT_NE(s.message().find("in use"), std::string::npos) << s;
}

// A pool's Jupyter address end to end on loopback (plain HTTP): login,
// the first visit asks for a notebook server, once it is ready requests
// reach it with its token and without our cookie.
TEST_F(GatewayTest, JupyterLoginThenTheUsersOwnServer) {
  // The "notebook server" on instance 0's address.
  HttpServer notebook(
      [](const Request& r) {
        std::string auth = r.headers.count("authorization") ? r.headers.at("authorization") : "-";
        std::string cookie = r.headers.count("cookie") ? r.headers.at("cookie") : "-";
        return Response{200, "text/plain", r.target + " auth=" + auth + " cookie=" + cookie, {}};
      },
      HttpServerOptions{});
  auto notebook_port = notebook.ListenTcp(FormatIpv4(InstanceAddress(0)), 0, "nb");
  ASSERT_TRUE(notebook_port.ok()) << notebook_port.status();
  notebook.Start(1);

  Apply(WithWeb(Table({{0}})));

  Response denied = WebCall("POST", "/hub/login", "username=alice&password=wrong",
                            {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(denied.status, 401);
  EXPECT_EQ(HeaderOf(denied, "set-cookie"), "");
  Response login = WebCall("POST", "/hub/login", "username=alice&password=alice%27s+password",
                           {{"Content-Type", "application/x-www-form-urlencoded"}});
  ASSERT_EQ(login.status, 303);
  std::string cookie = HeaderOf(login, "set-cookie");
  cookie = cookie.substr(0, cookie.find(';'));

  EXPECT_EQ(WebCall("GET", "/user/alice/api/status", "", {{"Cookie", cookie}}).status, 503);  // starting
  auto starts = hooks_.notebook_starts();
  ASSERT_EQ(starts.size(), 1u);
  std::string token = starts[0].substr(std::string("team/alice/").size());
  gateway_->NotebookReady(PoolName("team"), "alice", InstanceId("i0"), InstanceAddress(0), *notebook_port);
  Response through = WebCall("GET", "/user/alice/api/status?token=x", "", {{"Cookie", cookie + "; _xsrf=1"}});
  EXPECT_EQ(through.status, 200);
  EXPECT_EQ(through.body, "/user/alice/api/status auth=token " + token + " cookie=_xsrf=1");
  EXPECT_EQ(WebCall("GET", "/user/bob/api/status", "", {{"Cookie", cookie}}).status, 403);

  auto notebooks = gateway_->Notebooks();
  ASSERT_EQ(notebooks.size(), 1u);
  EXPECT_EQ(notebooks[0].pool.value(), "team");
  EXPECT_EQ(notebooks[0].session.state, NotebookSession::State::kReady);
  EXPECT_EQ(notebooks[0].session.client, "127.0.0.1");  // the browser's last request came from there
  notebook.Stop();
}

// Waking from zero through the web proxy: a server whose instance left the
// routing table (scaled in to zero, deleted) is forgotten when the table
// is applied; a server that refuses the connection is forgotten at that
// request. Either way the browser gets the "starting" page (200, never a
// 5xx) and a new server is asked for.
TEST_F(GatewayTest, JupyterServersGoWithTheirInstanceAndAnUnreachableOneGivesTheStartingPage) {
  Apply(WithWeb(Table({{0}})));
  Response login = WebCall("POST", "/hub/login", "username=alice&password=alice%27s+password",
                           {{"Content-Type", "application/x-www-form-urlencoded"}});
  ASSERT_EQ(login.status, 303);
  std::string cookie = HeaderOf(login, "set-cookie");
  cookie = cookie.substr(0, cookie.find(';'));
  const std::vector<std::pair<std::string, std::string>> browser = {{"Cookie", cookie}, {"Accept", "text/html"}};
  ASSERT_EQ(hooks_.notebook_starts().size(), 1u);

  // Instance 0 leaves (the pool went to zero): the session goes with it.
  gateway_->NotebookReady(PoolName("team"), "alice", InstanceId("i0"), InstanceAddress(0), backend_port_);
  ASSERT_EQ(gateway_->Notebooks().size(), 1u);
  Apply(WithWeb(Table({})));
  EXPECT_TRUE(gateway_->Notebooks().empty()) << "instance i0 is gone, and alice's server with it";
  Response page = WebCall("GET", "/user/alice/tree", "", browser);
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("Starting your notebook server"), std::string::npos);
  ASSERT_EQ(hooks_.notebook_starts().size(), 2u) << "the next visit asks for a new server";

  // The new server is "ready" on instance 1, but nothing listens there: the
  // request is not a 502, the server is forgotten and asked for again.
  Apply(WithWeb(Table({{1}})));
  gateway_->NotebookReady(PoolName("team"), "alice", InstanceId("i1"), InstanceAddress(1), backend_port_);
  page = WebCall("GET", "/user/alice/tree", "", browser);
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("Starting your notebook server"), std::string::npos);
  EXPECT_EQ(hooks_.notebook_starts().size(), 3u);
  auto notebooks = gateway_->Notebooks();
  ASSERT_EQ(notebooks.size(), 1u);
  EXPECT_EQ(notebooks[0].session.state, NotebookSession::State::kStarting);
}

}  // namespace
}  // namespace dspool
