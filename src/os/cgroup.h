// The calling process's cgroups, and a way back to them.
//
// liblxc's daemonized start moves its *caller* into the new container's
// monitor cgroup (lxc.monitor.<name>, in every hierarchy): it expects the
// caller to be the short-lived lxc-start. A long-lived server that starts
// containers in-process would then live in the last started container's
// monitor cgroup: under cgroup v1 all its threads share the CPU weight of a
// single task, its memory is charged there, and when that container stops
// its monitor cgroup cannot be removed (EBUSY) and is left behind. The lxc
// provider therefore records where the server is once (CurrentCgroups) and
// goes back there after every start (JoinCgroups).
//
// Thread safety: the functions keep no state; call them from any thread
// (JoinCgroups moves the whole process, every thread).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/status.h"

namespace dspool {

// One cgroup.procs file per mounted hierarchy the process belongs to, e.g.
// "/sys/fs/cgroup/cpu/system.slice/dspool.service/cgroup.procs".
struct CgroupPlacement {
  std::vector<std::string> procs_files;
  friend bool operator==(const CgroupPlacement&, const CgroupPlacement&) = default;
};

// Where a process is, from the texts of /proc/<pid>/cgroup and
// /proc/<pid>/mountinfo. A hierarchy that is not mounted, or mounted with
// a root that does not contain the process's cgroup (another namespace's
// view), is skipped: the process cannot be moved there anyway.
// InvalidArgument naming the line if either text does not parse.
Result<CgroupPlacement> ParseCgroupPlacement(std::string_view proc_cgroup, std::string_view mountinfo);

// The calling process's placement, from /proc/self.
Result<CgroupPlacement> CurrentCgroups();

// Moves the calling process (all its threads) into `placement`. Tries every
// file; the first error names its file.
Status JoinCgroups(const CgroupPlacement& placement);

// Removes the cgroup directory `name` (a child of each hierarchy's mount
// point, as liblxc's lxc.monitor.<container> and lxc.payload.<container>)
// from every mounted hierarchy that has it; one missing anywhere is fine.
// Tries every hierarchy; the first error names its path (FailedPrecondition
// when a process or a child cgroup is still in it).
Status RemoveTopCgroup(const std::string& name);

// The hierarchies MountOwnCgroups mounts, from the text of /proc/self/cgroup:
// the controllers of each v1 hierarchy that has `memory` or `cpuacct`
// ("memory", "cpu,cpuacct"), or {""} for a host with the unified
// hierarchy only (v2). InvalidArgument naming the line if it does not parse,
// NotFound if neither is there.
Result<std::vector<std::string>> OwnCgroupHierarchies(std::string_view proc_cgroup);

// For a container whose runtime left /sys/fs/cgroup without cgroups (an
// unprivileged LXC container on a cgroup v1 host): mounts, read-only, the
// calling process's own memory and CPU accounting cgroups under `root`
// (v1: a tmpfs with `memory/`, `cpuacct/` (a link when it shares its
// hierarchy, as `cpu,cpuacct/`); v2: the unified hierarchy at `root`), so
// that it can read its usage, limit and OOM kill count. Inside a cgroup
// namespace the process's cgroup is the mount's root. Does nothing and
// answers false when `root` is a mount point already. Needs CAP_SYS_ADMIN
// over the cgroup namespace; errors name the mount that failed.
Result<bool> MountOwnCgroups(const std::string& root = "/sys/fs/cgroup");

}  // namespace dspool
