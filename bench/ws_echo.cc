// ws_echo: the WebSocket client of bench/jupyter.sh. Opens one WebSocket to
// URL and sends COUNT small text messages one after the other, each after
// the echo of the one before arrived, and prints one line:
//
//   ws_echo count=N warmup=W size=S median_us=.. p99_us=.. mean_us=.. max_us=.. seconds=..
//
//   ws_echo URL COUNT [SIZE]      (SIZE: bytes per message, default 32)
//
// URL is ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (the certificate is not
// verified: the benchmark made it). Extra request headers, such as a session
// cookie, come from the environment, never argv: WS_ECHO_HEADERS holds
// "Name: value" lines. The first min(COUNT/10, 200) round trips warm the path
// up and are not counted. Exits 1 on any error or wrong echo before the
// line is printed; an error while closing is noted on stderr only.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "ws_client.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using dspool_bench::HeadersFromEnv;
using dspool_bench::ParseUrl;
using dspool_bench::Url;

namespace {

template <class Stream>
int Run(Stream& ws, const Url& url, long count, size_t size) {
  auto headers = HeadersFromEnv("WS_ECHO_HEADERS");
  ws.set_option(websocket::stream_base::decorator([&headers](websocket::request_type& req) {
    for (const auto& [name, value] : headers) req.set(name, value);
  }));
  ws.handshake(url.host + ":" + url.port, url.target);
  ws.text(true);
  std::string message;
  const long warmup = std::min(count / 10, 200L);
  std::vector<double> us;
  us.reserve(static_cast<size_t>(count));
  beast::flat_buffer buffer;
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < warmup + count; ++i) {
    // A different message each time, so a stale echo would be noticed.
    message = std::to_string(i) + " ";
    message.resize(size, 'x');
    const auto t0 = std::chrono::steady_clock::now();
    ws.write(asio::buffer(message));
    buffer.clear();
    ws.read(buffer);
    const auto t1 = std::chrono::steady_clock::now();
    if (beast::buffers_to_string(buffer.data()) != message) {
      std::fprintf(stderr, "ws_echo: message %ld: the echo differs from what was sent\n", i);
      return 1;
    }
    if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<size_t>(q * static_cast<double>(us.size())))]; };
  std::printf("ws_echo count=%ld warmup=%ld size=%zu median_us=%.0f p99_us=%.0f mean_us=%.1f max_us=%.0f seconds=%.2f\n",
              count, warmup, size, at(0.5), at(0.99), sum / static_cast<double>(us.size()), us.back(), seconds);
  std::fflush(stdout);
  // The measure is done; how the far side ends the connection (a proxy
  // may close TCP without TLS's close_notify) is only noted.
  beast::error_code ec;
  ws.close(websocket::close_code::normal, ec);
  if (ec) std::fprintf(stderr, "ws_echo: note: closing: %s\n", ec.message().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Url url;
  if (argc < 3 || !ParseUrl(argv[1], &url) || std::atol(argv[2]) <= 0) {
    std::fprintf(stderr, "usage: ws_echo ws[s]://HOST:PORT/PATH COUNT [SIZE]   (headers: $WS_ECHO_HEADERS)\n");
    return 2;
  }
  const long count = std::atol(argv[2]);
  const size_t size = argc > 3 ? static_cast<size_t>(std::max(1L, std::atol(argv[3]))) : 32;
  try {
    asio::io_context io;
    tcp::resolver resolver(io);
    auto endpoints = resolver.resolve(url.host, url.port);
    if (url.tls) {
      asio::ssl::context ctx(asio::ssl::context::tls_client);
      ctx.set_verify_mode(asio::ssl::verify_none);
      websocket::stream<beast::ssl_stream<tcp::socket>> ws(io, ctx);
      asio::connect(beast::get_lowest_layer(ws), endpoints);
      beast::get_lowest_layer(ws).set_option(tcp::no_delay(true));
      ws.next_layer().handshake(asio::ssl::stream_base::client);
      return Run(ws, url, count, size);
    }
    websocket::stream<tcp::socket> ws(io);
    asio::connect(ws.next_layer(), endpoints);
    ws.next_layer().set_option(tcp::no_delay(true));
    return Run(ws, url, count, size);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ws_echo: %s: %s\n", argv[1], e.what());
    return 1;
  }
}
