// Small helpers for the module's Beast code (server.cc, client.cc).
// Internal to http: it includes Beast, which stays inside this module
// (DESIGN.md).
#pragma once

#include <boost/beast/http.hpp>

#include "http/message.h"
#include <cctype>
#include <map>
#include <string>
#include <string_view>

namespace dspool::http_internal {

// Beast 1.74 speaks boost::string_view.
inline std::string_view Sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

inline std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A message's header fields by lower-case name; repeated fields joined with
// ", " in arrival order (as Request::headers promises).
template <class Fields>
std::map<std::string, std::string> HeaderMap(const Fields& fields) {
  std::map<std::string, std::string> out;
  for (const auto& field : fields) {
    auto [it, inserted] = out.emplace(Lower(Sv(field.name_string())), std::string(field.value()));
    if (!inserted) {
      it->second += ", ";
      it->second += Sv(field.value());
    }
  }
  return out;
}

// `response` on the wire: checked (CheckResponse), Content-Length on all but
// 204 and 304, no body for a HEAD request.
inline boost::beast::http::response<boost::beast::http::string_body> ToWire(Response response, unsigned version,
                                                                            bool head, bool keep_alive) {
  namespace bhttp = boost::beast::http;
  if (std::optional<Response> replacement = CheckResponse(response)) response = std::move(*replacement);
  bhttp::response<bhttp::string_body> res;
  res.version(version);
  res.result(static_cast<unsigned>(response.status));
  if (!response.content_type.empty()) res.set(bhttp::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) res.insert(name, value);
  if (response.status != 204 && response.status != 304) {
    res.content_length(response.body.size());
    if (!head) res.body() = std::move(response.body);
  }
  res.keep_alive(keep_alive);
  return res;
}

}  // namespace dspool::http_internal
