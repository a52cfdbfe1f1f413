// The proxy on Boost.Asio/Beast coroutines. Shape:
//
//   Impl        owns the workers, the listeners (by port) and the counters.
//   Worker      one thread running its own io_context, and its pool of
//               kept-alive upstream connections. A client connection, its
//               upstreams and all their coroutines stay on one worker: no
//               strands, no hand-off between threads per request.
//   AcceptLoop  one coroutine per listener, on worker 0; each accepted
//               socket goes to the next worker, round robin, with a Serve
//               coroutine.
//   Serve       TLS handshake if the listener has a context, then
//               ServeStream: request after request on one client
//               connection (the diagram in proxy.h).
//   Relay       streams one message body from a parser to a serializer in
//               16 KiB steps (the body never sits whole in memory).
//   Tunnel      after a 101: both streams move into a shared state and two
//               coroutines copy bytes each way; the first to end closes
//               both.
#include "http/proxy.h"

#include <arpa/inet.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "http/beast_util.h"

namespace dspool {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using http_internal::Lower;
using http_internal::Sv;

namespace {

constexpr std::string_view kLog = "proxy";
constexpr size_t kHeaderLimit = 16 * 1024;
constexpr size_t kChunk = 16 * 1024;
constexpr auto kActivityEvery = std::chrono::seconds(1);

bool IsUpgrade(const bhttp::request<bhttp::buffer_body>& req) {
  return req.find(bhttp::field::upgrade) != req.end() && Lower(Sv(req[bhttp::field::connection])).find("upgrade") !=
                                                              std::string::npos;
}

template <class Stream>
auto& Lowest(Stream& s) {
  return beast::get_lowest_layer(s);
}

// A connection's buffer for body steps, kChunk bytes: one allocation per
// connection, not one per message (a coroutine frame holding it would be
// allocated for each).
using Scratch = std::unique_ptr<char[]>;

// Relays one message body from `in` (through `parser`, whose header is
// read) to `out` (through a serializer; its header goes with the first
// step if it was not written yet). `ec`: the first error, on either side.
template <class In, class Out, class Parser, class Serializer>
net::awaitable<void> Relay(In& in, beast::flat_buffer& in_buffer, Parser& parser, Out& out, Serializer& sr,
                           char* buf, std::chrono::milliseconds timeout, beast::error_code& ec) {
  auto& body = parser.get().body();
  do {
    if (!parser.is_done()) {
      body.data = buf;
      body.size = kChunk;
      Lowest(in).expires_after(timeout);
      co_await bhttp::async_read(in, in_buffer, parser, net::redirect_error(net::use_awaitable, ec));
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) co_return;
      body.size = kChunk - body.size;
      body.data = buf;
      body.more = !parser.is_done();
    } else {
      body.data = nullptr;
      body.size = 0;
    }
    Lowest(out).expires_after(timeout);
    co_await bhttp::async_write(out, sr, net::redirect_error(net::use_awaitable, ec));
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) co_return;
  } while (!parser.is_done() && !sr.is_done());
}

}  // namespace

class ProxyServer::Impl {
 public:
  Impl(ProxyRouter& router, ProxyOptions options) : router_(router), options_(std::move(options)) {}

  ~Impl() {
    Stop();
    // Sockets before the io_contexts they belong to; coroutine frames go
    // with the io_contexts, while the counters they touch still exist.
    std::lock_guard lock(mu_);
    listeners_.clear();
    for (auto& w : workers_) w->idle.clear();
  }

  Result<uint16_t> Listen(const std::string& address, uint16_t port, const std::string& certificate_file,
                          const std::string& key_file) {
    const std::string where = address + ":" + std::to_string(port);
    auto listener = std::make_shared<Listener>(workers_[0]->ioc);
    if (!certificate_file.empty() || !key_file.empty()) {
      listener->tls.emplace(ssl::context::tls_server);
      beast::error_code ec;
      listener->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                 ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      listener->tls->use_certificate_chain_file(certificate_file, ec);
      if (ec) return InvalidArgument("TLS certificate " + certificate_file + ": " + ec.message());
      listener->tls->use_private_key_file(key_file, ssl::context::pem, ec);
      if (ec) return InvalidArgument("TLS key " + key_file + ": " + ec.message());
    }
    beast::error_code ec;
    auto ip = net::ip::make_address_v4(address, ec);
    if (ec) return InvalidArgument("listen: invalid IPv4 address '" + address + "'");
    tcp::endpoint endpoint(ip, port);
    listener->acceptor.open(endpoint.protocol(), ec);
    if (!ec) listener->acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) listener->acceptor.bind(endpoint, ec);
    if (!ec) listener->acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return Unavailable("listen " + where + ": " + ec.message());
    uint16_t bound = listener->acceptor.local_endpoint().port();
    listener->tag = std::to_string(bound);
    {
      std::lock_guard lock(mu_);
      listeners_[bound] = listener;
    }
    net::co_spawn(workers_[0]->ioc, AcceptLoop(listener), net::detached);
    return bound;
  }

  void Unlisten(uint16_t port) {
    std::shared_ptr<Listener> listener;
    {
      std::lock_guard lock(mu_);
      auto it = listeners_.find(port);
      if (it == listeners_.end()) return;
      listener = it->second;
      listeners_.erase(it);
    }
    net::post(workers_[0]->ioc, [listener] {
      beast::error_code ec;
      listener->acceptor.close(ec);
    });
  }

  void Start(int threads) {
    while (workers_.size() < static_cast<size_t>(std::max(threads, 1))) workers_.push_back(std::make_unique<Worker>());
    for (auto& w : workers_) {
      threads_.emplace_back([w = w.get()] {
        current_worker = w;
        w->ioc.run();
      });
    }
  }

  void Stop() {
    for (auto& w : workers_) {
      w->work.reset();
      w->ioc.stop();
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  ProxyStats stats() const {
    ProxyStats s;
    s.connections_accepted = accepted_;
    s.connections_active = active_;
    s.requests = requests_;
    s.forwarded = forwarded_;
    s.upstream_connects = upstream_connects_;
    s.upstream_errors = upstream_errors_;
    s.tunnels = tunnels_;
    s.tls_handshake_failures = tls_failures_;
    return s;
  }

 private:
  struct Listener {
    explicit Listener(net::io_context& ioc) : acceptor(ioc) {}
    tcp::acceptor acceptor;
    std::optional<ssl::context> tls;
    std::string tag;  // the bound port, as Request::listener_tag
  };

  using UpstreamKey = std::pair<uint32_t, uint16_t>;

  struct Worker {
    net::io_context ioc{1};  // run by one thread
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work{ioc.get_executor()};
    // Kept-alive upstreams, by address: a socket belongs to its io_context,
    // so each worker pools its own. This worker's thread only.
    std::map<UpstreamKey, std::vector<beast::tcp_stream>> idle;
  };
  // The worker whose thread this is (null on other threads).
  static thread_local Worker* current_worker;

  // Counts a connection for as long as it lives.
  struct ActiveGuard {
    explicit ActiveGuard(std::atomic<uint64_t>& n) : n_(n) { ++n_; }
    ~ActiveGuard() { --n_; }
    std::atomic<uint64_t>& n_;
  };

  net::awaitable<void> AcceptLoop(std::shared_ptr<Listener> listener) {
    for (;;) {
      beast::error_code ec;
      Worker& worker = *workers_[next_worker_++ % workers_.size()];
      tcp::socket socket =
          co_await listener->acceptor.async_accept(worker.ioc, net::redirect_error(net::use_awaitable, ec));
      if (ec == net::error::operation_aborted || !listener->acceptor.is_open()) co_return;
      if (ec) {
        // EMFILE and friends: breathe, then go on.
        DSP_LOG(kWarning, kLog) << "accept: " << ec.message();
        net::steady_timer pause(co_await net::this_coro::executor, std::chrono::milliseconds(100));
        co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
        continue;
      }
      if (active_ >= options_.max_connections) continue;  // closed on scope exit
      ++accepted_;
      net::co_spawn(worker.ioc, Serve(listener, std::move(socket)), net::detached);
    }
  }

  net::awaitable<void> Serve(std::shared_ptr<Listener> listener, tcp::socket socket) {
    ActiveGuard active(active_);
    Peer peer;
    beast::error_code ec;
    auto remote = socket.remote_endpoint(ec);
    if (ec) co_return;
    peer.address = remote.address().to_string();
    peer.port = remote.port();
    socket.set_option(tcp::no_delay(true), ec);
    try {
      if (listener->tls) {
        beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *listener->tls);
        Lowest(stream).expires_after(options_.header_read_timeout);
        co_await stream.async_handshake(ssl::stream_base::server, net::redirect_error(net::use_awaitable, ec));
        if (ec) {
          ++tls_failures_;
          co_return;
        }
        co_await ServeStream(stream, peer, listener->tag);
      } else {
        beast::tcp_stream stream(std::move(socket));
        co_await ServeStream(stream, peer, listener->tag);
      }
    } catch (const std::exception& e) {
      DSP_LOG(kError, kLog) << "connection from " << peer.address << ": " << e.what();
    }
  }

  template <class Stream>
  net::awaitable<void> ServeStream(Stream& stream, const Peer& peer, const std::string& tag) {
    beast::flat_buffer buffer;
    Scratch scratch;  // made by the first forwarded request
    bool first = true;
    for (;;) {
      beast::error_code ec;
      bhttp::request_parser<bhttp::buffer_body> parser;
      parser.header_limit(kHeaderLimit);
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      Lowest(stream).expires_after(first ? options_.header_read_timeout : options_.idle_timeout);
      first = false;
      co_await bhttp::async_read_header(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
      if (ec) {
        if (ec != bhttp::error::end_of_stream && ec != net::error::eof && ec != beast::error::timeout &&
            ec != net::error::operation_aborted && ec != net::error::connection_reset) {
          co_await Reply(stream, ErrorResponse(400, "malformed request: " + ec.message()), 11, false);
        }
        co_return;
      }
      ++requests_;
      auto& req = parser.get();
      Request head;
      head.method = std::string(req.method_string());
      head.target = std::string(req.target());
      Result<Target> target = ParseTarget(head.target);
      if (!target.ok()) {
        co_await Reply(stream, ErrorResponse(400, target.status().message()), req.version(), false);
        co_return;
      }
      head.path = std::move(target->path);
      head.query = std::move(target->query);
      head.headers = http_internal::HeaderMap(req);
      head.peer = peer;
      head.listener_tag = tag;
      const bool keep_alive = req.keep_alive();
      const unsigned version = req.version();
      const bool head_request = req.method() == bhttp::verb::head;

      ProxyRoute route = router_.Decide(head);
      if (auto* reply = std::get_if<ProxyReply>(&route)) {
        bool keep = keep_alive && parser.is_done();  // an unread body ends the connection
        if (!co_await Reply(stream, std::move(reply->response), version, keep, head_request) || !keep) co_return;
        continue;
      }
      if (std::holds_alternative<ProxyLocal>(route)) {
        const std::string too_large = "request body over " + std::to_string(options_.max_local_body) + " bytes";
        if (auto length = parser.content_length(); length && *length > options_.max_local_body) {
          co_await Reply(stream, ErrorResponse(413, too_large), version, false);
          co_return;
        }
        bhttp::request_parser<bhttp::string_body> full{std::move(parser)};
        full.body_limit(options_.max_local_body);
        if (!full.is_done()) {
          Lowest(stream).expires_after(options_.io_timeout);
          co_await bhttp::async_read(stream, buffer, full, net::redirect_error(net::use_awaitable, ec));
          if (ec == bhttp::error::body_limit) {
            co_await Reply(stream, ErrorResponse(413, too_large), version, false);
            co_return;
          }
          if (ec) co_return;
        }
        head.body = std::move(full.get().body());
        if (!co_await Reply(stream, router_.Serve(head), version, keep_alive, head_request) || !keep_alive) co_return;
        continue;
      }
      auto& forward = std::get<ProxyForward>(route);
      if (!scratch) scratch = std::make_unique<char[]>(kChunk);
      if (!co_await Forward(stream, buffer, parser, forward, keep_alive, scratch.get())) co_return;
    }
  }

  // Sends `response`; false if that failed.
  template <class Stream>
  net::awaitable<bool> Reply(Stream& stream, Response response, unsigned version, bool keep_alive,
                             bool head = false) {
    bhttp::response<bhttp::string_body> res = http_internal::ToWire(std::move(response), version, head, keep_alive);
    beast::error_code ec;
    Lowest(stream).expires_after(options_.io_timeout);
    co_await bhttp::async_write(stream, res, net::redirect_error(net::use_awaitable, ec));
    co_return !ec;
  }

  static Response ErrorResponse(int status, const std::string& message) {
    Response r;
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    r.body = message + "\n";
    return r;
  }

  // Forwards one request and its response. True if the client connection
  // may carry another request.
  template <class Stream>
  net::awaitable<bool> Forward(Stream& client, beast::flat_buffer& client_buffer,
                               bhttp::request_parser<bhttp::buffer_body>& parser, const ProxyForward& forward,
                               bool client_keep_alive, char* scratch) {
    ++forwarded_;
    router_.Activity(forward.tag);
    auto& req = parser.get();
    const bool upgrade = IsUpgrade(req);
    const bool head_request = req.method() == bhttp::verb::head;
    req.target(forward.target);
    for (const std::string& name : forward.remove_headers) req.erase(name);
    for (const auto& [name, value] : forward.set_headers) req.set(name, value);
    if (!upgrade) req.keep_alive(true);  // to the upstream; the client's wish is kept apart

    beast::error_code ec;
    UpstreamKey key{forward.address, forward.port};
    std::optional<beast::tcp_stream> upstream = TakeIdle(key);
    bool reused = upstream.has_value();
    if (!upstream) {
      upstream.emplace(co_await ConnectUpstream(key, ec));
      if (ec) {
        ++upstream_errors_;
        co_await Reply(client, ErrorResponse(502, "the server behind this address does not answer"), req.version(),
                       false);
        co_return false;
      }
    }

    // The request: header, then its body in steps.
    bhttp::request_serializer<bhttp::buffer_body> request_sr{req};
    upstream->expires_after(options_.io_timeout);
    co_await bhttp::async_write_header(*upstream, request_sr, net::redirect_error(net::use_awaitable, ec));
    if (ec && reused) {
      // A kept-alive upstream connection the server closed meanwhile: once
      // more on a fresh one (nothing of the body was read yet).
      upstream.emplace(co_await ConnectUpstream(key, ec));
      if (!ec) {
        bhttp::request_serializer<bhttp::buffer_body> retry_sr{req};
        upstream->expires_after(options_.io_timeout);
        co_await bhttp::async_write_header(*upstream, retry_sr, net::redirect_error(net::use_awaitable, ec));
        if (!ec) co_await Relay(client, client_buffer, parser, *upstream, retry_sr, scratch, options_.io_timeout, ec);
      }
    } else if (!ec) {
      co_await Relay(client, client_buffer, parser, *upstream, request_sr, scratch, options_.io_timeout, ec);
    }
    if (ec) {
      ++upstream_errors_;
      co_await Reply(client, ErrorResponse(502, "the server behind this address failed: " + ec.message()),
                     req.version(), false);
      co_return false;
    }

    // The response.
    beast::flat_buffer upstream_buffer;
    bhttp::response_parser<bhttp::buffer_body> response_parser;
    response_parser.header_limit(kHeaderLimit);
    response_parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (head_request) response_parser.skip(true);
    upstream->expires_after(options_.io_timeout);
    co_await bhttp::async_read_header(*upstream, upstream_buffer, response_parser,
                                      net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      ++upstream_errors_;
      co_await Reply(client, ErrorResponse(502, "the server behind this address did not answer"), req.version(),
                     false);
      co_return false;
    }
    auto& res = response_parser.get();
    if (upgrade && res.result() == bhttp::status::switching_protocols) {
      bhttp::response_serializer<bhttp::buffer_body> sr{res};
      Lowest(client).expires_after(options_.io_timeout);
      co_await bhttp::async_write_header(client, sr, net::redirect_error(net::use_awaitable, ec));
      if (ec) co_return false;
      ++tunnels_;
      co_await Tunnel(client, client_buffer, std::move(*upstream), upstream_buffer, forward.tag);
      co_return false;
    }
    const bool keep = client_keep_alive && !upgrade;
    const bool upstream_reusable = res.keep_alive();
    res.keep_alive(keep);
    bhttp::response_serializer<bhttp::buffer_body> sr{res};
    // A body that came with the header goes with it, in one write; one yet
    // to come must not hold the header back.
    if (!response_parser.is_done() && upstream_buffer.size() == 0) {
      Lowest(client).expires_after(options_.io_timeout);
      co_await bhttp::async_write_header(client, sr, net::redirect_error(net::use_awaitable, ec));
    }
    if (!ec) co_await Relay(*upstream, upstream_buffer, response_parser, client, sr, scratch, options_.io_timeout, ec);
    if (ec) {
      ++upstream_errors_;
      co_return false;  // the response is under way: all we can do is close
    }
    if (upstream_reusable && response_parser.is_done() && upstream_buffer.size() == 0) {
      GiveBack(key, std::move(*upstream));
    }
    co_return keep;
  }

  // Copies bytes both ways between the client and the upstream until
  // either side ends, then closes both.
  template <class Stream>
  net::awaitable<void> Tunnel(Stream& client, beast::flat_buffer& client_buffer, beast::tcp_stream upstream,
                              beast::flat_buffer& upstream_buffer, uint64_t tag) {
    beast::error_code ec;
    // What either side sent after its header belongs to the other.
    if (client_buffer.size() > 0) {
      upstream.expires_after(options_.io_timeout);
      co_await net::async_write(upstream, client_buffer.data(), net::redirect_error(net::use_awaitable, ec));
      client_buffer.consume(client_buffer.size());
      if (ec) co_return;
    }
    if (upstream_buffer.size() > 0) {
      Lowest(client).expires_after(options_.io_timeout);
      co_await net::async_write(client, upstream_buffer.data(), net::redirect_error(net::use_awaitable, ec));
      upstream_buffer.consume(upstream_buffer.size());
      if (ec) co_return;
    }
    // One direction runs as its own coroutine, the other here, both on
    // this connection's worker; the first to end closes both sockets, which
    // ends the other. This frame waits for the spawned one, which uses
    // `client` (it lives in our caller's frame).
    struct Shared {
      Shared(beast::tcp_stream s, net::any_io_executor ex) : up(std::move(s)), spawned_done(ex) {}
      beast::tcp_stream up;
      net::steady_timer spawned_done;
      bool spawned_finished = false;
    };
    auto executor = co_await net::this_coro::executor;
    auto shared = std::make_shared<Shared>(std::move(upstream), executor);
    shared->spawned_done.expires_at(net::steady_timer::time_point::max());
    auto close_both = [shared, &client] {
      beast::error_code ignored;
      shared->up.socket().close(ignored);
      Lowest(client).socket().close(ignored);
    };
    net::co_spawn(
        executor,
        [this, shared, &client, tag, close_both]() -> net::awaitable<void> {
          co_await Copy(shared->up, client, tag);
          close_both();
          shared->spawned_finished = true;
          shared->spawned_done.cancel();
        },
        net::detached);
    co_await Copy(client, shared->up, tag);
    close_both();
    while (!shared->spawned_finished) {
      co_await shared->spawned_done.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
  }

  template <class From, class To>
  net::awaitable<void> Copy(From& from, To& to, uint64_t tag) {
    char buf[kChunk];
    auto last_report = std::chrono::steady_clock::now() - kActivityEvery;
    for (;;) {
      beast::error_code ec;
      Lowest(from).expires_after(options_.tunnel_idle_timeout);
      size_t n = co_await from.async_read_some(net::buffer(buf), net::redirect_error(net::use_awaitable, ec));
      if (ec || n == 0) co_return;
      Lowest(to).expires_after(options_.io_timeout);
      co_await net::async_write(to, net::buffer(buf, n), net::redirect_error(net::use_awaitable, ec));
      if (ec) co_return;
      auto now = std::chrono::steady_clock::now();
      if (now - last_report >= kActivityEvery) {
        last_report = now;
        router_.Activity(tag);
      }
    }
  }

  net::awaitable<beast::tcp_stream> ConnectUpstream(const UpstreamKey& key, beast::error_code& ec) {
    beast::tcp_stream stream(co_await net::this_coro::executor);
    stream.expires_after(options_.connect_timeout);
    tcp::endpoint endpoint(net::ip::address_v4(key.first), key.second);
    co_await stream.async_connect(endpoint, net::redirect_error(net::use_awaitable, ec));
    if (!ec) {
      ++upstream_connects_;
      beast::error_code ignored;
      stream.socket().set_option(tcp::no_delay(true), ignored);
    }
    co_return stream;
  }

  // Called on a worker's thread (the connection's), as every coroutine.
  std::optional<beast::tcp_stream> TakeIdle(const UpstreamKey& key) {
    auto& pool = current_worker->idle;
    auto it = pool.find(key);
    if (it == pool.end() || it->second.empty()) return std::nullopt;
    beast::tcp_stream stream = std::move(it->second.back());
    it->second.pop_back();
    return stream;
  }

  void GiveBack(const UpstreamKey& key, beast::tcp_stream stream) {
    auto& idle = current_worker->idle[key];
    if (idle.size() < options_.max_idle_upstream) idle.push_back(std::move(stream));
  }

  ProxyRouter& router_;
  const ProxyOptions options_;
  std::atomic<uint64_t> accepted_{0}, active_{0}, requests_{0}, forwarded_{0}, upstream_connects_{0},
      upstream_errors_{0}, tunnels_{0}, tls_failures_{0};
  mutable std::mutex mu_;
  // Declared after everything their coroutines touch, so destroyed before.
  // Worker 0 exists from the start (listeners may come before Start); Start
  // adds the others.
  std::vector<std::unique_ptr<Worker>> workers_ = [] {
    std::vector<std::unique_ptr<Worker>> w;
    w.push_back(std::make_unique<Worker>());
    return w;
  }();
  std::atomic<size_t> next_worker_{0};
  std::vector<std::thread> threads_;
  std::map<uint16_t, std::shared_ptr<Listener>> listeners_;  // guarded by mu_
};

thread_local ProxyServer::Impl::Worker* ProxyServer::Impl::current_worker = nullptr;

Result<std::unique_ptr<ProxyServer>> ProxyServer::Create(ProxyRouter& router, ProxyOptions options) {
  return std::unique_ptr<ProxyServer>(new ProxyServer(std::make_unique<Impl>(router, std::move(options))));
}

ProxyServer::ProxyServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProxyServer::~ProxyServer() = default;
Result<uint16_t> ProxyServer::Listen(const std::string& address, uint16_t port, const std::string& certificate_file,
                                     const std::string& key_file) {
  return impl_->Listen(address, port, certificate_file, key_file);
}
void ProxyServer::Unlisten(uint16_t port) { impl_->Unlisten(port); }
void ProxyServer::Start(int threads) { impl_->Start(threads); }
void ProxyServer::Stop() { impl_->Stop(); }
ProxyStats ProxyServer::stats() const { return impl_->stats(); }

}  // namespace dspool
