#include "net/relay.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/testing/cannot_run.h"
#include "net/socket.h"

namespace dspool {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint32_t kLoopback = 0x7f000001;
// Upper bound for any single wait on the peer; never reached when things work.
constexpr int kIoTimeoutSeconds = 30;

// Makes a test-side socket blocking, with generous send/receive timeouts, so
// a broken relay fails a test instead of hanging it.
void MakeBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  ASSERT_EQ(::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK), 0);
  timeval tv = {kIoTimeoutSeconds, 0};
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
}

bool SendAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}
bool SendAll(int fd, const std::string& s) { return SendAll(fd, s.data(), s.size()); }

// Reads until EOF. False on an error or timeout.
bool RecvToEof(int fd, std::string* out) {
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buf, static_cast<size_t>(n));
  }
}

bool RecvExactly(int fd, size_t size, std::string* out) {
  char buf[65536];
  while (out->size() < size) {
    ssize_t n = ::recv(fd, buf, std::min(sizeof(buf), size - out->size()), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    out->append(buf, static_cast<size_t>(n));
  }
  return true;
}

// FNV-1a, streamed.
struct Checksum {
  uint64_t hash = 14695981039346656037ull;
  uint64_t bytes = 0;
  void Add(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      hash = (hash ^ static_cast<uint8_t>(p[i])) * 1099511628211ull;
    }
    bytes += n;
  }
  friend bool operator==(const Checksum&, const Checksum&) = default;
};

// Deterministic pseudo-random bytes.
std::string Pattern(size_t size, uint64_t seed) {
  std::string s(size, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

// Waits (a bounded time) until `done` is true.
bool WaitFor(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + seconds(kIoTimeoutSeconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

int CountOpenFds() {
  int count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count;
}

// A TCP echo server on 127.0.0.1: one thread per connection; on EOF it
// passes the FIN back and closes.
class EchoServer {
 public:
  EchoServer() {
    auto listener = ListenTcp("127.0.0.1", 0, 128, &port_);
    EXPECT_TRUE(listener.ok()) << listener.status();
    listener_ = std::move(*listener);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~EchoServer() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : workers_) t.join();
  }
  uint16_t port() const { return port_; }

 private:
  void AcceptLoop() {
    while (!stop_) {
      auto fd = AcceptTcp(listener_, milliseconds(20));
      if (!fd.ok()) continue;
      workers_.emplace_back([fd = std::make_shared<UniqueFd>(std::move(*fd))] {
        MakeBlocking(fd->get());
        char buf[65536];
        while (true) {
          ssize_t n = ::recv(fd->get(), buf, sizeof(buf), 0);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) break;
          if (!SendAll(fd->get(), buf, static_cast<size_t>(n))) break;
        }
        ::shutdown(fd->get(), SHUT_WR);
      });
    }
  }

  UniqueFd listener_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> workers_;  // acceptor thread only, until joined
};

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto front = ListenTcp("127.0.0.1", 0, 128, &front_port_);
    ASSERT_TRUE(front.ok()) << front.status();
    front_ = std::move(*front);
  }
  void TearDown() override { StopLoop(); }

  void StartLoop(RelayLoopOptions options = {}) {
    auto loop = RelayLoop::Create(std::move(options));
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    thread_ = std::thread([this] { run_status_ = loop_->Run(); });
  }
  void StopLoop() {
    if (!thread_.joinable()) return;
    loop_->Stop();
    thread_.join();
    EXPECT_TRUE(run_status_.ok()) << run_status_;
  }

  // What a gateway does: accept a client on the front listener, connect to
  // the backend, hand both to the relay as they come (AddPrepared: they are
  // net/socket.h's). Returns the client's socket (blocking, with
  // timeouts). Thread-safe (AddPrepared is).
  UniqueFd ConnectThroughRelay(uint16_t backend_port, RelayOptions options = {}) {
    std::lock_guard<std::mutex> lock(front_mu_);  // one accept per connect
    auto client = ConnectTcp(kLoopback, front_port_, seconds(kIoTimeoutSeconds));
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return UniqueFd();
    auto accepted = AcceptTcp(front_, seconds(kIoTimeoutSeconds));
    EXPECT_TRUE(accepted.ok()) << accepted.status();
    auto backend = ConnectTcp(kLoopback, backend_port, seconds(kIoTimeoutSeconds));
    EXPECT_TRUE(backend.ok()) << backend.status();
    if (!accepted.ok() || !backend.ok()) return UniqueFd();
    Status s = loop_->AddPrepared(std::move(*accepted), std::move(*backend), options);
    EXPECT_TRUE(s.ok()) << s;
    MakeBlocking(client->get());
    return std::move(*client);
  }

  // A client connected through the relay to a backend the test plays.
  void ConnectPair(UniqueFd* client, UniqueFd* backend) {
    uint16_t backend_port = 0;
    UniqueFd listener = ListenBackend(&backend_port);
    *client = ConnectThroughRelay(backend_port);
    ASSERT_TRUE(client->valid());
    *backend = AcceptBackend(listener);
    ASSERT_TRUE(backend->valid());
  }

  // A listener for tests that play the backend themselves.
  UniqueFd ListenBackend(uint16_t* port) {
    auto listener = ListenTcp("127.0.0.1", 0, 16, port);
    EXPECT_TRUE(listener.ok()) << listener.status();
    return listener.ok() ? std::move(*listener) : UniqueFd();
  }
  UniqueFd AcceptBackend(const UniqueFd& listener) {
    auto fd = AcceptTcp(listener, seconds(kIoTimeoutSeconds));
    EXPECT_TRUE(fd.ok()) << fd.status();
    if (!fd.ok()) return UniqueFd();
    MakeBlocking(fd->get());
    return std::move(*fd);
  }

  const RelayCounters& counters() const { return loop_->counters(); }

  // Resets `closing` (RST, not FIN) and expects the relay to reset `other`
  // too, counting one error.
  void ExpectResetPassedOn(UniqueFd& closing, const UniqueFd& other) {
    linger abortive = {1, 0};
    ASSERT_EQ(::setsockopt(closing.get(), SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive)), 0);
    closing.reset();
    char buf[16];
    ssize_t n = ::recv(other.get(), buf, sizeof(buf), 0);
    int err = errno;
    EXPECT_EQ(n, -1);
    EXPECT_EQ(err, ECONNRESET) << std::strerror(err);
    ASSERT_TRUE(WaitIdle());
    EXPECT_EQ(counters().errors.load(), 1u);
  }
  bool WaitIdle() {
    return WaitFor([this] { return counters().connections_active.load() == 0; });
  }

  UniqueFd front_;
  uint16_t front_port_ = 0;
  std::mutex front_mu_;
  SimulatedClock clock_;  // for the tests that inject it; outlives the loop
  std::unique_ptr<RelayLoop> loop_;
  std::thread thread_;
  Status run_status_;
};

TEST_F(RelayTest, EchoOneConnection) {
  StartLoop();
  EchoServer echo;
  UniqueFd client = ConnectThroughRelay(echo.port());
  ASSERT_TRUE(client.valid());
  ASSERT_TRUE(SendAll(client.get(), "hello"));
  std::string got;
  ASSERT_TRUE(RecvExactly(client.get(), 5, &got));
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(counters().connections_active.load(), 1u);

  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  got.clear();
  ASSERT_TRUE(RecvToEof(client.get(), &got));
  EXPECT_EQ(got, "");
  ASSERT_TRUE(WaitIdle());
  EXPECT_EQ(counters().connections_total.load(), 1u);
  EXPECT_EQ(counters().bytes_client_to_backend.load(), 5u);
  EXPECT_EQ(counters().bytes_backend_to_client.load(), 5u);
  EXPECT_EQ(counters().errors.load(), 0u);
  EXPECT_EQ(counters().idle_timeouts.load(), 0u);
}

TEST_F(RelayTest, FiftyConcurrentConnectionsWithChecksums) {
  StartLoop();
  EchoServer echo;
  constexpr int kConnections = 50;
  std::atomic<uint64_t> expected_bytes{0};
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.emplace_back([&, i] {
      const std::string data = Pattern(300 * 1024 + static_cast<size_t>(i) * 1013, static_cast<uint64_t>(i));
      expected_bytes += data.size();
      UniqueFd client = ConnectThroughRelay(echo.port());
      if (!client.valid()) return;
      // Send and receive at once: an echo of a few hundred KiB does not fit
      // in the socket buffers of a client that only writes.
      std::thread sender([&] {
        for (size_t off = 0; off < data.size(); off += 16384) {
          if (!SendAll(client.get(), data.data() + off, std::min<size_t>(16384, data.size() - off))) return;
        }
        ::shutdown(client.get(), SHUT_WR);
      });
      Checksum sent, received;
      sent.Add(data.data(), data.size());
      std::string echoed;
      bool ok = RecvToEof(client.get(), &echoed);
      sender.join();
      received.Add(echoed.data(), echoed.size());
      EXPECT_TRUE(ok) << "connection " << i;
      EXPECT_EQ(received.bytes, sent.bytes) << "connection " << i;
      EXPECT_EQ(received.hash, sent.hash) << "connection " << i;
      if (ok && received == sent) ++good;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(good.load(), kConnections);
  ASSERT_TRUE(WaitIdle());
  EXPECT_EQ(counters().connections_total.load(), static_cast<uint64_t>(kConnections));
  EXPECT_EQ(counters().bytes_client_to_backend.load(), expected_bytes.load());
  EXPECT_EQ(counters().bytes_backend_to_client.load(), expected_bytes.load());
  EXPECT_EQ(counters().errors.load(), 0u);
}

TEST_F(RelayTest, LargeTransferCountsEveryByte) {
  StartLoop();
  constexpr size_t kTotal = size_t{64} << 20;
  constexpr size_t kChunk = size_t{1} << 20;
  uint16_t backend_port = 0;
  UniqueFd backend_listener = ListenBackend(&backend_port);

  Checksum received;
  bool sink_ok = false;
  std::thread sink([&] {
    UniqueFd fd = AcceptBackend(backend_listener);
    if (!fd.valid()) return;
    char buf[65536];
    while (true) {
      ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return;
      if (n == 0) break;
      received.Add(buf, static_cast<size_t>(n));
    }
    sink_ok = true;  // closes with FIN: the client then reads EOF
  });

  UniqueFd client = ConnectThroughRelay(backend_port);
  ASSERT_TRUE(client.valid());
  Checksum sent;
  for (size_t off = 0; off < kTotal; off += kChunk) {
    std::string chunk = Pattern(kChunk, off);
    sent.Add(chunk.data(), chunk.size());
    ASSERT_TRUE(SendAll(client.get(), chunk)) << "at byte " << off;
  }
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  std::string reply;
  EXPECT_TRUE(RecvToEof(client.get(), &reply));
  sink.join();

  EXPECT_TRUE(sink_ok);
  EXPECT_EQ(received.bytes, kTotal);
  EXPECT_EQ(received.hash, sent.hash);
  ASSERT_TRUE(WaitIdle());
  EXPECT_EQ(counters().bytes_client_to_backend.load(), kTotal);
  EXPECT_EQ(counters().bytes_backend_to_client.load(), 0u);
  EXPECT_EQ(counters().errors.load(), 0u);
}

TEST_F(RelayTest, ADestinationThatStopsReadingLosesNothing) {
  // The backend reads nothing until every buffer on the way is full (the
  // relay's destination refuses bytes and the relay stops listening to its
  // source), then everything; the client goes on sending meanwhile.
  StartLoop();
  constexpr size_t kChunk = size_t{64} << 10;
  uint16_t backend_port = 0;
  UniqueFd backend_listener = ListenBackend(&backend_port);
  UniqueFd client = ConnectThroughRelay(backend_port);
  ASSERT_TRUE(client.valid());
  UniqueFd backend = AcceptBackend(backend_listener);
  ASSERT_TRUE(backend.valid());

  Checksum sent;
  size_t off = 0;
  // Until the client cannot send for half a second: everything is full.
  for (;;) {
    std::string chunk = Pattern(kChunk, off);
    ssize_t n = ::send(client.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent.Add(chunk.data(), static_cast<size_t>(n));
      off += static_cast<size_t>(n);
      continue;
    }
    ASSERT_TRUE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) << std::strerror(errno);
    pollfd p{client.get(), POLLOUT, 0};
    if (::poll(&p, 1, 500) == 0) break;
  }
  // As much again, and more, while the backend reads (how much the buffers
  // held depends on the host's TCP autotuning limits).
  const size_t total = 2 * off + (size_t{8} << 20);
  Checksum received;
  std::thread sink([&] {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(backend.get(), buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      received.Add(buf, static_cast<size_t>(n));
    }
  });
  while (off < total) {
    std::string chunk = Pattern(std::min(kChunk, total - off), off);
    sent.Add(chunk.data(), chunk.size());
    ASSERT_TRUE(SendAll(client.get(), chunk)) << "at byte " << off;
    off += chunk.size();
  }
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  sink.join();  // the relay passed the FIN on
  EXPECT_EQ(received.bytes, total);
  EXPECT_EQ(received.hash, sent.hash);
  EXPECT_EQ(counters().bytes_client_to_backend.load(), total);
  EXPECT_EQ(counters().errors.load(), 0u);
}

TEST_F(RelayTest, HalfCloseStillCarriesTheReply) {
  StartLoop();
  UniqueFd client, backend;
  ASSERT_NO_FATAL_FAILURE(ConnectPair(&client, &backend));

  ASSERT_TRUE(SendAll(client.get(), "request"));
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  std::string request;
  ASSERT_TRUE(RecvToEof(backend.get(), &request));  // the client's FIN got through
  EXPECT_EQ(request, "request");

  ASSERT_TRUE(SendAll(backend.get(), "reply"));
  backend.reset();
  std::string reply;
  ASSERT_TRUE(RecvToEof(client.get(), &reply));
  EXPECT_EQ(reply, "reply");

  ASSERT_TRUE(WaitIdle());
  EXPECT_EQ(counters().bytes_client_to_backend.load(), 7u);
  EXPECT_EQ(counters().bytes_backend_to_client.load(), 5u);
  EXPECT_EQ(counters().errors.load(), 0u);
}

TEST_F(RelayTest, BackendResetResetsTheClient) {
  StartLoop();
  UniqueFd client, backend;
  ASSERT_NO_FATAL_FAILURE(ConnectPair(&client, &backend));
  ASSERT_TRUE(SendAll(client.get(), "x"));
  std::string got;
  ASSERT_TRUE(RecvExactly(backend.get(), 1, &got));

  ExpectResetPassedOn(backend, client);
}

TEST_F(RelayTest, ClientResetResetsTheBackend) {
  StartLoop();
  UniqueFd client, backend;
  ASSERT_NO_FATAL_FAILURE(ConnectPair(&client, &backend));

  ExpectResetPassedOn(client, backend);
}

// The backend goes away while the client keeps writing: the relay's writes
// into the dead backend socket fail (and may raise SIGPIPE on the loop
// thread, which would kill this test process if it leaked).
TEST_F(RelayTest, BackendGoneWhileClientSends) {
  StartLoop();
  UniqueFd client, backend;
  ASSERT_NO_FATAL_FAILURE(ConnectPair(&client, &backend));
  backend.reset();  // FIN; any data that arrives later is answered with RST

  std::string eof;
  ASSERT_TRUE(RecvToEof(client.get(), &eof));  // the backend's FIN is passed on
  const std::string chunk = Pattern(65536, 7);
  for (int i = 0; i < 256; ++i) {
    if (!SendAll(client.get(), chunk)) break;  // the relay reset us
    if (counters().errors.load() > 0) break;
  }
  ASSERT_TRUE(WaitIdle());
  EXPECT_EQ(counters().errors.load(), 1u);
}

TEST_F(RelayTest, IdleTimeoutClosesAnIdleConnection) {
  StartLoop();
  EchoServer echo;
  UniqueFd client = ConnectThroughRelay(echo.port(), RelayOptions{.idle_timeout = milliseconds(200)});
  ASSERT_TRUE(client.valid());
  const auto before_activity = std::chrono::steady_clock::now();
  ASSERT_TRUE(SendAll(client.get(), "hi"));
  std::string got;
  ASSERT_TRUE(RecvExactly(client.get(), 2, &got));
  // Now nothing moves: the relay closes both sides (the wait is bounded by
  // the socket's receive timeout, far above 200 ms), and not before 200 ms
  // from the last activity.
  got.clear();
  ASSERT_TRUE(RecvToEof(client.get(), &got));
  EXPECT_GE(std::chrono::steady_clock::now() - before_activity, milliseconds(200));
  EXPECT_EQ(got, "");
  ASSERT_TRUE(WaitIdle());
  EXPECT_EQ(counters().idle_timeouts.load(), 1u);
  EXPECT_EQ(counters().errors.load(), 0u);
}

// With an injected clock: activity pushes the deadline out; only the
// connection that stayed quiet is closed.
TEST_F(RelayTest, IdleTimeoutFollowsTheInjectedClock) {
  StartLoop(RelayLoopOptions{.clock = &clock_});
  EchoServer echo;
  const RelayOptions options{.idle_timeout = seconds(10)};
  UniqueFd busy = ConnectThroughRelay(echo.port(), options);
  UniqueFd quiet = ConnectThroughRelay(echo.port(), options);
  ASSERT_TRUE(busy.valid() && quiet.valid());
  auto round_trip = [](const UniqueFd& fd) {
    std::string got;
    return SendAll(fd.get(), "ping") && RecvExactly(fd.get(), 4, &got) && got == "ping";
  };
  ASSERT_TRUE(round_trip(busy));   // both adopted at t = 0
  ASSERT_TRUE(round_trip(quiet));

  clock_.Advance(seconds(5));
  ASSERT_TRUE(round_trip(busy));  // busy: last activity t = 5 s

  // Just before quiet's deadline: the loop has expired what was due by
  // then (it turns between relaying the ping and its echo), and quiet was
  // not.
  clock_.Advance(milliseconds(4999));
  ASSERT_TRUE(round_trip(busy));
  EXPECT_EQ(counters().idle_timeouts.load(), 0u) << "closed before its idle timeout";

  clock_.Advance(milliseconds(1001));
  loop_->Wake();
  ASSERT_TRUE(WaitFor([&] { return counters().idle_timeouts.load() == 1; }));
  std::string rest;
  ASSERT_TRUE(RecvToEof(quiet.get(), &rest));
  ASSERT_TRUE(WaitFor([&] { return counters().connections_active.load() == 1; }));
  EXPECT_TRUE(round_trip(busy));  // still open at t = 11 s (activity now at 11 s)

  clock_.Advance(milliseconds(10001));
  loop_->Wake();
  ASSERT_TRUE(WaitFor([&] { return counters().idle_timeouts.load() == 2; }));
  ASSERT_TRUE(RecvToEof(busy.get(), &rest));
  ASSERT_TRUE(WaitIdle());
}

// A closed connection's timer entry does not outlive it by an idle timeout
// (30 minutes by default): the heap follows the open connections, and the
// open ones keep their deadlines through its rebuilds.
TEST_F(RelayTest, ClosedConnectionsDoNotPileUpAsTimers) {
  StartLoop(RelayLoopOptions{.clock = &clock_});
  const RelayOptions options{.idle_timeout = seconds(10)};
  // One connection stays open (and quiet) throughout; its peers are a
  // socket pair each side.
  auto relay_pair = [&](UniqueFd* client_peer, UniqueFd* backend_peer) {
    int c[2], b[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c), 0);
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
    client_peer->reset(c[1]);
    backend_peer->reset(b[1]);
    ASSERT_TRUE(loop_->Add(UniqueFd(c[0]), UniqueFd(b[0]), options).ok());
  };
  UniqueFd kept_client, kept_backend;
  relay_pair(&kept_client, &kept_backend);
  // 3,000 more open and end (both peers close), 100 at a time.
  for (int batch = 0; batch < 30; ++batch) {
    std::vector<UniqueFd> peers(200);
    for (int i = 0; i < 100; ++i) relay_pair(&peers[2 * i], &peers[2 * i + 1]);
    peers.clear();
    ASSERT_TRUE(WaitFor([&] { return counters().connections_active.load() == 1; }));
  }
  EXPECT_EQ(counters().connections_total.load(), 3001u);
  EXPECT_LE(counters().timer_entries.load(), 1u + 1024u + 1u);
  EXPECT_EQ(counters().idle_timeouts.load(), 0u);
  // The kept connection still times out, on time.
  clock_.Advance(milliseconds(10001));
  loop_->Wake();
  ASSERT_TRUE(WaitFor([&] { return counters().idle_timeouts.load() == 1; }));
  std::string rest;
  EXPECT_TRUE(RecvToEof(kept_client.get(), &rest));
  EXPECT_EQ(counters().errors.load(), 0u);
}

// An upgrade hands idle connections to a new loop (in the new process):
// their sockets leave this loop open, without on_close, and bytes go on
// through the next loop; a connection one side has half-closed stays.
TEST_F(RelayTest, IdleConnectionsAreHandedOverOpen) {
  std::vector<uint64_t> closed;
  std::mutex closed_mu;
  StartLoop(RelayLoopOptions{.on_close = [&](uint64_t tag) {
    std::lock_guard lock(closed_mu);
    closed.push_back(tag);
  }});
  UniqueFd client, backend, half_client, half_backend;
  ASSERT_NO_FATAL_FAILURE(ConnectPair(&client, &backend));
  ASSERT_NO_FATAL_FAILURE(ConnectPair(&half_client, &half_backend));
  std::string got;
  ASSERT_TRUE(SendAll(client.get(), "before"));
  ASSERT_TRUE(RecvExactly(backend.get(), 6, &got));
  ASSERT_EQ(::shutdown(half_client.get(), SHUT_WR), 0);
  std::string rest;
  ASSERT_TRUE(RecvToEof(half_backend.get(), &rest));  // the FIN went through: that direction is done

  std::vector<RelayLoop::Handed> handed = loop_->HandOverIdle();
  ASSERT_EQ(handed.size(), 1u) << "only the connection open both ways";
  EXPECT_EQ(counters().connections_active.load(), 1u);
  {
    std::lock_guard lock(closed_mu);
    EXPECT_TRUE(closed.empty()) << "handed over is not closed";
  }
  auto next = RelayLoop::Create();
  ASSERT_TRUE(next.ok());
  std::thread runner([&] { (void)(*next)->Run(); });
  ASSERT_TRUE((*next)->Add(std::move(handed[0].client), std::move(handed[0].backend), {}).ok());
  std::string after, back;
  ASSERT_TRUE(SendAll(client.get(), "after"));
  ASSERT_TRUE(RecvExactly(backend.get(), 5, &after));
  EXPECT_EQ(after, "after");
  ASSERT_TRUE(SendAll(backend.get(), "back"));
  ASSERT_TRUE(RecvExactly(client.get(), 4, &back));
  EXPECT_EQ(back, "back");
  EXPECT_EQ(counters().bytes_client_to_backend.load(), 6u) << "the old loop carried nothing after";
  (*next)->Stop();
  runner.join();
  StopLoop();  // while on_close's mutex lives (it closes the half-closed one)
}

TEST_F(RelayTest, StopClosesOpenConnections) {
  StartLoop();
  EchoServer echo;
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(ConnectThroughRelay(echo.port()));
    ASSERT_TRUE(clients.back().valid());
    std::string got;
    ASSERT_TRUE(SendAll(clients.back().get(), "abc"));
    ASSERT_TRUE(RecvExactly(clients.back().get(), 3, &got));
  }
  EXPECT_EQ(counters().connections_active.load(), 3u);
  StopLoop();
  EXPECT_EQ(counters().connections_active.load(), 0u);
  for (auto& c : clients) {
    std::string rest;
    EXPECT_TRUE(RecvToEof(c.get(), &rest));
  }

  auto a = ConnectTcp(kLoopback, echo.port(), seconds(5));
  auto b = ConnectTcp(kLoopback, echo.port(), seconds(5));
  ASSERT_TRUE(a.ok() && b.ok());
  Status s = loop_->Add(std::move(*a), std::move(*b), {});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(loop_->Run().code(), StatusCode::kFailedPrecondition);
}

// Idle connections hold no pipe: twenty open connections, each used in
// turn, are served by the same couple of pipes.
TEST_F(RelayTest, IdleConnectionsHoldNoPipe) {
  StartLoop();
  EchoServer echo;
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(ConnectThroughRelay(echo.port()));
    ASSERT_TRUE(clients.back().valid());
    std::string got;
    ASSERT_TRUE(SendAll(clients.back().get(), "ping"));
    ASSERT_TRUE(RecvExactly(clients.back().get(), 4, &got));
    EXPECT_EQ(got, "ping");
  }
  EXPECT_EQ(counters().connections_active.load(), 20u);
  EXPECT_LE(counters().pipes_created.load(), 4u);
}

// on_close hears every connection's tag once: closed normally, and by Stop.
TEST_F(RelayTest, OnCloseHearsEachTagOnce) {
  auto closed = std::make_shared<std::mutex>();
  auto tags = std::make_shared<std::vector<uint64_t>>();
  StartLoop(RelayLoopOptions{.on_close = [closed, tags](uint64_t tag) {
    std::lock_guard lock(*closed);
    tags->push_back(tag);
  }});
  EchoServer echo;
  UniqueFd done = ConnectThroughRelay(echo.port(), RelayOptions{.tag = 7});
  UniqueFd open = ConnectThroughRelay(echo.port(), RelayOptions{.tag = 9});
  ASSERT_TRUE(done.valid() && open.valid());
  ::shutdown(done.get(), SHUT_WR);
  std::string rest;
  ASSERT_TRUE(RecvToEof(done.get(), &rest));
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(*closed);
    return tags->size() == 1;
  }));
  EXPECT_EQ((*tags)[0], 7u);
  StopLoop();
  std::lock_guard lock(*closed);
  EXPECT_EQ(*tags, (std::vector<uint64_t>{7, 9}));
}

// ---- a backend added while it connects (RelayOptions::connect_timeout) ----

// What the failure callback heard, across threads.
struct ConnectFailures {
  std::mutex mu;
  std::vector<std::pair<UniqueFd, Status>> heard;  // guarded by mu
  size_t count() {
    std::lock_guard lock(mu);
    return heard.size();
  }
  std::function<void(UniqueFd, Status)> Callback() {
    return [this](UniqueFd client, Status why) {
      std::lock_guard lock(mu);
      heard.emplace_back(std::move(client), std::move(why));
    };
  }
};

class RelayConnectingTest : public RelayTest {
 protected:
  // A client through the relay to 127.0.0.1:`port`, added while its
  // backend's connect is in progress, as the gateway adds them.
  UniqueFd ConnectingThroughRelay(uint16_t port, RelayOptions options) {
    auto client = ConnectTcp(kLoopback, front_port_, seconds(kIoTimeoutSeconds));
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return UniqueFd();
    auto accepted = AcceptTcp(front_, seconds(kIoTimeoutSeconds));
    EXPECT_TRUE(accepted.ok()) << accepted.status();
    auto backend = StartConnectTcp(kLoopback, port);
    EXPECT_TRUE(backend.ok()) << backend.status();
    if (!accepted.ok() || !backend.ok()) return UniqueFd();
    Status s = loop_->AddPrepared(std::move(*accepted), std::move(*backend), std::move(options));
    EXPECT_TRUE(s.ok()) << s;
    MakeBlocking(client->get());
    return std::move(*client);
  }
  // A port on 127.0.0.1 where nothing listens (it did a moment ago).
  uint16_t ClosedPort() {
    uint16_t port = 0;
    UniqueFd listener = ListenBackend(&port);
    return port;
  }
};

TEST_F(RelayConnectingTest, RelaysOnceConnectedWithWhatTheClientSentMeanwhile) {
  size_t closed = 0;
  StartLoop(RelayLoopOptions{.on_close = [&closed](uint64_t) { ++closed; }});
  uint16_t port = 0;
  UniqueFd listener = ListenBackend(&port);
  ConnectFailures failures;
  UniqueFd client = ConnectingThroughRelay(
      port, RelayOptions{.tag = 3, .connect_timeout = seconds(30), .on_connect_failed = failures.Callback()});
  ASSERT_TRUE(client.valid());
  ASSERT_TRUE(SendAll(client.get(), "sent before the backend answered"));
  UniqueFd backend = AcceptBackend(listener);
  ASSERT_TRUE(backend.valid());
  std::string got;
  ASSERT_TRUE(RecvExactly(backend.get(), 32, &got));
  EXPECT_EQ(got, "sent before the backend answered");
  ASSERT_TRUE(SendAll(backend.get(), "reply"));
  got.clear();
  ASSERT_TRUE(RecvExactly(client.get(), 5, &got));
  EXPECT_EQ(got, "reply");
  EXPECT_EQ(counters().connects_completed.load(), 1u);
  EXPECT_EQ(counters().connects_failed.load(), 0u);
  EXPECT_EQ(failures.count(), 0u);
  backend.reset();
  client.reset();
  ASSERT_TRUE(WaitIdle());
  StopLoop();
  EXPECT_EQ(closed, 1u);
}

TEST_F(RelayConnectingTest, ARefusedConnectGivesTheClientBackUnreadAndEndsWithoutOnClose) {
  size_t closed = 0;
  StartLoop(RelayLoopOptions{.on_close = [&closed](uint64_t) { ++closed; }});
  ConnectFailures failures;
  UniqueFd client = ConnectingThroughRelay(
      ClosedPort(), RelayOptions{.connect_timeout = seconds(30), .on_connect_failed = failures.Callback()});
  ASSERT_TRUE(client.valid());
  ASSERT_TRUE(SendAll(client.get(), "SSH-2.0-test"));
  ASSERT_TRUE(WaitFor([&] { return failures.count() == 1; }));
  std::lock_guard lock(failures.mu);
  auto& [returned, why] = failures.heard[0];
  EXPECT_EQ(why.code(), StatusCode::kUnavailable) << why;
  EXPECT_EQ(why.message(), "Connection refused");
  // The client's socket comes back open, with every byte the client sent.
  ASSERT_TRUE(returned.valid());
  MakeBlocking(returned.get());
  std::string got;
  ASSERT_TRUE(RecvExactly(returned.get(), 12, &got));
  EXPECT_EQ(got, "SSH-2.0-test");
  ASSERT_TRUE(SendAll(returned.get(), "still here"));
  got.clear();
  ASSERT_TRUE(RecvExactly(client.get(), 10, &got));
  EXPECT_EQ(got, "still here");
  EXPECT_EQ(counters().connects_failed.load(), 1u);
  EXPECT_EQ(counters().connects_completed.load(), 0u);
  EXPECT_EQ(counters().connections_active.load(), 0u);
  StopLoop();
  EXPECT_EQ(closed, 0u) << "on_close heard a connection that was never relayed";
}

TEST_F(RelayConnectingTest, AConnectNotAnsweredByItsTimeoutOnTheLoopsClockFails) {
  StartLoop(RelayLoopOptions{.clock = &clock_});
  // A listener whose accept queue is full drops new SYNs: a connect to it
  // stays in progress. Backlog 0 queues one connection, never accepted.
  uint16_t port = 0;
  auto listener = ListenTcp("127.0.0.1", 0, 0, &port);
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto queued = ConnectTcp(kLoopback, port, seconds(kIoTimeoutSeconds));
  ASSERT_TRUE(queued.ok()) << queued.status();
  ConnectFailures failures;
  UniqueFd client = ConnectingThroughRelay(
      port, RelayOptions{.idle_timeout = seconds(60), .connect_timeout = seconds(5),
                         .on_connect_failed = failures.Callback()});
  ASSERT_TRUE(client.valid());
  // A round trip through the loop's thread: it has adopted the connection
  // (at t = 0), which a connection still connecting leaves out of a hand-over.
  EXPECT_TRUE(loop_->HandOverIdle().empty()) << "a connection still connecting was handed over";
  // On loopback a connect that is answered is answered within connect(2).
  if (counters().connects_completed.load() != 0) {
    DSP_CANNOT_RUN_HERE("the kernel accepted a connection on a full backlog-0 listener "
                        "(tcp_abort_on_overflow or syncookies?); the connect timeout is not testable on loopback here");
  }

  clock_.Advance(milliseconds(4999));
  loop_->Wake();
  loop_->HandOverIdle();  // a round trip: the loop has looked at its clock since
  EXPECT_EQ(failures.count(), 0u) << "failed before its connect timeout";

  clock_.Advance(milliseconds(2));
  loop_->Wake();
  ASSERT_TRUE(WaitFor([&] { return failures.count() == 1; }))
      << "connects completed: " << counters().connects_completed.load();
  std::lock_guard lock(failures.mu);
  EXPECT_EQ(failures.heard[0].second.code(), StatusCode::kDeadlineExceeded) << failures.heard[0].second;
  EXPECT_EQ(failures.heard[0].second.message(), "timed out");
  EXPECT_TRUE(failures.heard[0].first.valid());
  EXPECT_EQ(counters().connects_failed.load(), 1u);
  EXPECT_EQ(counters().connections_active.load(), 0u);
  EXPECT_EQ(counters().idle_timeouts.load(), 0u);
}

TEST_F(RelayTest, NoDescriptorLeaks) {
  int before = CountOpenFds();
  {
    uint16_t backend_port = 0;
    UniqueFd backend_listener = ListenBackend(&backend_port);
    auto loop = RelayLoop::Create();
    ASSERT_TRUE(loop.ok());
    std::vector<UniqueFd> peers;
    for (int i = 0; i < 4; ++i) {
      auto client = ConnectTcp(kLoopback, front_port_, seconds(5));
      auto accepted = AcceptTcp(front_, seconds(5));
      auto backend = ConnectTcp(kLoopback, backend_port, seconds(5));
      ASSERT_TRUE(client.ok() && accepted.ok() && backend.ok());
      ASSERT_TRUE((*loop)->Add(std::move(*accepted), std::move(*backend), {}).ok());
      peers.push_back(std::move(*client));
      peers.push_back(AcceptBackend(backend_listener));
    }
    // Adopted or still pending, Stop closes them all, with their pipes.
    std::thread runner([&] { EXPECT_TRUE((*loop)->Run().ok()); });
    (*loop)->Stop();
    runner.join();
    EXPECT_EQ((*loop)->counters().connections_active.load(), 0u);
  }
  EXPECT_EQ(CountOpenFds(), before);
}

TEST_F(RelayTest, AddRejectsWhatIsNotAStreamSocket) {
  auto loop = RelayLoop::Create();
  ASSERT_TRUE(loop.ok());
  Status s = (*loop)->Add(UniqueFd(), UniqueFd(), {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;

  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd pr(p[0]), pw(p[1]);
  auto a = ConnectTcp(kLoopback, front_port_, seconds(5));
  ASSERT_TRUE(a.ok());
  s = (*loop)->Add(std::move(pr), std::move(*a), {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.message(), "relay: client descriptor is not a socket");

  UniqueFd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  auto b = ConnectTcp(kLoopback, front_port_, seconds(5));
  ASSERT_TRUE(b.ok());
  s = (*loop)->Add(std::move(*b), std::move(udp), {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.message(), "relay: backend socket is not a stream socket");
  EXPECT_EQ((*loop)->counters().connections_total.load(), 0u);
}

}  // namespace
}  // namespace dspool
