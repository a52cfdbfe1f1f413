// Responses the web proxy writes itself, on the wire (HTTP/1.x): its
// errors (400, 413, 502, ...), ProxyReply and ProxyLocal answers. Pure
// functions; the proxy's connections (proxy_connection.cc) call them.
#pragma once

#include <string>
#include <string_view>

#include "http/message.h"

namespace dspool {

// The reason phrase for `status` ("Not Found"), "Status" for one not listed.
std::string_view ReasonPhrase(int status);

// A plain-text response: `message` and a newline.
Response ErrorResponse(int status, std::string_view message);

// "name: value\r\n" appended to `out`.
void AppendHeader(std::string& out, std::string_view name, std::string_view value);

// `response` on the wire, appended to `out`: checked first (CheckResponse
// replaces one it refuses with a 500), Content-Length on all but 204 and
// 304, no body when answering a HEAD request (`head`); "Connection: close"
// unless `keep_alive`, "Connection: keep-alive" for a kept-alive HTTP/1.0
// client (`version_minor` 0).
void SerializeResponse(Response response, int version_minor, bool head, bool keep_alive, std::string& out);

}  // namespace dspool
