#include "agent/share_mounts.h"

#include <sys/stat.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <ostream>

#include "base/log.h"
#include "base/strings.h"
#include "http/client.h"
#include "http/endpoint.h"
#include "model/json_reader.h"
#include "net/unix_socket.h"
#include "os/fs.h"
#include "os/mounts.h"

namespace dspool {
namespace {

constexpr const char* kLog = "mounts";
// mount(8)'s exit codes.
constexpr int kUsage = 1;
constexpr int kMountFailed = 32;

// Options as mount.cifs splits them: at commas, each "name" or "name=value".
std::vector<std::pair<std::string, std::string>> SplitOptions(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    if (!item.empty()) {
      size_t eq = item.find('=');
      out.emplace_back(item.substr(0, eq), eq == std::string::npos ? "" : item.substr(eq + 1));
    }
    start = comma + 1;
  }
  return out;
}

bool IsNfs(const std::string& program) { return program.rfind("mount.nfs", 0) == 0; }

// Whether `host` is a storage account's file endpoint; its account.
std::optional<std::string> AccountOfHost(const std::string& host) {
  const size_t dot = host.find('.');
  const std::string domain = dot == std::string::npos ? "" : host.substr(dot + 1);
  if (domain.rfind("file.", 0) != 0 && domain.rfind("privatelink.file.", 0) != 0) return std::nullopt;
  std::string account = host.substr(0, dot);
  for (char& c : account) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return account;
}

// "//<account>.file.<suffix>/<share>" → account, share. Azure's private
// endpoint names (<account>.privatelink.file.<suffix>) are the same account.
Status ParseService(const std::string& service, ShareMountRequest* m) {
  auto bad = [&](const std::string& why) { return InvalidArgument("source '" + service + "': " + why); };
  if (service.rfind("//", 0) != 0 && service.rfind("\\\\", 0) != 0) return bad("must be //ACCOUNT.file.core.windows.net/SHARE");
  std::string rest = service.substr(2);
  for (char& c : rest) c = c == '\\' ? '/' : c;
  size_t slash = rest.find('/');
  if (slash == std::string::npos) return bad("names no share (//HOST/SHARE)");
  const std::string host = rest.substr(0, slash);
  std::string path = rest.substr(slash + 1);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.find('/') != std::string::npos) return bad("mounting a directory inside a share is not supported; mount the share");
  auto account = AccountOfHost(host);
  if (!account) return bad("the host must be ACCOUNT.file.core.windows.net, a storage account's file endpoint");
  m->account = *account;
  m->share = path;
  DSP_RETURN_IF_ERROR(ValidateStorageAccountName(m->account).WithPrefix("source '" + service + "'"));
  return ValidateShareName(m->share).WithPrefix("source '" + service + "'");
}

// "<account>.file.<suffix>:/<account>/<share>" → account, share.
Status ParseNfsSource(const std::string& source, ShareMountRequest* m) {
  auto bad = [&](const std::string& why) { return InvalidArgument("source '" + source + "': " + why); };
  const size_t colon = source.find(":/");
  if (colon == std::string::npos) return bad("must be ACCOUNT.file.core.windows.net:/ACCOUNT/SHARE");
  auto account = AccountOfHost(source.substr(0, colon));
  if (!account) return bad("the host must be ACCOUNT.file.core.windows.net, a storage account's file endpoint");
  std::string path = source.substr(colon + 2);
  while (!path.empty() && path.back() == '/') path.pop_back();
  const size_t slash = path.find('/');
  if (slash == std::string::npos) return bad("the path must be /ACCOUNT/SHARE");
  if (ToLowerAscii(path.substr(0, slash)) != *account) return bad("the path must begin with the account, /" + *account);
  m->account = *account;
  m->share = path.substr(slash + 1);
  if (m->share.find('/') != std::string::npos) return bad("mounting a directory inside a share is not supported; mount the share");
  m->protocol = "NFS";
  DSP_RETURN_IF_ERROR(ValidateStorageAccountName(m->account).WithPrefix("source '" + source + "'"));
  return ValidateShareName(m->share).WithPrefix("source '" + source + "'");
}

// A credentials= file (mount.cifs(8)): "username=", "password=" and
// "domain=" lines.
Status ReadCredentials(const std::string& text, std::string* user, std::string* password) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t eq = line.find('=');
    if (eq != std::string::npos) {
      const std::string name = line.substr(0, eq), value = line.substr(eq + 1);
      if (name == "username" || name == "user") *user = value;
      if (name == "password" || name == "pass") *password = value;
    }
    start = end + 1;
  }
  return Status::Ok();
}

}  // namespace

Result<MountHelperRequest> ParseMountHelperArgs(const std::string& program, const std::vector<std::string>& args,
                                                const std::string& env_password,
                                                Result<std::string> (*read_file)(const std::string&)) {
  MountHelperRequest out;
  std::vector<std::string> positional;
  std::string options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-o") {
      if (i + 1 == args.size()) return InvalidArgument("-o: needs the options");
      options += (options.empty() ? "" : ",") + args[++i];
    } else if (a.rfind("-o", 0) == 0 && a.size() > 2) {
      options += (options.empty() ? "" : ",") + a.substr(2);
    } else if (a == "-f") {
      out.fake = true;
    } else if (a == "-r") {
      out.mount.read_only = true;
    } else if (a == "-w" || a == "-n" || a == "-v" || a == "-s") {
      // read-write (the default); no mtab; verbose; sloppy: nothing to do
    } else if (!a.empty() && a[0] == '-') {
      return InvalidArgument("option " + a + " is not known (" + program + " takes -o OPTIONS, -f, -n, -r, -s, -v, -w)");
    } else {
      positional.push_back(a);
    }
  }
  const bool nfs = IsNfs(program);
  if (positional.size() != 2) {
    return InvalidArgument(nfs ? "usage: " + program + " ACCOUNT.file.core.windows.net:/ACCOUNT/SHARE DIR [-o OPTIONS]"
                               : "usage: " + program + " //ACCOUNT.file.core.windows.net/SHARE DIR -o OPTIONS");
  }
  out.mount.target = positional[1];
  if (out.mount.target.empty() || out.mount.target[0] != '/') {
    return InvalidArgument("mount point '" + out.mount.target + "' is not an absolute path");
  }
  if (nfs) {
    DSP_RETURN_IF_ERROR(ParseNfsSource(positional[0], &out.mount));
    // vers, minorversion, sec, nconnect, ...: nothing to set here.
    for (const auto& [name, value] : SplitOptions(options)) {
      if (name == "ro") out.mount.read_only = true;
      if (name == "rw") out.mount.read_only = false;
    }
    return out;
  }
  DSP_RETURN_IF_ERROR(ParseService(positional[0], &out.mount));
  std::string user, password = env_password;
  for (const auto& [name, value] : SplitOptions(options)) {
    if (name == "username" || name == "user") {
      user = value;
    } else if (name == "password" || name == "pass") {
      password = value;
    } else if (name == "credentials" || name == "cred") {
      auto text = read_file(value);
      if (!text.ok()) return InvalidArgument("credentials=" + value + ": " + text.status().message());
      DSP_RETURN_IF_ERROR(ReadCredentials(*text, &user, &password));
    } else if (name == "ro") {
      out.mount.read_only = true;
    } else if (name == "rw") {
      out.mount.read_only = false;
    }
    // vers, dir_mode, file_mode, uid, gid, serverino, nofail, sec, cache...:
    // the share keeps its users' own owners and modes; nothing to set.
  }
  // Azure Files takes the account's name, also as DOMAIN\account.
  const size_t sep = user.find_last_of("\\/");
  if (sep != std::string::npos) user = user.substr(sep + 1);
  if (user.empty()) return InvalidArgument("username=: give the storage account's name (username=" + out.mount.account + ")");
  if (user != out.mount.account) {
    return InvalidArgument("username=" + user + ": must be the storage account's name, " + out.mount.account);
  }
  if (password.empty()) return InvalidArgument("password=: give one of the storage account's keys");
  out.mount.key = password;
  return out;
}

int RunMountHelper(const std::string& program, const std::vector<std::string>& args,
                   const std::string& control_socket, std::ostream& err) {
  const char* env = std::getenv("PASSWD");
  auto request = ParseMountHelperArgs(program, args, env ? env : "", &ReadFile);
  if (!request.ok()) {
    err << program << ": " << request.status().message() << "\n";
    return kUsage;
  }
  const bool nfs = IsNfs(program);
  struct stat st;
  if (::stat(request->mount.target.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    err << "mount error: could not find mount point " << request->mount.target << ": No such file or directory\n";
    return kMountFailed;
  }
  if (request->fake) return 0;
  auto resp = Client::Do(Endpoint::Unix(control_socket), "POST", "/v1/mounts",
                         ShareMountRequestToJson(request->mount).dump(), {}, std::chrono::seconds(30));
  if (!resp.ok()) {
    if (!nfs) err << "mount error(112): Host is down\n";
    err << program << ": the instance's agent does not answer (" << resp.status().message() << ")\n";
    return kMountFailed;
  }
  if (resp->status / 100 == 2) return 0;
  Json body;
  std::string message = "HTTP " + std::to_string(resp->status);
  if (ParseJsonText(resp->body, "answer", &body).ok() && body.is_object() && body.contains("error") &&
      body["error"].is_object()) {
    message = body["error"].value("message", message);
  }
  const int error = resp->status == 403 ? 13 : resp->status == 404 ? 2 : resp->status == 400 ? 22 : 5;
  const char* text = error == 13 ? "Permission denied"
                     : error == 2 ? "No such file or directory"
                     : error == 22 ? "Invalid argument"
                                   : "Input/output error";
  if (nfs) {
    err << program << ": " << (error == 13 ? "access denied by server" : text) << " while mounting " << args[0]
        << "\n" << program << ": " << message << "\n";
  } else {
    err << "mount error(" << error << "): " << text << "\n" << program << ": " << message << "\n";
  }
  return kMountFailed;
}

Status MountListener::Start(const std::string& path) {
  DSP_ASSIGN_OR_RETURN(listener_, ListenUnixStream(path, 0600));
  DSP_ASSIGN_OR_RETURN(auto cancel, MakeStreamPair("mount listener cancel"));
  cancel_read_ = std::move(cancel.first);
  cancel_write_ = std::move(cancel.second);
  thread_ = std::thread([this] { Serve(); });
  return Status::Ok();
}

void MountListener::Stop() {
  if (!thread_.joinable()) return;
  cancel_write_.reset();  // the read end sees the end of the stream
  thread_.join();
}

void MountListener::Serve() {
  for (;;) {
    auto accepted = AcceptUnixStream(listener_.get(), cancel_read_.get());
    if (!accepted.ok()) {
      DSP_LOG(kError, kLog) << "mounts socket: " << accepted.status();
      return;
    }
    if (!*accepted) return;  // Stop
    HandleOne((*accepted)->get());
  }
}

void MountListener::HandleOne(int connection) {
  auto reply = [&](const Json& answer) {
    if (Status s = WriteFrame(connection, answer.dump()); !s.ok()) DSP_LOG(kWarning, kLog) << "answering: " << s;
  };
  if (Status s = SetIoTimeouts(connection, std::chrono::seconds(10), std::chrono::seconds(10)); !s.ok()) return;
  char byte;
  auto message = ReceiveWithFds(connection, &byte, 1, 1);
  if (!message.ok() || message->size != 1 || message->fds.size() != 1) {
    return reply(Json{{"error", "expected one byte with a mount's descriptor"}});
  }
  auto frame = ReadFrame(connection, 4096);
  Json json;
  if (!frame.ok() || !ParseJsonText(*frame, "mount", &json).ok() || !json.is_object()) {
    return reply(Json{{"error", "expected a JSON object with the target"}});
  }
  JsonReader reader(json, "");
  std::string target;
  bool read_only = false;
  reader.Required("target", &target);
  reader.Optional("readOnly", &read_only);
  if (Status s = reader.Finish(); !s.ok()) return reply(Json{{"error", s.message()}});
  if (Status s = AttachMount(message->fds[0].get(), target); !s.ok()) return reply(Json{{"error", s.message()}});
  DSP_LOG(kInfo, kLog) << "share attached at " << target << (read_only ? " (read-only)" : "");
  {
    std::lock_guard lock(mu_);
    targets_.push_back(target);
  }
  reply(Json::object());
}

std::vector<std::string> MountListener::Targets() const {
  std::lock_guard lock(mu_);
  return targets_;
}

std::vector<std::string> LinkRemoteNotebooks(const std::vector<RenderedUser>& users,
                                             const std::vector<std::string>& targets) {
  std::vector<std::string> linked;
  for (const RenderedUser& u : users) {
    auto has_notebooks = ExistsBeneath(u.home, "notebooks");
    auto has_remote = ExistsBeneath(u.home, "notebooks/remote");
    if (!has_notebooks.ok() || !*has_notebooks || !has_remote.ok() || *has_remote) continue;
    for (const std::string& target : targets) {
      auto folder = ExistsBeneath(target, "notebooks/" + u.name);
      if (!folder.ok() || !*folder) continue;
      const FileOwner owner{static_cast<uid_t>(u.uid), static_cast<gid_t>(u.gid)};
      Status s = SymlinkBeneath(u.home, "notebooks", "remote", target + "/notebooks/" + u.name, owner);
      if (s.ok()) linked.push_back(u.name);
      else DSP_LOG(kWarning, kLog) << "linking " << u.home << "/notebooks/remote: " << s;
      break;
    }
  }
  return linked;
}

}  // namespace dspool
