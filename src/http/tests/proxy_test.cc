// ProxyServer on loopback: an HttpServer as the upstream, Beast clients as
// the users, a self-signed certificate made with openssl for TLS.
#include "http/proxy.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "base/testing/cannot_run.h"
#include "base/testing/temp_dir.h"
#include "http/server.h"
#include "os/fs.h"

namespace dspool {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

constexpr uint32_t kLoopback = 0x7f000001;

// Routes: /local → ProxyLocal; /deny → 403 at once; /gone → an upstream
// that is not there (the proxy's 502), /gone/answered → the same, answered
// by the router's Unreachable; /hold → held (for hold_for, else 504) until
// `released`, then forwarded; everything else → the upstream, with a
// token header added and the cookie removed.
class TestRouter : public ProxyRouter {
 public:
  explicit TestRouter(uint16_t upstream_port) : upstream_port_(upstream_port) {}
  ProxyRoute Decide(const Request& head) override {
    if (head.path == "/local") return ProxyLocal{};
    if (head.path == "/deny") return ProxyReply{Response{403, "text/plain", "no\n", {}}};
    if (head.path == "/hold" && !released) {
      ++holds;
      return ProxyHold{hold_for, Response{504, "text/plain", "still waiting\n", {}}};
    }
    ProxyForward f;
    f.address = kLoopback;
    f.port = head.path.starts_with("/gone") ? dead_port : upstream_port_;
    f.target = head.target;
    f.set_headers = {{"Authorization", "token secret"}};
    f.remove_headers = {"cookie"};
    f.tag = 7;
    return f;
  }
  Response Serve(const Request& request) override {
    return Response{200, "text/plain", "local got " + std::to_string(request.body.size()) + " bytes", {}};
  }
  void Activity(uint64_t tag) override {
    std::lock_guard lock(mu);
    activity.push_back(tag);
  }
  std::optional<Response> Unreachable(const Request& head, const ProxyForward& forward) override {
    if (head.path != "/gone/answered") return std::nullopt;
    return Response{503, "text/plain", "port " + std::to_string(forward.port) + " is not there, tag " +
                                           std::to_string(forward.tag), {{"Retry-After", "1"}}};
  }
  uint16_t dead_port = 1;  // nothing listens on port 1
  std::atomic<bool> released{false};
  std::atomic<int> holds{0};  // Decide calls that held /hold
  std::chrono::milliseconds hold_for{std::chrono::minutes(5)};
  std::mutex mu;
  std::vector<uint64_t> activity;

 private:
  uint16_t upstream_port_;
};

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = std::make_unique<HttpServer>(
        [this](const Request& r) {
          ++upstream_requests_;
          std::string auth = r.headers.count("authorization") ? r.headers.at("authorization") : "-";
          std::string cookie = r.headers.count("cookie") ? r.headers.at("cookie") : "-";
          if (r.path == "/big") return Response{200, "application/octet-stream", std::string(3 << 20, 'x'), {}};
          return Response{200, "text/plain",
                          r.method + " " + r.target + " auth=" + auth + " cookie=" + cookie +
                              " body=" + std::to_string(r.body.size()),
                          {}};
        },
        HttpServerOptions{.max_body_bytes = 64 << 20});
    auto port = upstream_->ListenTcp("127.0.0.1", 0, "upstream");
    ASSERT_TRUE(port.ok()) << port.status();
    upstream_->Start(2);
    router_ = std::make_unique<TestRouter>(*port);
    auto proxy = ProxyServer::Create(*router_, ProxyOptions{});
    ASSERT_TRUE(proxy.ok());
    proxy_ = std::move(*proxy);
    proxy_->Start(2);
  }
  void TearDown() override {
    proxy_->Stop();
    upstream_->Stop();
  }

  uint16_t ListenPlain() {
    auto port = proxy_->Listen("127.0.0.1", 0);
    EXPECT_TRUE(port.ok()) << port.status();
    return port.ok() ? *port : 0;
  }

  std::unique_ptr<HttpServer> upstream_;
  std::atomic<int> upstream_requests_{0};
  std::unique_ptr<TestRouter> router_;
  std::unique_ptr<ProxyServer> proxy_;
  net::io_context ioc_;
};

// The next response on `stream` (bodies up to 64 MiB).
bhttp::response<bhttp::string_body> ReadResponse(beast::tcp_stream& stream) {
  stream.expires_after(std::chrono::seconds(30));
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 << 20);
  bhttp::read(stream, buffer, parser);
  return parser.release();
}

// Writes one request, and reads nothing.
void Send(beast::tcp_stream& stream, bhttp::verb method, const std::string& target, std::string body = "",
          std::string cookie = "") {
  bhttp::request<bhttp::string_body> req{method, target, 11};
  req.set(bhttp::field::host, "pool");
  if (!cookie.empty()) req.set(bhttp::field::cookie, cookie);
  req.body() = std::move(body);
  req.prepare_payload();
  stream.expires_after(std::chrono::seconds(30));
  bhttp::write(stream, req);
}

// One request on a fresh or given connection.
bhttp::response<bhttp::string_body> Call(beast::tcp_stream& stream, bhttp::verb method, const std::string& target,
                                         std::string body = "", std::string cookie = "") {
  Send(stream, method, target, std::move(body), std::move(cookie));
  return ReadResponse(stream);
}

beast::tcp_stream Connect(net::io_context& ioc, uint16_t port) {
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), port));
  return stream;
}

TEST_F(ProxyTest, ForwardsWithHeadersSetAndRemovedAndReusesTheUpstream) {
  uint16_t port = ListenPlain();
  beast::tcp_stream stream = Connect(ioc_, port);
  for (int i = 0; i < 5; ++i) {
    auto res = Call(stream, bhttp::verb::get, "/user/alice/api?x=1", "", "session=abc");
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body(), "GET /user/alice/api?x=1 auth=token secret cookie=- body=0");
  }
  EXPECT_EQ(proxy_->stats().upstream_connects, 1u) << "one kept-alive upstream connection";
  EXPECT_EQ(proxy_->stats().forwarded, 5u);
  std::lock_guard lock(router_->mu);
  EXPECT_EQ(router_->activity, std::vector<uint64_t>(5, 7));
}

TEST_F(ProxyTest, StreamsLargeBodiesBothWays) {
  uint16_t port = ListenPlain();
  beast::tcp_stream stream = Connect(ioc_, port);
  auto up = Call(stream, bhttp::verb::put, "/upload", std::string(8 << 20, 'y'));
  EXPECT_EQ(up.body(), "PUT /upload auth=token secret cookie=- body=8388608");
  auto down = Call(stream, bhttp::verb::get, "/big");
  EXPECT_EQ(down.body().size(), 3u << 20);
}

TEST_F(ProxyTest, LocalRoutesReadTheBodyAndRepliesNeedNone) {
  uint16_t port = ListenPlain();
  beast::tcp_stream stream = Connect(ioc_, port);
  auto local = Call(stream, bhttp::verb::post, "/local", "user=a&password=b");
  EXPECT_EQ(local.body(), "local got 17 bytes");
  auto deny = Call(stream, bhttp::verb::get, "/deny");
  EXPECT_EQ(deny.result_int(), 403u);
  EXPECT_EQ(upstream_requests_, 0);
}

TEST_F(ProxyTest, TooLargeLocalBodyIs413) {
  uint16_t port = ListenPlain();
  beast::tcp_stream stream = Connect(ioc_, port);
  auto res = Call(stream, bhttp::verb::post, "/local", std::string(100 * 1024, 'z'));
  EXPECT_EQ(res.result_int(), 413u);
}

TEST_F(ProxyTest, AnUpstreamThatIsNotThereIs502AndTheLogSaysWhy) {
  uint16_t port = ListenPlain();
  beast::tcp_stream stream = Connect(ioc_, port);
  testing::internal::CaptureStderr();
  auto res = Call(stream, bhttp::verb::get, "/gone");
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(res.result_int(), 502u);
  EXPECT_EQ(proxy_->stats().upstream_errors, 1u);
  EXPECT_NE(log.find("upstream 127.0.0.1:1: could not connect"), std::string::npos) << log;
}

TEST_F(ProxyTest, AnUpstreamThatIsNotThereGetsTheRoutersAnswerWhenItHasOne) {
  uint16_t port = ListenPlain();
  beast::tcp_stream stream = Connect(ioc_, port);
  auto res = Call(stream, bhttp::verb::get, "/gone/answered");
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res.body(), "port 1 is not there, tag 7");
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_EQ(proxy_->stats().upstream_errors, 1u);
}

// Waits (at most 30 s) until the router has held /hold `n` times in all.
void WaitForHolds(const TestRouter& router, int n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (router.holds < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GE(router.holds, n);
}

TEST_F(ProxyTest, AHeldRequestIsDecidedAgainWhenTheRoutesChange) {
  uint16_t port = ListenPlain();
  beast::tcp_stream stream = Connect(ioc_, port);
  Send(stream, bhttp::verb::get, "/hold");
  WaitForHolds(*router_, 1);
  proxy_->RoutesChanged();  // nothing changed for it: held again
  WaitForHolds(*router_, 2);
  router_->released = true;
  proxy_->RoutesChanged();
  auto res = ReadResponse(stream);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "GET /hold auth=token secret cookie=- body=0") << "forwarded, once released";
  EXPECT_EQ(router_->holds, 2);
  auto again = Call(stream, bhttp::verb::get, "/hold");
  EXPECT_EQ(again.result_int(), 200u) << "the connection goes on";
}

TEST_F(ProxyTest, AHeldRequestGetsTheOtherAnswerAtItsTimeAndTheConnectionCloses) {
  router_->hold_for = std::chrono::milliseconds(50);
  uint16_t port = ListenPlain();
  beast::tcp_stream stream = Connect(ioc_, port);
  Send(stream, bhttp::verb::get, "/hold");
  auto res = ReadResponse(stream);
  EXPECT_EQ(res.result_int(), 504u);
  EXPECT_EQ(res.body(), "still waiting\n");
  EXPECT_EQ(res[bhttp::field::connection], "close");
  beast::flat_buffer buffer;
  beast::error_code ec;
  stream.socket().read_some(buffer.prepare(1), ec);
  EXPECT_EQ(ec, net::error::eof);
  EXPECT_EQ(upstream_requests_, 0);
}

TEST_F(ProxyTest, StoppingEndsHeldRequests) {
  uint16_t port = ListenPlain();
  beast::tcp_stream stream = Connect(ioc_, port);
  Send(stream, bhttp::verb::get, "/hold");
  WaitForHolds(*router_, 1);
  proxy_->Stop();  // returns: the held coroutine ended
  beast::flat_buffer buffer;
  beast::error_code ec;
  stream.socket().read_some(buffer.prepare(1), ec);
  EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset) << ec.message();
  EXPECT_EQ(upstream_requests_, 0);
}

TEST_F(ProxyTest, PathTricksAreRefusedBeforeTheRouter) {
  uint16_t port = ListenPlain();
  beast::tcp_stream stream = Connect(ioc_, port);
  auto res = Call(stream, bhttp::verb::get, "/user/bob/../alice/tree");
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(upstream_requests_, 0);
}

// A raw upstream that answers an upgrade with 101 and then echoes bytes,
// as a WebSocket server would carry frames.
TEST_F(ProxyTest, UpgradeTunnelsBytesBothWays) {
  tcp::acceptor acceptor(ioc_, tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), 0));
  router_->dead_port = acceptor.local_endpoint().port();  // "/gone" now reaches it
  std::thread upstream([&] {
    tcp::socket s(ioc_);
    acceptor.accept(s);
    beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> req;
    bhttp::read(s, buffer, req);
    bhttp::response<bhttp::empty_body> res{bhttp::status::switching_protocols, 11};
    res.set(bhttp::field::upgrade, "websocket");
    res.set(bhttp::field::connection, "Upgrade");
    res.set("X-Auth-Seen", std::string(req[bhttp::field::authorization]));
    bhttp::write(s, res);
    char buf[256];
    beast::error_code ec;
    for (;;) {
      size_t n = s.read_some(net::buffer(buf), ec);
      if (ec) break;
      net::write(s, net::buffer(buf, n), ec);
      if (ec) break;
    }
  });
  uint16_t port = ListenPlain();
  beast::tcp_stream stream = Connect(ioc_, port);
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/gone", 11};
  req.set(bhttp::field::host, "pool");
  req.set(bhttp::field::upgrade, "websocket");
  req.set(bhttp::field::connection, "Upgrade");
  bhttp::write(stream, req);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::empty_body> res;
  bhttp::response_parser<bhttp::empty_body> parser;
  parser.skip(true);  // a 101 has no body
  bhttp::read_header(stream, buffer, parser);
  EXPECT_EQ(parser.get().result_int(), 101u);
  EXPECT_EQ(parser.get()["X-Auth-Seen"], "token secret");
  for (std::string msg : {"hello", "kernel frames"}) {
    net::write(stream, net::buffer(msg));
    std::string got(msg.size(), '\0');
    size_t have = buffer.size();
    if (have > 0) {
      net::buffer_copy(net::buffer(got), buffer.data());
      buffer.consume(have);
    }
    net::read(stream, net::buffer(got.data() + have, got.size() - have));
    EXPECT_EQ(got, msg);
  }
  stream.close();
  upstream.join();
  EXPECT_EQ(proxy_->stats().tunnels, 1u);
}

TEST_F(ProxyTest, ServesTlsWithAGivenCertificate) {
  TempDir dir;
  std::string cert = dir.path() + "/cert.pem", key = dir.path() + "/key.pem";
  std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=pool -keyout " + key + " -out " +
                    cert + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) DSP_CANNOT_RUN_HERE("`openssl req` failed: is openssl installed?");
  auto port = proxy_->ListenTls("127.0.0.1", 0, TlsCertificate{*ReadFile(cert), *ReadFile(key)});
  ASSERT_TRUE(port.ok()) << port.status();

  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.set_verify_mode(net::ssl::verify_none);  // self-signed, for this test
  beast::ssl_stream<beast::tcp_stream> stream(ioc_, ctx);
  beast::get_lowest_layer(stream).connect(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), *port));
  stream.handshake(net::ssl::stream_base::client);
  bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/user/alice/tree", 11};
  req.set(bhttp::field::host, "pool");
  bhttp::write(stream, req);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(stream, buffer, res);
  EXPECT_EQ(res.body(), "GET /user/alice/tree auth=token secret cookie=- body=0");

  // The key of another certificate: refused, and nothing listens.
  std::string other = dir.path() + "/other.pem";
  cmd = "openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out " + other + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const uint64_t accepted = proxy_->stats().connections_accepted;
  auto bad = proxy_->ListenTls("127.0.0.1", 0, TlsCertificate{*ReadFile(cert), *ReadFile(other)});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("does not belong to the certificate"), std::string::npos) << bad.status();
  bad = proxy_->ListenTls("127.0.0.1", 0, TlsCertificate{"not a certificate", *ReadFile(key)});
  EXPECT_NE(bad.status().message().find("TLS certificate chain"), std::string::npos) << bad.status();
  EXPECT_EQ(proxy_->stats().connections_accepted, accepted);
}

}  // namespace
}  // namespace dspool
