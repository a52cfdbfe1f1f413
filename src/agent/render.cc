#include "agent/render.h"

#include <map>
#include <set>
#include <sstream>

namespace dspool {
namespace {

constexpr int64_t kFirstRegularUid = 1000;
constexpr int64_t kNobody = 65534;

std::vector<std::string> Fields(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ':')) out.push_back(field);
  if (!line.empty() && line.back() == ':') out.push_back("");
  return out;
}

bool IsSystemId(const std::string& id_text) {
  try {
    int64_t id = std::stoll(id_text);
    return id < kFirstRegularUid || id == kNobody;
  } catch (...) {
    return false;
  }
}

std::set<std::string> PoolNames(const AgentConfig& c) {
  std::set<std::string> names;
  for (const AgentUser& u : c.users) names.insert(u.name);
  return names;
}

// The image's system entries (id in field `id_field`), minus any name the pool
// takes over.
std::vector<std::vector<std::string>> SystemEntries(const std::string& text, size_t id_field,
                                                    const std::set<std::string>& pool_names) {
  std::vector<std::vector<std::string>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto f = Fields(line);
    if (f.size() <= id_field || pool_names.count(f[0]) || !IsSystemId(f[id_field])) continue;
    out.push_back(std::move(f));
  }
  return out;
}

std::string Join(const std::vector<std::string>& f) {
  std::string s;
  for (size_t i = 0; i < f.size(); ++i) {
    if (i) s += ':';
    s += f[i];
  }
  return s;
}

}  // namespace

std::string HomeOf(const AgentConfig& c, const std::string& user) { return c.share_mount_path + "/home/" + user; }

std::vector<RenderedUser> RenderedUsers(const AgentConfig& c) {
  std::vector<RenderedUser> out;
  // Each user has a private group of its own and no other membership.
  for (const AgentUser& u : c.users) out.push_back({u.name, u.uid, u.uid, {u.uid}, HomeOf(c, u.name), "/bin/bash"});
  return out;
}

std::string RenderPasswd(const std::string& image_passwd, const AgentConfig& c) {
  std::string out;
  for (const auto& f : SystemEntries(image_passwd, 2, PoolNames(c))) out += Join(f) + "\n";
  for (const RenderedUser& u : RenderedUsers(c)) {
    out += u.name + ":x:" + std::to_string(u.uid) + ":" + std::to_string(u.gid) + ":dspool user:" + u.home + ":" +
           u.shell + "\n";
  }
  return out;
}

std::string RenderGroup(const std::string& image_group, const AgentConfig& c) {
  std::string out;
  for (const auto& f : SystemEntries(image_group, 2, PoolNames(c))) out += Join(f) + "\n";
  for (const RenderedUser& u : RenderedUsers(c)) out += u.name + ":x:" + std::to_string(u.gid) + ":\n";
  return out;
}

std::string RenderShadow(const std::string& image_passwd, const AgentConfig& c) {
  std::string out;
  // The image's shadow is not even visible to the instance; its system
  // accounts get a locked entry of their own.
  for (const auto& f : SystemEntries(image_passwd, 2, PoolNames(c))) out += f[0] + ":*:19000:0:99999:7:::\n";
  for (const AgentUser& u : c.users) {
    out += u.name + ":" + (u.password_hash.empty() ? "*" : u.password_hash) + ":19000:0:99999:7:::\n";
  }
  return out;
}

std::string RenderHosts(const AgentConfig& c) {
  return "127.0.0.1\tlocalhost\n127.0.1.1\t" + c.hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
}

std::string RenderSudoers(const AgentConfig& c) {
  std::string out = "# Written by dspool agent; changes are overwritten.\n";
  for (const AgentUser& u : c.users) {
    // Key-only admins have no password to type.
    if (u.admin) out += u.name + " ALL=(ALL:ALL) NOPASSWD: ALL\n";
  }
  return out;
}

std::string RenderSshdConfig(const SshdPaths& p) {
  return "# Written by dspool agent; changes are overwritten.\n"
         "Port 22\n"
         "HostKey " + p.host_key + "\n"
         "PidFile " + p.pid_file + "\n"
         // Keys come from the server on every login, so adding or removing
         // one counts at once on every instance.
         "AuthorizedKeysFile none\n"
         "AuthorizedKeysCommand " + p.keys_command + " agent authorized-keys %u\n"
         "AuthorizedKeysCommandUser root\n"
         "PubkeyAuthentication yes\n"
         "PasswordAuthentication yes\n"
         "KbdInteractiveAuthentication no\n"
         // PAM's session modules (loginuid, systemd) do not work in a
         // container; sshd checks shadow's crypt(3) hashes itself.
         "UsePAM no\n"
         "PermitRootLogin no\n"
         "PrintMotd no\n"
         "AcceptEnv LANG LC_*\n"
         "Subsystem sftp internal-sftp\n"
         // A shared pool: a team logs in at the same moment (a class, a
         // meeting), and behind the gateway they all come from one
         // address. sshd's default, 10:30:100, drops unauthenticated
         // connections at random once 10 are pending. Random drops begin
         // at 256 here, and no per-source limit applies (one address may
         // be the whole team). A connection that has not authenticated
         // holds its slot 30 s at most (not 120 s): the gateway
         // (docs/architecture.md) keeps idle floods off sshd.
         "MaxStartups 256:30:1024\n"
         "PerSourceMaxStartups none\n"
         "LoginGraceTime 30\n";
}

}  // namespace dspool
