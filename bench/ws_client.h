// What bench/ws_echo and bench/ws_hold share: their URL and the extra
// request headers they take from the environment (a session cookie never
// goes on a command line).
#pragma once

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace dspool_bench {

struct Url {
  bool tls = false;
  std::string host, port, target;
};

// ws://HOST:PORT/PATH or wss://HOST:PORT/PATH; false for anything else.
inline bool ParseUrl(const std::string& url, Url* out) {
  std::string rest;
  if (url.rfind("wss://", 0) == 0) {
    out->tls = true;
    rest = url.substr(6);
  } else if (url.rfind("ws://", 0) == 0) {
    rest = url.substr(5);
  } else {
    return false;
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  out->target = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = authority.rfind(':');
  out->host = authority.substr(0, colon);
  out->port = colon == std::string::npos ? (out->tls ? "443" : "80") : authority.substr(colon + 1);
  return !out->host.empty();
}

// "Name: value" lines of the environment variable `name`.
inline std::vector<std::pair<std::string, std::string>> HeadersFromEnv(const char* name) {
  std::vector<std::pair<std::string, std::string>> out;
  const char* env = std::getenv(name);
  if (env == nullptr) return out;
  std::string text = env;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t v = line.find_first_not_of(' ', colon + 1);
    out.emplace_back(line.substr(0, colon), v == std::string::npos ? "" : line.substr(v));
  }
  return out;
}

}  // namespace dspool_bench
