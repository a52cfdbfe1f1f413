// Client::Do on Boost.Asio/Beast: a private io_context per call, one
// coroutine for connect, write and read, each bounded by the call's deadline
// through beast::basic_stream's timer.
#include "http/client.h"

#include "http/beast_util.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

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
  Result<Response> result = Internal("request did not complete");

  std::string Where() const { return endpoint.ToString(); }
  Status TimedOut(std::string_view doing) const {
    return DeadlineExceeded("timed out after " + std::to_string(timeout.count()) + " ms " +
                            std::string(doing) + " " + Where());
  }
};

template <class Protocol>
net::awaitable<void> Run(Exchange& x, std::vector<typename Protocol::endpoint> endpoints) {
  beast::basic_stream<Protocol, net::any_io_executor> stream(co_await net::this_coro::executor);
  beast::error_code ec;

  stream.expires_at(x.deadline);
  co_await stream.async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
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

  stream.expires_at(x.deadline);
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
  stream.expires_at(x.deadline);
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
  beast::error_code ignored;
  stream.socket().shutdown(Protocol::socket::shutdown_both, ignored);
  stream.close();
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
  if (endpoint.kind == Endpoint::Kind::kUnix) {
    if (endpoint.path.empty()) return InvalidArgument("empty Unix socket path");
    std::vector<net::local::stream_protocol::endpoint> endpoints{
        net::local::stream_protocol::endpoint(endpoint.path)};
    net::co_spawn(ioc, Run<net::local::stream_protocol>(exchange, std::move(endpoints)), net::detached);
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
    net::co_spawn(ioc, Run<net::ip::tcp>(exchange, std::move(endpoints)), net::detached);
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

}  // namespace dspool
