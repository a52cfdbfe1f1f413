// HttpServer::ListenTls and Client over tls: endpoints, on 127.0.0.1 port 0,
// with certificates made by the openssl program for each test suite (the
// test is skipped without it). Beast's TLS stream plays the clients that
// Client is not (keep-alive, close_notify), a raw Asio socket the silent one.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>

#include "base/testing/temp_dir.h"
#include "http/client.h"
#include "http/server.h"
#include "net/tls.h"
#include "os/fs.h"

namespace dspool {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kTimeout = 10s;

struct Pair {
  std::string chain_pem;
  std::string key_pem;
  std::string certificate_file;
  std::string fingerprint;
};

// A self-signed certificate for 127.0.0.1 (as an IP subjectAltName) and its
// key, from the openssl program; nullopt if that fails.
std::optional<Pair> MakePair(const TempDir& dir, const std::string& name, const std::string& key_type = "ec") {
  std::string key = dir / (name + ".key");
  std::string cert = dir / (name + ".crt");
  std::string newkey = key_type == "ec" ? "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1" : "-newkey rsa:2048";
  std::string cmd = "openssl req -x509 " + newkey + " -nodes -days 2 -subj /CN=" + name +
                    " -addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return std::nullopt;
  Pair pair;
  pair.certificate_file = cert;
  auto chain = ReadFile(cert);
  auto key_pem = ReadFile(key);
  if (!chain.ok() || !key_pem.ok()) return std::nullopt;
  pair.chain_pem = *chain;
  pair.key_pem = *key_pem;
  auto fingerprint = CertificateFingerprint(pair.chain_pem);
  if (!fingerprint.ok()) return std::nullopt;
  pair.fingerprint = *fingerprint;
  return pair;
}

class ServerTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("dspool-tls-test");
    server_pair_ = new std::optional<Pair>(MakePair(*dir_, "server"));
    other_pair_ = new std::optional<Pair>(MakePair(*dir_, "other"));
  }
  static void TearDownTestSuite() {
    delete server_pair_;
    delete other_pair_;
    delete dir_;
  }

  void SetUp() override {
    if (!server_pair_->has_value() || !other_pair_->has_value()) GTEST_SKIP() << "openssl could not make certificates";
    server_ = std::make_unique<HttpServer>(
        [this](const Request& r) {
          ++handled_;
          Response response;
          response.content_type = "text/plain";
          response.body = r.method + " " + r.path + " " + r.listener_tag;
          return response;
        },
        options_);
  }

  // Listens with `pair` and starts the server.
  uint16_t Listen(const Pair& pair) {
    auto port = server_->ListenTls("127.0.0.1", 0, TlsCertificate{pair.chain_pem, pair.key_pem}, "tls");
    EXPECT_TRUE(port.ok()) << port.status();
    server_->Start(2);
    return port.ok() ? *port : 0;
  }

  Result<Response> Get(const Endpoint& endpoint) { return Client::Do(endpoint, "GET", "/hello", "", {}, kTimeout); }

  // Waits (for at most kTimeout) until `done` holds.
  template <class F>
  bool WaitFor(F done) {
    auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  static const Pair& server_pair() { return **server_pair_; }
  static const Pair& other_pair() { return **other_pair_; }

  static TempDir* dir_;
  static std::optional<Pair>* server_pair_;
  static std::optional<Pair>* other_pair_;
  HttpServerOptions options_;
  std::atomic<int> handled_{0};
  std::unique_ptr<HttpServer> server_;
};

TempDir* ServerTlsTest::dir_ = nullptr;
std::optional<Pair>* ServerTlsTest::server_pair_ = nullptr;
std::optional<Pair>* ServerTlsTest::other_pair_ = nullptr;

TEST_F(ServerTlsTest, AClientPinningTheCertificateIsServed) {
  Endpoint endpoint = Endpoint::Tls("127.0.0.1", Listen(server_pair()));
  endpoint.tls_fingerprint = server_pair().fingerprint;
  auto response = Get(endpoint);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "GET /hello tls");
  // The pin may be written as people paste it.
  std::string lower;
  for (char c : server_pair().fingerprint) {
    if (c != ':') lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  endpoint.tls_fingerprint = "sha256:" + lower;
  EXPECT_TRUE(Get(endpoint).ok());
  EXPECT_EQ(server_->stats().tls_handshake_failures, 0u);
}

TEST_F(ServerTlsTest, AnotherCertificateThanThePinnedOneGetsNothingSent) {
  Endpoint endpoint = Endpoint::Tls("127.0.0.1", Listen(server_pair()));
  endpoint.tls_fingerprint = other_pair().fingerprint;
  auto response = Get(endpoint);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnauthenticated);
  std::string message = response.status().message();
  EXPECT_NE(message.find("has SHA-256 fingerprint " + server_pair().fingerprint), std::string::npos) << message;
  EXPECT_NE(message.find("not the expected " + other_pair().fingerprint), std::string::npos) << message;
  EXPECT_NE(message.find("tls:127.0.0.1:"), std::string::npos) << message;
  // The handshake completed, the request (with its credentials) never left.
  ASSERT_TRUE(WaitFor([&] { return server_->stats().connections_active == 0; }));
  EXPECT_EQ(handled_, 0);
  EXPECT_EQ(server_->stats().requests, 0u);
}

TEST_F(ServerTlsTest, AMalformedPinIsRefusedBeforeConnecting) {
  Endpoint endpoint = Endpoint::Tls("127.0.0.1", Listen(server_pair()));
  endpoint.tls_fingerprint = "AB:CD";
  auto response = Get(endpoint);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(response.status().message().find("has 4 hex digits"), std::string::npos) << response.status();
  EXPECT_EQ(server_->stats().connections_accepted, 0u);
}

TEST_F(ServerTlsTest, ACaFileVerifiesTheChainAndTheHostName) {
  uint16_t port = Listen(server_pair());
  Endpoint endpoint = Endpoint::Tls("127.0.0.1", port);
  endpoint.tls_ca_file = server_pair().certificate_file;  // self-signed: its own CA
  auto response = Get(endpoint);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "GET /hello tls");

  endpoint.tls_ca_file = other_pair().certificate_file;
  response = Get(endpoint);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(response.status().message().find("is not trusted: self-signed certificate"), std::string::npos)
      << response.status();
  EXPECT_NE(response.status().message().find(other_pair().certificate_file), std::string::npos) << response.status();

  // Trusted, but the certificate names 127.0.0.1, not this host name.
  Endpoint by_name = Endpoint::Tls("localhost", port);
  by_name.tls_ca_file = server_pair().certificate_file;
  response = Get(by_name);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(response.status().message().find("is not for host 'localhost'"), std::string::npos) << response.status();

  endpoint.tls_ca_file = dir_->path() + "/missing.pem";
  response = Get(endpoint);
  EXPECT_EQ(response.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(response.status().message().find("missing.pem"), std::string::npos) << response.status();
  EXPECT_EQ(handled_, 1);
}

TEST_F(ServerTlsTest, WithoutPinOrCaFileTheSystemsCasDecide) {
  Endpoint endpoint = Endpoint::Tls("127.0.0.1", Listen(server_pair()));
  auto response = Get(endpoint);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(response.status().message().find("self-signed certificate (checked against the system's CAs)"),
            std::string::npos)
      << response.status();
  EXPECT_NE(response.status().message().find("give its SHA-256 fingerprint"), std::string::npos) << response.status();
  EXPECT_EQ(handled_, 0);
}

TEST_F(ServerTlsTest, PlainHttpOnATlsPortFailsTheHandshake) {
  uint16_t port = Listen(server_pair());
  auto response = Get(Endpoint::Tcp("127.0.0.1", port));
  ASSERT_FALSE(response.ok()) << "a plain request got an answer: " << response->body;
  ASSERT_TRUE(WaitFor([&] { return server_->stats().tls_handshake_failures == 1; }));
  EXPECT_EQ(handled_, 0);
}

TEST_F(ServerTlsTest, TlsToAPlainPortFailsTheHandshake) {
  auto port = server_->ListenTcp("127.0.0.1", 0, "plain");
  ASSERT_TRUE(port.ok()) << port.status();
  server_->Start(1);
  Endpoint endpoint = Endpoint::Tls("127.0.0.1", *port);
  endpoint.tls_fingerprint = server_pair().fingerprint;
  auto response = Get(endpoint);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(response.status().message().find("TLS handshake with tls:127.0.0.1:"), std::string::npos)
      << response.status();
}

TEST_F(ServerTlsTest, ASilentClientIsClosedAfterTheHeaderTimeout) {
  options_.header_read_timeout = 200ms;
  SetUp();  // again, with the short timeout
  uint16_t port = Listen(server_pair());
  asio::io_context ioc;
  asio::ip::tcp::socket silent(ioc);
  silent.connect({asio::ip::make_address("127.0.0.1"), port});
  // The server gives up on the handshake and closes: our read ends.
  silent.non_blocking(false);
  char byte;
  beast::error_code ec;
  silent.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof) << ec.message();
  EXPECT_TRUE(WaitFor([&] { return server_->stats().tls_handshake_failures == 1; }));
  EXPECT_EQ(handled_, 0);
}

TEST_F(ServerTlsTest, KeepsConnectionsAliveAndEndsThemWithCloseNotify) {
  uint16_t port = Listen(server_pair());
  asio::io_context ioc;
  asio::ssl::context context(asio::ssl::context::tls_client);
  context.set_verify_mode(asio::ssl::verify_none);  // the pin is Client's business; this is about the stream
  beast::ssl_stream<beast::tcp_stream> stream(ioc, context);
  beast::get_lowest_layer(stream).connect({asio::ip::make_address("127.0.0.1"), port});
  stream.handshake(asio::ssl::stream_base::client);
  beast::flat_buffer buffer;
  for (bool last : {false, true}) {
    bhttp::request<bhttp::empty_body> request{bhttp::verb::get, last ? "/second" : "/first", 11};
    request.set(bhttp::field::host, "127.0.0.1");
    request.keep_alive(!last);
    bhttp::write(stream, request);
    bhttp::response<bhttp::string_body> response;
    bhttp::read(stream, buffer, response);
    EXPECT_EQ(response.body(), last ? "GET /second tls" : "GET /first tls");
    EXPECT_EQ(response.keep_alive(), !last);
  }
  // After "Connection: close", the server's close_notify: a clean end of
  // stream, not a truncation.
  char byte;
  beast::error_code ec;
  stream.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof) << ec.message();
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
}

TEST_F(ServerTlsTest, BadCertificatesAndKeysAreRefusedBeforeListening) {
  auto port = server_->ListenTls("127.0.0.1", 0, TlsCertificate{"not a certificate", server_pair().key_pem}, "tls");
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(port.status().message().find("TLS certificate chain"), std::string::npos) << port.status();

  port = server_->ListenTls("127.0.0.1", 0, TlsCertificate{server_pair().chain_pem, "not a key"}, "tls");
  ASSERT_FALSE(port.ok());
  EXPECT_NE(port.status().message().find("TLS private key"), std::string::npos) << port.status();

  // Another key of the same type, and a key of another type (which OpenSSL
  // alone would take).
  port = server_->ListenTls("127.0.0.1", 0, TlsCertificate{server_pair().chain_pem, other_pair().key_pem}, "tls");
  ASSERT_FALSE(port.ok());
  EXPECT_NE(port.status().message().find("TLS private key"), std::string::npos) << port.status();
  std::optional<Pair> rsa = MakePair(*dir_, "rsa", "rsa");
  ASSERT_TRUE(rsa.has_value());
  port = server_->ListenTls("127.0.0.1", 0, TlsCertificate{server_pair().chain_pem, rsa->key_pem}, "tls");
  ASSERT_FALSE(port.ok());
  EXPECT_NE(port.status().message().find("does not belong to the certificate"), std::string::npos) << port.status();

  // Nothing was left listening under the tag.
  EXPECT_TRUE(server_->ListenTls("127.0.0.1", 0, TlsCertificate{server_pair().chain_pem, server_pair().key_pem}, "tls")
                  .ok());
}

}  // namespace
}  // namespace dspool
