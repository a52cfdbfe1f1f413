#include "os/cgroup.h"

#include <gtest/gtest.h>

#include "base/testing/cannot_run.h"
#include "os/mounts.h"

namespace dspool {
namespace {

// A Debian host with both hierarchies (v1 controllers and the unified one),
// as this project's CI machines have; one mount point with a space.
constexpr char kHybridMounts[] =
    "22 1 0:21 / / rw,relatime - ext4 /dev/vda1 rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children\n"
    "40 31 0:37 / /sys/fs/cgroup/sys\\040temd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(CgroupTest, FindsEveryMountedHierarchy) {
  auto p = ParseCgroupPlacement(
      "9:name=systemd:/system.slice/dspool.service\n"
      "4:memory:/system.slice/dspool.service\n"
      "3:cpuset:/\n"
      "1:cpu,cpuacct:/system.slice\n"
      "2:blkio:/not-mounted\n"
      "0::/system.slice/dspool.service\n",
      kHybridMounts);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->procs_files, (std::vector<std::string>{
                                "/sys/fs/cgroup/sys temd/system.slice/dspool.service/cgroup.procs",
                                "/sys/fs/cgroup/memory/system.slice/dspool.service/cgroup.procs",
                                "/sys/fs/cgroup/cpuset/cgroup.procs",
                                "/sys/fs/cgroup/cpu,cpuacct/system.slice/cgroup.procs",
                                "/sys/fs/cgroup/unified/system.slice/dspool.service/cgroup.procs",
                            }));
}

TEST(CgroupTest, UnifiedOnlyAndAMountOfPartOfTheTree) {
  // Inside a container whose /sys/fs/cgroup shows only its own subtree.
  constexpr char kMounts[] = "50 40 0:30 /lxc.payload.c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
  auto p = ParseCgroupPlacement("0::/lxc.payload.c1/init.scope\n", kMounts);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->procs_files, std::vector<std::string>{"/sys/fs/cgroup/init.scope/cgroup.procs"});
  // A cgroup outside the mounted part cannot be reached: skipped. So is
  // one whose name merely starts with the root's.
  p = ParseCgroupPlacement("0::/lxc.payload.c2\n", kMounts);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->procs_files.empty());
  p = ParseCgroupPlacement("0::/lxc.payload.c1x/a\n", kMounts);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->procs_files.empty());
}

TEST(CgroupTest, RefusesTextThatDoesNotParseNamingTheLine) {
  auto p = ParseCgroupPlacement("0::/\nnonsense\n", kHybridMounts);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(), "cgroup line 2 does not parse: nonsense");
  p = ParseCgroupPlacement("0::/\n", "22 1 0:21 / / rw\n");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "mountinfo line 1 does not parse: 22 1 0:21 / / rw");
}

TEST(CgroupTest, ParsesMountInfoFields) {
  auto m = ParseMountInfo("40 31 0:37 /a\\040b /mnt/x\\011y rw,relatime shared:1 master:2 - cgroup none rw,name=x\n");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0], (MountInfo{"/a b", "/mnt/x\ty", "cgroup", "rw,name=x"}));
}

TEST(CgroupTest, TheCurrentProcessCanRejoinWhereItIs) {
  auto p = CurrentCgroups();
  ASSERT_TRUE(p.ok()) << p.status();
  if (p->procs_files.empty()) DSP_CANNOT_RUN_HERE("no cgroup hierarchy is mounted here");
  // Moving into the cgroup it is in already changes nothing; it needs write
  // access to cgroup.procs (root, or a delegated cgroup).
  Status s = JoinCgroups(*p);
  if (!s.ok() && s.code() == StatusCode::kPermissionDenied) DSP_CANNOT_RUN_HERE(s);
  EXPECT_TRUE(s.ok()) << s;
  auto again = CurrentCgroups();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *p);
}

TEST(CgroupTest, OwnHierarchiesToMountAreMemoryAndCpuacctOrTheUnifiedOne) {
  // This host: cgroup v1, each controller on its own, a cgroup namespace.
  auto v1 = OwnCgroupHierarchies("9:name=systemd:/\n8:pids:/\n4:memory:/\n2:cpuacct:/\n1:cpu:/\n0::/.lxc\n");
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(*v1, (std::vector<std::string>{"memory", "cpuacct"}));
  auto shared = OwnCgroupHierarchies("5:memory:/a\n3:cpu,cpuacct:/a\n");
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(*shared, (std::vector<std::string>{"memory", "cpu,cpuacct"}));
  EXPECT_EQ(OwnCgroupHierarchies("0::/\n").value_or(std::vector<std::string>{"?"}), std::vector<std::string>{""});
  EXPECT_EQ(OwnCgroupHierarchies("8:pids:/\n").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(OwnCgroupHierarchies("4:memory:/\nbad\n").status().message(),
            "/proc/self/cgroup line 2: not ID:CONTROLLERS:PATH: 'bad'");
}

}  // namespace
}  // namespace dspool
