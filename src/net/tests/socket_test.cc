#include "net/socket.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <fstream>
#include <string>
#include <vector>

#include "base/testing/cannot_run.h"

namespace dspool {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint32_t kLoopback = 0x7f000001;  // 127.0.0.1

void ExpectNonBlockingCloexec(const UniqueFd& fd) {
  EXPECT_TRUE(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC);
}

// A port on 127.0.0.1 that nothing listens on (bound once, then released).
uint16_t ClosedPort() {
  uint16_t port = 0;
  auto listener = ListenTcp("127.0.0.1", 0, 1, &port);
  EXPECT_TRUE(listener.ok()) << listener.status();
  return port;
}

TEST(SocketTest, ListenConnectAcceptRoundTrip) {
  uint16_t port = 0;
  auto listener = ListenTcp("127.0.0.1", 0, 16, &port);
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_NE(port, 0);
  ExpectNonBlockingCloexec(*listener);

  auto client = ConnectTcp(kLoopback, port, milliseconds(5000));
  ASSERT_TRUE(client.ok()) << client.status();
  ExpectNonBlockingCloexec(*client);
  auto server = AcceptTcp(*listener, milliseconds(5000));
  ASSERT_TRUE(server.ok()) << server.status();
  ExpectNonBlockingCloexec(*server);

  ASSERT_EQ(::send(client->get(), "ping", 4, MSG_NOSIGNAL), 4);
  pollfd p = {server->get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  char buf[8];
  ASSERT_EQ(::recv(server->get(), buf, sizeof(buf), 0), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
}

// What TryPeek sees stays in the socket for the next read; nothing yet is
// nullopt, and a peer gone without a byte is 0.
TEST(SocketTest, TryPeekLeavesTheBytesInTheSocket) {
  uint16_t port = 0;
  auto listener = ListenTcp("127.0.0.1", 0, 16, &port);
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto client = ConnectTcp(kLoopback, port, milliseconds(5000));
  ASSERT_TRUE(client.ok()) << client.status();
  auto server = AcceptTcp(*listener, milliseconds(5000));
  ASSERT_TRUE(server.ok()) << server.status();
  char buf[8];
  auto nothing = TryPeek(*server, buf, sizeof(buf));
  ASSERT_TRUE(nothing.ok()) << nothing.status();
  EXPECT_FALSE(nothing->has_value());

  ASSERT_EQ(::send(client->get(), "ping", 4, MSG_NOSIGNAL), 4);
  pollfd p = {server->get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  auto peeked = TryPeek(*server, buf, 1);
  ASSERT_TRUE(peeked.ok()) << peeked.status();
  EXPECT_EQ(*peeked, std::optional<size_t>(1));
  EXPECT_EQ(buf[0], 'p');
  auto read = TryRecv(*server, buf, sizeof(buf));
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(*read, std::optional<size_t>(4));
  EXPECT_EQ(std::string(buf, 4), "ping");

  auto silent_client = ConnectTcp(kLoopback, port, milliseconds(5000));
  ASSERT_TRUE(silent_client.ok()) << silent_client.status();
  auto silent = AcceptTcp(*listener, milliseconds(5000));
  ASSERT_TRUE(silent.ok()) << silent.status();
  silent_client->reset();
  p = {silent->get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  auto eof = TryPeek(*silent, buf, 1);
  ASSERT_TRUE(eof.ok()) << eof.status();
  EXPECT_EQ(*eof, std::optional<size_t>(0));
}

// The socket chosen for a connection uses the congestion control asked for
// (reno is built into every kernel) instead of the host's default.
TEST(SocketTest, StartConnectUsesTheCongestionControlAskedFor) {
  uint16_t port = 0;
  auto listener = ListenTcp("127.0.0.1", 0, 16, &port);
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto client = StartConnectTcp(kLoopback, port, "reno");
  ASSERT_TRUE(client.ok()) << client.status();
  char name[16] = {};
  socklen_t len = sizeof(name);
  ASSERT_EQ(::getsockopt(client->get(), IPPROTO_TCP, TCP_CONGESTION, name, &len), 0);
  EXPECT_STREQ(name, "reno");
  pollfd p = {client->get(), POLLOUT, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  EXPECT_TRUE(FinishConnect(client->get(), kLoopback, port).ok());

  auto plain = StartConnectTcp(kLoopback, port);
  ASSERT_TRUE(plain.ok()) << plain.status();
  char host_default[16] = {};
  std::ifstream("/proc/sys/net/ipv4/tcp_congestion_control") >> host_default;
  len = sizeof(name);
  ASSERT_EQ(::getsockopt(plain->get(), IPPROTO_TCP, TCP_CONGESTION, name, &len), 0);
  EXPECT_STREQ(name, host_default);
}

TEST(SocketTest, AnUnknownCongestionControlIsRefusedByName) {
  EXPECT_TRUE(CheckCongestionControl("reno").ok());
  Status s = CheckCongestionControl("no-such-cc");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("TCP congestion control 'no-such-cc' is not available here (this host offers: ", 0), 0u)
      << s;
  EXPECT_NE(s.message().find("reno"), std::string::npos) << s;
  uint16_t port = ClosedPort();
  auto fd = StartConnectTcp(kLoopback, port, "no-such-cc");
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fd.status().message().rfind("connect 127.0.0.1:" + std::to_string(port) + ": TCP congestion control", 0), 0u)
      << fd.status();
}

TEST(SocketTest, ConnectToClosedPortIsUnavailableAndNamesTheAddress) {
  uint16_t port = ClosedPort();
  auto fd = ConnectTcp(kLoopback, port, milliseconds(5000));
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(fd.status().message(), "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST(SocketTest, ConnectRejectsNonPositiveTimeout) {
  auto fd = ConnectTcp(kLoopback, 1, milliseconds(0));
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(fd.status().message().find("127.0.0.1:1"), std::string::npos) << fd.status();
}

// A listener whose accept queue is full drops new SYNs (Linux, with
// tcp_abort_on_overflow = 0), so a connect to it on loopback never completes:
// the timeout path without sending anything off the host.
TEST(SocketTest, ConnectTimesOutAgainstAFullBacklog) {
  uint16_t port = 0;
  auto listener = ListenTcp("127.0.0.1", 0, 0, &port);
  ASSERT_TRUE(listener.ok()) << listener.status();
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 8; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto fd = ConnectTcp(kLoopback, port, milliseconds(300));
    if (!fd.ok()) {
      EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(300)) << "gave up before the timeout";
      EXPECT_EQ(fd.status().code(), StatusCode::kDeadlineExceeded) << fd.status();
      EXPECT_EQ(fd.status().message(),
                "connect 127.0.0.1:" + std::to_string(port) + ": timed out after 300 ms");
      return;
    }
    fillers.push_back(std::move(*fd));
  }
  DSP_CANNOT_RUN_HERE("the kernel kept accepting connections on a backlog-0 listener "
                      "(tcp_abort_on_overflow or syncookies?); timeout path not testable on loopback here");
}

TEST(SocketTest, ListenRejectsBadAddress) {
  auto fd = ListenTcp("localhost", 0, 1, nullptr);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fd.status().message(), "listen: invalid IPv4 address 'localhost'");
}

TEST(SocketTest, ListenOnPortInUseIsUnavailableAndNamesTheAddress) {
  uint16_t port = 0;
  auto first = ListenTcp("127.0.0.1", 0, 1, &port);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = ListenTcp("127.0.0.1", port, 1, nullptr);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(second.status().message(), "listen 127.0.0.1:" + std::to_string(port) + ": Address already in use");
}

TEST(SocketTest, AcceptTimesOutWithoutAConnection) {
  auto listener = ListenTcp("127.0.0.1", 0, 1, nullptr);
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto fd = AcceptTcp(*listener, milliseconds(0));
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), StatusCode::kDeadlineExceeded);
  const auto start = std::chrono::steady_clock::now();
  fd = AcceptTcp(*listener, milliseconds(20));
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(20)) << "gave up before the timeout";
}

bool NoDelay(int fd) {
  int on = 0;
  socklen_t len = sizeof(on);
  EXPECT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
  return on != 0;
}

TEST(SocketTest, SetNoDelayTurnsNagleOffOnTcpAndLeavesOtherSocketsAlone) {
  UniqueFd plain(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(plain.valid());
  EXPECT_FALSE(NoDelay(plain.get())) << "Nagle is on by default";
  SetNoDelay(plain);
  EXPECT_TRUE(NoDelay(plain.get()));

  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd a(pair[0]), b(pair[1]);
  SetNoDelay(a);  // not TCP: nothing to do, and nothing breaks
  ASSERT_EQ(::write(a.get(), "x", 1), 1);
  char c = 0;
  EXPECT_EQ(::read(b.get(), &c, 1), 1);
}

// The relays and proxies take these sockets as they come (RelayLoop::AddPrepared).
TEST(SocketTest, ConnectedAndAcceptedSocketsComeWithoutNagle) {
  uint16_t port = 0;
  auto listener = ListenTcp("127.0.0.1", 0, 1, &port);
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto connecting = StartConnectTcp(kLoopback, port);
  ASSERT_TRUE(connecting.ok()) << connecting.status();
  EXPECT_TRUE(NoDelay(connecting->get()));
  auto accepted = AcceptTcp(*listener, seconds(5));
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_TRUE(NoDelay(accepted->get())) << "inherited from the listener";
}

TEST(UnixSocketTest, PeerCredentialsAreTheConnectingProcesss) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd a(fds[0]), b(fds[1]);
  auto peer = UnixPeerCredentials(a.get());
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->uid, ::geteuid());
  EXPECT_EQ(peer->gid, ::getegid());
  EXPECT_EQ(peer->pid, ::getpid());
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd r(pipe_fds[0]), w(pipe_fds[1]);
  auto not_a_socket = UnixPeerCredentials(r.get());
  EXPECT_FALSE(not_a_socket.ok());
  EXPECT_NE(not_a_socket.status().message().find("SO_PEERCRED"), std::string::npos) << not_a_socket.status();
}

}  // namespace
}  // namespace dspool
