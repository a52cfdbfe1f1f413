#include "os/mounts.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "os/fs.h"

namespace dspool {
namespace {

std::string MapText(const std::vector<IdMapping>& mappings) {
  std::string text;
  for (const IdMapping& m : mappings) {
    text += std::to_string(m.inside) + " " + std::to_string(m.outside) + " " + std::to_string(m.count) + "\n";
  }
  return text;
}

// mountinfo escapes spaces, tabs, newlines and backslashes as \ooo.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
      out += static_cast<char>(v);
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Result<UniqueFd> MakeUserNamespace(const std::vector<IdMapping>& mappings) {
  if (mappings.empty()) return InvalidArgument("a user namespace needs at least one mapping");
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  UniqueFd read_end(ready[0]), write_end(ready[1]);
  int unshared[2];
  if (::pipe2(unshared, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  UniqueFd unshared_read(unshared[0]), unshared_write(unshared[1]);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    // Child: enter a new user namespace, say so, and wait to be killed. It
    // dies with the thread that made it: a child that outlived a killed
    // server would keep every descriptor it inherited, the server's lock
    // among them (and helpers forked meanwhile by other threads hold copies
    // of this pipe's write end, so its end of file cannot tell).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(0);
    write_end.reset();
    unshared_read.reset();
    char ok = ::unshare(CLONE_NEWUSER) == 0 ? 1 : 0;
    (void)!::write(unshared_write.get(), &ok, 1);
    char c;
    (void)!::read(read_end.get(), &c, 1);
    ::_exit(0);
  }
  unshared_write.reset();
  auto finish = [&]() {
    write_end.reset();  // the child's read returns; it exits
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  };
  char ok = 0;
  if (::read(unshared_read.get(), &ok, 1) != 1 || ok != 1) {
    finish();
    return Unavailable("cannot create a user namespace (unshare CLONE_NEWUSER failed)");
  }
  std::string base = "/proc/" + std::to_string(pid);
  std::string text = MapText(mappings);
  Status s = WriteKernelFile(base + "/uid_map", text);
  if (s.ok()) s = WriteKernelFile(base + "/gid_map", text);
  UniqueFd ns;
  if (s.ok()) {
    ns = UniqueFd(::open((base + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
    if (ns.get() < 0) s = ErrnoStatus("open " + base + "/ns/user", errno);
  }
  finish();
  if (!s.ok()) return s;
  return ns;
}

Result<UniqueFd> OpenIdmapped(const std::string& source, int userns_fd, bool read_only, bool allow_suid) {
  UniqueFd tree(static_cast<int>(
      ::syscall(SYS_open_tree, AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (tree.get() < 0) return ErrnoStatus("open_tree " + source, errno);
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0) |
                  (allow_suid ? 0 : MOUNT_ATTR_NOSUID);
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
    return ErrnoStatus("idmap " + source, errno);
  }
  return tree;
}

Status AttachMount(int tree, const std::string& target) {
  if (::syscall(SYS_move_mount, tree, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return ErrnoStatus("attach at " + target, errno);
  }
  return Status::Ok();
}

Status MountIdmapped(const std::string& source, const std::string& target, int userns_fd, bool read_only,
                     bool allow_suid) {
  DSP_ASSIGN_OR_RETURN(UniqueFd tree, OpenIdmapped(source, userns_fd, read_only, allow_suid));
  return AttachMount(tree.get(), target).WithPrefix(source);
}

Status MountOverlay(const std::string& lower, const std::string& upper, const std::string& work,
                    const std::string& target) {
  for (const std::string& p : {lower, upper, work}) {
    if (p.find_first_of(",:") != std::string::npos) {
      return InvalidArgument("overlay layer path must not contain ',' or ':': " + p);
    }
  }
  std::string options = "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work;
  if (::mount("overlay", target.c_str(), "overlay", MS_NODEV, options.c_str()) != 0) {
    return ErrnoStatus("mount overlay at " + target, errno);
  }
  return Status::Ok();
}

Status Unmount(const std::string& target, bool detach) {
  if (::umount2(target.c_str(), UMOUNT_NOFOLLOW | (detach ? MNT_DETACH : 0)) != 0) {
    if (errno == EINVAL) return NotFound("nothing is mounted at " + target);
    return ErrnoStatus("unmount " + target, errno);
  }
  return Status::Ok();
}

Result<std::vector<MountInfo>> ParseMountInfo(std::string_view text) {
  std::vector<MountInfo> out;
  std::istringstream in{std::string(text)};
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    // ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER-OPTIONS
    std::istringstream words(line);
    std::vector<std::string> fields;
    for (std::string w; words >> w;) fields.push_back(std::move(w));
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 6 || dash == fields.end() || fields.end() - dash < 4 || dash - fields.begin() < 6) {
      return InvalidArgument("mountinfo line " + std::to_string(line_no) + " does not parse: " + line);
    }
    out.push_back(MountInfo{Unescape(fields[3]), Unescape(fields[4]), dash[1], dash[3]});
  }
  return out;
}

Result<std::vector<std::string>> MountsUnder(const std::string& path) {
  DSP_ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/mountinfo"));
  DSP_ASSIGN_OR_RETURN(std::vector<MountInfo> mounts, ParseMountInfo(text));
  std::vector<std::string> out;
  for (MountInfo& m : mounts) {
    if (m.mount_point == path || m.mount_point.rfind(path + "/", 0) == 0) out.push_back(std::move(m.mount_point));
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

Result<bool> IsMountPoint(const std::string& path) {
  DSP_ASSIGN_OR_RETURN(auto mounts, MountsUnder(path));
  return std::find(mounts.begin(), mounts.end(), path) != mounts.end();
}

Status MakeWhiteout(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return InvalidArgument("whiteout needs an absolute path below /: " + path);
  DSP_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash), 0755));
  if (::mknod(path.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0 && errno != EEXIST) {
    return ErrnoStatus("whiteout " + path, errno);
  }
  return Status::Ok();
}

Status MakeOpaqueDir(const std::string& path, mode_t mode, uid_t uid, gid_t gid) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return InvalidArgument("opaque dir needs an absolute path below /: " + path);
  DSP_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash), 0755));
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + path, errno);
  if (::lsetxattr(path.c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
    return ErrnoStatus("mark " + path + " opaque", errno);
  }
  if (::lchown(path.c_str(), uid, gid) != 0) return ErrnoStatus("chown " + path, errno);
  if (::chmod(path.c_str(), mode) != 0) return ErrnoStatus("chmod " + path, errno);
  return Status::Ok();
}

}  // namespace dspool
