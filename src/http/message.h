// HTTP/1.1 messages as plain values: what an HttpServer hands a Handler (Request)
// and what the Handler hands back (Response), plus the pure request-target
// parser the server uses (ParseTarget).
//
// These are values with no ties to a connection: copies are independent and
// may be used from any thread. No Boost type appears here; the wire format
// lives in server.cc and client.cc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/strings.h"  // PercentEncode, which ParseTarget decodes back

namespace dspool {

// Who is on the other end of a connection.
struct Peer {
  // True for a Unix-domain socket; uid, gid and pid are then the
  // credentials of the connecting process at connect() time (SO_PEERCRED),
  // which the kernel vouches for. False for TCP; address and port are then
  // the remote end ("127.0.0.1", "::1"). Fields of the other kind are unset.
  bool is_unix = false;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  pid_t pid = 0;
  std::string address;
  uint16_t port = 0;
};

// One request, fully read (headers and body) before the Handler runs.
struct Request {
  std::string method;  // as sent: "GET", "POST", ...
  std::string target;  // the raw request-target: "/v1/pools/a%20b?x=1"
  // Percent-decoded and normalised by ParseTarget: starts with '/', no empty
  // or "." segments, no ".." (such requests never reach the Handler).
  std::string path;
  // Percent-decoded ('+' is a space) query parameters; for a repeated name
  // the last value wins; "?flag" gives {"flag", ""}.
  std::map<std::string, std::string> query;
  // Names lower-cased; repeated fields joined with ", " in arrival order.
  std::map<std::string, std::string> headers;
  std::string body;
  Peer peer;
  std::string listener_tag;  // the tag given to HttpServer::ListenUnix/ListenTcp
};

// What a Handler answers. The server adds Content-Length (except for 204
// and 304, which carry no body) and Connection; a HEAD request gets the
// headers of this response without its body.
struct Response {
  int status = 200;  // 200..599; anything else becomes a 500
  std::string content_type = "application/json";  // empty: no Content-Type
  std::string body;
  // Extra header fields, sent in order. A name or value containing CR or LF
  // turns the response into a 500 (no header injection).
  std::vector<std::pair<std::string, std::string>> headers;
};

// A response with Content-Type application/json and the given body.
Response JsonResponse(int status, std::string body);

// The response to send instead of `r` when `r` may not go on the wire (a
// status outside 200..599, CR or LF in a header, a header the server sets
// itself: Content-Length, Transfer-Encoding, Connection): a JSON 500, and
// the reason is logged. nullopt when `r` is fine.
std::optional<Response> CheckResponse(const Response& r);

// The body of every error this module produces itself (400, 413, 500, ...):
// {"error":{"code":"<code>","message":"<message>"}}, message JSON-escaped.
std::string JsonErrorBody(std::string_view code, std::string_view message);


// The request-target split into its decoded parts.
struct Target {
  std::string path;
  std::map<std::string, std::string> query;
};

// Parses an origin-form request-target ("/a/b?x=1&y=2"):
//   - the path is percent-decoded first, then split on '/': empty segments
//     ("//") and "." segments are dropped; a trailing '/' is kept. So
//     "/a//./b/" becomes "/a/b/". "%2F" decodes to '/' and counts as a
//     separator.
//   - a ".." segment (also spelled "%2e%2e") is refused: no path ever
//     climbs, whatever the handler later does with it.
//   - the query is split on '&', each part on its first '='; names and
//     values are percent-decoded with '+' meaning space.
// InvalidArgument, naming the problem, if the target does not start with
// '/', contains '#', has a malformed "%XX" escape, decodes to a NUL byte, or
// has a ".." segment.
Result<Target> ParseTarget(std::string_view target);

}  // namespace dspool
