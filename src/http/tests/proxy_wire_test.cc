// ProxyServer at the wire: raw sockets on both sides (a scripted upstream,
// a client writing bytes), so framing, keep-alive, retries, timeouts and
// limits can be checked exactly. Loopback only; every read has a deadline
// (SO_RCVTIMEO), and nothing sleeps but the test that counts a quiet
// worker's wake-ups.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "base/clock.h"
#include "base/testing/cannot_run.h"
#include "base/testing/temp_dir.h"
#include "http/http1_parser.h"
#include "http/proxy.h"
#include "os/fs.h"

namespace dspool {
namespace {

constexpr uint32_t kLoopback = 0x7f000001;

void SetTimeout(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int ConnectTo(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(kLoopback);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  SetTimeout(fd, 10000);
  return fd;
}

void SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Reads more into buf; false at EOF, error or timeout.
bool ReadMore(int fd, std::string& buf) {
  char tmp[65536];
  ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
  if (n <= 0) return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

// True if the peer closes (EOF or reset) before the deadline, reading and
// dropping anything before.
bool SeesClose(int fd) {
  std::string ignored;
  for (;;) {
    char tmp[4096];
    ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

struct Message {
  int status = 0;           // responses
  std::string method;       // requests
  std::string head;         // as received
  std::string body;         // raw, framing included for chunked
  bool ended_by_close = false;
};

// Reads one message (request if `request`) from fd, using buf for what was
// read ahead. status -1 on failure.
Message ReadMessage(int fd, std::string& buf, bool request, bool no_body = false) {
  Message m;
  http1::Framing framing;
  size_t head_size = 0;
  for (;;) {
    if (request) {
      http1::RequestHead h;
      auto r = http1::ParseRequestHead(buf, 1 << 20, &h);
      if (r == http1::ParseResult::kComplete) {
        m.method = std::string(h.method);
        framing = h.framing;
        head_size = h.head_size;
        break;
      }
    } else {
      http1::ResponseHead h;
      auto r = http1::ParseResponseHead(buf, 1 << 20, &h);
      if (r == http1::ParseResult::kComplete) {
        m.status = h.status;
        framing = h.framing;
        head_size = h.head_size;
        if (h.status == 204 || h.status == 304 || h.status < 200) no_body = true;
        break;
      }
    }
    if (!ReadMore(fd, buf)) {
      m.status = -1;
      return m;
    }
  }
  m.head = buf.substr(0, head_size);
  buf.erase(0, head_size);
  if (no_body) return m;
  if (framing.chunked) {
    http1::ChunkedScanner s;
    for (;;) {
      size_t n = s.Scan(buf.data(), buf.size());
      m.body += buf.substr(0, n);
      buf.erase(0, n);
      if (s.done()) return m;
      if (s.failed() || !ReadMore(fd, buf)) {
        m.status = -1;
        return m;
      }
    }
  }
  if (framing.has_content_length) {
    while (buf.size() < framing.content_length) {
      if (!ReadMore(fd, buf)) {
        m.status = -1;
        return m;
      }
    }
    m.body = buf.substr(0, framing.content_length);
    buf.erase(0, framing.content_length);
    return m;
  }
  if (request) return m;
  while (ReadMore(fd, buf)) {
  }
  m.body = buf;
  buf.clear();
  m.ended_by_close = true;
  return m;
}

// A scripted upstream: each accepted connection runs handler(fd, index) on
// its own thread.
class RawUpstream {
 public:
  explicit RawUpstream(std::function<void(int fd, int index)> handler) : handler_(std::move(handler)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(kLoopback);
    bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    listen(fd_, 64);
    socklen_t len = sizeof(sa);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    acceptor_ = std::thread([this] {
      for (int index = 0;; ++index) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        SetTimeout(c, 10000);
        std::lock_guard lock(mu_);
        threads_.emplace_back([this, c, index] {
          handler_(c, index);
          close(c);
        });
      }
    });
  }
  ~RawUpstream() {
    shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    close(fd_);
    std::lock_guard lock(mu_);
    for (auto& t : threads_) t.join();
  }
  uint16_t port() const { return port_; }

 private:
  std::function<void(int, int)> handler_;
  int fd_;
  uint16_t port_;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

// Answers every request on a connection with 200 "echo:<method> <body size>"
// (Content-Length), until the client closes.
void EchoHandler(int fd, int) {
  std::string buf;
  for (;;) {
    Message m = ReadMessage(fd, buf, true);
    if (m.status < 0) return;
    std::string body = m.method + " " + std::to_string(m.body.size());
    SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  }
}

class Router : public ProxyRouter {
 public:
  ProxyRoute Decide(const Request& head) override {
    {
      std::lock_guard lock(mu);
      seen.push_back(head);
    }
    if (head.path == "/local") return ProxyLocal{};
    ProxyForward f;
    f.address = kLoopback;
    f.port = port;
    f.target = head.target;
    f.tag = 3;
    return f;
  }
  Response Serve(const Request& r) override { return Response{200, "text/plain", "local " + r.body, {}}; }
  void Activity(uint64_t) override { ++activity; }
  uint16_t port = 1;
  std::mutex mu;
  std::vector<Request> seen;
  std::atomic<int> activity{0};
};

class ProxyWireTest : public ::testing::Test {
 protected:
  void StartProxy(uint16_t upstream_port, ProxyOptions options = {}) {
    router_.port = upstream_port;
    auto p = ProxyServer::Create(router_, options);
    ASSERT_TRUE(p.ok());
    proxy_ = std::move(*p);
    auto port = proxy_->Listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    proxy_->Start(2);
  }
  void TearDown() override {
    if (proxy_) proxy_->Stop();
    upstream_.reset();
  }
  // One request on a new connection; the response.
  Message Once(const std::string& request) {
    int fd = ConnectTo(port_);
    SendAll(fd, request);
    std::string buf;
    Message m = ReadMessage(fd, buf, false);
    close(fd);
    return m;
  }

  RawUpstream& Upstream(std::function<void(int, int)> handler) {
    upstream_ = std::make_unique<RawUpstream>(std::move(handler));
    return *upstream_;
  }

  SimulatedClock clock_;  // for ProxyOptions::clock; outlives the proxy
  Router router_;
  std::unique_ptr<RawUpstream> upstream_;  // after the proxy stops: it holds kept-alive connections
  std::unique_ptr<ProxyServer> proxy_;
  uint16_t port_ = 0;
};

TEST_F(ProxyWireTest, ChunkedBodiesWithTrailersPassThroughUnchangedBothWays) {
  const std::string req_body = "4;x=y\r\nabcd\r\n3\r\nefg\r\n0\r\nChecksum: 1\r\n\r\n";
  const std::string res_body = "6\r\nhello \r\n5\r\nworld\r\n0\r\nDone: yes\r\n\r\n";
  std::string upstream_got;
  auto& up = Upstream([&](int fd, int) {
    std::string buf;
    Message m = ReadMessage(fd, buf, true);
    upstream_got = m.body;
    SendAll(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + res_body);
    ReadMessage(fd, buf, true);  // until the proxy lets go
  });
  StartProxy(up.port());
  int fd = ConnectTo(port_);
  // The head and the body in pieces, as a slow client sends them.
  SendAll(fd, "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + req_body.substr(0, 7));
  SendAll(fd, req_body.substr(7));
  std::string buf;
  Message m = ReadMessage(fd, buf, false);
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.body, res_body);
  close(fd);
  proxy_->Stop();
  EXPECT_EQ(upstream_got, req_body);
}

TEST_F(ProxyWireTest, HeadResponsesHaveNoBodyAndPipelinedRequestsAnswerInOrder) {
  auto& up = Upstream([](int fd, int) {
    std::string buf;
    for (;;) {
      Message m = ReadMessage(fd, buf, true);
      if (m.status < 0) return;
      if (m.method == "HEAD") SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
      else SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(m.method.size()) + "\r\n\r\n" + m.method);
    }
  });
  StartProxy(up.port());
  int fd = ConnectTo(port_);
  SendAll(fd,
          "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: a\r\n\r\n"
          "POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyzDELETE /4 HTTP/1.1\r\nHost: a\r\n\r\n");
  std::string buf;
  Message a = ReadMessage(fd, buf, false);
  Message b = ReadMessage(fd, buf, false, /*no_body=*/true);
  Message c = ReadMessage(fd, buf, false);
  Message d = ReadMessage(fd, buf, false);
  EXPECT_EQ(a.body, "GET");
  EXPECT_EQ(b.status, 200);
  EXPECT_NE(b.head.find("Content-Length: 100"), std::string::npos);
  EXPECT_EQ(c.body, "POST");
  EXPECT_EQ(d.body, "DELETE");
  EXPECT_EQ(buf, "") << "no body after the HEAD response";
  close(fd);
  EXPECT_EQ(proxy_->stats().upstream_connects, 1u);
  EXPECT_EQ(proxy_->stats().requests, 4u);
}

TEST_F(ProxyWireTest, ConnectionCloseAndHttp10) {
  auto& up = Upstream(EchoHandler);
  StartProxy(up.port());
  {
    int fd = ConnectTo(port_);
    SendAll(fd, "GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    std::string buf;
    Message m = ReadMessage(fd, buf, false);
    EXPECT_EQ(m.status, 200);
    EXPECT_NE(m.head.find("Connection: close"), std::string::npos);
    EXPECT_TRUE(SeesClose(fd));
    close(fd);
  }
  {
    int fd = ConnectTo(port_);
    SendAll(fd, "GET /a HTTP/1.0\r\n\r\n");
    std::string buf;
    Message m = ReadMessage(fd, buf, false);
    EXPECT_EQ(m.body, "GET 0");
    EXPECT_TRUE(SeesClose(fd));
    close(fd);
  }
  {
    int fd = ConnectTo(port_);
    std::string buf;
    for (int i = 0; i < 2; ++i) {
      SendAll(fd, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
      Message m = ReadMessage(fd, buf, false);
      EXPECT_EQ(m.body, "GET 0");
      EXPECT_NE(m.head.find("Connection: keep-alive"), std::string::npos);
    }
    close(fd);
  }
}

TEST_F(ProxyWireTest, AKeptAliveUpstreamThatClosesIsRetriedOnce) {
  // The first upstream connection answers one request, then reads the next
  // and closes without a word; the second answers everything.
  auto& up = Upstream([](int fd, int index) {
    std::string buf;
    if (index == 0) {
      Message m = ReadMessage(fd, buf, true);
      SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
      ReadMessage(fd, buf, true);
      return;
    }
    EchoHandler(fd, index);
  });
  StartProxy(up.port());
  int fd = ConnectTo(port_);
  std::string buf;
  SendAll(fd, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ReadMessage(fd, buf, false).body, "first");
  SendAll(fd, "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
  Message m = ReadMessage(fd, buf, false);
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.body, "POST 2");
  close(fd);
  EXPECT_EQ(proxy_->stats().upstream_connects, 2u);
  EXPECT_EQ(proxy_->stats().upstream_errors, 0u);
}

TEST_F(ProxyWireTest, AResponseWithoutLengthEndsAtCloseAndClosesTheClient) {
  auto& up = Upstream([](int fd, int) {
    std::string buf;
    ReadMessage(fd, buf, true);
    SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
  });
  StartProxy(up.port());
  int fd = ConnectTo(port_);
  SendAll(fd, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  std::string buf;
  Message m = ReadMessage(fd, buf, false);
  EXPECT_EQ(m.status, 200);
  EXPECT_TRUE(m.ended_by_close);
  EXPECT_EQ(m.body, "until the end");
  EXPECT_NE(m.head.find("Connection: close"), std::string::npos);
  close(fd);
}

TEST_F(ProxyWireTest, RefusesSmugglingAndMalformedRequestsWith400) {
  auto& up = Upstream(EchoHandler);
  StartProxy(up.port());
  const std::string bad[] = {
      "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
      "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
      "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x/y, chunked\r\n\r\n0\r\n\r\n",
      "GET /a HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n",
      "GET /a HTTP/1.1\r\nHost: a\r\nX: " + std::string(17 * 1024, 'a') + "\r\n\r\n",
      "GET /a HTTP/1.1\nHost: a\n\n",
      "GET /a HTTP/9.9\r\nHost: a\r\n\r\n",
      "GET\r\n\r\n",
      "GET /a/../b HTTP/1.1\r\nHost: a\r\n\r\n",
      "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (const std::string& text : bad) {
    int fd = ConnectTo(port_);
    SendAll(fd, text);
    std::string buf;
    Message m = ReadMessage(fd, buf, false);
    EXPECT_EQ(m.status, 400) << text.substr(0, 60);
    EXPECT_TRUE(SeesClose(fd));
    close(fd);
  }
}

TEST_F(ProxyWireTest, LocalBodiesOverTheLimitAre413AlsoChunked) {
  ProxyOptions options;
  options.max_local_body = 15;
  StartProxy(1, options);
  const std::string head = "POST /local HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(Once("POST /local HTTP/1.1\r\nHost: a\r\nContent-Length: 16\r\n\r\n0123456789abcdef").status, 413);
  EXPECT_EQ(Once(head + "6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n").status, 413);
  // The limit counts the framing: 3 bytes of data cannot carry a long
  // extension or long trailers past it.
  EXPECT_EQ(Once(head + "3;" + std::string(20, 'e') + "\r\nabc\r\n0\r\n\r\n").status, 413);
  EXPECT_EQ(Once(head + "3\r\nabc\r\n0\r\nX: " + std::string(20, 't') + "\r\n\r\n").status, 413);
  Message ok = Once(head + "3\r\nabc\r\n0\r\n\r\n");  // 13 bytes on the wire
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "local abc");
}

// Counts the request heads an upstream has received, so a client can wait
// until its request is under way before it sends the rest.
class HeadCounter {
 public:
  void Add() {
    std::lock_guard lock(mu_);
    ++heads_;
    cv_.notify_all();
  }
  // True once `n` heads have arrived (false after 10 s).
  bool WaitFor(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return heads_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int heads_ = 0;
};

TEST_F(ProxyWireTest, BrokenChunkedFramingInARequestIs400) {
  HeadCounter streamed_heads;
  auto& up = Upstream([&](int fd, int) {
    std::string buf;
    while (buf.find("\r\n\r\n") == std::string::npos && ReadMore(fd, buf)) {
    }
    if (buf.rfind("POST /streamed ", 0) == 0) streamed_heads.Add();
    while (ReadMore(fd, buf)) {  // until the proxy lets go
    }
  });
  StartProxy(up.port());
  const struct {
    const char* what;
    std::string rest;
  } cases[] = {
      {"bare LF in a size line", "5\nhello\r\n0\r\n\r\n"},
      {"bare LF after data", "5\r\nhello\n0\r\n\r\n"},
      {"bare LF in trailers", "0\r\nX: y\n\r\n"},
      {"an extension over the bound", "1;e=" + std::string(http1::kMaxChunkSizeLine, 'e') + "\r\nx\r\n0\r\n\r\n"},
      {"trailers over the bound", "0\r\nX: " + std::string(http1::kMaxHeadSize, 't') + "\r\n\r\n"},
  };
  int streamed = 0;
  for (const auto& c : cases) {
    // Read locally; forwarded at once; forwarded once the upstream has the
    // head and the first chunk.
    for (std::string path : {"/local", "/up", "/streamed"}) {
      int fd = ConnectTo(port_);
      SendAll(fd, "POST " + path + " HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
      if (path == "/streamed") {
        ASSERT_TRUE(streamed_heads.WaitFor(++streamed)) << c.what;
      }
      SendAll(fd, c.rest);
      std::string buf;
      EXPECT_EQ(ReadMessage(fd, buf, false).status, 400) << c.what << " " << path;
      EXPECT_TRUE(SeesClose(fd));
      close(fd);
    }
  }
}

TEST_F(ProxyWireTest, Http11NeedsOneHostHttp10AtMostOne) {
  auto& up = Upstream(EchoHandler);
  StartProxy(up.port());
  EXPECT_EQ(Once("GET /a HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(Once("GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status, 400);
  EXPECT_EQ(Once("GET /a HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n").status, 400);
  Message ok = Once("GET /a HTTP/1.0\r\n\r\n");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "GET 0");
}

TEST_F(ProxyWireTest, InterimResponsesGoToHttp11ClientsOnly) {
  auto& up = Upstream([](int fd, int) {
    std::string buf;
    for (;;) {
      if (ReadMessage(fd, buf, true).status < 0) return;
      SendAll(fd,
              "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
              "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  StartProxy(up.port());
  {
    int fd = ConnectTo(port_);
    SendAll(fd, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    std::string buf;
    EXPECT_EQ(ReadMessage(fd, buf, false).status, 103);
    EXPECT_EQ(ReadMessage(fd, buf, false).status, 100);
    Message m = ReadMessage(fd, buf, false);
    EXPECT_EQ(m.status, 200);
    EXPECT_EQ(m.body, "ok");
    close(fd);
  }
  {
    int fd = ConnectTo(port_);
    SendAll(fd, "GET /a HTTP/1.0\r\n\r\n");
    std::string all;
    while (ReadMore(fd, all)) {  // the answer, then the close
    }
    EXPECT_EQ(all.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << all;
    EXPECT_EQ(all.substr(all.size() - 4), "\r\nok");
    close(fd);
  }
}

TEST_F(ProxyWireTest, BrokenChunkedFramingFromTheUpstreamIs502OrAClose) {
  std::promise<void> client_has_first_chunk;
  auto& up = Upstream([&](int fd, int index) {
    std::string buf;
    ReadMessage(fd, buf, true);
    if (index == 0) {  // before the proxy sent the head: it can still answer 502
      SendAll(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n");
    } else {  // the response under way: all it can do is close
      SendAll(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
      client_has_first_chunk.get_future().wait_for(std::chrono::seconds(10));
      SendAll(fd, "0\r\nX: y\n\r\n");
    }
    ReadMessage(fd, buf, true);  // until the proxy lets go
  });
  StartProxy(up.port());
  EXPECT_EQ(Once("GET /a HTTP/1.1\r\nHost: a\r\n\r\n").status, 502);

  int fd = ConnectTo(port_);
  SendAll(fd, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
  std::string all;
  while (all.find("hello\r\n") == std::string::npos && ReadMore(fd, all)) {
  }
  EXPECT_EQ(all.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << all;
  client_has_first_chunk.set_value();
  EXPECT_TRUE(SeesClose(fd));
  close(fd);
  EXPECT_EQ(proxy_->stats().upstream_errors, 2u);
}

TEST_F(ProxyWireTest, HeaderReadAndIdleTimeoutsClose) {
  auto& up = Upstream(EchoHandler);
  ProxyOptions options;
  options.header_read_timeout = std::chrono::milliseconds(150);
  options.idle_timeout = std::chrono::milliseconds(150);
  StartProxy(up.port(), options);
  // Each timeout runs from a moment after t0: not closed sooner than 150 ms
  // after it.
  auto t0 = std::chrono::steady_clock::now();
  int slow = ConnectTo(port_);
  SendAll(slow, "GET /a HTTP/1.1\r\nHo");
  EXPECT_TRUE(SeesClose(slow));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, options.header_read_timeout);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  close(slow);

  int idle = ConnectTo(port_);
  std::string buf;
  t0 = std::chrono::steady_clock::now();
  SendAll(idle, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ReadMessage(idle, buf, false).status, 200);
  EXPECT_TRUE(SeesClose(idle));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, options.idle_timeout);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  close(idle);
}

// With an injected clock the idle timeout passes when that clock says so:
// a minute of it in no time, and not at 59 s.
TEST_F(ProxyWireTest, TimeoutsRunOnTheInjectedClock) {
  auto& up = Upstream(EchoHandler);
  ProxyOptions options;
  options.clock = &clock_;
  options.idle_timeout = std::chrono::seconds(60);
  StartProxy(up.port(), options);
  int fd = ConnectTo(port_);
  std::string buf;
  SendAll(fd, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ReadMessage(fd, buf, false).status, 200);
  clock_.Advance(std::chrono::seconds(59));
  proxy_->Wake();
  SendAll(fd, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ReadMessage(fd, buf, false).status, 200) << "still open at 59 s";
  clock_.Advance(std::chrono::seconds(61));
  proxy_->Wake();
  EXPECT_TRUE(SeesClose(fd)) << "closed once the injected clock passed the idle timeout";
  close(fd);
}

TEST_F(ProxyWireTest, MaxConnections) {
  auto& up = Upstream(EchoHandler);
  ProxyOptions options;
  options.max_connections = 1;
  StartProxy(up.port(), options);
  int first = ConnectTo(port_);
  std::string buf;
  SendAll(first, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ReadMessage(first, buf, false).status, 200);
  int second = ConnectTo(port_);
  ASSERT_GE(second, 0);
  EXPECT_TRUE(SeesClose(second));
  close(second);
  EXPECT_EQ(proxy_->stats().connections_accepted, 1u);
  SendAll(first, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ReadMessage(first, buf, false).status, 200);
  close(first);
}

TEST_F(ProxyWireTest, UnlistenKeepsOpenConnectionsAndStopClosesThem) {
  auto& up = Upstream(EchoHandler);
  StartProxy(up.port());
  int fd = ConnectTo(port_);
  std::string buf;
  SendAll(fd, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ReadMessage(fd, buf, false).status, 200);
  proxy_->Unlisten(port_);
  EXPECT_LT(ConnectTo(port_), 0) << "nothing listens any more";
  SendAll(fd, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ReadMessage(fd, buf, false).body, "GET 0");
  // A second listener, an idle connection and one mid-request on it.
  auto again = proxy_->Listen("127.0.0.1", 0);
  ASSERT_TRUE(again.ok());
  int mid = ConnectTo(*again);
  SendAll(mid, "GET /a HTTP/1.1\r\nHo");
  proxy_->Stop();
  EXPECT_TRUE(SeesClose(fd));
  EXPECT_TRUE(SeesClose(mid));
  EXPECT_EQ(proxy_->stats().connections_active, 0u);
  close(fd);
  close(mid);
}

// The 101 tunnel over TLS, with an OpenSSL client: bytes both ways, then
// the upstream closes and the client gets a close_notify, not a bare FIN.
TEST_F(ProxyWireTest, UpgradeTunnelOverTlsEndsWithCloseNotify) {
  TempDir dir;
  std::string cert = dir.path() + "/cert.pem", key = dir.path() + "/key.pem";
  std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=pool -keyout " + key + " -out " +
                    cert + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) DSP_CANNOT_RUN_HERE("`openssl req` failed: is openssl installed?");
  auto& up = Upstream([](int fd, int) {
    std::string buf;
    ReadMessage(fd, buf, true);
    SendAll(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    while (buf.size() < 5 && ReadMore(fd, buf)) {
    }
    SendAll(fd, "echo:" + buf);  // then closes
  });
  StartProxy(up.port());
  auto tls_port = proxy_->ListenTls("127.0.0.1", 0, TlsCertificate{*ReadFile(cert), *ReadFile(key)});
  ASSERT_TRUE(tls_port.ok()) << tls_port.status();

  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  int fd = ConnectTo(*tls_port);
  SSL_set_fd(ssl, fd);
  ASSERT_EQ(SSL_connect(ssl), 1);
  std::string req = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello";
  ASSERT_EQ(SSL_write(ssl, req.data(), static_cast<int>(req.size())), static_cast<int>(req.size()));
  std::string got;
  char tmp[4096];
  int r;
  while ((r = SSL_read(ssl, tmp, sizeof(tmp))) > 0) got.append(tmp, static_cast<size_t>(r));
  EXPECT_EQ(SSL_get_error(ssl, r), SSL_ERROR_ZERO_RETURN) << "the tunnel ends with close_notify";
  EXPECT_NE(got.find("101 Switching Protocols"), std::string::npos);
  EXPECT_EQ(got.substr(got.size() - 10), "echo:hello");
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(fd);
  EXPECT_EQ(proxy_->stats().tunnels, 1u);
}

TEST_F(ProxyWireTest, ExpectContinueLocallyAndThroughTheUpstream) {
  auto& up = Upstream([](int fd, int) {
    std::string buf;
    while (buf.find("\r\n\r\n") == std::string::npos && ReadMore(fd, buf)) {
    }
    SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n");
    buf.erase(0, buf.find("\r\n\r\n") + 4);
    while (buf.size() < 4 && ReadMore(fd, buf)) {
    }
    SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(buf.size()) + "\r\n\r\n" + buf);
    ReadMore(fd, buf);
  });
  StartProxy(up.port());
  for (std::string path : {"/local", "/up"}) {
    int fd = ConnectTo(port_);
    SendAll(fd, "POST " + path + " HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    std::string buf;
    Message cont = ReadMessage(fd, buf, false);
    EXPECT_EQ(cont.status, 100) << path;
    SendAll(fd, "body");
    Message m = ReadMessage(fd, buf, false);
    EXPECT_EQ(m.status, 200) << path;
    EXPECT_EQ(m.body, path == "/local" ? "local body" : "body");
    close(fd);
  }
}

TEST_F(ProxyWireTest, AQuietTunnelIsClosedAfterTunnelIdleTimeout) {
  std::atomic<bool> upstream_saw_close{false};
  auto& up = Upstream([&](int fd, int) {
    std::string buf;
    ReadMessage(fd, buf, true);
    SendAll(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    upstream_saw_close = SeesClose(fd);
  });
  ProxyOptions options;
  options.tunnel_idle_timeout = std::chrono::milliseconds(150);
  StartProxy(up.port(), options);
  int fd = ConnectTo(port_);
  auto t0 = std::chrono::steady_clock::now();  // before the tunnel's last traffic (the 101)
  SendAll(fd, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  std::string buf;
  EXPECT_EQ(ReadMessage(fd, buf, false).status, 101);
  EXPECT_TRUE(SeesClose(fd));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, options.tunnel_idle_timeout);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  close(fd);
  upstream_.reset();  // joins the upstream's thread
  EXPECT_TRUE(upstream_saw_close);
  EXPECT_GE(router_.activity.load(), 1);
}

TEST_F(ProxyWireTest, RequestFieldsReachTheRouter) {
  auto& up = Upstream(EchoHandler);
  StartProxy(up.port());
  Message m = Once("GET /a/b?x=1&y=two HTTP/1.1\r\nHost: h\r\nX-Rep: 1\r\nx-rep: 2\r\n\r\n");
  EXPECT_EQ(m.status, 200);
  std::lock_guard lock(router_.mu);
  ASSERT_EQ(router_.seen.size(), 1u);
  const Request& r = router_.seen[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/a/b?x=1&y=two");
  EXPECT_EQ(r.path, "/a/b");
  EXPECT_EQ(r.query.at("y"), "two");
  EXPECT_EQ(r.headers.at("host"), "h");
  EXPECT_EQ(r.headers.at("x-rep"), "1, 2");
  EXPECT_EQ(r.peer.address, "127.0.0.1");
  EXPECT_EQ(r.listener_tag, std::to_string(port_));
}

// Voluntary context switches of this process's threads named web-proxy-*:
// how often the proxy's workers went to sleep.
uint64_t ProxyWorkerSleeps() {
  uint64_t total = 0;
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::string task = std::string("/proc/self/task/") + e->d_name;
    std::ifstream comm(task + "/comm");
    std::string name;
    if (!std::getline(comm, name) || name.rfind("web-proxy-", 0) != 0) continue;
    std::ifstream status(task + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) total += std::stoull(line.substr(line.find(':') + 1));
    }
  }
  closedir(dir);
  return total;
}

TEST_F(ProxyWireTest, WorkersWithOnlyIdleConnectionsSleepUntilADeadline) {
  auto& up = Upstream(EchoHandler);
  StartProxy(up.port());  // idle timeouts in minutes
  // One kept-alive client on each worker (round robin), idle after a request.
  int clients[2];
  for (int& fd : clients) {
    fd = ConnectTo(port_);
    std::string buf;
    SendAll(fd, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(ReadMessage(fd, buf, false).status, 200);
  }
  uint64_t before = ProxyWorkerSleeps();
  ASSERT_GT(before, 0u) << "no thread named web-proxy-*";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // A deadline scan every 20 ms would be about 15 wake-ups per worker.
  EXPECT_LE(ProxyWorkerSleeps() - before, 4u);
  for (int fd : clients) close(fd);
}

}  // namespace
}  // namespace dspool
