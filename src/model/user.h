// User: one member of the team, the same on every instance of every pool.
//
// uid and gid are allocated once from the server's range and never change, so
// a file written on the share by a user has the same owner everywhere. Each
// user has a private group with gid == uid.
#pragma once

#include <string>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/result.h"
#include "model/json_reader.h"

namespace dspool {

struct User {
  UserName name;
  int64_t uid = 0;
  std::vector<std::string> ssh_keys;  // authorized_keys lines, as given
  std::string password_hash;          // crypt(3); empty: no password login
  bool admin = false;
  TimePoint created_at;
  friend bool operator==(const User&, const User&) = default;
};

// Storage form: includes the password hash. Never send it to a client.
Json UserToJson(const User& user);
Result<User> UserFromJson(const Json& json);
// API form: no hash, only whether a password is set.
Json UserToPublicJson(const User& user);

// A user that was deleted: their uid stays theirs (uids are never reused,
// identity/uid_allocator.h), and so do their files on the shares. The
// server keeps these so that `user add NAME --restore` can give both back,
// and so that a plain re-add of the name is refused rather than given a
// new uid that cannot enter the old home.
struct DeletedUser {
  UserName name;
  int64_t uid = 0;
  TimePoint deleted_at;
  friend bool operator==(const DeletedUser&, const DeletedUser&) = default;
};

// Storage form: {"<name>": {"uid": N, "deletedAt": ms}, ...}.
Json DeletedUsersToJson(const std::vector<DeletedUser>& deleted);
Result<std::vector<DeletedUser>> DeletedUsersFromJson(const Json& json);

// POSIX-portable login names: [a-z_][a-z0-9_-]{0,31}, and not a name the
// base system uses (root, daemon, sshd, ...).
Status ValidateUserName(const std::string& name);

}  // namespace dspool
