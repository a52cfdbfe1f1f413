#include "model/user.h"

#include <algorithm>
#include <array>

namespace dspool {

Json UserToJson(const User& u) {
  return {
      {"name", u.name.value()},      {"uid", u.uid},     {"sshKeys", u.ssh_keys},
      {"passwordHash", u.password_hash}, {"admin", u.admin}, {"createdAt", ToUnixMillis(u.created_at)},
  };
}

Result<User> UserFromJson(const Json& json) {
  User u;
  try {
    u.name = UserName(json.at("name").get<std::string>());
    u.uid = json.at("uid").get<int64_t>();
    u.ssh_keys = json.at("sshKeys").get<std::vector<std::string>>();
    u.password_hash = json.at("passwordHash").get<std::string>();
    u.admin = json.at("admin").get<bool>();
    u.created_at = FromUnixMillis(json.at("createdAt").get<int64_t>());
  } catch (const Json::exception& e) {
    return Internal(std::string("stored user is malformed: ") + e.what());
  }
  return u;
}

Json DeletedUsersToJson(const std::vector<DeletedUser>& deleted) {
  Json out = Json::object();
  for (const DeletedUser& d : deleted) {
    out[d.name.value()] = {{"uid", d.uid}, {"deletedAt", ToUnixMillis(d.deleted_at)}};
  }
  return out;
}

Result<std::vector<DeletedUser>> DeletedUsersFromJson(const Json& json) {
  std::vector<DeletedUser> out;
  try {
    for (const auto& [name, d] : json.items()) {
      out.push_back({UserName(name), d.at("uid").get<int64_t>(), FromUnixMillis(d.at("deletedAt").get<int64_t>())});
    }
  } catch (const Json::exception& e) {
    return Internal(std::string("stored deleted users are malformed: ") + e.what());
  }
  return out;
}

Json UserToPublicJson(const User& u) {
  return {
      {"name", u.name.value()},
      {"uid", u.uid},
      {"gid", u.uid},
      {"sshKeys", u.ssh_keys},
      {"hasPassword", !u.password_hash.empty()},
      {"admin", u.admin},
      {"createdAt", FormatTime(u.created_at)},
  };
}

Status ValidateUserName(const std::string& name) {
  static constexpr std::array<std::string_view, 22> kReserved = {
      "root", "daemon", "bin",  "sys",   "sync",     "games",  "man",     "lp",
      "mail", "news",   "uucp", "proxy", "www-data", "backup", "list",    "irc",
      "gnats", "nobody", "sshd", "messagebus", "systemd-network", "_apt"};
  bool shape = !name.empty() && name.size() <= 32 && ((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_') &&
               std::all_of(name.begin(), name.end(), [](char c) {
                 return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
               });
  if (!shape) {
    return InvalidArgument("'" + name +
                           "' is not a valid user name: use up to 32 lowercase letters, digits, '_' or '-', "
                           "starting with a letter or '_'");
  }
  if (std::find(kReserved.begin(), kReserved.end(), name) != kReserved.end()) {
    return InvalidArgument("'" + name + "' is reserved for the system");
  }
  return Status::Ok();
}

}  // namespace dspool
