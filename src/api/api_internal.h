// What the API's files share (api.cc routes; status.cc, pools.cc, users.cc
// and agent_channel.cc serve): meta keys, JSON helpers. Internal to the api
// module.
#pragma once

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "api/api.h"
#include "identity/ssh_key.h"
#include "model/json_reader.h"
#include "model/user.h"

namespace dspool::api_internal {

inline constexpr const char* kUsersVersion = "users_version";
inline constexpr const char* kUidHighWater = "uid_high_water";
// model/user.h's DeletedUsers, as JSON.
inline constexpr const char* kDeletedUsers = "deleted_users";
// Conditional writes of an instance record that the reconcile loop keeps
// changing give up after this many tries (Aborted, 409: try again).
inline constexpr int kMaxRecordUpdateAttempts = 3;

inline Response JsonOk(int status, const Json& body) { return JsonResponse(status, body.dump()); }

inline Result<Json> ParseBody(const Request& r) {
  Json json;
  DSP_RETURN_IF_ERROR(ParseJsonText(r.body.empty() ? "{}" : r.body, "request body", &json));
  if (!json.is_object()) return InvalidArgument("request body: expected a JSON object");
  return json;
}

// ARM's tags (or a share's metadata): an object of strings, in the order
// given; none without one.
inline Result<std::vector<std::pair<std::string, std::string>>> ReadTags(const Json* tags,
                                                                        const std::string& path = "tags") {
  std::vector<std::pair<std::string, std::string>> out;
  if (!tags) return out;
  if (!tags->is_object()) return InvalidArgument(path + ": must be an object of strings");
  for (const auto& [k, v] : tags->items()) {
    if (!v.is_string()) return InvalidArgument(path + "." + k + ": must be a string");
    out.emplace_back(k, v.get<std::string>());
  }
  return out;
}

inline std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(path);
  while (std::getline(in, part, '/')) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

inline Status MethodNotAllowed(const Request& r) {
  return InvalidArgument("method " + r.method + " is not allowed on " + r.path);
}

inline Json KeysJson(const std::vector<std::string>& keys) {
  Json out = Json::array();
  for (const std::string& k : keys) out.push_back({{"key", k}, {"fingerprint", SshKeyFingerprint(k)}});
  return out;
}

inline Json UserJson(const User& u) {
  Json j = UserToPublicJson(u);
  j["sshKeys"] = KeysJson(u.ssh_keys);
  return j;
}

// The users deleted and not restored (none recorded yet: empty).
inline Result<std::vector<DeletedUser>> ReadDeletedUsers(StateStore& store) {
  auto text = store.GetMeta(kDeletedUsers);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return std::vector<DeletedUser>{};
    return text.status();
  }
  Json json;
  DSP_RETURN_IF_ERROR(ParseJsonText(*text, "stored deleted users", &json));
  return DeletedUsersFromJson(json);
}

// `name` was deleted: why it cannot simply be added again, and what to do.
inline Status ReAddRefused(const DeletedUser& d, const std::string& field) {
  const std::string name = d.name.value(), uid = std::to_string(d.uid);
  return FailedPrecondition(field + ": user '" + name + "' was deleted at " + FormatTime(d.deleted_at) +
                            "; their uid " + uid + " and their files on the shares are kept. `dspool user add " +
                            name + " --restore` gives them back; `--new-uid` makes a new user of that name " +
                            "instead (the old files stay with uid " + uid + ")");
}

inline std::string MetricEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace dspool::api_internal

namespace dspool {

// One resource: a method, a path pattern ("{}" matches one segment, handed
// to the handler in Call::args), and the handler. The tables are in api.cc
// (Route) and agent_channel.cc (RouteAgent).
struct ApiRoute {
  std::string_view method;
  std::string_view pattern;
  Result<Response> (*serve)(Api& api, const Api::Call& call);
};

}  // namespace dspool
