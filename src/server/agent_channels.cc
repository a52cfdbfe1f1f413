#include "server/agent_channels.h"

#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "http/client.h"
#include "http/endpoint.h"
#include "model/agent_config.h"
#include "net/unix_socket.h"
#include "os/fs.h"

namespace dspool {
namespace {

constexpr const char* kLog = "channels";
constexpr const char* kRetiredPrefix = ".retired-";

std::string Tag(const InstanceId& id) { return "agent:" + id.value(); }

// What an instance says goes into our errors and logs: printable ASCII only,
// at most 300 characters.
std::string Printable(const std::string& text) {
  std::string out;
  for (char c : text.substr(0, 300)) out += c >= 0x20 && c < 0x7f ? c : '?';
  return out;
}

}  // namespace

AgentChannels::AgentChannels(std::string data_dir, HttpServer& http)
    : instances_(std::move(data_dir) + "/instances"), http_(http) {}

Status AgentChannels::Prepare() { return EnsureDir(instances_, 0711, FileOwner{0, 0}); }

Status AgentChannels::Open(const InstanceId& id, uid_t owner) {
  std::lock_guard lock(mu_);
  if (open_.count(id)) return Status::Ok();
  const std::string dir = InstanceDir(id);
  // Names in instances/ and below <id>/ are root's alone: resolving them is
  // safe. An older layout gave <id>/ itself to the instance: move it aside
  // (rename does not follow a link) and remove it without following any.
  struct stat st;
  if (::lstat(dir.c_str(), &st) == 0 && (!S_ISDIR(st.st_mode) || st.st_uid != 0)) {
    std::string retired = instances_ + "/" + kRetiredPrefix + id.value();
    DSP_RETURN_IF_ERROR(RemoveTree(retired));
    if (::rename(dir.c_str(), retired.c_str()) != 0) return ErrnoStatus("rename " + dir, errno);
    DSP_LOG(kInfo, kLog) << "channel of " << id << ": an older layout, owned by uid " << st.st_uid
                         << ", moved aside and removed";
    DSP_RETURN_IF_ERROR(RemoveTree(retired));
  }
  // Root's, and open to the instance's root through the group alone: no
  // other host user reaches in.
  DSP_RETURN_IF_ERROR(EnsureDir(dir, 0710, FileOwner{0, owner}));
  DSP_RETURN_IF_ERROR(EnsureDir(dir + "/server", 0750, FileOwner{0, owner}));
  DSP_RETURN_IF_ERROR(EnsureDir(dir + "/agent", 0700, FileOwner{owner, owner}));
  const std::string socket = dir + "/server/" + kAgentSocketName;
  DSP_RETURN_IF_ERROR(http_.ListenUnix(socket, 0600, Tag(id)));
  // lchown: never a link's target (and server/ is root's: nothing can be
  // swapped in there anyway).
  if (::lchown(socket.c_str(), owner, owner) != 0) {
    Status s = ErrnoStatus("chown " + socket, errno);
    http_.Unlisten(Tag(id)).IgnoreError();
    return s;
  }
  open_.insert(id);
  return Status::Ok();
}

std::set<InstanceId> AgentChannels::OpenChannels() const {
  std::lock_guard lock(mu_);
  return open_;
}

void AgentChannels::Sweep(const std::set<InstanceId>& open_before, const std::set<InstanceId>& live) {
  std::lock_guard lock(mu_);
  for (const InstanceId& id : open_before) {
    if (live.count(id) || !open_.count(id)) continue;
    open_.erase(id);
    http_.Unlisten(Tag(id)).IgnoreError();
  }
  // Under the lock: a channel being opened now is in open_ before its
  // directory is listed here, or made after this sweep.
  auto entries = ListDir(instances_);
  if (!entries.ok()) return;
  for (const std::string& e : *entries) {
    InstanceId id(e);
    if (live.count(id) || open_.count(id)) continue;
    if (Status s = RemoveTree(instances_ + "/" + e); !s.ok()) DSP_LOG(kWarning, kLog) << s;
  }
}

std::vector<BindMount> AgentChannels::Mounts(const InstanceId& id) const {
  return {
      {InstanceDir(id) + "/server", kInstanceServerDir, /*read_only=*/true, MountIds::kHost},
      {InstanceDir(id) + "/agent", kInstanceAgentDir, /*read_only=*/false, MountIds::kHost},
  };
}

Result<Json> AgentChannels::Call(const InstanceId& id, uid_t owner, const std::string& method,
                                 const std::string& path, const std::string& body,
                                 std::chrono::seconds timeout) const {
  const std::string who = "instance " + id.value();
  auto socket = OpenSocketNoFollow(InstanceDir(id) + "/agent", kControlSocketName, owner);
  if (!socket.ok()) return Unavailable(who + ": " + socket.status().message());
  auto r = Client::Do(Endpoint::Unix(FdPath(socket->get())), method, path, body, {}, timeout);
  if (!r.ok()) return Unavailable(who + ": " + r.status().message());
  Json json;
  Status parsed = r->body.empty() ? Status::Ok() : ParseJsonText(r->body, who, &json);
  if (r->status < 200 || r->status > 299) {
    std::string message = "HTTP " + std::to_string(r->status);
    if (parsed.ok() && json.is_object() && json.contains("error") && json["error"].is_object() &&
        json["error"].contains("message") && json["error"]["message"].is_string()) {
      message = Printable(json["error"]["message"].get<std::string>());
    }
    return r->status == 404 ? NotFound(who + ": " + message) : Unavailable(who + ": " + message);
  }
  DSP_RETURN_IF_ERROR(parsed);
  return json;
}

Status AgentChannels::PassMount(const InstanceId& id, uid_t owner, int tree, const std::string& target,
                                bool read_only, std::chrono::seconds timeout) const {
  const std::string who = "instance " + id.value();
  auto path = OpenSocketNoFollow(InstanceDir(id) + "/agent", kMountSocketName, owner);
  if (!path.ok()) return Unavailable(who + ": " + path.status().message());
  auto socket = ConnectUnixStream(FdPath(path->get()));
  if (!socket.ok()) return Unavailable(who + ": " + socket.status().message());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  DSP_RETURN_IF_ERROR(SetIoTimeouts(socket->get(), ms, ms));
  Status sent = SendWithFd(socket->get(), "M", tree);
  if (sent.ok()) sent = WriteFrame(socket->get(), Json{{"target", target}, {"readOnly", read_only}}.dump());
  if (!sent.ok()) return Unavailable(who + ": " + sent.message());
  auto answer = ReadFrame(socket->get(), 4096);
  if (!answer.ok()) return Unavailable(who + ": no answer about the mount: " + answer.status().message());
  Json json;
  if (!ParseJsonText(*answer, who, &json).ok() || !json.is_object()) {
    return Unavailable(who + ": a mount answer that is not a JSON object");
  }
  if (json.contains("error")) {
    const Json& e = json["error"];
    return FailedPrecondition(who + ": " + Printable(e.is_string() ? e.get<std::string>() : e.dump()));
  }
  return Status::Ok();
}

}  // namespace dspool
