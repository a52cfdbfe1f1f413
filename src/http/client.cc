// Client::Do on Boost.Asio/Beast: a private io_context per call, one
// coroutine for connect, TLS handshake (tls: endpoints), write and read, each
// bounded by the call's deadline through beast::basic_stream's timer.
#include "http/client.h"

#include "http/beast_util.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <optional>
#include <type_traits>

#include "net/tls.h"

namespace dspool {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

constexpr size_t kMaxResponseBody = 64 << 20;
constexpr size_t kMaxResponseHeader = 64 << 10;

using Clock = net::steady_timer::clock_type;

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c))) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

bool IsFieldValue(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

bool IsTarget(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool IsHttpParseError(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::partial_message && ec != bhttp::error::end_of_stream;
}

// What one exchange needs; lives on Do's stack for the whole io_context run.
struct Exchange {
  const Endpoint& endpoint;
  std::chrono::milliseconds timeout;
  Clock::time_point deadline;
  bhttp::request<bhttp::string_body>& request;
  net::ssl::context* tls = nullptr;  // tls: endpoints
  std::string fingerprint;           // tls: the pinned one, canonical; empty: CA verification
  bool wrong_host = false;           // tls: a trusted certificate, but for another host
  Result<Response> result = Internal("request did not complete");

  std::string Where() const { return endpoint.ToString(); }
  Status TimedOut(std::string_view doing) const {
    return DeadlineExceeded("timed out after " + std::to_string(timeout.count()) + " ms " +
                            std::string(doing) + " " + Where());
  }
};

// The TLS handshake on a connected `stream`, then the server's certificate
// checked against the pin: the request (and its bearer token) goes out only
// to the server the caller meant. False, with x.result set, if not.
template <class Stream>
net::awaitable<bool> Handshake(Exchange& x, Stream& stream) {
  beast::error_code ec;
  const std::string& host = x.endpoint.host;
  net::ip::make_address(host, ec);
  if (ec && !SetServerName(stream.native_handle(), host)) {
    x.result = InvalidArgument("cannot ask " + x.Where() + " for a certificate of host '" + host + "'");
    co_return false;
  }
  ec = {};
  beast::get_lowest_layer(stream).expires_at(x.deadline);
  co_await stream.async_handshake(net::ssl::stream_base::client, net::redirect_error(net::use_awaitable, ec));
  if (ec == beast::error::timeout) {
    x.result = x.TimedOut("in the TLS handshake with");
    co_return false;
  }
  if (ec) {
    std::string untrusted = CertificateVerifyError(stream.native_handle());
    if (x.wrong_host) {
      x.result = Unauthenticated("the certificate of " + x.Where() + " is not for host '" + host + "'");
    } else if (!untrusted.empty()) {
      x.result = Unauthenticated("the certificate of " + x.Where() + " is not trusted: " + untrusted +
                                 (x.endpoint.tls_ca_file.empty() ? " (checked against the system's CAs)"
                                                                 : " (checked against " + x.endpoint.tls_ca_file + ")") +
                                 "; for a server's own self-signed certificate, give its SHA-256 fingerprint instead");
    } else {
      x.result = Unavailable("TLS handshake with " + x.Where() + " failed: " + ec.message());
    }
    co_return false;
  }
  if (!x.fingerprint.empty()) {
    Result<std::string> presented = PeerCertificateFingerprint(stream.native_handle());
    if (!presented.ok()) {
      x.result = Unauthenticated(x.Where() + ": " + presented.status().message());
      co_return false;
    }
    if (*presented != x.fingerprint) {
      x.result = Unauthenticated("the certificate of " + x.Where() + " has SHA-256 fingerprint " + *presented +
                                 ", not the expected " + x.fingerprint +
                                 ": not the server meant, or its certificate changed; nothing was sent");
      co_return false;
    }
  }
  co_return true;
}

template <class Protocol, bool kTls>
net::awaitable<void> Run(Exchange& x, std::vector<typename Protocol::endpoint> endpoints) {
  using Socket = beast::basic_stream<Protocol, net::any_io_executor>;
  using Stream = std::conditional_t<kTls, beast::ssl_stream<Socket>, Socket>;
  std::optional<Stream> holder;
  if constexpr (kTls) {
    holder.emplace(co_await net::this_coro::executor, *x.tls);
  } else {
    holder.emplace(co_await net::this_coro::executor);
  }
  Stream& stream = *holder;
  Socket& socket = beast::get_lowest_layer(stream);
  beast::error_code ec;

  socket.expires_at(x.deadline);
  co_await socket.async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
  if (ec == beast::error::timeout) {
    x.result = x.TimedOut("connecting to");
    co_return;
  }
  if (ec == boost::system::errc::permission_denied) {
    x.result = PermissionDenied("cannot connect to " + x.Where() + ": " + ec.message());
    co_return;
  }
  if (ec) {
    x.result = Unavailable("cannot connect to " + x.Where() + ": " + ec.message() +
                           " — is the server running?");
    co_return;
  }
  if constexpr (kTls) {
    if (!co_await Handshake(x, stream)) co_return;
  }

  socket.expires_at(x.deadline);
  co_await bhttp::async_write(stream, x.request, net::redirect_error(net::use_awaitable, ec));
  if (ec == beast::error::timeout) {
    x.result = x.TimedOut("sending the request to");
    co_return;
  }
  // A server that refuses a request early (a 413) may stop reading it and
  // close; its answer is still there to read, so a failed write is reported
  // only if no response follows.
  beast::error_code write_ec = ec;

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.header_limit(kMaxResponseHeader);
  parser.body_limit(kMaxResponseBody);
  socket.expires_at(x.deadline);
  co_await bhttp::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
  if (ec == beast::error::timeout) {
    x.result = x.TimedOut("waiting for the response from");
  } else if (ec && write_ec) {
    x.result = Unavailable("connection to " + x.Where() +
                           " broke while sending the request: " + write_ec.message());
  } else if (ec == bhttp::error::body_limit) {
    x.result = Internal("response from " + x.Where() + " is larger than " +
                        std::to_string(kMaxResponseBody) + " bytes");
  } else if (ec && IsHttpParseError(ec)) {
    x.result = Internal("malformed HTTP response from " + x.Where() + ": " + ec.message());
  } else if (ec) {
    x.result = Unavailable("connection to " + x.Where() +
                           " broke before a whole response came: " + ec.message());
  } else {
    bhttp::response<bhttp::string_body>& res = parser.get();
    Response response;
    response.status = static_cast<int>(res.result_int());
    response.content_type = std::string(res[bhttp::field::content_type]);
    for (const auto& field : res) {
      if (field.name() == bhttp::field::content_type || field.name() == bhttp::field::content_length) {
        continue;
      }
      response.headers.emplace_back(http_internal::Lower(http_internal::Sv(field.name_string())), std::string(field.value()));
    }
    response.body = std::move(res.body());
    x.result = std::move(response);
  }
  // Under TLS too without close_notify: the response is complete, and
  // waiting for the server's close_notify in return would hang on servers
  // that never send it.
  beast::error_code ignored;
  socket.socket().shutdown(Protocol::socket::shutdown_both, ignored);
  socket.close();
}

// How a tls: endpoint's server is checked: the pinned fingerprint (then no
// CA is consulted), or the CA file or the system's CAs plus the host name.
Status SetUpTlsClient(const Endpoint& endpoint, net::ssl::context& tls, Exchange& x) {
  beast::error_code ec;
  tls.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 | net::ssl::context::no_sslv3 |
                      net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1,
                  ec);
  if (ec) return Internal("TLS settings for " + endpoint.ToString() + ": " + ec.message());
  if (!endpoint.tls_fingerprint.empty()) {
    DSP_ASSIGN_OR_RETURN(x.fingerprint, ParseCertificateFingerprint(endpoint.tls_fingerprint));
    tls.set_verify_mode(net::ssl::verify_none);  // the pin decides, after the handshake
    return Status::Ok();
  }
  if (!endpoint.tls_ca_file.empty()) {
    tls.load_verify_file(endpoint.tls_ca_file, ec);
    if (ec) return InvalidArgument("CA file " + endpoint.tls_ca_file + ": " + ec.message() + " (want PEM certificates)");
  } else {
    tls.set_default_verify_paths(ec);
    if (ec) return Internal("cannot load the system's CA certificates: " + ec.message());
  }
  tls.set_verify_mode(net::ssl::verify_peer);
  tls.set_verify_callback([&x, check = net::ssl::host_name_verification(endpoint.host)](
                              bool preverified, net::ssl::verify_context& context) {
    bool ok = check(preverified, context);
    if (preverified && !ok) x.wrong_host = true;
    return ok;
  });
  return Status::Ok();
}

Result<Response> DoOrThrow(const Endpoint& endpoint, const std::string& method,
                           const std::string& target, const std::string& body,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  if (!IsToken(method)) return InvalidArgument("HTTP method '" + method + "' is not a token");
  if (!IsTarget(target)) return InvalidArgument("request target '" + target + "' is empty or has spaces");

  bhttp::request<bhttp::string_body> request;
  request.version(11);
  request.method_string(method);
  request.target(target);
  if (endpoint.kind == Endpoint::Kind::kUnix) {
    request.set(bhttp::field::host, "localhost");
  } else {
    std::string where = endpoint.ToString();
    request.set(bhttp::field::host, where.substr(4));  // drop "tcp:"
  }
  bool has_content_type = false;
  for (const auto& [name, value] : headers) {
    if (!IsToken(name) || !IsFieldValue(value)) {
      return InvalidArgument("malformed request header field '" + name + "'");
    }
    if (beast::iequals(name, "content-type")) has_content_type = true;
    request.set(name, value);
  }
  if (!body.empty() && !has_content_type) request.set(bhttp::field::content_type, "application/json");
  request.keep_alive(false);
  request.body() = body;
  request.prepare_payload();

  net::io_context ioc;
  Exchange exchange{endpoint, timeout, deadline, request};
  std::optional<net::ssl::context> tls;
  if (endpoint.kind == Endpoint::Kind::kTls) {
    tls.emplace(net::ssl::context::tls_client);
    DSP_RETURN_IF_ERROR(SetUpTlsClient(endpoint, *tls, exchange));
    exchange.tls = &*tls;
  }
  if (endpoint.kind == Endpoint::Kind::kUnix) {
    if (endpoint.path.empty()) return InvalidArgument("empty Unix socket path");
    std::vector<net::local::stream_protocol::endpoint> endpoints{
        net::local::stream_protocol::endpoint(endpoint.path)};
    net::co_spawn(ioc, Run<net::local::stream_protocol, false>(exchange, std::move(endpoints)), net::detached);
  } else {
    std::vector<net::ip::tcp::endpoint> endpoints;
    beast::error_code ec;
    net::ip::address address = net::ip::make_address(endpoint.host, ec);
    if (!ec) {
      endpoints.emplace_back(address, endpoint.port);
    } else {
      net::ip::tcp::resolver resolver(ioc);
      auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
      if (ec) {
        return Unavailable("cannot resolve the host of " + endpoint.ToString() + ": " + ec.message());
      }
      for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    }
    if (tls) {
      net::co_spawn(ioc, Run<net::ip::tcp, true>(exchange, std::move(endpoints)), net::detached);
    } else {
      net::co_spawn(ioc, Run<net::ip::tcp, false>(exchange, std::move(endpoints)), net::detached);
    }
  }
  ioc.run();
  return std::move(exchange.result);
}

}  // namespace

Result<Response> Client::Do(const Endpoint& endpoint, const std::string& method,
                            const std::string& target, const std::string& body,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            std::chrono::milliseconds timeout) {
  try {
    return DoOrThrow(endpoint, method, target, body, headers, timeout);
  } catch (const std::exception& e) {
    return Internal("request to " + endpoint.ToString() + " failed: " + e.what());
  } catch (...) {
    return Internal("request to " + endpoint.ToString() + " failed");
  }
}

Result<std::string> FetchUrl(const std::string& url, std::chrono::milliseconds timeout) {
  const bool tls = url.rfind("https://", 0) == 0;
  if (!tls && url.rfind("http://", 0) != 0) return InvalidArgument("'" + url + "' is not an http or https URL");
  const std::string rest = url.substr(tls ? 8 : 7);
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash), target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (authority.empty()) return InvalidArgument("'" + url + "' names no host");
  const std::string scheme = tls ? "tls:" : "tcp:";
  // "host:port", else the scheme's port.
  auto endpoint = ParseEndpoint(scheme + authority);
  if (!endpoint.ok()) endpoint = ParseEndpoint(scheme + authority + (tls ? ":443" : ":80"));
  if (!endpoint.ok()) return InvalidArgument("'" + url + "': " + endpoint.status().message());
  DSP_ASSIGN_OR_RETURN(Response r, Client::Do(*endpoint, "GET", target, "", {{"Host", authority}}, timeout));
  if (r.status != 200) return FailedPrecondition("GET " + url + " answered HTTP " + std::to_string(r.status));
  return std::move(r.body);
}

}  // namespace dspool
