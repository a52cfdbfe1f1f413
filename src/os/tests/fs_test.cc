#include "os/fs.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace dspool {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dspool-fs-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);  // does not follow symlinks
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::vector<std::string> Entries(const std::string& dir) const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  static struct stat Lstat(const std::string& path) {
    struct stat st = {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st;
  }

  static void Touch(const std::string& path, const std::string& content = "x") {
    ASSERT_TRUE(WriteFileAtomic(path, content, 0644).ok()) << path;
  }

  std::string dir_;
};

// Runs `body` in a forked child with its own mount namespace, so mounts it
// makes never reach the host; its exit code is the result (0: passed).
// Returns -1 if the namespace cannot be created for lack of privilege.
int RunInPrivateMountNamespace(const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(errno == EPERM ? 100 : 101);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(102);
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return 200;
  if (WEXITSTATUS(status) == 100) return -1;
  return WEXITSTATUS(status);
}

TEST_F(FsTest, WriteFileAtomicHasTheExactModeWhateverTheUmask) {
  mode_t old = ::umask(0);
  ASSERT_TRUE(WriteFileAtomic(Path("secret"), "s3cret", 0600).ok());
  ::umask(077);
  ASSERT_TRUE(WriteFileAtomic(Path("public"), "hello", 0644).ok());
  ::umask(old);

  EXPECT_EQ(Lstat(Path("secret")).st_mode & 07777, 0600u);
  EXPECT_EQ(Lstat(Path("public")).st_mode & 07777, 0644u);
  EXPECT_EQ(*ReadFile(Path("secret")), "s3cret");
  EXPECT_EQ(*ReadFile(Path("public")), "hello");
  EXPECT_EQ(Entries(dir_), (std::vector<std::string>{"public", "secret"})) << "a temporary file was left";
}

TEST_F(FsTest, WriteFileAtomicReplacesAndNarrowsTheMode) {
  ASSERT_TRUE(WriteFileAtomic(Path("f"), "old content, longer", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(Path("f"), "new", 0600).ok());
  EXPECT_EQ(*ReadFile(Path("f")), "new");
  EXPECT_EQ(Lstat(Path("f")).st_mode & 07777, 0600u);
  ASSERT_TRUE(WriteFileAtomic(Path("empty"), "", 0640).ok());
  EXPECT_EQ(*ReadFile(Path("empty")), "");
  EXPECT_EQ(Entries(dir_), (std::vector<std::string>{"empty", "f"}));
}

TEST_F(FsTest, WriteFileAtomicSetsTheOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown needs root";
  ASSERT_TRUE(WriteFileAtomic(Path("owned"), "x", 0640, FileOwner{12345, 23456}).ok());
  struct stat st = Lstat(Path("owned"));
  EXPECT_EQ(st.st_uid, 12345u);
  EXPECT_EQ(st.st_gid, 23456u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(FsTest, WriteFileAtomicReplacesASymlinkNotItsTarget) {
  Touch(Path("target"), "keep me");
  ASSERT_EQ(::symlink(Path("target").c_str(), Path("link").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomic(Path("link"), "new", 0600).ok());
  EXPECT_TRUE(S_ISREG(Lstat(Path("link")).st_mode));
  EXPECT_EQ(*ReadFile(Path("target")), "keep me");
}

TEST_F(FsTest, FailedWriteLeavesNoTemporaryFile) {
  ASSERT_EQ(::mkdir(Path("a-directory").c_str(), 0755), 0);
  Status s = WriteFileAtomic(Path("a-directory"), "x", 0600);  // rename onto a directory fails
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(Entries(dir_), (std::vector<std::string>{"a-directory"}));
  EXPECT_EQ(WriteFileAtomic(Path("missing/f"), "x", 0600).code(), StatusCode::kNotFound);
  EXPECT_EQ(WriteFileAtomic(dir_ + "/..", "x", 0600).code(), StatusCode::kInvalidArgument);
}

TEST_F(FsTest, ReadFileErrors) {
  EXPECT_EQ(ReadFile(Path("missing")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadFile(dir_).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FsTest, MakeDirs) {
  mode_t old = ::umask(077);
  ASSERT_TRUE(MakeDirs(Path("a/b/c/"), 0755).ok());
  ::umask(old);
  EXPECT_TRUE(S_ISDIR(Lstat(Path("a/b/c")).st_mode));
  EXPECT_EQ(Lstat(Path("a/b")).st_mode & 07777, 0755u);
  EXPECT_TRUE(MakeDirs(Path("a/b/c"), 0700).ok()) << "existing directories are fine";
  EXPECT_EQ(Lstat(Path("a/b/c")).st_mode & 07777, 0755u) << "and are left alone";
  Touch(Path("a/file"));
  EXPECT_EQ(MakeDirs(Path("a/file/d"), 0755).code(), StatusCode::kFailedPrecondition);
}

TEST_F(FsTest, EnsureDirCreatesAndFixes) {
  FileOwner me{::geteuid(), ::getegid()};
  ASSERT_TRUE(EnsureDir(Path("home"), 0750, me).ok());
  EXPECT_EQ(Lstat(Path("home")).st_mode & 07777, 0750u);
  ASSERT_EQ(::chmod(Path("home").c_str(), 0777), 0);
  ASSERT_TRUE(EnsureDir(Path("home"), 0700, me).ok());
  EXPECT_EQ(Lstat(Path("home")).st_mode & 07777, 0700u);
  if (::geteuid() == 0) {
    ASSERT_TRUE(EnsureDir(Path("home"), 02770, FileOwner{20001, 20001}).ok());
    struct stat st = Lstat(Path("home"));
    EXPECT_EQ(st.st_uid, 20001u);
    EXPECT_EQ(st.st_gid, 20001u);
    EXPECT_EQ(st.st_mode & 07777, 02770u);
  }
  EXPECT_EQ(EnsureDir(Path("missing/x"), 0700, me).code(), StatusCode::kNotFound);
}

TEST_F(FsTest, EnsureDirRefusesSymlinksAndFiles) {
  FileOwner me{::geteuid(), ::getegid()};
  ASSERT_EQ(::mkdir(Path("real").c_str(), 0755), 0);
  ASSERT_EQ(::symlink(Path("real").c_str(), Path("link").c_str()), 0);
  Status s = EnsureDir(Path("link"), 0700, me);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("symlink"), std::string::npos) << s;
  EXPECT_EQ(Lstat(Path("real")).st_mode & 07777, 0755u) << "the symlink's target was changed";
  EXPECT_EQ(EnsureDir(Path("link/"), 0700, me).code(), StatusCode::kFailedPrecondition);
  Touch(Path("file"));
  EXPECT_EQ(EnsureDir(Path("file"), 0700, me).code(), StatusCode::kFailedPrecondition);
}

TEST_F(FsTest, RemoveTreeRemovesEverything) {
  ASSERT_TRUE(MakeDirs(Path("tree/a/b/c"), 0755).ok());
  Touch(Path("tree/a/f1"));
  Touch(Path("tree/a/b/c/f2"));
  ASSERT_EQ(::mkfifo(Path("tree/fifo").c_str(), 0600), 0);
  ASSERT_EQ(::symlink("/nonexistent", Path("tree/a/dangling").c_str()), 0);
  ASSERT_TRUE(RemoveTree(Path("tree")).ok());
  EXPECT_FALSE(*PathExists(Path("tree")));
  EXPECT_TRUE(RemoveTree(Path("tree")).ok()) << "absent is OK";
  Touch(Path("plain"));
  EXPECT_TRUE(RemoveTree(Path("plain")).ok());
  EXPECT_FALSE(*PathExists(Path("plain")));
  EXPECT_EQ(RemoveTree("/").code(), StatusCode::kInvalidArgument);
}

TEST_F(FsTest, RemoveTreeDoesNotFollowSymlinks) {
  ASSERT_TRUE(MakeDirs(Path("outside/sub"), 0755).ok());
  Touch(Path("outside/precious"));
  ASSERT_TRUE(MakeDirs(Path("tree/inner"), 0755).ok());
  ASSERT_EQ(::symlink(Path("outside").c_str(), Path("tree/inner/escape").c_str()), 0);
  ASSERT_EQ(::symlink(Path("outside/precious").c_str(), Path("tree/file-link").c_str()), 0);
  ASSERT_TRUE(RemoveTree(Path("tree")).ok());
  EXPECT_FALSE(*PathExists(Path("tree")));
  EXPECT_EQ(*ReadFile(Path("outside/precious")), "x");
  EXPECT_TRUE(*PathExists(Path("outside/sub")));

  // The path itself a symlink: only the link goes.
  ASSERT_EQ(::symlink(Path("outside").c_str(), Path("top-link").c_str()), 0);
  ASSERT_TRUE(RemoveTree(Path("top-link")).ok());
  EXPECT_FALSE(*PathExists(Path("top-link")));
  EXPECT_EQ(*ReadFile(Path("outside/precious")), "x");
}

TEST_F(FsTest, RemoveTreeDoesNotCrossMountPoints) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting needs root";
  const std::string d = dir_;
  int rc = RunInPrivateMountNamespace([&d]() -> int {
    auto path = [&d](const std::string& n) { return d + "/" + n; };
    if (!MakeDirs(path("tree/mnt"), 0755).ok() || !MakeDirs(path("tree/bind"), 0755).ok()) return 1;
    if (!MakeDirs(path("bound-source"), 0755).ok()) return 2;
    if (!WriteFileAtomic(path("bound-source/keep"), "k", 0600).ok()) return 3;
    if (::mount("tmpfs", path("tree/mnt").c_str(), "tmpfs", 0, "size=1m") != 0) return 4;
    if (!WriteFileAtomic(path("tree/mnt/keep"), "k", 0600).ok()) return 5;

    Status s = RemoveTree(path("tree"));
    if (s.code() != StatusCode::kFailedPrecondition) return 6;
    if (!*PathExists(path("tree/mnt/keep"))) return 7;
    if (::umount(path("tree/mnt").c_str()) != 0) return 8;

    // A bind mount from the same filesystem has the same st_dev; the mount id
    // still tells it apart.
    if (::mount(path("bound-source").c_str(), path("tree/bind").c_str(), nullptr, MS_BIND, nullptr) != 0) return 9;
    s = RemoveTree(path("tree/bind"));  // the path itself is a mount point
    if (s.code() != StatusCode::kFailedPrecondition) return 10;
    s = RemoveTree(path("tree"));
    if (s.code() != StatusCode::kFailedPrecondition) return 11;
    if (!*PathExists(path("bound-source/keep"))) return 12;
    if (::umount(path("tree/bind").c_str()) != 0) return 13;
    if (!RemoveTree(path("tree")).ok()) return 14;
    return 0;
  });
  if (rc == -1) GTEST_SKIP() << "cannot create a mount namespace (EPERM)";
  EXPECT_EQ(rc, 0) << "failed at step " << rc;
  EXPECT_TRUE(*PathExists(Path("bound-source/keep")));
  EXPECT_FALSE(*PathExists(Path("tree")));
}

TEST_F(FsTest, PathExists) {
  EXPECT_FALSE(*PathExists(Path("missing")));
  EXPECT_FALSE(*PathExists(Path("missing/deeper")));
  Touch(Path("f"));
  EXPECT_TRUE(*PathExists(Path("f")));
  EXPECT_FALSE(*PathExists(Path("f/under-a-file")));
  ASSERT_EQ(::symlink("/nonexistent", Path("dangling").c_str()), 0);
  EXPECT_TRUE(*PathExists(Path("dangling")));
}

TEST_F(FsTest, Symlink) {
  ASSERT_TRUE(Symlink("/etc/one", Path("l")).ok());
  EXPECT_EQ(std::filesystem::read_symlink(Path("l")), "/etc/one");
  ASSERT_TRUE(Symlink("/etc/one", Path("l")).ok());
  ASSERT_TRUE(Symlink("relative/two", Path("l")).ok());
  EXPECT_EQ(std::filesystem::read_symlink(Path("l")), "relative/two");
  Touch(Path("file"), "data");
  EXPECT_EQ(Symlink("/etc/one", Path("file")).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*ReadFile(Path("file")), "data");
  EXPECT_EQ(Entries(dir_), (std::vector<std::string>{"file", "l"}));
}

}  // namespace
}  // namespace dspool
