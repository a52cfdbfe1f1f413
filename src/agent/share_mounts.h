// Storage shares in an instance (docs/storage.md): what makes the
// reference's `mount -t cifs //ACCOUNT.file.core.windows.net/SHARE DIR -o
// vers=3.0,username=ACCOUNT,password=KEY,...` work unchanged.
//
//   mount(8) ──► /usr/sbin/mount.cifs (this binary, RunMountHelper)
//                  │ POST /v1/mounts on the agent's control socket
//                  ▼
//               agent ──► server: POST /v1/agent/mounts (its channel)
//                           the server checks the key, then passes a
//                           detached mount of the share's directory ...
//               agent ◄── ... on the mounts socket (MountListener), which
//                           attaches it at DIR, as the instance's root
//
// The share's files show with the pool users' own ids, as on a pool's
// share; the instance's root is squashed there. A wrong key is mount.cifs's
// "Permission denied".
//
// Thread safety: a MountListener's Start and Stop are called from one
// thread; it serves on a thread of its own.
#pragma once

#include <atomic>
#include <mutex>
#include <iosfwd>
#include <string>
#include <thread>
#include <vector>

#include "agent/render.h"
#include "base/result.h"
#include "model/storage.h"
#include "os/unique_fd.h"

namespace dspool {

// The helpers mount(8) runs for these types ("mount.cifs", ...), as
// /usr/sbin/mount.<type>: SMB (cifs, smb3) and NFS (nfs, nfs4).
inline constexpr const char* kMountHelperNames[] = {"mount.cifs", "mount.smb3", "mount.nfs", "mount.nfs4"};

// What `PROGRAM SOURCE DIR [-o OPTIONS] [-fnrvsw]` asks for, PROGRAM one of
// kMountHelperNames. SMB: the share (//<account>.file.<suffix>/<share>), the
// key (password= or pass=, a credentials= file's password= line, or
// $PASSWD), the user (username= or user=, which must be the account, as
// Azure Files wants it). NFS, as Azure Files' NFS shares are mounted:
// <account>.file.<suffix>:/<account>/<share>, no key. Both: ro/rw. `env` is
// the environment's PASSWD (empty: unset); `read_file` reads a credentials
// file. InvalidArgument naming the option on a bad one.
struct MountHelperRequest {
  ShareMountRequest mount;
  bool fake = false;  // -f: check everything, mount nothing
};
Result<MountHelperRequest> ParseMountHelperArgs(const std::string& program, const std::vector<std::string>& args,
                                                const std::string& env_password,
                                                Result<std::string> (*read_file)(const std::string&));

// `program` (a kMountHelperNames) as mount(8) runs it (`args` without the
// program name): asks the agent at `control_socket`. Exit codes as
// mount(8)'s: 0, 1 (usage), 32 (the mount failed: "mount error(13):
// Permission denied", or mount.nfs's "access denied by server", and why).
int RunMountHelper(const std::string& program, const std::vector<std::string>& args,
                   const std::string& control_socket, std::ostream& err);

// The agent's end of the mounts socket: attaches each mount the server
// passes at the target it names (a directory; ours to resolve), and says
// whether it did.
class MountListener {
 public:
  MountListener() = default;
  ~MountListener() { Stop(); }
  MountListener(const MountListener&) = delete;
  MountListener& operator=(const MountListener&) = delete;

  // Listens at `path` (mode 0600) and serves until Stop.
  Status Start(const std::string& path);
  void Stop();
  // Where shares were attached, in order. Thread-safe.
  std::vector<std::string> Targets() const;

 private:
  void Serve();
  void HandleOne(int connection);

  UniqueFd listener_;
  UniqueFd cancel_read_, cancel_write_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> targets_;  // guarded by mu_
};

// ~/notebooks/remote for each of `users` whose home has a notebooks
// folder with no `remote` in it: a link to <target>/notebooks/<user> on the
// first of `targets` (the shares this instance mounted) that has that
// folder, as the reference's script links its admin's. Made as root in
// homes the users own, so nothing on the way is followed (os
// SymlinkBeneath). Returns the users linked.
std::vector<std::string> LinkRemoteNotebooks(const std::vector<RenderedUser>& users,
                                             const std::vector<std::string>& targets);

}  // namespace dspool
