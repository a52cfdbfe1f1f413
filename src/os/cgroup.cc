#include "os/cgroup.h"

#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "os/fs.h"
#include "os/mounts.h"

namespace dspool {
namespace {

std::set<std::string_view> SplitCommas(std::string_view s) {
  std::set<std::string_view> out;
  while (!s.empty()) {
    size_t comma = s.find(',');
    out.insert(s.substr(0, comma));
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
  }
  return out;
}

// Whether `mount` shows the hierarchy a /proc/<pid>/cgroup line names by
// its controllers ("" for the unified hierarchy).
bool ShowsHierarchy(const MountInfo& mount, std::string_view controllers) {
  if (controllers.empty()) return mount.fs_type == "cgroup2";
  if (mount.fs_type != "cgroup") return false;
  std::set<std::string_view> options = SplitCommas(mount.super_options);
  std::set<std::string_view> wanted = SplitCommas(controllers);
  return std::includes(options.begin(), options.end(), wanted.begin(), wanted.end());
}

}  // namespace

Result<CgroupPlacement> ParseCgroupPlacement(std::string_view proc_cgroup, std::string_view mountinfo) {
  DSP_ASSIGN_OR_RETURN(std::vector<MountInfo> mounts, ParseMountInfo(mountinfo));
  CgroupPlacement placement;
  std::istringstream in{std::string(proc_cgroup)};
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    // HIERARCHY-ID:CONTROLLERS:PATH (cgroups(7)); the path may hold ':'.
    size_t first = line.find(':');
    size_t second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos || line[second + 1] != '/') {
      return InvalidArgument("cgroup line " + std::to_string(line_no) + " does not parse: " + line);
    }
    std::string_view controllers = std::string_view(line).substr(first + 1, second - first - 1);
    std::string_view path = std::string_view(line).substr(second + 1);
    for (const MountInfo& m : mounts) {
      if (!ShowsHierarchy(m, controllers)) continue;
      // The mount shows the hierarchy from m.root down: the process's
      // cgroup must lie at or below it.
      std::string_view rest = path;
      if (m.root != "/") {
        if (path.rfind(m.root, 0) != 0 || (path.size() > m.root.size() && path[m.root.size()] != '/')) continue;
        rest = path.substr(m.root.size());
      }
      std::string file = m.mount_point;
      if (!rest.empty() && rest != "/") file += rest;
      placement.procs_files.push_back(file + "/cgroup.procs");
      break;
    }
  }
  return placement;
}

Result<CgroupPlacement> CurrentCgroups() {
  DSP_ASSIGN_OR_RETURN(std::string cgroups, ReadFile("/proc/self/cgroup"));
  DSP_ASSIGN_OR_RETURN(std::string mountinfo, ReadFile("/proc/self/mountinfo"));
  return ParseCgroupPlacement(cgroups, mountinfo);
}

Status JoinCgroups(const CgroupPlacement& placement) {
  Status first_error;
  const std::string pid = std::to_string(::getpid()) + "\n";
  for (const std::string& file : placement.procs_files) {
    Status s = WriteKernelFile(file, pid);
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  return first_error;
}

Status RemoveTopCgroup(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return InvalidArgument("not a cgroup name: '" + name + "'");
  }
  DSP_ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/mountinfo"));
  DSP_ASSIGN_OR_RETURN(std::vector<MountInfo> mounts, ParseMountInfo(text));
  Status first_error;
  for (const MountInfo& m : mounts) {
    if (m.fs_type != "cgroup" && m.fs_type != "cgroup2") continue;
    const std::string path = m.mount_point + "/" + name;
    if (::rmdir(path.c_str()) == 0 || errno == ENOENT) continue;
    Status s = errno == EBUSY || errno == ENOTEMPTY
                   ? FailedPrecondition("cgroup " + path + " is still in use (a process or a child cgroup)")
                   : ErrnoStatus("remove cgroup " + path, errno);
    if (first_error.ok()) first_error = s;
  }
  return first_error;
}

Result<std::vector<std::string>> OwnCgroupHierarchies(std::string_view proc_cgroup) {
  std::vector<std::string> v1;
  bool unified = false;
  std::istringstream in{std::string(proc_cgroup)};
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    size_t first = line.find(':');
    size_t second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) {
      return InvalidArgument("/proc/self/cgroup line " + std::to_string(n) + ": not ID:CONTROLLERS:PATH: '" + line + "'");
    }
    std::string controllers = line.substr(first + 1, second - first - 1);
    if (controllers.empty()) {
      unified = true;
      continue;
    }
    std::set<std::string_view> names = SplitCommas(controllers);
    if (names.count("memory") || names.count("cpuacct")) v1.push_back(controllers);
  }
  if (!v1.empty()) return v1;
  if (unified) return std::vector<std::string>{""};
  return NotFound("/proc/self/cgroup names neither a memory nor a cpuacct hierarchy, nor the unified one");
}

Result<bool> MountOwnCgroups(const std::string& root) {
  DSP_ASSIGN_OR_RETURN(bool mounted, IsMountPoint(root));
  if (mounted) return false;
  DSP_ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/cgroup"));
  DSP_ASSIGN_OR_RETURN(std::vector<std::string> hierarchies, OwnCgroupHierarchies(text));
  if (hierarchies == std::vector<std::string>{""}) {
    if (::mount("cgroup2", root.c_str(), "cgroup2", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      return ErrnoStatus("mount cgroup2 on " + root, errno);
    }
    return true;
  }
  if (::mount("cgroup", root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=64k") != 0) {
    return ErrnoStatus("mount tmpfs on " + root, errno);
  }
  for (const std::string& controllers : hierarchies) {
    const std::string dir = root + "/" + controllers;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + dir, errno);
    if (::mount("cgroup", dir.c_str(), "cgroup", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, controllers.c_str()) != 0) {
      return ErrnoStatus("mount cgroup " + controllers + " on " + dir, errno);
    }
    // "cpu,cpuacct": also as cpuacct/, where readers look.
    for (std::string_view name : SplitCommas(controllers)) {
      if (name == controllers || (name != "memory" && name != "cpuacct")) continue;
      const std::string link = root + "/" + std::string(name);
      if (::symlink(controllers.c_str(), link.c_str()) != 0 && errno != EEXIST) {
        return ErrnoStatus("symlink " + link, errno);
      }
    }
  }
  // The tmpfs itself read-only too, now that it holds what it should.
  if (::mount(nullptr, root.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=755,size=64k") != 0) {
    return ErrnoStatus("remount " + root + " read-only", errno);
  }
  return true;
}

}  // namespace dspool
