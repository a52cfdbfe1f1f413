// Small helpers for the module's Beast code (server.cc, client.cc,
// proxy.cc). Internal to http: it includes Beast, which stays inside this
// module (DESIGN.md).
#pragma once

#include <boost/beast/http.hpp>
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

}  // namespace dspool::http_internal
