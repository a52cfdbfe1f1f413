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
  // Errors, each naming the endpoint:
  //   Unavailable       cannot connect (nothing listening, no socket file),
  //                     or the connection broke before a whole response came
  //   PermissionDenied  the socket file's mode does not let us connect
  //   DeadlineExceeded  `timeout` (for the whole exchange) ran out
  //   InvalidArgument   bad method, target or header (CR/LF, ...)
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

}  // namespace dspool
