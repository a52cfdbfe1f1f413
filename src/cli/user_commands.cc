// user add|list|show|delete|passwd, user key add|remove.
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/table.h"
#include "http/message.h"
#include "os/fs.h"

namespace dspool {
namespace {

std::string UserPath(const std::string& name) { return "/v1/users/" + PercentEncode(name); }

std::string YesNo(bool b) { return b ? "yes" : "no"; }

// The fingerprint the server shows for `key` among `user`'s keys; "" if the
// user has no such key.
std::string FingerprintOf(const Json& user, const std::string& key) {
  std::string material = SshKeyMaterial(key);
  for (const Json& k : JsonArray(user, "sshKeys")) {
    if (!material.empty() && SshKeyMaterial(JsonString(k, "key")) == material) return JsonString(k, "fingerprint");
  }
  return "";
}

// "ssh-ed25519 AAAA... alice@laptop" -> {"ssh-ed25519", "alice@laptop"}.
std::pair<std::string, std::string> KeyTypeAndComment(const std::string& key) {
  size_t type_end = key.find(' ');
  if (type_end == std::string::npos) return {key, ""};
  size_t blob_end = key.find(' ', type_end + 1);
  std::string comment = blob_end == std::string::npos ? "" : key.substr(blob_end + 1);
  return {key.substr(0, type_end), comment};
}

// The instances that did not confirm the change before the answer (the
// server names them in "notAppliedOn"; JSON output shows the field as is).
void SayNotApplied(const CommandContext& ctx, const Json& answer) {
  if (ctx.output != OutputFormat::kTable || !answer.is_object() || !answer.contains("notAppliedOn")) return;
  for (const Json& why : JsonArray(answer, "notAppliedOn")) {
    ctx.out << "warning: not applied yet on " << (why.is_string() ? why.get<std::string>() : why.dump())
            << "; it will be at that instance's next report\n";
  }
}

}  // namespace

Status UserAdd(const CommandContext& ctx, const UserAddOptions& options) {
  Json body = {{"name", options.name}};
  if (!options.ssh_key_files.empty()) {
    Json keys = Json::array();
    for (const std::string& file : options.ssh_key_files) {
      DSP_ASSIGN_OR_RETURN(std::vector<std::string> in_file, ReadSshKeyFile(file, "--ssh-key"));
      for (std::string& k : in_file) keys.push_back(std::move(k));
    }
    body["sshKeys"] = keys;
  }
  if (options.password_from_stdin) {
    DSP_ASSIGN_OR_RETURN(std::string password, ReadPasswordLine(ctx.in, "--password-stdin"));
    body["password"] = password;
  }
  if (options.admin) body["admin"] = true;
  if (options.restore) body["restore"] = true;
  if (options.new_uid) body["newUid"] = true;
  DSP_ASSIGN_OR_RETURN(Json user, ctx.api.Call("POST", "/v1/users", &body));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, user);
  } else {
    ctx.out << "user " << JsonString(user, "name") << (options.restore ? " restored" : " created") << " (uid "
            << JsonString(user, "uid") << (JsonBool(user, "admin") ? ", admin" : "") << ")"
            << (options.restore ? ": their files on the shares are theirs again" : "") << "\n";
  }
  SayNotApplied(ctx, user);
  return Status::Ok();
}

Status UserList(const CommandContext& ctx) {
  DSP_ASSIGN_OR_RETURN(Json answer, ctx.api.Get("/v1/users"));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, answer);
    return Status::Ok();
  }
  const Json& users = JsonArray(answer, "users");
  if (users.empty()) {
    ctx.out << "No users. Add one with: dspool user add NAME --ssh-key FILE.pub\n";
    return Status::Ok();
  }
  TimePoint now = ctx.clock.Now();
  Table table({"NAME", "UID", "ADMIN", "PASSWORD", "KEYS", "AGE"});
  for (const Json& u : users) {
    table.AddRow({JsonString(u, "name"), JsonString(u, "uid"), YesNo(JsonBool(u, "admin")),
                  YesNo(JsonBool(u, "hasPassword")), std::to_string(JsonArray(u, "sshKeys").size()),
                  AgeOf(JsonString(u, "createdAt"), now)});
  }
  ctx.out << table.Render();
  return Status::Ok();
}

Status UserShow(const CommandContext& ctx, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(Json user, ctx.api.Get(UserPath(name)));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, user);
    return Status::Ok();
  }
  std::string created = JsonString(user, "createdAt");
  std::string age = AgeOf(created, ctx.clock.Now());
  ctx.out << RenderFields({
      {"Name", JsonString(user, "name")},
      {"UID", JsonString(user, "uid")},
      {"GID", JsonString(user, "gid")},
      {"Admin", YesNo(JsonBool(user, "admin"))},
      {"Password", JsonBool(user, "hasPassword") ? "set" : "not set"},
      {"Created", age == "-" ? "-" : age + " ago (" + created + ")"},
  });
  ctx.out << "\n";
  const Json& keys = JsonArray(user, "sshKeys");
  if (keys.empty()) {
    ctx.out << "No SSH keys.\n";
    return Status::Ok();
  }
  Table table({"TYPE", "FINGERPRINT", "COMMENT"});
  for (const Json& k : keys) {
    auto [type, comment] = KeyTypeAndComment(JsonString(k, "key"));
    table.AddRow({type, JsonString(k, "fingerprint"), comment});
  }
  ctx.out << table.Render();
  return Status::Ok();
}

Status UserDelete(const CommandContext& ctx, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(Json answer, ctx.api.Call("DELETE", UserPath(name)));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, answer);
  } else {
    ctx.out << "user " << name << " deleted; their uid " << JsonString(answer, "uid")
            << " and their files on the shares are kept (`dspool user add " << name << " --restore` brings them back)\n";
  }
  SayNotApplied(ctx, answer);
  return Status::Ok();
}

Status UserKeyAdd(const CommandContext& ctx, const std::string& name, const std::string& key_file) {
  DSP_ASSIGN_OR_RETURN(std::vector<std::string> keys, ReadSshKeyFile(key_file, "key file"));
  Json user;
  for (const std::string& key : keys) {
    Json body = {{"key", key}};
    DSP_ASSIGN_OR_RETURN(user, ctx.api.Call("POST", UserPath(name) + "/keys", &body));
    if (ctx.output == OutputFormat::kTable) {
      std::string fingerprint = FingerprintOf(user, key);
      ctx.out << "key " << (fingerprint.empty() ? "from " + key_file : fingerprint) << " added to user " << name
              << "\n";
    }
    SayNotApplied(ctx, user);
  }
  if (ctx.output == OutputFormat::kJson) PrintJson(ctx.out, user);
  return Status::Ok();
}

Status UserKeyRemove(const CommandContext& ctx, const std::string& name, const std::string& key) {
  std::vector<std::string> fingerprints;
  Result<bool> is_path = PathExists(key);
  if (is_path.ok() && *is_path) {
    DSP_ASSIGN_OR_RETURN(std::vector<std::string> keys, ReadSshKeyFile(key, "key file"));
    DSP_ASSIGN_OR_RETURN(Json user, ctx.api.Get(UserPath(name)));
    for (const std::string& k : keys) {
      std::string fingerprint = FingerprintOf(user, k);
      if (!fingerprint.empty()) fingerprints.push_back(fingerprint);
    }
    if (fingerprints.empty()) return NotFound("user '" + name + "' has none of the keys in " + key);
  } else {
    fingerprints.push_back(key);
  }
  Json user;
  for (const std::string& fingerprint : fingerprints) {
    DSP_ASSIGN_OR_RETURN(user, ctx.api.Call("DELETE", UserPath(name) + "/keys?fingerprint=" + PercentEncode(fingerprint)));
    if (ctx.output == OutputFormat::kTable) ctx.out << "key " << fingerprint << " removed from user " << name << "\n";
    SayNotApplied(ctx, user);
  }
  if (ctx.output == OutputFormat::kJson) PrintJson(ctx.out, user);
  return Status::Ok();
}

Status UserPasswd(const CommandContext& ctx, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(std::string password, ReadPasswordLine(ctx.in, "--password-stdin"));
  Json body = {{"password", password}};
  DSP_ASSIGN_OR_RETURN(Json answer, ctx.api.Call("PUT", UserPath(name) + "/password", &body));
  if (ctx.output == OutputFormat::kJson) {
    if (!answer.is_null()) PrintJson(ctx.out, answer);
  } else {
    ctx.out << "password of user " << name << " changed\n";
  }
  SayNotApplied(ctx, answer);
  return Status::Ok();
}

}  // namespace dspool
