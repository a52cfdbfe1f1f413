#include "agent/sampler.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "base/testing/temp_dir.h"

namespace dspool {
namespace {

class SamplerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(tmp_.path().empty()); }
  void Write(const std::string& rel, const std::string& content) {
    std::filesystem::create_directories(std::filesystem::path(tmp_ / rel).parent_path());
    std::ofstream(tmp_ / rel) << content;
  }
  TempDir tmp_{"dspool-sampler"};
};

TEST_F(SamplerTest, ReadsCgroupV1Memory) {
  Write("cg/memory/memory.usage_in_bytes", "1048576\n");
  Write("cg/memory/memory.limit_in_bytes", "536870912\n");
  Write("cg/cpuacct/cpuacct.usage", "1000\n");
  Sampler s(tmp_ / "cg", tmp_ / "proc");
  InstanceSample sample = s.Sample();
  EXPECT_EQ(sample.memory_used_bytes, 1048576);
  EXPECT_EQ(sample.memory_limit_bytes, 536870912);
  EXPECT_FALSE(sample.cpu_permille.has_value()) << "one sample cannot tell CPU use";
  Write("cg/cpuacct/cpuacct.usage", "1000000000000\n");
  EXPECT_TRUE(s.Sample().cpu_permille.has_value());
}

TEST_F(SamplerTest, MemoryIsUnknownWithoutACgroup) {
  Sampler s(tmp_ / "cg", tmp_ / "proc");
  InstanceSample sample = s.Sample();
  EXPECT_FALSE(sample.memory_used_bytes.has_value());
  EXPECT_FALSE(sample.cpu_permille.has_value());
  EXPECT_EQ(sample.memory_limit_bytes, 0);
}

TEST_F(SamplerTest, ReadsCgroupV2AndUnlimited) {
  Write("cg/memory.current", "4096\n");
  Write("cg/memory.max", "max\n");
  Sampler s(tmp_ / "cg", tmp_ / "proc");
  InstanceSample sample = s.Sample();
  EXPECT_EQ(sample.memory_used_bytes, 4096);
  EXPECT_EQ(sample.memory_limit_bytes, 0);
}

TEST_F(SamplerTest, ReadsTheOomKillCountOfEitherCgroupVersion) {
  // cgroup v1, as LXC containers on this kind of host see their own cgroup.
  Write("v1/memory/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  auto v1 = ReadOomKills(tmp_ / "v1");
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(*v1, 3);
  Write("v2/memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n");
  EXPECT_EQ(ReadOomKills(tmp_ / "v2").value_or(-1), 2) << "oom_kill, not oom or oom_group_kill";

  auto none = ReadOomKills(tmp_ / "none");
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find(tmp_ / "none/memory/memory.oom_control"), std::string::npos)
      << "names the files it tried: " << none.status();
  Write("old/memory/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
  EXPECT_EQ(ReadOomKills(tmp_ / "old").status().message(),
            tmp_ / "old/memory/memory.oom_control" + " has no oom_kill count (a kernel older than 4.13?)");
  EXPECT_EQ(ParseOomKills("oom_kill x\n"), std::nullopt);
  EXPECT_EQ(ParseOomKills("oom_kill -1\n"), std::nullopt);
}

TEST_F(SamplerTest, CountsSshSessionsNotListenerOrPrivileged) {
  Write("proc/10/cmdline", std::string("sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups\0", 56));
  Write("proc/11/cmdline", std::string("sshd: alice [priv]\0", 19));
  Write("proc/12/cmdline", std::string("sshd: alice@pts/0\0", 18));
  Write("proc/13/cmdline", std::string("sshd: bob@notty\0", 16));
  Write("proc/14/cmdline", std::string("/bin/bash\0", 10));
  Write("proc/self/cmdline", std::string("sshd: x@y\0", 10));
  EXPECT_EQ(CountSshSessions(tmp_ / "proc"), 2);
}

}  // namespace
}  // namespace dspool
