// The server on Boost.Asio/Beast. Shape:
//
//   ServerCore  (HttpServer::Impl) owns the io_context, the I/O threads, the listeners (by tag)
//               and the registry of live connections; mu_ guards the last two.
//   Listener    one acceptor. Its accept loop is a callback chain whose every
//               touch of the acceptor is under the listener's own mutex, so
//               Close() can shut it synchronously from any thread.
//   Connection  one socket on its own strand, served by a coroutine (Serve);
//               on a TLS listener the socket is wrapped in an ssl_stream
//               (kTls), whose context the listener holds.
//               Other threads reach it only through RequestClose(), which
//               posts to that strand.
//
// Shutdown: Stop() closes the listeners, asks every connection to close,
// drops the work guard and joins the threads; io_context::run() returns on
// each thread once no connection coroutine, accept or timer is left.
#include "http/server.h"

#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "base/log.h"
#include "base/thread_name.h"
#include "http/beast_util.h"
#include "net/socket.h"
#include "net/tls.h"

namespace dspool {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using LocalProtocol = net::local::stream_protocol;
using TcpProtocol = net::ip::tcp;

using http_internal::Sv;

namespace {

constexpr std::string_view kLog = "http";
constexpr size_t kHeaderLimit = 16 * 1024;
constexpr size_t kReadChunk = 16 * 1024;
// After an error response the client may still be sending a request we will
// not read. Closing with unread input makes TCP send a reset that can destroy
// our response before the client reads it; so we stop sending, then read and
// discard for a little while (Apache's "lingering close").
constexpr std::chrono::seconds kLingerTime{2};
constexpr size_t kLingerBytes = 8 << 20;
constexpr std::chrono::milliseconds kAcceptRetry{100};

Status FromErrorCode(std::string_view what, const beast::error_code& ec) {
  if (ec.category() == boost::system::system_category() ||
      ec.category() == boost::system::generic_category()) {
    return ErrnoStatus(what, ec.value());
  }
  return Internal(std::string(what) + ": " + ec.message());
}

Response ErrorResponse(int status, std::string_view code, std::string_view message) {
  return JsonResponse(status, JsonErrorBody(code, message));
}

// For a failed read: the error response to send, or nullopt to just close
// (the peer left, a timeout, or we closed the socket ourselves).
std::optional<Response> ResponseForReadError(const beast::error_code& ec, size_t max_body) {
  if (ec == bhttp::error::body_limit) {
    return ErrorResponse(413, "ResourceExhausted",
                         "request body exceeds " + std::to_string(max_body) + " bytes");
  }
  if (ec == bhttp::error::header_limit) {
    return ErrorResponse(431, "ResourceExhausted",
                         "request header exceeds " + std::to_string(kHeaderLimit) + " bytes");
  }
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) return std::nullopt;
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
    return ErrorResponse(400, "InvalidArgument", "malformed HTTP request: " + ec.message());
  }
  return std::nullopt;
}

Peer PeerOf(LocalProtocol::socket& socket) {
  Peer peer;
  peer.is_unix = true;
  if (auto cred = UnixPeerCredentials(socket.native_handle()); cred.ok()) {
    peer.uid = cred->uid;
    peer.gid = cred->gid;
    peer.pid = cred->pid;
  }
  return peer;
}

Peer PeerOf(TcpProtocol::socket& socket) {
  Peer peer;
  beast::error_code ec;
  TcpProtocol::endpoint remote = socket.remote_endpoint(ec);
  if (!ec) {
    net::ip::address address = remote.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
      address = net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
    }
    peer.address = address.to_string();
    peer.port = remote.port();
  }
  return peer;
}

class Listener {
 public:
  explicit Listener(std::string tag) : tag_(std::move(tag)) {}
  virtual ~Listener() = default;
  // Closes the socket and removes the socket file we made, if still ours.
  // Thread-safe; idempotent.
  virtual void Close() = 0;

  const std::string& tag() const { return tag_; }
  bool unlistened = false;  // guarded by ServerCore::mu_
  // A TLS listener's context; null for plain ones. Set before the listener
  // accepts, then only read.
  std::shared_ptr<net::ssl::context> tls;

 private:
  const std::string tag_;
};

class ConnectionBase {
 public:
  explicit ConnectionBase(std::shared_ptr<Listener> listener) : listener_(std::move(listener)) {}
  virtual ~ConnectionBase() = default;
  // Starts serving, on the connection's strand.
  virtual void Start() = 0;
  // Asks the connection to wind down (HttpServer::Unlisten). Thread-safe.
  virtual void RequestClose() = 0;
  const Listener* listener() const { return listener_.get(); }

 private:
  const std::shared_ptr<Listener> listener_;
};

class ServerCore {
 public:
  ServerCore(Handler handler, HttpServerOptions options)
      : handler_(std::move(handler)), options_(options), work_(ioc_.get_executor()) {}
  ~ServerCore() { Stop(); }

  Status ListenUnix(const std::string& path, mode_t mode, std::string tag);
  Result<uint16_t> ListenTcp(const std::string& address, uint16_t port, std::string tag,
                             std::shared_ptr<net::ssl::context> tls = nullptr);
  Result<uint16_t> ListenTls(const std::string& address, uint16_t port, TlsCertificate certificate,
                             std::string tag);
  Status Unlisten(const std::string& tag);
  void Start(int threads);
  void Stop();
  HttpServerStats stats() const;

  // For listeners and connections.
  template <class Protocol>
  void Adopt(const std::shared_ptr<Listener>& listener, typename Protocol::socket socket);
  void Forget(ConnectionBase* connection);
  Response Invoke(const Request& request);
  const HttpServerOptions& options() const { return options_; }
  void CountRequest() { ++requests_; }
  void CountHandshakeFailure() { ++handshake_failures_; }

 private:
  Status CheckTagFree(const std::string& tag);  // REQUIRES: mu_ held
  Status Register(std::shared_ptr<Listener> listener);

  net::io_context ioc_;  // first: destroyed last, after everything that uses it
  const Handler handler_;
  const HttpServerOptions options_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;

  std::mutex stop_mu_;  // serialises Stop()
  mutable std::mutex mu_;
  bool started_ = false;
  bool stopped_ = false;
  std::vector<std::thread> threads_;
  std::map<std::string, std::shared_ptr<Listener>> listeners_;
  std::unordered_map<ConnectionBase*, std::shared_ptr<ConnectionBase>> connections_;

  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> handshake_failures_{0};
};

template <class Protocol>
class ListenerImpl final : public Listener, public std::enable_shared_from_this<ListenerImpl<Protocol>> {
 public:
  ListenerImpl(ServerCore* server, net::io_context& ioc, std::string tag, std::string unix_path)
      : Listener(std::move(tag)),
        server_(server),
        ioc_(ioc),
        acceptor_(ioc),
        retry_(ioc),
        unix_path_(std::move(unix_path)) {}

  typename Protocol::acceptor& acceptor() { return acceptor_; }  // REQUIRES: before Arm()
  void RememberFile(const struct stat& st) {
    file_dev_ = st.st_dev;
    file_ino_ = st.st_ino;
  }

  // Starts the accept loop.
  void Arm() {
    std::lock_guard<std::mutex> lock(mu_);
    ArmLocked();
  }

  void Close() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    acceptor_.close(ec);
    retry_.cancel();
    struct stat st;
    if (!unix_path_.empty() && lstat(unix_path_.c_str(), &st) == 0 && st.st_dev == file_dev_ &&
        st.st_ino == file_ino_) {
      unlink(unix_path_.c_str());
    }
  }

 private:
  void ArmLocked() {
    if (closed_) return;
    // Each connection gets its own strand; any_io_executor keeps the socket
    // type the plain Protocol::socket.
    acceptor_.async_accept(net::any_io_executor(net::make_strand(ioc_)),
                           [self = this->shared_from_this()](beast::error_code ec,
                                                             typename Protocol::socket socket) {
                             self->OnAccept(ec, std::move(socket));
                           });
  }

  void OnAccept(beast::error_code ec, typename Protocol::socket socket) {
    if (!ec) server_->Adopt<Protocol>(this->shared_from_this(), std::move(socket));
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    if (ec) {
      // Out of descriptors and the like: retry later rather than spin.
      DSP_LOG(kWarning, kLog) << "accept on listener '" << tag() << "': " << ec.message();
      retry_.expires_after(kAcceptRetry);
      retry_.async_wait([self = this->shared_from_this()](beast::error_code wait_ec) {
        if (!wait_ec) self->Arm();
      });
      return;
    }
    ArmLocked();
  }

  ServerCore* const server_;
  net::io_context& ioc_;
  std::mutex mu_;  // guards everything below
  typename Protocol::acceptor acceptor_;
  net::steady_timer retry_;
  bool closed_ = false;
  const std::string unix_path_;  // empty for TCP
  dev_t file_dev_ = 0;
  ino_t file_ino_ = 0;
};

template <class Protocol, bool kTls>
class Connection final : public ConnectionBase,
                         public std::enable_shared_from_this<Connection<Protocol, kTls>> {
 public:
  using Socket = beast::basic_stream<Protocol, net::any_io_executor>;
  using Stream = std::conditional_t<kTls, beast::ssl_stream<Socket>, Socket>;

  Connection(ServerCore* server, std::shared_ptr<Listener> listener, typename Protocol::socket socket, Peer peer)
      requires(!kTls)
      : ConnectionBase(std::move(listener)),
        server_(server),
        options_(server->options()),
        stream_(std::move(socket)),
        peer_(std::move(peer)) {}

  Connection(ServerCore* server, std::shared_ptr<Listener> listener, typename Protocol::socket socket, Peer peer)
      requires(kTls)
      : ConnectionBase(listener),
        server_(server),
        options_(server->options()),
        stream_(std::move(socket), *listener->tls),
        peer_(std::move(peer)) {}

  void Start() override { net::co_spawn(stream_.get_executor(), Run(), net::detached); }

  void RequestClose() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->closing_ = true;
      if (self->state_ != State::kBusy) self->socket().close();
    });
  }

  net::awaitable<void> Run() {
    auto self = this->shared_from_this();
    try {
      co_await Serve();
    } catch (const std::exception& e) {
      DSP_LOG(kError, kLog) << "connection on listener '" << listener()->tag() << "': " << e.what();
    } catch (...) {
      DSP_LOG(kError, kLog) << "connection on listener '" << listener()->tag() << "': unknown exception";
    }
    socket().close();
    server_->Forget(this);
  }

 private:
  // kBusy: a whole request was read; its response is being made or written.
  // RequestClose lets kBusy finish and closes the socket in any other state.
  enum class State { kWaiting, kReading, kBusy, kLingering };

  // The TCP or Unix socket with its timer, under TLS if any.
  Socket& socket() { return beast::get_lowest_layer(stream_); }

  net::awaitable<void> Serve() {
    if constexpr (kTls) {
      beast::error_code ec;
      socket().expires_after(options_.header_read_timeout);
      co_await stream_.async_handshake(net::ssl::stream_base::server, net::redirect_error(net::use_awaitable, ec));
      if (ec) {
        server_->CountHandshakeFailure();
        DSP_LOG(kDebug, kLog) << "TLS handshake with " << peer_.address << ":" << peer_.port << " on listener '"
                              << listener()->tag() << "' failed: " << ec.message();
        co_return;
      }
    }
    bool first = true;
    while (!closing_) {
      beast::error_code ec;
      state_ = State::kWaiting;
      if (buffer_.size() == 0) {
        socket().expires_after(first ? options_.header_read_timeout : options_.idle_timeout);
        size_t n = co_await stream_.async_read_some(buffer_.prepare(kReadChunk),
                                                    net::redirect_error(net::use_awaitable, ec));
        if (ec) co_return;
        buffer_.commit(n);
      }
      first = false;

      state_ = State::kReading;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(kHeaderLimit);
      parser.body_limit(options_.max_body_bytes);
      socket().expires_after(options_.header_read_timeout);
      co_await bhttp::async_read_header(stream_, buffer_, parser,
                                        net::redirect_error(net::use_awaitable, ec));
      if (!ec && !parser.is_done()) {
        if (beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
          bhttp::response<bhttp::empty_body> go_on{bhttp::status::continue_, parser.get().version()};
          socket().expires_after(options_.write_timeout);
          co_await bhttp::async_write(stream_, go_on, net::redirect_error(net::use_awaitable, ec));
          if (ec) co_return;
        }
        socket().expires_after(options_.body_read_timeout);
        co_await bhttp::async_read(stream_, buffer_, parser, net::redirect_error(net::use_awaitable, ec));
      }
      if (ec) {
        std::optional<Response> error = ResponseForReadError(ec, options_.max_body_bytes);
        if (error) co_await RespondAndClose(std::move(*error), 11);
        co_return;
      }

      state_ = State::kBusy;
      bhttp::request<bhttp::string_body>& req = parser.get();
      bool head = req.method() == bhttp::verb::head;
      Result<Target> target = ParseTarget(Sv(req.target()));
      if (!target.ok()) {
        co_await RespondAndClose(ErrorResponse(400, "InvalidArgument", target.status().message()),
                                 req.version(), head);
        co_return;
      }
      Request request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      request.path = std::move(target->path);
      request.query = std::move(target->query);
      request.headers = http_internal::HeaderMap(req);
      request.body = std::move(req.body());
      request.peer = peer_;
      request.listener_tag = listener()->tag();

      Response response = server_->Invoke(request);
      bool keep_alive = req.keep_alive() && !closing_;
      co_await Write(std::move(response), req.version(), head, keep_alive, ec);
      if (ec) co_return;
      if (!keep_alive) {
        co_await ShutdownSend();
        co_return;
      }
    }
  }

  // Writes `response`; `ec` says whether that worked.
  net::awaitable<void> Write(Response response, unsigned version, bool head, bool keep_alive,
                             beast::error_code& ec) {
    bhttp::response<bhttp::string_body> res =
        http_internal::ToWire(std::move(response), version, head, keep_alive);
    socket().expires_after(options_.write_timeout);
    co_await bhttp::async_write(stream_, res, net::redirect_error(net::use_awaitable, ec));
    if (!ec) server_->CountRequest();
  }

  // Ends our side: TLS's close_notify first (waiting at most kLingerTime for
  // the peer's, which a client that just closes never sends), then a FIN.
  net::awaitable<void> ShutdownSend() {
    beast::error_code ec;
    if constexpr (kTls) {
      socket().expires_after(kLingerTime);
      co_await stream_.async_shutdown(net::redirect_error(net::use_awaitable, ec));
    }
    socket().socket().shutdown(Protocol::socket::shutdown_send, ec);
  }

  // Sends an error response, then closes as gently as the client allows.
  net::awaitable<void> RespondAndClose(Response response, unsigned version, bool head = false) {
    state_ = State::kBusy;
    beast::error_code ec;
    co_await Write(std::move(response), version, head, false, ec);
    if (ec || closing_) co_return;
    state_ = State::kLingering;
    co_await ShutdownSend();
    // What the client still sends is dropped unread (under TLS, undecrypted).
    socket().expires_after(kLingerTime);
    std::vector<char> scratch(kReadChunk);
    size_t drained = 0;
    while (!ec && drained < kLingerBytes) {
      drained += co_await socket().async_read_some(net::buffer(scratch),
                                                   net::redirect_error(net::use_awaitable, ec));
    }
  }

  ServerCore* const server_;
  const HttpServerOptions& options_;
  // Everything below is touched only on the stream's strand.
  Stream stream_;
  beast::flat_buffer buffer_;
  const Peer peer_;
  State state_ = State::kWaiting;
  bool closing_ = false;
};

template <class Protocol>
void ServerCore::Adopt(const std::shared_ptr<Listener>& listener, typename Protocol::socket socket) {
  Peer peer = PeerOf(socket);
  std::shared_ptr<ConnectionBase> connection;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ || listener->unlistened) return;  // `socket` closes on return
    if (connections_.size() >= options_.max_connections) {
      ++refused_;
      return;
    }
    if constexpr (std::is_same_v<Protocol, TcpProtocol>) {
      if (listener->tls) {
        connection = std::make_shared<Connection<Protocol, true>>(this, listener, std::move(socket), std::move(peer));
      }
    }
    if (!connection) {
      connection = std::make_shared<Connection<Protocol, false>>(this, listener, std::move(socket), std::move(peer));
    }
    connections_.emplace(connection.get(), connection);
    ++accepted_;
  }
  connection->Start();
}

void ServerCore::Forget(ConnectionBase* connection) {
  std::lock_guard<std::mutex> lock(mu_);
  connections_.erase(connection);
}

Response ServerCore::Invoke(const Request& request) {
  try {
    return handler_(request);
  } catch (...) {
    // The message of the exception may hold anything; it stays out of the log.
    DSP_LOG(kError, kLog) << "handler threw on " << request.method << " " << request.path;
  }
  return ErrorResponse(500, "Internal", "internal error");
}

Status ServerCore::CheckTagFree(const std::string& tag) {
  if (stopped_) return FailedPrecondition("server is stopped");
  if (listeners_.count(tag)) return AlreadyExists("a listener tagged '" + tag + "' exists");
  return Status::Ok();
}

Status ServerCore::Register(std::shared_ptr<Listener> listener) {
  Status status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status = CheckTagFree(listener->tag());
    if (status.ok()) {
      listeners_.emplace(listener->tag(), listener);
      return status;
    }
    listener->unlistened = true;
  }
  listener->Close();
  return status;
}

Status ServerCore::ListenUnix(const std::string& path, mode_t mode, std::string tag) {
  const std::string where = "unix:" + path;
  if (path.empty() || path.size() > kMaxUnixSocketPath) {
    return InvalidArgument("socket path '" + path + "' is empty or too long");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    DSP_RETURN_IF_ERROR(CheckTagFree(tag));
  }
  try {
    LocalProtocol::endpoint endpoint(path);
    beast::error_code ec;
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return FailedPrecondition("refusing to listen on " + path + ": it exists and is not a socket");
      }
      // A socket file: in use by a live server, or left by a dead one?
      LocalProtocol::socket probe(ioc_);
      probe.connect(endpoint, ec);
      if (!ec) return Unavailable("cannot listen on " + where + ": a server is accepting connections there");
      if (ec != boost::system::errc::connection_refused &&
          ec != boost::system::errc::no_such_file_or_directory) {
        return FromErrorCode("cannot listen on " + where + ": probing the existing socket", ec);
      }
      if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus("cannot remove stale socket " + path, errno);
      }
    } else if (errno != ENOENT) {
      return ErrnoStatus("cannot listen on " + where + ": stat", errno);
    }

    auto listener = std::make_shared<ListenerImpl<LocalProtocol>>(this, ioc_, tag, path);
    auto& acceptor = listener->acceptor();
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (ec) return FromErrorCode("cannot listen on " + where, ec);
    // Bound but not listening: connect() fails until listen(), so nobody
    // gets in while the file still has the umask's mode.
    if (chmod(path.c_str(), mode) != 0 || lstat(path.c_str(), &st) != 0) {
      Status status = ErrnoStatus("cannot set the mode of " + path, errno);
      unlink(path.c_str());
      return status;
    }
    listener->RememberFile(st);
    acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      listener->Close();
      return FromErrorCode("cannot listen on " + where, ec);
    }
    DSP_RETURN_IF_ERROR(Register(listener));
    listener->Arm();
    DSP_LOG(kInfo, kLog) << "listening on " << where << " (" << tag << ")";
    return Status::Ok();
  } catch (const std::exception& e) {
    return Internal("cannot listen on " + where + ": " + e.what());
  }
}

Result<uint16_t> ServerCore::ListenTcp(const std::string& address, uint16_t port, std::string tag,
                                       std::shared_ptr<net::ssl::context> tls) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    DSP_RETURN_IF_ERROR(CheckTagFree(tag));
  }
  try {
    beast::error_code ec;
    net::ip::address ip = net::ip::make_address(address, ec);
    if (ec) return InvalidArgument("listen address '" + address + "' is not an IP address");
    TcpProtocol::endpoint endpoint(ip, port);
    const std::string where = "tcp:" + (ip.is_v6() ? "[" + address + "]" : address) + ":" +
                              std::to_string(port);
    auto listener = std::make_shared<ListenerImpl<TcpProtocol>>(this, ioc_, tag, "");
    listener->tls = std::move(tls);
    auto& acceptor = listener->acceptor();
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return FromErrorCode("cannot listen on " + where, ec);
    uint16_t bound = acceptor.local_endpoint(ec).port();
    if (ec) return FromErrorCode("cannot listen on " + where, ec);
    DSP_RETURN_IF_ERROR(Register(listener));
    listener->Arm();
    DSP_LOG(kInfo, kLog) << "listening on " << (listener->tls ? "tls" : "tcp") << " port " << bound << " of "
                         << address << " (" << tag << ")";
    return bound;
  } catch (const std::exception& e) {
    return Internal("cannot listen on " + address + ": " + e.what());
  }
}

Result<uint16_t> ServerCore::ListenTls(const std::string& address, uint16_t port, TlsCertificate certificate,
                                       std::string tag) {
  // The key is wiped whatever happens below.
  struct Wipe {
    std::string& key;
    ~Wipe() { explicit_bzero(key.data(), key.size()); }
  } wipe{certificate.key_pem};
  try {
    auto tls = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
    DSP_RETURN_IF_ERROR(ConfigureTlsServer(tls->native_handle(), certificate));
    return ListenTcp(address, port, std::move(tag), std::move(tls));
  } catch (const std::exception& e) {
    return Internal("cannot listen with TLS on " + address + ": " + e.what());
  }
}

Status ServerCore::Unlisten(const std::string& tag) {
  std::shared_ptr<Listener> listener;
  std::vector<std::shared_ptr<ConnectionBase>> connections;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = listeners_.find(tag);
    if (it == listeners_.end()) return NotFound("no listener tagged '" + tag + "'");
    listener = it->second;
    listeners_.erase(it);
    listener->unlistened = true;
    for (const auto& [ptr, connection] : connections_) {
      if (ptr->listener() == listener.get()) connections.push_back(connection);
    }
  }
  listener->Close();
  for (const auto& connection : connections) connection->RequestClose();
  return Status::Ok();
}

void ServerCore::Start(int threads) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopped_) return;
  started_ = true;
  for (int i = 0; i < std::max(threads, 1); ++i) {
    threads_.emplace_back([this, i] {
      SetThreadName("http-" + std::to_string(i));
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          DSP_LOG(kError, kLog) << "I/O thread: " << e.what();
        } catch (...) {
          DSP_LOG(kError, kLog) << "I/O thread: unknown exception";
        }
      }
    });
  }
}

void ServerCore::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  std::map<std::string, std::shared_ptr<Listener>> listeners;
  std::vector<std::shared_ptr<ConnectionBase>> connections;
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    listeners.swap(listeners_);
    for (const auto& [ptr, connection] : connections_) connections.push_back(connection);
    threads.swap(threads_);
  }
  for (const auto& [tag, listener] : listeners) listener->Close();
  for (const auto& connection : connections) connection->RequestClose();
  connections.clear();
  work_.reset();
  for (std::thread& thread : threads) thread.join();
}

HttpServerStats ServerCore::stats() const {
  HttpServerStats stats;
  stats.connections_accepted = accepted_;
  stats.connections_refused = refused_;
  stats.requests = requests_;
  stats.tls_handshake_failures = handshake_failures_;
  std::lock_guard<std::mutex> lock(mu_);
  stats.connections_active = connections_.size();
  return stats;
}

}  // namespace

class HttpServer::Impl : public ServerCore {
 public:
  using ServerCore::ServerCore;
};

HttpServer::HttpServer(Handler handler, HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(handler), options)) {}
HttpServer::~HttpServer() { impl_->Stop(); }
Status HttpServer::ListenUnix(const std::string& path, mode_t mode, std::string tag) {
  return impl_->ListenUnix(path, mode, std::move(tag));
}
Result<uint16_t> HttpServer::ListenTcp(const std::string& address, uint16_t port, std::string tag) {
  return impl_->ListenTcp(address, port, std::move(tag));
}
Result<uint16_t> HttpServer::ListenTls(const std::string& address, uint16_t port, TlsCertificate certificate,
                                       std::string tag) {
  return impl_->ListenTls(address, port, std::move(certificate), std::move(tag));
}
Status HttpServer::Unlisten(const std::string& tag) { return impl_->Unlisten(tag); }
void HttpServer::Start(int threads) { impl_->Start(threads); }
void HttpServer::Stop() { impl_->Stop(); }
HttpServerStats HttpServer::stats() const { return impl_->stats(); }

}  // namespace dspool
