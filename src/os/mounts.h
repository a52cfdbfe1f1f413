// Mounts for unprivileged instances: user namespaces that describe an id
// mapping, idmapped bind mounts, overlays, whiteouts, and unmounting.
//
// An idmapped mount shows a directory tree with its owners translated
// through a user namespace's mapping: with the mapping "0 1000000 1000", a
// file owned by uid 0 on disk is seen (and created) as uid 1000000, and a
// file owned by an unmapped uid is seen as the overflow id (65534) and cannot
// be chowned or written through the mount.
//
// Needs root (CAP_SYS_ADMIN) and Linux 5.12 or newer.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "os/unique_fd.h"

namespace dspool {

// One line of /proc/PID/uid_map: ids [inside, inside+count) of the namespace
// are ids [outside, outside+count) of the initial namespace.
struct IdMapping {
  int64_t inside = 0;
  int64_t outside = 0;
  int64_t count = 0;
  friend bool operator==(const IdMapping&, const IdMapping&) = default;
};

// A new user namespace with the same mappings for uids and gids, as a file
// descriptor (it lives as long as the descriptor). No process stays in it.
Result<UniqueFd> MakeUserNamespace(const std::vector<IdMapping>& mappings);

// Attaches at `target` (an existing directory, or file for a file) a
// non-recursive bind of `source` whose owners are translated through
// `userns`. Submounts of `source` are not included. Device files never work
// through it; set-user-id bits only with `allow_suid`.
Status MountIdmapped(const std::string& source, const std::string& target, int userns_fd, bool read_only,
                     bool allow_suid = false);
// The same bind, detached: attached nowhere yet, as a descriptor that
// AttachMount attaches, in this or another mount namespace (a process of
// an instance may attach it where it likes: the instance's own root does,
// and the host never resolves a path inside the instance).
Result<UniqueFd> OpenIdmapped(const std::string& source, int userns_fd, bool read_only, bool allow_suid = false);
// Attaches the detached mount `tree` (OpenIdmapped's) at directory
// `target`, resolved by the caller. A tree attaches once.
Status AttachMount(int tree, const std::string& target);

// Mounts an overlay of `lower` (read-only) and `upper` at `target`, with
// device files disabled (set-user-id bits work as in its layers).
// `work` must be an empty directory on the same file system as `upper`.
Status MountOverlay(const std::string& lower, const std::string& upper, const std::string& work,
                    const std::string& target);

// Unmounts `target`; with `detach`, lazily (MNT_DETACH): it disappears from
// the host at once and is freed when no namespace uses it any more.
// NotFound if nothing is mounted there.
Status Unmount(const std::string& target, bool detach);

// Whether `path` is the root of a mount (compares with its parent's mount).
Result<bool> IsMountPoint(const std::string& path);

// One line of /proc/<pid>/mountinfo (proc(5)): the fields dspool reads.
struct MountInfo {
  std::string root;           // the part of the file system that is mounted
  std::string mount_point;    // unescaped
  std::string fs_type;        // "cgroup2", "overlay", ...
  std::string super_options;  // "rw,cpu,cpuacct"
  friend bool operator==(const MountInfo&, const MountInfo&) = default;
};

// Parses the text of /proc/<pid>/mountinfo. InvalidArgument naming the line
// for one that does not parse.
Result<std::vector<MountInfo>> ParseMountInfo(std::string_view text);

// Mount points at or below `path`, deepest first (from /proc/self/mountinfo).
Result<std::vector<std::string>> MountsUnder(const std::string& path);

// Creates an overlayfs whiteout at `path` (a 0/0 character device): in an
// overlay whose upper layer holds it, the lower layer's entry of that name
// is hidden. Parent directories are created (mode 0755). OK if one exists.
Status MakeWhiteout(const std::string& path);

// Makes `path` an empty opaque directory for an overlay upper layer: the
// lower layer's directory of that name shows as empty. Mode and owner as
// given. Parents are created (mode 0755). Idempotent.
Status MakeOpaqueDir(const std::string& path, mode_t mode, uid_t uid, gid_t gid);

}  // namespace dspool
