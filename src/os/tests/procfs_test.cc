#include "os/procfs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "base/testing/temp_dir.h"
#include "os/fs.h"

namespace dspool {
namespace {

TEST(ProcfsTest, ParsesStatWithAnyCommandName) {
  auto s = ParseProcStat("4242 (bash) S 4000 4242 4242 34816 4300 4194560 1 2 3 4\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, (ProcStat{4242, "bash", 'S', 4000, 4242, 4242, 34816, 4300}));
  // A name with spaces and parentheses ends at the last ')'.
  s = ParseProcStat("7 (a) b (c)) R 1 7 7 0 -1 0");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->comm, "a) b (c)");
  EXPECT_EQ(s->state, 'R');
  EXPECT_EQ(s->tpgid, -1);
  EXPECT_EQ(s->tty_nr, 0);
}

TEST(ProcfsTest, RefusesTruncatedStatNamingTheField) {
  EXPECT_EQ(ParseProcStat("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseProcStat("12 bash S 1").status().code(), StatusCode::kInvalidArgument);
  auto s = ParseProcStat("12 (bash) S 1 12 12");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "stat of 12: bad or missing tty_nr");
}

TEST(ProcfsTest, ListsTheNumericEntriesOfAFakeTree) {
  TempDir tmp("dspool-procfs");
  ASSERT_FALSE(tmp.path().empty());
  auto put = [&](const std::string& rel, const std::string& text) {
    ASSERT_TRUE(MakeDirs(tmp / rel.substr(0, rel.rfind('/')), 0755).ok());
    ASSERT_TRUE(WriteFileAtomic(tmp / rel, text, 0644).ok());
  };
  put("20/stat", "20 (sleep) S 10 20 10 34816 20 0");
  put("10/stat", "10 (bash) S 1 10 10 34816 20 0");
  put("self/stat", "99 (self) R 1 99 99 0 -1 0");
  put("sys/stat", "not a process");
  ASSERT_TRUE(MakeDirs(tmp / "30", 0755).ok());  // exited: no stat left
  auto list = ListProcesses(tmp.path());
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].pid, 10);
  EXPECT_EQ((*list)[1].ppid, 10);

  put("40/stat", "garbage");
  list = ListProcesses(tmp.path());
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().message().find(tmp / "40/stat"), std::string::npos) << list.status();
  EXPECT_EQ(ListProcesses(tmp / "none").status().code(), StatusCode::kNotFound);
}

TEST(ProcfsTest, ListsThisProcessFromTheRealProc) {
  auto list = ListProcesses();
  ASSERT_TRUE(list.ok()) << list.status();
  bool found = false;
  for (const ProcStat& p : *list) {
    if (p.pid == getpid()) {
      found = true;
      EXPECT_EQ(p.ppid, getppid());
      EXPECT_EQ(p.pgrp, getpgrp());
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace dspool
