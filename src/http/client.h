// Client: one synchronous HTTP/1.1 request over a fresh connection, for the
// CLI and the agent (a few requests a second, not a data path).
//
//   DSP_ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint("unix:/var/lib/dspool/api.sock"));
//   DSP_ASSIGN_OR_RETURN(Response r, Client::Do(ep, "GET", "/v1/pools", "", {}, 5s));
//
// Thread safety: Do keeps no state between calls; call it from any number of
// threads at once.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "http/endpoint.h"
#include "http/message.h"

namespace dspool {

class Client {
 public:
  // Connects to `endpoint`, sends `method` `target` with `body` and
  // `headers` (plus Host, Content-Length, "Connection: close", and
  // "Content-Type: application/json" when there is a body and `headers`
  // names no Content-Type), reads the whole response and closes.
  //
  // On success, any HTTP status (a 404 is a successful exchange): the
  // Response's content_type is its Content-Type (empty if none), headers
  // are the other fields except Content-Length, names lower-cased, in
  // arrival order.
  //
  // A tls: endpoint gets TLS 1.2 or 1.3, and the request is sent only once
  // the server's certificate passed the endpoint's check (Endpoint's
  // tls_fingerprint, else tls_ca_file or the system's CAs, with the host
  // name); a host name is also sent in the hello (SNI).
  //
  // Errors, each naming the endpoint:
  //   Unavailable       cannot connect (nothing listening, no socket file),
  //                     the TLS handshake failed, or the connection broke
  //                     before a whole response came
  //   Unauthenticated   tls: the server's certificate is not the pinned one
  //                     (both fingerprints in the message), not trusted (and
  //                     OpenSSL's reason), or not for the endpoint's host;
  //                     nothing was sent
  //   PermissionDenied  the socket file's mode does not let us connect
  //   DeadlineExceeded  `timeout` (for the whole exchange) ran out
  //   InvalidArgument   bad method, target or header (CR/LF, ...); tls: a
  //                     malformed fingerprint, an unreadable CA file
  //   Internal          the peer sent something that is not HTTP, or a body
  //                     over 64 MiB
  // Never throws. A TCP host that is a name goes through the system
  // resolver, which the timeout cannot interrupt (the time it takes still
  // counts): use an address where a hung DNS server matters.
  static Result<Response> Do(const Endpoint& endpoint, const std::string& method,
                             const std::string& target, const std::string& body,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             std::chrono::milliseconds timeout);
};

// The body of GET `url` (http:// or https://, with an optional port),
// which must answer 200. InvalidArgument for a URL of another form,
// FailedPrecondition ("GET <url> answered HTTP 404") for another status,
// else Do's errors. Redirects are not followed.
Result<std::string> FetchUrl(const std::string& url, std::chrono::milliseconds timeout);

}  // namespace dspool
