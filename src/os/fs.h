// Files and directories, done safely.
//
// The helpers here are the ones the agent and server need to write
// configuration and secrets and to lay out per-user directories, where the
// usual shortcuts are security bugs: a file briefly world-readable, a
// half-written file after a crash, a recursive delete that follows a user's
// symlink into /etc or walks into a mounted share.
//
// Paths are absolute or relative to the current directory; every function
// reports failures as "<what> <path>: <strerror>" with the errno mapped to a
// canonical code (base/status.h ErrnoStatus).
//
// Thread safety: every function may be called concurrently. Concurrent
// changes to the same paths by others are not coordinated; each function
// states what it guarantees when that happens.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>
#include <string_view>

#include "base/result.h"
#include "base/status.h"
#include "os/unique_fd.h"

namespace dspool {

struct FileOwner {
  uid_t uid;
  gid_t gid;
};

// The whole content of a regular file (follows symlinks).
// Errors: NotFound, PermissionDenied, InvalidArgument for a directory.
Result<std::string> ReadFile(const std::string& path);

// A program root may run: `path` absolute, a regular executable file of
// root's that nobody else may write, in a directory the same holds for.
// PermissionDenied or InvalidArgument naming what is wrong.
Status CheckRootProgram(const std::string& path);

// A new descriptor for what `fd` refers to (close-on-exec).
Result<UniqueFd> Duplicate(int fd);

// The whole content of a secret the server keeps (a token, a private key):
// opened without following a symlink, it must be a regular file owned by
// `owner` with no permission for group or others. FailedPrecondition says
// which rule it breaks and how to mend it; NotFound as ReadFile.
Result<std::string> ReadPrivateFile(const std::string& path, uid_t owner = 0);

// Writes `text` into an existing kernel file (/proc, /sys, a cgroup's
// files) with one write(2), as such files take one value per write: no
// temporary, no truncation. The error names the path and the text's first
// line.
Status WriteKernelFile(const std::string& path, std::string_view text);

// Replaces `path` with a file holding exactly `content`, atomically: a
// reader (or a crash) sees the old file or the new one, never a mix.
//
// The data goes to a fresh temporary file in the same directory, created with
// O_EXCL and permissions no wider than `mode` from its first instant, then
// chowned to `owner` (if given) and chmod'ed to exactly `mode` (umask does not
// apply), fsynced, renamed over `path`, and the directory fsynced. On failure
// the temporary file is removed and `path` is unchanged. If `path` is a
// symlink, the symlink itself is replaced, never its target.
// REQUIRES: the parent directory exists. Chowning requires privilege.
Status WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode,
                       std::optional<FileOwner> owner = std::nullopt);

// Appends `text` to `path` (O_APPEND), creating it with exactly `mode`
// if absent; never through a symlink at `path` (O_NOFOLLOW). Not fsynced:
// for logs where losing the last lines in a crash is acceptable.
Status AppendFile(const std::string& path, std::string_view text, mode_t mode);

// mkdir -p: creates `path` and missing parents. Directories it creates get
// exactly `mode` (umask does not apply); existing ones are left as they are
// (symlinks to directories are followed, as mkdir -p does).
// Errors: FailedPrecondition if a component exists and is not a directory.
Status MakeDirs(const std::string& path, mode_t mode);

// Makes `path` a directory owned by `owner` with exactly `mode`: creates it if
// absent (its parent must exist), else fixes its owner and mode. Refuses
// (FailedPrecondition) if `path` is a symlink or not a directory; the fix is
// applied through a descriptor opened with O_NOFOLLOW, so swapping in a
// symlink concurrently cannot redirect the chown/chmod.
Status EnsureDir(const std::string& path, mode_t mode, FileOwner owner);

// rm -rf that stays inside the tree: deletes `path` and, if it is a
// directory, everything under it. Symlinks are removed, never followed (also
// when `path` itself is one). Never descends into another mount (including
// bind mounts): meeting one fails with FailedPrecondition, leaving that mount
// and its ancestors in place. OK if `path` does not exist. Not atomic: after
// a failure, part of the tree may be gone.
Status RemoveTree(const std::string& path);

// Renames `from` to `to` (same file system), never replacing what is at
// `to` (AlreadyExists then; renameat2's RENAME_NOREPLACE). NotFound if
// `from` does not exist. The last component of `from` is not followed.
Status RenameNoReplace(const std::string& from, const std::string& to);

// Whether something is at `relative` below the directory `dir`, resolved
// without following any symlink and without leaving `dir` (openat2's
// RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH): for trees someone else may
// change, such as a user's home, looked at as root. The last component may
// be anything, a symlink too. A symlink on the way counts as something
// there (it is not ours to look through). `dir` itself must not be a
// symlink. Errors only for failures other than "does not exist".
Result<bool> ExistsBeneath(const std::string& dir, const std::string& relative);

// Makes `name` (no '/') in the directory `relative` below `dir` a symlink
// to `target`, owned by `owner`, the directory resolved as ExistsBeneath
// resolves (no symlink followed, `dir` not left): for a link in a tree
// someone else may change, made as root. AlreadyExists when something has
// the name; NotFound when the directory is not there (or is reached only
// through a symlink).
Status SymlinkBeneath(const std::string& dir, const std::string& relative, const std::string& name,
                      const std::string& target, FileOwner owner);

// Whether something (a file, directory, or symlink, even a dangling one) is
// at `path`. Errors only for failures other than "does not exist" (such as
// PermissionDenied on a parent).
Result<bool> PathExists(const std::string& path);

// A Unix socket in a directory someone else may write (an instance's),
// opened so that connecting to it cannot be redirected: `dir` is opened
// without following a symlink at its last component (the components above
// must be trusted: writable by root only), `name` (no '/') is looked up in
// it once, also without following one, and must be a socket owned by
// `owner`. The answer is an O_PATH descriptor: connect to FdPath() of it,
// which names that very socket, whatever is renamed or swapped in later.
// Errors: NotFound when there is no such file; FailedPrecondition naming
// what is there instead (a symlink, another kind of file, another owner).
Result<UniqueFd> OpenSocketNoFollow(const std::string& dir, const std::string& name, uid_t owner);

// "/proc/self/fd/<fd>": a path that resolves to the open file itself.
std::string FdPath(int fd);

// Names in a directory, without "." and "..", sorted.
Result<std::vector<std::string>> ListDir(const std::string& path);

// Makes `link_path` a symlink to `target`. If `link_path` is already a symlink
// it is replaced atomically (via rename); if it is anything else, returns
// AlreadyExists and changes nothing. (The check and the rename are two steps:
// a non-symlink created at `link_path` in between by someone else can be
// replaced.)
Status Symlink(const std::string& target, const std::string& link_path);

}  // namespace dspool
