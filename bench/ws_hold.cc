// ws_hold: the capacity client of bench/jupyter.sh. Opens COUNT WebSockets
// to URL (at most PARALLEL handshakes at a time), checks each with one
// echoed message, and holds them all open; then, when a line (or the end)
// comes on standard input, closes them all. Prints two lines:
//
//   ws_hold open=N failed=F seconds=S          once every connection is up (or failed)
//   ws_hold closed=N seconds=S                 once they are all closed
//
//   ws_hold URL COUNT [PARALLEL]   (PARALLEL: default 64)
//
// URL is ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (the certificate is not
// verified: the benchmark made it). Extra request headers, such as a session
// cookie, come from the environment, never argv: WS_HOLD_HEADERS holds
// "Name: value" lines. The first failure's reason goes to stderr. Exits 1
// if any connection failed, 2 on bad usage.
#include <utility>  // first: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
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

using PlainWs = websocket::stream<beast::tcp_stream>;
using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

struct Run {
  Url url;
  long count = 0;
  tcp::resolver::results_type endpoints;
  std::vector<std::pair<std::string, std::string>> headers;
  asio::ssl::context tls{asio::ssl::context::tls_client};
  std::vector<std::unique_ptr<PlainWs>> plain;
  std::vector<std::unique_ptr<TlsWs>> secure;
  long next = 0;  // the next connection a worker opens (or closes)
  long failed = 0;
  std::string first_error;

  void Fail(const std::string& what) {
    if (failed++ == 0) first_error = what;
  }
};

template <class Ws>
asio::awaitable<void> Handshake(Run& run, Ws& ws) {
  ws.set_option(websocket::stream_base::decorator([&run](websocket::request_type& req) {
    for (const auto& [name, value] : run.headers) req.set(name, value);
  }));
  co_await ws.async_handshake(run.url.host + ":" + run.url.port, run.url.target, asio::use_awaitable);
  ws.text(true);
  std::string message = "hold";
  co_await ws.async_write(asio::buffer(message), asio::use_awaitable);
  beast::flat_buffer buffer;
  co_await ws.async_read(buffer, asio::use_awaitable);
  if (beast::buffers_to_string(buffer.data()) != message) throw std::runtime_error("the echo differs from what was sent");
  // Handshakes done, nothing else in flight: the stream's timeouts would
  // end an idle connection.
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
}

asio::awaitable<void> Opener(Run& run) {
  auto executor = co_await asio::this_coro::executor;
  while (run.next < run.count) {
    long i = run.next++;
    try {
      if (run.url.tls) {
        auto ws = std::make_unique<TlsWs>(executor, run.tls);
        co_await beast::get_lowest_layer(*ws).async_connect(run.endpoints, asio::use_awaitable);
        beast::get_lowest_layer(*ws).expires_never();
        co_await ws->next_layer().async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
        co_await Handshake(run, *ws);
        run.secure.push_back(std::move(ws));
      } else {
        auto ws = std::make_unique<PlainWs>(executor);
        co_await beast::get_lowest_layer(*ws).async_connect(run.endpoints, asio::use_awaitable);
        beast::get_lowest_layer(*ws).expires_never();
        co_await Handshake(run, *ws);
        run.plain.push_back(std::move(ws));
      }
    } catch (const std::exception& e) {
      run.Fail("connection " + std::to_string(i) + ": " + e.what());
    }
  }
}

template <class Ws>
asio::awaitable<void> Closer(std::vector<std::unique_ptr<Ws>>& all, long& next) {
  while (next < static_cast<long>(all.size())) {
    Ws& ws = *all[static_cast<size_t>(next++)];
    try {
      co_await ws.async_close(websocket::close_code::normal, asio::use_awaitable);
    } catch (const std::exception&) {
      // Closed either way: how the far side ends it is not measured.
    }
  }
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  // Before `run`: its streams hold the context's executor, so the context
  // must outlive them.
  asio::io_context io;
  auto run = std::make_unique<Run>();
  if (argc < 3 || !ParseUrl(argv[1], &run->url) || std::atol(argv[2]) <= 0) {
    std::fprintf(stderr, "usage: ws_hold ws[s]://HOST:PORT/PATH COUNT [PARALLEL]   (headers: $WS_HOLD_HEADERS)\n");
    return 2;
  }
  run->count = std::atol(argv[2]);
  const long parallel = argc > 3 ? std::max(1L, std::atol(argv[3])) : 64;
  run->headers = HeadersFromEnv("WS_HOLD_HEADERS");
  run->tls.set_verify_mode(asio::ssl::verify_none);
  try {
    run->endpoints = tcp::resolver(io).resolve(run->url.host, run->url.port);
    auto t0 = std::chrono::steady_clock::now();
    for (long w = 0; w < parallel; ++w) asio::co_spawn(io, Opener(*run), asio::detached);
    io.run();
    long open = static_cast<long>(run->plain.size() + run->secure.size());
    std::printf("ws_hold open=%ld failed=%ld seconds=%.2f\n", open, run->failed, SecondsSince(t0));
    std::fflush(stdout);
    if (run->failed) std::fprintf(stderr, "ws_hold: %ld failed; the first: %s\n", run->failed, run->first_error.c_str());

    // Held until told: a line, or the end of standard input.
    char c;
    while (::read(STDIN_FILENO, &c, 1) == 1 && c != '\n') {
    }
    io.restart();
    t0 = std::chrono::steady_clock::now();
    long next_plain = 0, next_secure = 0;
    for (long w = 0; w < parallel; ++w) {
      asio::co_spawn(io, Closer(run->plain, next_plain), asio::detached);
      asio::co_spawn(io, Closer(run->secure, next_secure), asio::detached);
    }
    io.run();
    std::printf("ws_hold closed=%ld seconds=%.2f\n", open, SecondsSince(t0));
    std::fflush(stdout);
    return run->failed ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ws_hold: %s: %s\n", argv[1], e.what());
    return 1;
  }
}
