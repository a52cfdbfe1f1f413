// ApiClient: the client side of docs/api.md for the CLI's commands. One
// synchronous request per call, over a fresh connection (http/client.h).
//
//   ApiClient api(endpoint, token, std::chrono::seconds(30));
//   DSP_ASSIGN_OR_RETURN(Json pools, api.Get("/v1/pools"));
//
// A value holding where and how to connect; calls keep no state, so an
// ApiClient may be used from several threads at once.
#pragma once

#include <chrono>
#include <string>

#include "base/result.h"
#include "http/endpoint.h"
#include "model/json_reader.h"

namespace dspool {

class ApiClient {
 public:
  // `token`, if not empty, is sent as "Authorization: Bearer <token>".
  ApiClient(Endpoint endpoint, std::string token, std::chrono::milliseconds timeout);

  // Sends `method` `target` with `body` (none if null) and returns the
  // answer's JSON body (null for an empty body) when its status is 2xx.
  //
  // Errors:
  //   - the API's error (any non-2xx status with {"error": {"code",
  //     "message"}}): that code and message, as is; an ARM error's code
  //     (InvalidTemplate, ...) is not ours: the code for the HTTP status,
  //     and the message "Code: message" with each detail's;
  //   - a non-2xx status without that body: the code for the HTTP status and
  //     "<endpoint> answered HTTP <status>: <start of the body>";
  //   - a 2xx body that is not JSON: Internal;
  //   - the exchange failed (no server, timeout): the http Client's error,
  //     which names the endpoint.
  // `error`, if given, gets the answer's {"error": ...} object when there
  // is one (an ARM error's details name what to do next).
  Result<Json> Call(const std::string& method, const std::string& target, const Json* body = nullptr,
                    Json* error = nullptr) const;

  Result<Json> Get(const std::string& target) const { return Call("GET", target); }

  const Endpoint& endpoint() const { return endpoint_; }

 private:
  Endpoint endpoint_;
  std::string token_;
  std::chrono::milliseconds timeout_;
};

}  // namespace dspool
