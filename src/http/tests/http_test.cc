// HttpServer and Client over real sockets: Unix sockets in a fresh temp dir, TCP
// on 127.0.0.1 port 0. Raw POSIX sockets play the misbehaving clients.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "base/testing/temp_dir.h"
#include "http/client.h"
#include "http/server.h"

namespace dspool {
namespace {

using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kTimeout = 10s;

// The request as the handler saw it, method, path and body joined.
Response Echo(const Request& r) {
  Response response;
  response.content_type = "text/plain";
  response.body = r.method + " " + r.path + " " + r.body;
  response.headers.emplace_back("X-Listener", r.listener_tag);
  return response;
}

// ---- A raw client, for what Client never sends. ----

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class RawConnection {
 public:
  static std::unique_ptr<RawConnection> Unix(const std::string& path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return nullptr;
    }
    return std::unique_ptr<RawConnection>(new RawConnection(fd));
  }

  static std::unique_ptr<RawConnection> Tcp(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return nullptr;
    }
    return std::unique_ptr<RawConnection>(new RawConnection(fd));
  }

  ~RawConnection() { close(fd_); }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One response; nullopt if the connection ends first. `head`: the
  // response to a HEAD request, whose Content-Length has no body behind it.
  std::optional<RawResponse> Read(bool head = false) {
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    RawResponse r;
    std::string header = buffer_.substr(0, end + 2);
    buffer_.erase(0, end + 4);
    r.status = std::stoi(header.substr(9, 3));
    size_t pos = header.find("\r\n") + 2;
    while (pos < header.size()) {
      size_t eol = header.find("\r\n", pos);
      std::string line = header.substr(pos, eol - pos);
      pos = eol + 2;
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    size_t length = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    if (head) length = 0;
    while (buffer_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return r;
  }

  // True once the peer has closed (everything sent before is discarded).
  bool ReadsEof() {
    buffer_.clear();
    while (Fill()) buffer_.clear();
    return eof_;
  }

 private:
  explicit RawConnection(int fd) : fd_(fd) {
    timeval tv{.tv_sec = 10, .tv_usec = 0};  // a hung test fails instead of hanging
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  bool Fill() {
    char chunk[4096];
    ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return true;
    }
    eof_ = n == 0 || errno == ECONNRESET;
    return false;
  }

  int fd_;
  std::string buffer_;
  bool eof_ = false;
};

// ---- Fixture: a temp dir and one server. ----

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(tmp_.path().empty()); }

  HttpServer& MakeServer(Handler handler = Echo, HttpServerOptions options = {}) {
    server_ = std::make_unique<HttpServer>(std::move(handler), options);
    return *server_;
  }

  // A started server with a Unix listener "api.sock" tagged "local".
  Endpoint StartUnix(Handler handler = Echo, HttpServerOptions options = {}) {
    HttpServer& server = MakeServer(std::move(handler), options);
    Status status = server.ListenUnix(tmp_ / "api.sock", 0600, "local");
    EXPECT_TRUE(status.ok()) << status;
    server.Start(2);
    return Endpoint::Unix(tmp_ / "api.sock");
  }

  static Result<Response> Get(const Endpoint& endpoint, const std::string& target) {
    return Client::Do(endpoint, "GET", target, "", {}, kTimeout);
  }

  TempDir tmp_{"dspool-http"};  // declared first: outlives server_
  std::unique_ptr<HttpServer> server_;
};

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode;
}

TEST_F(HttpTest, UnixRoundTripCarriesEverything) {
  std::mutex mu;
  std::optional<Request> seen;
  Endpoint endpoint = StartUnix([&](const Request& r) {
    std::lock_guard<std::mutex> lock(mu);
    seen = r;
    Response response = JsonResponse(201, R"({"ok":true})");
    response.headers.emplace_back("X-Thing", "yes");
    return response;
  });

  Result<Response> r = Client::Do(endpoint, "POST", "/v1//pools/a%20b?x=1&y=two+words", "{\"n\":1}",
                                  {{"X-Custom", "v"}}, kTimeout);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(r->body, R"({"ok":true})");
  EXPECT_NE(std::find(r->headers.begin(), r->headers.end(), std::pair<std::string, std::string>("x-thing", "yes")),
            r->headers.end());

  std::lock_guard<std::mutex> lock(mu);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->method, "POST");
  EXPECT_EQ(seen->target, "/v1//pools/a%20b?x=1&y=two+words");
  EXPECT_EQ(seen->path, "/v1/pools/a b");
  EXPECT_EQ(seen->query, (std::map<std::string, std::string>{{"x", "1"}, {"y", "two words"}}));
  EXPECT_EQ(seen->headers["x-custom"], "v");
  EXPECT_EQ(seen->headers["content-type"], "application/json");
  EXPECT_EQ(seen->body, "{\"n\":1}");
  EXPECT_EQ(seen->listener_tag, "local");
  EXPECT_TRUE(seen->peer.is_unix);
  EXPECT_EQ(seen->peer.uid, getuid());
  EXPECT_EQ(seen->peer.gid, getgid());
  EXPECT_EQ(seen->peer.pid, getpid());
}

TEST_F(HttpTest, TcpRoundTrip) {
  std::mutex mu;
  Peer peer;
  HttpServer& server = MakeServer([&](const Request& r) {
    std::lock_guard<std::mutex> lock(mu);
    peer = r.peer;
    return Echo(r);
  });
  Result<uint16_t> port = server.ListenTcp("127.0.0.1", 0, "public");
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_NE(*port, 0);
  server.Start(2);

  Result<Response> r = Client::Do(Endpoint::Tcp("127.0.0.1", *port), "PUT", "/x", "data", {}, kTimeout);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "text/plain");
  EXPECT_EQ(r->body, "PUT /x data");

  std::lock_guard<std::mutex> lock(mu);
  EXPECT_FALSE(peer.is_unix);
  EXPECT_EQ(peer.address, "127.0.0.1");
  EXPECT_NE(peer.port, 0);

  Result<uint16_t> taken = server.ListenTcp("127.0.0.1", *port, "again");
  EXPECT_EQ(taken.status().code(), StatusCode::kUnavailable) << taken.status();
  EXPECT_EQ(server.ListenTcp("not-an-ip", 0, "bad").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(HttpTest, SocketFileGetsTheRequestedMode) {
  HttpServer& server = MakeServer();
  for (mode_t mode : {0600, 0660, 0666}) {
    std::string path = tmp_ / ("m" + std::to_string(mode) + ".sock");
    ASSERT_TRUE(server.ListenUnix(path, mode, path).ok());
    EXPECT_TRUE(S_ISSOCK(ModeOf(path)));
    EXPECT_EQ(ModeOf(path) & 0777, mode) << path;
  }
}

TEST_F(HttpTest, StaleSocketIsReplacedButNotALiveOneOrAFile) {
  // A socket file whose owner is gone.
  std::string path = tmp_ / "api.sock";
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  close(fd);
  ASSERT_TRUE(S_ISSOCK(ModeOf(path)));

  Endpoint endpoint = StartUnix();
  Result<Response> r = Get(endpoint, "/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);

  // A live one is left alone.
  HttpServer second(Echo, {});
  Status status = second.ListenUnix(path, 0600, "x");
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status;
  EXPECT_TRUE(Get(endpoint, "/").ok());

  // A regular file is never replaced.
  std::string file = tmp_ / "data.txt";
  std::ofstream(file) << "precious";
  status = second.ListenUnix(file, 0600, "y");
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find(file), std::string::npos);
  std::ifstream in(file);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST_F(HttpTest, DuplicateTagIsRefused) {
  HttpServer& server = MakeServer();
  ASSERT_TRUE(server.ListenUnix(tmp_ / "a.sock", 0600, "t").ok());
  EXPECT_EQ(server.ListenUnix(tmp_ / "b.sock", 0600, "t").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(server.ListenTcp("127.0.0.1", 0, "t").status().code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "b.sock"));
}

TEST_F(HttpTest, BodyOverTheLimitGets413) {
  std::atomic<int> calls{0};
  HttpServerOptions options;
  options.max_body_bytes = 1024;
  Endpoint endpoint = StartUnix(
      [&](const Request& r) {
        ++calls;
        return Echo(r);
      },
      options);

  Result<Response> r = Client::Do(endpoint, "POST", "/", std::string(1024, 'a'), {}, kTimeout);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);

  r = Client::Do(endpoint, "POST", "/", std::string(1025, 'a'), {}, kTimeout);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("\"code\":\"ResourceExhausted\""), std::string::npos) << r->body;
  EXPECT_EQ(calls, 1);
}

TEST_F(HttpTest, LargeBodyOverTheDefaultLimitGets413OnBothTransports) {
  Endpoint unix_endpoint = StartUnix();
  Result<uint16_t> port = server_->ListenTcp("127.0.0.1", 0, "tcp");
  ASSERT_TRUE(port.ok());
  // Several times the limit: the server answers before reading it all.
  std::string body(8 << 20, 'z');
  for (const Endpoint& endpoint : {unix_endpoint, Endpoint::Tcp("127.0.0.1", *port)}) {
    Result<Response> r = Client::Do(endpoint, "POST", "/", body, {}, kTimeout);
    ASSERT_TRUE(r.ok()) << endpoint.ToString() << ": " << r.status();
    EXPECT_EQ(r->status, 413) << endpoint.ToString();
  }
}

TEST_F(HttpTest, MalformedRequestGets400WithJsonError) {
  StartUnix();
  for (std::string bad : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
                          "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "GET /a/../b HTTP/1.1\r\n\r\n"}) {
    auto c = RawConnection::Unix(tmp_ / "api.sock");
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->Send(bad));
    std::optional<RawResponse> r = c->Read();
    ASSERT_TRUE(r.has_value()) << bad;
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_EQ(r->headers["content-type"], "application/json");
    EXPECT_EQ(r->body.rfind(R"({"error":{"code":"InvalidArgument","message":")", 0), 0u) << r->body;
    EXPECT_TRUE(c->ReadsEof()) << bad;
  }
}

TEST_F(HttpTest, DotDotPathGets400AndNeverReachesTheHandler) {
  std::atomic<int> calls{0};
  Endpoint endpoint = StartUnix([&](const Request& r) {
    ++calls;
    return Echo(r);
  });
  for (std::string target : {"/a/../b", "/a/%2e%2E/b", "/..", "/a/..%2Fetc"}) {
    Result<Response> r = Get(endpoint, target);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 400) << target;
    EXPECT_NE(r->body.find(".."), std::string::npos) << r->body;
  }
  EXPECT_EQ(calls, 0);
}

TEST_F(HttpTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartUnix();
  auto c = RawConnection::Unix(tmp_ / "api.sock");
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> r = c->Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /one ");
  EXPECT_EQ(r->headers["x-listener"], "local");
  EXPECT_EQ(r->headers["content-length"], "9");

  // Pipelined: two at once.
  ASSERT_TRUE(c->Send("POST /two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\n\r\n"));
  r = c->Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "POST /two abc");
  r = c->Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "GET /three ");

  ASSERT_TRUE(c->Send("GET /last HTTP/1.1\r\nConnection: close\r\n\r\n"));
  r = c->Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "GET /last ");
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_TRUE(c->ReadsEof());

  server_->Stop();  // a response is counted once its write completes
  HttpServerStats stats = server_->stats();
  EXPECT_EQ(stats.connections_accepted, 1u);
  EXPECT_EQ(stats.requests, 4u);
}

TEST_F(HttpTest, HeadGetsHeadersWithoutBody) {
  StartUnix();
  auto c = RawConnection::Unix(tmp_ / "api.sock");
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Send("HEAD /h HTTP/1.1\r\n\r\n"));
  std::optional<RawResponse> r = c->Read(/*head=*/true);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->headers["content-length"], "8");  // "HEAD /h "
  // Had a body been sent, it would show up in front of this response.
  ASSERT_TRUE(c->Send("GET /next HTTP/1.1\r\n\r\n"));
  r = c->Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /next ");
}

TEST_F(HttpTest, ExpectContinueAndChunkedBodies) {
  StartUnix();
  auto c = RawConnection::Unix(tmp_ / "api.sock");
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Send("POST /e HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  std::optional<RawResponse> r = c->Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 100);
  ASSERT_TRUE(c->Send("hello"));
  r = c->Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "POST /e hello");

  ASSERT_TRUE(c->Send("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
  r = c->Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "POST /c abcde");
}

TEST_F(HttpTest, UnlistenRemovesTheSocketAndRefusesNewConnections) {
  Endpoint endpoint = StartUnix();
  ASSERT_TRUE(server_->ListenUnix(tmp_ / "other.sock", 0600, "other").ok());
  ASSERT_TRUE(Get(endpoint, "/").ok());

  ASSERT_TRUE(server_->Unlisten("local").ok());
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "api.sock"));
  Result<Response> r = Get(endpoint, "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("unix:" + tmp_ / "api.sock"), std::string::npos) << r.status();
  EXPECT_EQ(server_->Unlisten("local").code(), StatusCode::kNotFound);

  r = Get(Endpoint::Unix(tmp_ / "other.sock"), "/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);

  // The tag is free again.
  ASSERT_TRUE(server_->ListenUnix(tmp_ / "api.sock", 0600, "local").ok());
  EXPECT_TRUE(Get(endpoint, "/").ok());
}

TEST_F(HttpTest, UnlistenClosesIdleConnectionsAndLetsInFlightRequestsFinish) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Endpoint endpoint = StartUnix([&entered, released](const Request& r) {
    if (r.path == "/slow") {
      entered.set_value();
      released.wait();
    }
    return Echo(r);
  });
  auto idle = RawConnection::Unix(tmp_ / "api.sock");
  ASSERT_TRUE(idle);
  ASSERT_TRUE(idle->Send("GET / HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(idle->Read().has_value());

  auto slow = std::async(std::launch::async, [&] { return Get(endpoint, "/slow"); });
  entered.get_future().wait();
  ASSERT_TRUE(server_->Unlisten("local").ok());
  EXPECT_TRUE(idle->ReadsEof());
  release.set_value();
  Result<Response> r = slow.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "GET /slow ");
}

TEST_F(HttpTest, ClientReportsAMissingSocketAsUnavailable) {
  std::string path = tmp_ / "nobody-home.sock";
  Result<Response> r = Get(Endpoint::Unix(path), "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("unix:" + path), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("No such file or directory"), std::string::npos) << r.status();
}

TEST_F(HttpTest, ClientReportsARefusedTcpPortAsUnavailable) {
  // Take a free port, then let it go: nothing listens there.
  uint16_t port;
  {
    HttpServer server(Echo, {});
    Result<uint16_t> bound = server.ListenTcp("127.0.0.1", 0, "t");
    ASSERT_TRUE(bound.ok());
    port = *bound;
  }
  Result<Response> r = Get(Endpoint::Tcp("127.0.0.1", port), "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("tcp:127.0.0.1:" + std::to_string(port)), std::string::npos);
}

TEST_F(HttpTest, ClientTimesOut) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Endpoint endpoint = StartUnix([released](const Request& r) {
    released.wait();
    return Echo(r);
  });
  const auto start = std::chrono::steady_clock::now();
  Result<Response> r = Client::Do(endpoint, "GET", "/", "", {}, 100ms);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  release.set_value();
  server_->Stop();  // waits for the handler, before `release` goes
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_NE(r.status().message().find(endpoint.ToString()), std::string::npos) << r.status();
  EXPECT_GE(elapsed, 100ms) << "gave up before the timeout";
}

TEST_F(HttpTest, ClientRejectsBadInputWithoutSending) {
  Endpoint endpoint = Endpoint::Unix(tmp_ / "api.sock");
  EXPECT_EQ(Client::Do(endpoint, "GE T", "/", "", {}, kTimeout).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Client::Do(endpoint, "GET", "/a b", "", {}, kTimeout).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Client::Do(endpoint, "GET", "/", "", {{"X", "a\r\nInjected: 1"}}, kTimeout).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(HttpTest, HandlerThatThrowsGets500AndTheConnectionLivesOn) {
  Endpoint endpoint = StartUnix([](const Request& r) -> Response {
    if (r.path == "/std") throw std::runtime_error("secret detail");
    if (r.path == "/int") throw 42;
    if (r.path == "/status") return JsonResponse(42, "{}");
    if (r.path == "/inject") return Response{.headers = {{"X", "a\r\nSet-Cookie: x"}}};
    return Echo(r);
  });
  auto c = RawConnection::Unix(tmp_ / "api.sock");
  ASSERT_TRUE(c);
  for (std::string path : {"/std", "/int", "/status", "/inject"}) {
    ASSERT_TRUE(c->Send("GET " + path + " HTTP/1.1\r\n\r\n"));
    std::optional<RawResponse> r = c->Read();
    ASSERT_TRUE(r.has_value()) << path;
    EXPECT_EQ(r->status, 500) << path;
    EXPECT_EQ(r->body, R"({"error":{"code":"Internal","message":"internal error"}})");
    EXPECT_EQ(r->headers.count("set-cookie"), 0u);
  }
  ASSERT_TRUE(c->Send("GET /fine HTTP/1.1\r\n\r\n"));
  std::optional<RawResponse> r = c->Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpTest, QueryIsDecoded) {
  std::mutex mu;
  std::map<std::string, std::string> query;
  Endpoint endpoint = StartUnix([&](const Request& r) {
    std::lock_guard<std::mutex> lock(mu);
    query = r.query;
    return Echo(r);
  });
  ASSERT_TRUE(Get(endpoint, "/q?name=a%2Fb&space=x+y&pct=100%25&flag&name2=%C3%A9").ok());
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(query, (std::map<std::string, std::string>{
                       {"name", "a/b"}, {"space", "x y"}, {"pct", "100%"}, {"flag", ""}, {"name2", "\xC3\xA9"}}));
}

TEST_F(HttpTest, StopReturnsPromptlyWithAnIdleKeepAliveConnection) {
  StartUnix();  // idle_timeout is the default 60 s
  auto c = RawConnection::Unix(tmp_ / "api.sock");
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Send("GET / HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(c->Read().has_value());

  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(c->ReadsEof());
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "api.sock"));
  server_->Stop();  // idempotent
  EXPECT_EQ(server_->ListenUnix(tmp_ / "late.sock", 0600, "late").code(), StatusCode::kFailedPrecondition);
}

TEST_F(HttpTest, SilentClientIsCutOffAfterTheHeaderTimeout) {
  HttpServerOptions options;
  options.header_read_timeout = 200ms;
  StartUnix(Echo, options);
  const auto start = std::chrono::steady_clock::now();
  auto c = RawConnection::Unix(tmp_ / "api.sock");
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Send("GET / HTTP/1.1\r\n"));  // and never the rest
  EXPECT_TRUE(c->ReadsEof());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms) << "cut off before the header timeout";
}

TEST_F(HttpTest, ConnectionsOverTheLimitAreClosed) {
  HttpServerOptions options;
  options.max_connections = 1;
  StartUnix(Echo, options);
  auto first = RawConnection::Unix(tmp_ / "api.sock");
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Send("GET / HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(first->Read().has_value());  // now it is surely counted

  auto second = RawConnection::Unix(tmp_ / "api.sock");
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->ReadsEof());
  EXPECT_EQ(server_->stats().connections_refused, 1u);
  EXPECT_EQ(server_->stats().connections_active, 1u);
}

TEST_F(HttpTest, ListenersComeAndGoWhileRunning) {
  HttpServer& server = MakeServer();
  server.Start(1);
  ASSERT_TRUE(server.ListenUnix(tmp_ / "late.sock", 0600, "late").ok());
  EXPECT_TRUE(Get(Endpoint::Unix(tmp_ / "late.sock"), "/").ok());

  HttpServer idle(Echo, {});  // never started
  ASSERT_TRUE(idle.ListenUnix(tmp_ / "idle.sock", 0600, "idle").ok());
  ASSERT_TRUE(idle.Unlisten("idle").ok());
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "idle.sock"));
}

TEST_F(HttpTest, ConcurrentClientsAllSucceed) {
  Endpoint unix_endpoint = StartUnix();
  Result<uint16_t> port = server_->ListenTcp("127.0.0.1", 0, "tcp");
  ASSERT_TRUE(port.ok());
  Endpoint tcp_endpoint = Endpoint::Tcp("127.0.0.1", *port);

  constexpr int kThreads = 8;
  constexpr int kRequests = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const Endpoint& endpoint = t % 2 ? tcp_endpoint : unix_endpoint;
      for (int i = 0; i < kRequests; ++i) {
        std::string body = std::to_string(t) + "-" + std::to_string(i);
        Result<Response> r = Client::Do(endpoint, "POST", "/c", body, {}, kTimeout);
        if (r.ok() && r->status == 200 && r->body == "POST /c " + body) ++ok;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ok, kThreads * kRequests);
  server_->Stop();  // a response is counted once its write completes
  EXPECT_EQ(server_->stats().requests, static_cast<uint64_t>(kThreads * kRequests));
}

}  // namespace
}  // namespace dspool
