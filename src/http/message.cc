#include "http/message.h"

#include <cctype>
#include <cstdio>

#include "base/log.h"

namespace dspool {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes "%XX" escapes (and '+' as space when `plus_is_space`). `what`
// names the part being decoded, for the error.
Result<std::string> PercentDecode(std::string_view in, bool plus_is_space, std::string_view what) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      int hi = i + 1 < in.size() ? HexValue(in[i + 1]) : -1;
      int lo = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return InvalidArgument("malformed percent-escape in " + std::string(what) + " at offset " +
                               std::to_string(i));
      }
      c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') return InvalidArgument(std::string(what) + " decodes to a NUL byte");
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

Response JsonResponse(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

std::string JsonErrorBody(std::string_view code, std::string_view message) {
  std::string out = R"({"error":{"code":")";
  auto append_escaped = [&out](std::string_view s) {
    for (char c : s) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            out += buf;
          } else {
            out.push_back(c);
          }
      }
    }
  };
  append_escaped(code);
  out += R"(","message":")";
  append_escaped(message);
  out += R"("}})";
  return out;
}

Result<Target> ParseTarget(std::string_view target) {
  if (target.empty() || target[0] != '/') {
    return InvalidArgument("request target must start with '/'");
  }
  if (target.find('#') != std::string_view::npos) {
    return InvalidArgument("request target must not contain '#'");
  }
  std::string_view raw_path = target;
  std::string_view raw_query;
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    raw_path = target.substr(0, q);
    raw_query = target.substr(q + 1);
  }

  DSP_ASSIGN_OR_RETURN(std::string decoded, PercentDecode(raw_path, false, "path"));
  Target out;
  size_t pos = 0;
  while (pos < decoded.size()) {
    size_t end = decoded.find('/', pos);
    if (end == std::string::npos) end = decoded.size();
    std::string_view segment(decoded.data() + pos, end - pos);
    pos = end + 1;
    if (segment.empty() || segment == ".") continue;
    if (segment == "..") return InvalidArgument("path must not contain a '..' segment");
    out.path += '/';
    out.path += segment;
  }
  if (out.path.empty() || decoded.back() == '/') out.path += '/';

  pos = 0;
  while (pos < raw_query.size()) {
    size_t end = raw_query.find('&', pos);
    if (end == std::string_view::npos) end = raw_query.size();
    std::string_view part = raw_query.substr(pos, end - pos);
    pos = end + 1;
    if (!part.empty()) {
      size_t eq = part.find('=');
      std::string_view name = part.substr(0, eq);
      std::string_view value = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
      DSP_ASSIGN_OR_RETURN(std::string n, PercentDecode(name, true, "query"));
      DSP_ASSIGN_OR_RETURN(std::string v, PercentDecode(value, true, "query"));
      out.query[std::move(n)] = std::move(v);
    }
  }
  return out;
}

namespace {

bool HasCrLf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }


}  // namespace

std::optional<Response> CheckResponse(const Response& r) {
  std::string why;
  if (r.status < 200 || r.status > 599) {
    why = "status " + std::to_string(r.status) + " is outside 200..599";
  } else if (HasCrLf(r.content_type)) {
    why = "Content-Type contains CR or LF";
  } else {
    for (const auto& [name, value] : r.headers) {
      if (name.empty() || HasCrLf(name) || HasCrLf(value) || name.find(':') != std::string::npos) {
        why = "malformed header field '" + name + "'";
        break;
      }
      if (EqualsIgnoreCase(name, "content-length") || EqualsIgnoreCase(name, "transfer-encoding") ||
          EqualsIgnoreCase(name, "connection")) {
        why = "header field '" + name + "' is set by the server";
        break;
      }
    }
  }
  if (why.empty()) return std::nullopt;
  DSP_LOG(kError, "http") << "handler returned an invalid response: " << why;
  return JsonResponse(500, JsonErrorBody("Internal", "internal error"));
}

}  // namespace dspool
