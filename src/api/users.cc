#include "api/api.h"

#include "api/api_internal.h"
#include "identity/password.h"

namespace dspool {

using namespace api_internal;

Result<Response> Api::CreateUser(const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  std::string name, password;
  std::vector<std::string> keys;
  bool admin = false, restore = false, new_uid = false;
  reader.Required("name", &name);
  reader.Optional("sshKeys", &keys);
  reader.Optional("password", &password);
  reader.Optional("admin", &admin);
  reader.Optional("restore", &restore);
  reader.Optional("newUid", &new_uid);
  DSP_RETURN_IF_ERROR(reader.Finish());
  DSP_RETURN_IF_ERROR(ValidateUserName(name).WithPrefix("name"));
  if (restore && new_uid) return InvalidArgument("restore, newUid: give one or the other");
  User u;
  u.name = UserName(name);
  u.admin = admin;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto key = NormalizeSshPublicKey(keys[i]);
    if (!key.ok()) return key.status().WithPrefix("sshKeys[" + std::to_string(i) + "]");
    if (std::find(u.ssh_keys.begin(), u.ssh_keys.end(), *key) == u.ssh_keys.end()) u.ssh_keys.push_back(*key);
  }
  if (!password.empty()) {
    DSP_RETURN_IF_ERROR(ValidatePassword(password).WithPrefix("password"));
    DSP_ASSIGN_OR_RETURN(u.password_hash, HashPassword(password));
    password.assign(password.size(), '\0');
  }
  std::unique_lock lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(auto users, store_.ListUsers());
  for (const User& other : users) {
    if (other.name == u.name) return AlreadyExists("user '" + name + "' already exists");
  }
  DSP_ASSIGN_OR_RETURN(std::vector<DeletedUser> deleted, ReadDeletedUsers(store_));
  auto was = std::find_if(deleted.begin(), deleted.end(), [&](const DeletedUser& d) { return d.name == u.name; });
  if (was != deleted.end() && !restore && !new_uid) return ReAddRefused(*was, "name");
  if (was == deleted.end() && restore) {
    return NotFound("name: no deleted user '" + name + "' to restore (`dspool user add " + name +
                    "` without --restore makes a new one)");
  }
  u.created_at = clock_.Now();
  WriteBatch batch;
  if (restore) {
    u.uid = was->uid;  // never reused since, so still theirs alone
    batch.Add(WriteBatch::CreateUser{u});
    batch.Add(WriteBatch::AppendEvent{MakeEvent(
        actor, "user.restore", "user/" + name,
        "uid " + std::to_string(u.uid) + " and its files, as before its deletion at " + FormatTime(was->deleted_at) +
            (admin ? "; admin" : ""))});
  } else {
    int64_t hwm = 0;
    if (auto h = store_.GetMeta(kUidHighWater); h.ok()) hwm = std::stoll(*h);
    DSP_ASSIGN_OR_RETURN(u.uid, AllocateUid(users, options_.uid_range, hwm));
    batch.Add(WriteBatch::CreateUser{u});
    batch.Add(WriteBatch::PutMeta{kUidHighWater, std::to_string(u.uid)});
    std::string detail = "uid " + std::to_string(u.uid) + (admin ? ", admin" : "");
    if (was != deleted.end()) detail += "; the deleted " + name + "'s files stay with uid " + std::to_string(was->uid);
    batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "user.create", "user/" + name, detail)});
  }
  if (was != deleted.end()) {
    deleted.erase(was);
    batch.Add(WriteBatch::PutMeta{kDeletedUsers, DeletedUsersToJson(deleted).dump()});
  }
  DSP_ASSIGN_OR_RETURN(Json out, CommitUsersChange(lock, batch, UserJson(u)));
  return JsonOk(201, out);
}

Result<Response> Api::GetUser(const UserName& name) {
  DSP_ASSIGN_OR_RETURN(User u, store_.GetUser(name));
  return JsonOk(200, UserJson(u));
}

Result<Response> Api::ListUsers() {
  DSP_ASSIGN_OR_RETURN(auto users, store_.ListUsers());
  Json list = Json::array();
  for (const User& u : users) list.push_back(UserJson(u));
  return JsonOk(200, {{"users", list}});
}

Result<Response> Api::DeleteUser(const UserName& name, const std::string& actor) {
  std::unique_lock lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(User u, store_.GetUser(name));
  DSP_ASSIGN_OR_RETURN(std::vector<DeletedUser> deleted, ReadDeletedUsers(store_));
  std::erase_if(deleted, [&](const DeletedUser& d) { return d.name == name; });  // an older one's: forgotten
  deleted.push_back({name, u.uid, clock_.Now()});
  WriteBatch batch;
  batch.Add(WriteBatch::DeleteUser{name});
  batch.Add(WriteBatch::PutMeta{kDeletedUsers, DeletedUsersToJson(deleted).dump()});
  batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, "user.delete", "user/" + name.value(),
                                              "uid " + std::to_string(u.uid) + "; files kept on the shares")});
  DSP_ASSIGN_OR_RETURN(Json out, CommitUsersChange(lock, batch,
                                                    {{"deleted", name.value()}, {"uid", u.uid}, {"filesKept", true}}));
  return JsonOk(200, out);
}

Result<Response> Api::AddKey(const UserName& name, const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  std::string key_text;
  reader.Required("key", &key_text);
  DSP_RETURN_IF_ERROR(reader.Finish());
  auto key = NormalizeSshPublicKey(key_text);
  if (!key.ok()) return key.status().WithPrefix("key");
  std::unique_lock lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(User u, store_.GetUser(name));
  std::string fingerprint = SshKeyFingerprint(*key);
  for (const std::string& k : u.ssh_keys) {
    if (SshKeyFingerprint(k) == fingerprint) {
      return AlreadyExists("user '" + name.value() + "' already has key " + fingerprint);
    }
  }
  u.ssh_keys.push_back(*key);
  return CommitUserUpdate(lock, u, actor, "user.key.add", fingerprint, 201);
}

Result<Response> Api::RemoveKey(const UserName& name, const std::string& fingerprint, const std::string& actor) {
  std::unique_lock lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(User u, store_.GetUser(name));
  auto it = std::find_if(u.ssh_keys.begin(), u.ssh_keys.end(),
                         [&](const std::string& k) { return SshKeyFingerprint(k) == fingerprint; });
  if (it == u.ssh_keys.end()) {
    return NotFound("user '" + name.value() + "' has no key with fingerprint " + fingerprint);
  }
  u.ssh_keys.erase(it);
  return CommitUserUpdate(lock, u, actor, "user.key.remove", fingerprint, 200);
}

Result<Response> Api::SetPassword(const UserName& name, const Request& r, const std::string& actor) {
  DSP_ASSIGN_OR_RETURN(Json body, ParseBody(r));
  JsonReader reader(body, "");
  std::string password;
  reader.Required("password", &password);
  DSP_RETURN_IF_ERROR(reader.Finish());
  DSP_RETURN_IF_ERROR(ValidatePassword(password).WithPrefix("password"));
  DSP_ASSIGN_OR_RETURN(std::string hash, HashPassword(password));
  password.assign(password.size(), '\0');
  std::unique_lock lock(write_mu_);
  DSP_ASSIGN_OR_RETURN(User u, store_.GetUser(name));
  u.password_hash = hash;
  return CommitUserUpdate(lock, u, actor, "user.password", "password changed", 200);
}

Result<Response> Api::CommitUserUpdate(std::unique_lock<std::mutex>& lock, const User& u, const std::string& actor,
                                       const std::string& action, const std::string& detail, int status) {
  WriteBatch batch;
  batch.Add(WriteBatch::UpdateUser{u});
  batch.Add(WriteBatch::AppendEvent{MakeEvent(actor, action, "user/" + u.name.value(), detail)});
  DSP_ASSIGN_OR_RETURN(Json out, CommitUsersChange(lock, batch, UserJson(u)));
  return JsonOk(status, out);
}

}  // namespace dspool
