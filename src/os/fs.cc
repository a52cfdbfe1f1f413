#include "os/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "os/unique_fd.h"

namespace dspool {
namespace {

// "a/b/" -> "a/b"; "/" stays "/".
std::string StripTrailingSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// "a symlink", "a directory", ... for messages.
std::string FileKind(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFLNK: return "a symlink";
    case S_IFDIR: return "a directory";
    case S_IFREG: return "a regular file";
    case S_IFSOCK: return "a socket";
    case S_IFIFO: return "a FIFO";
    default: return "a device";
  }
}

struct SplitPath {
  std::string dir;   // "." if the path has no '/'
  std::string base;  // never empty, ".", ".." or containing '/'
};

Result<SplitPath> Split(const std::string& raw) {
  std::string path = StripTrailingSlashes(raw);
  size_t slash = path.rfind('/');
  SplitPath s;
  if (slash == std::string::npos) {
    s.dir = ".";
    s.base = path;
  } else {
    s.dir = slash == 0 ? "/" : path.substr(0, slash);
    s.base = path.substr(slash + 1);
  }
  if (s.base.empty() || s.base == "." || s.base == "..") {
    return InvalidArgument("'" + raw + "' does not name a file");
  }
  return s;
}

Result<UniqueFd> OpenDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open directory " + dir, errno);
  return fd;
}

// A name for a temporary sibling of `base`, unlikely to collide: ".<base>.tmp-<64 random bits>".
Result<std::string> TempName(const std::string& base) {
  uint64_t r = 0;
  if (::getrandom(&r, sizeof(r), 0) != static_cast<ssize_t>(sizeof(r))) return ErrnoStatus("getrandom", errno);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string suffix = ".tmp-";
  for (int i = 0; i < 16; ++i) suffix += kHex[(r >> (4 * i)) & 15];
  return "." + base.substr(0, 200) + suffix;  // stays under NAME_MAX
}

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(what, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Identity of the mount a file is on: the mount id where the kernel reports
// it (Linux >= 5.8, distinguishes bind mounts), plus the device.
struct MountKey {
  uint64_t mnt_id = 0;
  bool has_mnt_id = false;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;

  bool SameMount(const MountKey& o) const {
    if (dev_major != o.dev_major || dev_minor != o.dev_minor) return false;
    return !(has_mnt_id && o.has_mnt_id) || mnt_id == o.mnt_id;
  }
};

MountKey KeyOf(const struct statx& stx) {
  MountKey k;
  k.has_mnt_id = (stx.stx_mask & STATX_MNT_ID) != 0;
  k.mnt_id = stx.stx_mnt_id;
  k.dev_major = stx.stx_dev_major;
  k.dev_minor = stx.stx_dev_minor;
  return k;
}

Result<MountKey> MountOfFd(int fd, const std::string& display) {
  struct statx stx;
  if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MNT_ID, &stx) != 0) {
    return ErrnoStatus("statx " + display, errno);
  }
  return KeyOf(stx);
}

// rm -rf through descriptors, for trees that someone else (an instance's
// root) may have built to hurt us: at most kMaxDepth directories are open at
// once, however deep the tree. A directory found at that depth is moved up
// into the tree's top directory (a rename on the same mount, through
// descriptors) and removed from there afterwards, so a chain a million
// levels deep costs time, not descriptors or stack.
class TreeRemover {
 public:
  explicit TreeRemover(MountKey mount) : mount_(mount) {}

  // Removes `name` in `parent_fd` and everything below it, staying on the
  // mount.
  Status Remove(int parent_fd, const std::string& name, const std::string& display) {
    struct statx stx;
    if (::statx(parent_fd, name.c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &stx) != 0) {
      if (errno == ENOENT) return Status::Ok();
      return ErrnoStatus("statx " + display, errno);
    }
    if (!S_ISDIR(stx.stx_mode)) return Unlink(parent_fd, name, display);
    DSP_ASSIGN_OR_RETURN(UniqueFd top, OpenDir(parent_fd, name, display));
    if (!top.valid()) return Status::Ok();
    DSP_RETURN_IF_ERROR(RemoveContents(top.get(), top.get(), display, 1));
    // What was moved up is removed from the top, level by level; each may
    // move more up, but every pass takes kMaxDepth levels off the tree.
    while (!parked_.empty()) {
      std::string parked = std::move(parked_.back());
      parked_.pop_back();
      DSP_RETURN_IF_ERROR(RemoveDir(top.get(), top.get(), parked, display + "/" + parked, 1));
    }
    top.reset();
    return RmDir(parent_fd, name, display);
  }

 private:
  static constexpr int kMaxDepth = 32;

  // An open directory; an invalid descriptor if it is gone.
  Result<UniqueFd> OpenDir(int parent_fd, const std::string& name, const std::string& display) const {
    // O_NOFOLLOW: if the directory was swapped for a symlink since the
    // statx, this fails instead of following it.
    UniqueFd fd(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) {
      if (errno == ENOENT) return UniqueFd();
      return ErrnoStatus("open directory " + display, errno);
    }
    DSP_ASSIGN_OR_RETURN(MountKey here, MountOfFd(fd.get(), display));
    if (!here.SameMount(mount_)) {
      return FailedPrecondition(display + " is a mount point; not removing anything on it");
    }
    return fd;
  }

  static Status Unlink(int parent_fd, const std::string& name, const std::string& display) {
    if (::unlinkat(parent_fd, name.c_str(), 0) != 0 && errno != ENOENT) return ErrnoStatus("unlink " + display, errno);
    return Status::Ok();
  }
  static Status RmDir(int parent_fd, const std::string& name, const std::string& display) {
    if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return ErrnoStatus("rmdir " + display, errno);
    }
    return Status::Ok();
  }

  // The directory `name` in `parent_fd`, `depth` levels below the top, and
  // everything in it.
  Status RemoveDir(int top_fd, int parent_fd, const std::string& name, const std::string& display, int depth) {
    if (depth >= kMaxDepth) return Park(top_fd, parent_fd, name, display);
    DSP_ASSIGN_OR_RETURN(UniqueFd fd, OpenDir(parent_fd, name, display));
    if (!fd.valid()) return Status::Ok();
    DSP_RETURN_IF_ERROR(RemoveContents(top_fd, fd.get(), display, depth + 1));
    fd.reset();
    return RmDir(parent_fd, name, display);
  }

  Status RemoveContents(int top_fd, int dir_fd, const std::string& display, int depth) {
    // Names are read first and removed afterwards: removing entries while a
    // readdir stream is open may skip some.
    DSP_ASSIGN_OR_RETURN(std::vector<std::string> names, ReadNames(dir_fd, display));
    for (const std::string& name : names) {
      const std::string entry = display + "/" + name;
      struct statx stx;
      if (::statx(dir_fd, name.c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &stx) != 0) {
        if (errno == ENOENT) continue;
        return ErrnoStatus("statx " + entry, errno);
      }
      DSP_RETURN_IF_ERROR(S_ISDIR(stx.stx_mode) ? RemoveDir(top_fd, dir_fd, name, entry, depth)
                                                : Unlink(dir_fd, name, entry));
    }
    return Status::Ok();
  }

  // Moves the directory `name` in `parent_fd` up into the top directory, to
  // be removed from there.
  Status Park(int top_fd, int parent_fd, const std::string& name, const std::string& display) {
    for (;;) {
      std::string parked = ".dspool-removing-" + std::to_string(next_parked_++);
      if (::renameat2(parent_fd, name.c_str(), top_fd, parked.c_str(), RENAME_NOREPLACE) == 0) {
        parked_.push_back(std::move(parked));
        return Status::Ok();
      }
      if (errno == ENOENT) return Status::Ok();
      if (errno != EEXIST) return ErrnoStatus("move " + display + " up to be removed", errno);
    }
  }

  static Result<std::vector<std::string>> ReadNames(int dir_fd, const std::string& display) {
    std::vector<std::string> names;
    int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return ErrnoStatus("dup " + display, errno);
    DIR* dir = ::fdopendir(dup_fd);
    if (dir == nullptr) {
      int err = errno;
      ::close(dup_fd);
      return ErrnoStatus("opendir " + display, err);
    }
    for (;;) {
      errno = 0;
      struct dirent* entry = ::readdir(dir);
      if (entry == nullptr) break;
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    int err = errno;
    ::closedir(dir);
    if (err != 0) return ErrnoStatus("readdir " + display, err);
    return names;
  }

  MountKey mount_;
  std::vector<std::string> parked_;
  uint64_t next_parked_ = 0;
};

}  // namespace

namespace {

// The rest of ReadFile and ReadPrivateFile: reads all of `fd`, whose fstat
// is `st`.
Result<std::string> ReadAll(int fd, const struct stat& st, const std::string& path) {
  std::string content;
  if (S_ISREG(st.st_mode)) content.reserve(static_cast<size_t>(st.st_size));
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path, errno);
    }
    content.append(buf, static_cast<size_t>(n));
  }
  return content;
}

}  // namespace

Result<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return ErrnoStatus("open " + path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  if (S_ISDIR(st.st_mode)) return InvalidArgument("read " + path + ": is a directory");
  return ReadAll(fd.get(), st, path);
}

Result<std::string> ReadPrivateFile(const std::string& path, uid_t owner) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK));
  if (!fd.valid()) {
    if (errno == ELOOP) return FailedPrecondition(path + " is a symlink; give the file itself");
    return ErrnoStatus("open " + path, errno);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return FailedPrecondition(path + " is " + FileKind(st.st_mode) + ", not a regular file");
  if (st.st_uid != owner) {
    return FailedPrecondition(path + " belongs to uid " + std::to_string(st.st_uid) + ", not " +
                              std::to_string(owner) + " (chown " + std::to_string(owner) + " " + path + ")");
  }
  if (st.st_mode & 0077) {
    return FailedPrecondition(path + " must not be readable or writable by group or others (chmod 600 " + path +
                              ")");
  }
  return ReadAll(fd.get(), st, path);
}

Status WriteKernelFile(const std::string& path, std::string_view text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return ErrnoStatus("open " + path, errno);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus("write " + path + " (" + std::string(text.substr(0, text.find('\n'))) + ")", errno);
  }
  return Status::Ok();
}

Status AppendFile(const std::string& path, std::string_view text, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode & 0777));
  if (!fd.valid()) return ErrnoStatus("open " + path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return FailedPrecondition(path + " is not a regular file");
  if ((st.st_mode & 07777) != (mode & 07777) && ::fchmod(fd.get(), mode & 07777) != 0) {
    return ErrnoStatus("chmod " + path, errno);
  }
  return WriteAll(fd.get(), text, "append to " + path);
}

Status WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode, std::optional<FileOwner> owner) {
  DSP_ASSIGN_OR_RETURN(SplitPath split, Split(path));
  DSP_ASSIGN_OR_RETURN(UniqueFd dir, OpenDir(split.dir));
  DSP_ASSIGN_OR_RETURN(std::string temp, TempName(split.base));

  // Created with at most the permission bits of `mode` (umask may narrow
  // them); setuid/setgid/sticky only after the chown, which would clear them.
  UniqueFd fd(::openat(dir.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777));
  if (!fd.valid()) return ErrnoStatus("create " + split.dir + "/" + temp, errno);
  auto fail = [&](Status s) {
    ::unlinkat(dir.get(), temp.c_str(), 0);
    return s.WithPrefix("write " + path);
  };
  if (owner.has_value() && ::fchown(fd.get(), owner->uid, owner->gid) != 0) return fail(ErrnoStatus("fchown", errno));
  if (::fchmod(fd.get(), mode & 07777) != 0) return fail(ErrnoStatus("fchmod", errno));
  if (Status s = WriteAll(fd.get(), content, "write"); !s.ok()) return fail(s);
  if (::fsync(fd.get()) != 0) return fail(ErrnoStatus("fsync", errno));
  if (::close(fd.release()) != 0) return fail(ErrnoStatus("close", errno));
  if (::renameat(dir.get(), temp.c_str(), dir.get(), split.base.c_str()) != 0) {
    return fail(ErrnoStatus("rename", errno));
  }
  if (::fsync(dir.get()) != 0) return ErrnoStatus("fsync directory " + split.dir, errno);
  return Status::Ok();
}

Status MakeDirs(const std::string& raw_path, mode_t mode) {
  std::string path = StripTrailingSlashes(raw_path);
  if (path.empty()) return InvalidArgument("MakeDirs: empty path");
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (prefix.empty() || prefix.back() == '/') continue;  // "/" or "a//b"
    if (::mkdir(prefix.c_str(), 0700) == 0) {
      // Created here, so the mode is ours to set, without the umask.
      UniqueFd fd(::open(prefix.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) return ErrnoStatus("open directory " + prefix, errno);
      if (::fchmod(fd.get(), mode & 07777) != 0) return ErrnoStatus("chmod " + prefix, errno);
      continue;
    }
    int err = errno;
    if (err != EEXIST) return ErrnoStatus("mkdir " + prefix, err);
    struct stat st;
    if (::stat(prefix.c_str(), &st) != 0) return ErrnoStatus("stat " + prefix, errno);
    if (!S_ISDIR(st.st_mode)) return FailedPrecondition("mkdir " + path + ": " + prefix + " is not a directory");
  }
  return Status::Ok();
}

Status EnsureDir(const std::string& raw_path, mode_t mode, FileOwner owner) {
  std::string path = StripTrailingSlashes(raw_path);
  if (path.empty()) return InvalidArgument("EnsureDir: empty path");
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + path, errno);
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return ErrnoStatus("lstat " + path, errno);
  if (S_ISLNK(st.st_mode)) return FailedPrecondition(path + " is a symlink; refusing to use it as a directory");
  if (!S_ISDIR(st.st_mode)) return FailedPrecondition(path + " exists and is not a directory");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ELOOP || errno == ENOTDIR) return FailedPrecondition(path + " was replaced while being checked");
    return ErrnoStatus("open directory " + path, errno);
  }
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  if ((st.st_uid != owner.uid || st.st_gid != owner.gid) && ::fchown(fd.get(), owner.uid, owner.gid) != 0) {
    return ErrnoStatus("chown " + path, errno);
  }
  // After the chown, which may clear the setgid bit.
  if (::fchmod(fd.get(), mode & 07777) != 0) return ErrnoStatus("chmod " + path, errno);
  return Status::Ok();
}

Status RenameNoReplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST) return AlreadyExists("rename " + from + ": " + to + " exists");
    if (errno == ENOENT) return NotFound("rename " + from + ": no such file or directory");
    return ErrnoStatus("rename " + from + " to " + to, errno);
  }
  return Status::Ok();
}

Status RemoveTree(const std::string& path) {
  DSP_ASSIGN_OR_RETURN(SplitPath split, Split(path));
  UniqueFd parent(::open(split.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent.valid()) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("open directory " + split.dir, errno);
  }
  // The tree's mount is its parent's: a `path` that is itself a mount point
  // is refused like any mount below it.
  DSP_ASSIGN_OR_RETURN(MountKey mount, MountOfFd(parent.get(), split.dir));
  return TreeRemover(mount).Remove(parent.get(), split.base, StripTrailingSlashes(path));
}

Result<UniqueFd> OpenSocketNoFollow(const std::string& dir, const std::string& name, uid_t owner) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return InvalidArgument("socket name '" + name + "' must be one path component");
  }
  const std::string path = dir + "/" + name;
  UniqueFd dir_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir_fd.valid()) {
    if (errno == ELOOP || errno == ENOTDIR) return FailedPrecondition(dir + " is not a directory (a symlink?)");
    return ErrnoStatus("open directory " + dir, errno);
  }
  UniqueFd fd(::openat(dir_fd.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  if (!S_ISSOCK(st.st_mode)) {
    return FailedPrecondition(path + " is " + FileKind(st.st_mode) + ", not a socket; refusing to connect");
  }
  if (st.st_uid != owner) {
    return FailedPrecondition(path + " belongs to uid " + std::to_string(st.st_uid) + ", not " +
                              std::to_string(owner) + "; refusing to connect");
  }
  return fd;
}

std::string FdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

Result<bool> ExistsBeneath(const std::string& dir, const std::string& relative) {
  UniqueFd base(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!base.valid()) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return ErrnoStatus("open " + dir, errno);
  }
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH;
  long fd = ::syscall(SYS_openat2, base.get(), relative.c_str(), &how, sizeof(how));
  if (fd >= 0) {
    ::close(static_cast<int>(fd));
    return true;
  }
  if (errno == ELOOP) return true;  // a symlink on the way
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return ErrnoStatus("look up " + dir + "/" + relative, errno);
}

Status SymlinkBeneath(const std::string& dir, const std::string& relative, const std::string& name,
                      const std::string& target, FileOwner owner) {
  const std::string where = dir + "/" + relative;
  UniqueFd base(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!base.valid()) {
    if (errno == ELOOP || errno == ENOTDIR || errno == ENOENT) return NotFound(dir + " is not a directory");
    return ErrnoStatus("open " + dir, errno);
  }
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH;
  UniqueFd at(static_cast<int>(::syscall(SYS_openat2, base.get(), relative.c_str(), &how, sizeof(how))));
  if (!at.valid()) {
    if (errno == ELOOP || errno == ENOTDIR || errno == ENOENT || errno == EXDEV) {
      return NotFound(where + " is not a directory reached without a symlink");
    }
    return ErrnoStatus("open " + where, errno);
  }
  if (::symlinkat(target.c_str(), at.get(), name.c_str()) != 0) {
    if (errno == EEXIST) return AlreadyExists(where + "/" + name + " exists");
    return ErrnoStatus("symlink " + where + "/" + name, errno);
  }
  if (::fchownat(at.get(), name.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("chown " + where + "/" + name, errno);
  }
  return Status::Ok();
}

Result<bool> PathExists(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return ErrnoStatus("lstat " + path, errno);
}

Status Symlink(const std::string& target, const std::string& link_path) {
  if (::symlink(target.c_str(), link_path.c_str()) == 0) return Status::Ok();
  if (errno != EEXIST) return ErrnoStatus("symlink " + link_path, errno);
  struct stat st;
  if (::lstat(link_path.c_str(), &st) != 0) return ErrnoStatus("lstat " + link_path, errno);
  if (!S_ISLNK(st.st_mode)) return AlreadyExists(link_path + " exists and is not a symlink");
  std::vector<char> buf(target.size() + 2);
  ssize_t n = ::readlink(link_path.c_str(), buf.data(), buf.size());
  if (n >= 0 && std::string_view(buf.data(), static_cast<size_t>(n)) == target) return Status::Ok();

  DSP_ASSIGN_OR_RETURN(SplitPath split, Split(link_path));
  DSP_ASSIGN_OR_RETURN(UniqueFd dir, OpenDir(split.dir));
  DSP_ASSIGN_OR_RETURN(std::string temp, TempName(split.base));
  if (::symlinkat(target.c_str(), dir.get(), temp.c_str()) != 0) {
    return ErrnoStatus("symlink " + split.dir + "/" + temp, errno);
  }
  // Re-check right before the rename, so a non-symlink that appeared since the
  // lstat above is not clobbered (a narrow race remains; see fs.h).
  if (::fstatat(dir.get(), split.base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK(st.st_mode)) {
    ::unlinkat(dir.get(), temp.c_str(), 0);
    return AlreadyExists(link_path + " exists and is not a symlink");
  }
  if (::renameat(dir.get(), temp.c_str(), dir.get(), split.base.c_str()) != 0) {
    int err = errno;
    ::unlinkat(dir.get(), temp.c_str(), 0);
    return ErrnoStatus("rename over " + link_path, err);
  }
  return Status::Ok();
}

Result<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return ErrnoStatus("opendir " + path, errno);
  std::vector<std::string> names;
  while (dirent* e = readdir(dir)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

Status CheckRootProgram(const std::string& path) {
  if (path.empty() || path[0] != '/') return InvalidArgument("'" + path + "': give an absolute path");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(path, errno);
  if (!S_ISREG(st.st_mode) || (st.st_mode & 0100) == 0) return InvalidArgument(path + ": not an executable file");
  if (st.st_uid != 0 || (st.st_mode & 022) != 0) {
    return PermissionDenied(path + ": must be root's and writable by root alone");
  }
  const std::string dir = path.substr(0, std::max<size_t>(path.rfind('/'), 1));
  if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus(dir, errno);
  if (st.st_uid != 0 || (st.st_mode & 022) != 0) {
    return PermissionDenied(path + ": its directory " + dir + " must be root's and writable by root alone");
  }
  return Status::Ok();
}

Result<UniqueFd> Duplicate(int fd) {
  UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!copy.valid()) return ErrnoStatus("dup", errno);
  return copy;
}

}  // namespace dspool
