#include "os/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/testing/cannot_run.h"
#include "base/testing/temp_dir.h"

namespace dspool {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(tmp_.path().empty()); }

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

  TempDir tmp_{"dspool-fs-test"};  // removed without following the tests' symlinks
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
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "secret", "s3cret", 0600).ok());
  ::umask(077);
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "public", "hello", 0644).ok());
  ::umask(old);

  EXPECT_EQ(Lstat(tmp_ / "secret").st_mode & 07777, 0600u);
  EXPECT_EQ(Lstat(tmp_ / "public").st_mode & 07777, 0644u);
  EXPECT_EQ(*ReadFile(tmp_ / "secret"), "s3cret");
  EXPECT_EQ(*ReadFile(tmp_ / "public"), "hello");
  EXPECT_EQ(Entries(tmp_.path()), (std::vector<std::string>{"public", "secret"})) << "a temporary file was left";
}

TEST_F(FsTest, WriteFileAtomicReplacesAndNarrowsTheMode) {
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "f", "old content, longer", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "f", "new", 0600).ok());
  EXPECT_EQ(*ReadFile(tmp_ / "f"), "new");
  EXPECT_EQ(Lstat(tmp_ / "f").st_mode & 07777, 0600u);
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "empty", "", 0640).ok());
  EXPECT_EQ(*ReadFile(tmp_ / "empty"), "");
  EXPECT_EQ(Entries(tmp_.path()), (std::vector<std::string>{"empty", "f"}));
}

TEST_F(FsTest, WriteFileAtomicSetsTheOwner) {
  if (::geteuid() != 0) DSP_CANNOT_RUN_HERE("chown needs root");
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "owned", "x", 0640, FileOwner{12345, 23456}).ok());
  struct stat st = Lstat(tmp_ / "owned");
  EXPECT_EQ(st.st_uid, 12345u);
  EXPECT_EQ(st.st_gid, 23456u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(FsTest, WriteFileAtomicReplacesASymlinkNotItsTarget) {
  Touch(tmp_ / "target", "keep me");
  ASSERT_EQ(::symlink((tmp_ / "target").c_str(), (tmp_ / "link").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "link", "new", 0600).ok());
  EXPECT_TRUE(S_ISREG(Lstat(tmp_ / "link").st_mode));
  EXPECT_EQ(*ReadFile(tmp_ / "target"), "keep me");
}

TEST_F(FsTest, FailedWriteLeavesNoTemporaryFile) {
  ASSERT_EQ(::mkdir((tmp_ / "a-directory").c_str(), 0755), 0);
  Status s = WriteFileAtomic(tmp_ / "a-directory", "x", 0600);  // rename onto a directory fails
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(Entries(tmp_.path()), (std::vector<std::string>{"a-directory"}));
  EXPECT_EQ(WriteFileAtomic(tmp_ / "missing/f", "x", 0600).code(), StatusCode::kNotFound);
  EXPECT_EQ(WriteFileAtomic(tmp_ / "..", "x", 0600).code(), StatusCode::kInvalidArgument);
}

TEST_F(FsTest, ReadFileErrors) {
  EXPECT_EQ(ReadFile(tmp_ / "missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadFile(tmp_.path()).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FsTest, ReadPrivateFileWantsTheOwnersFileAlone) {
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "key", "secret", 0600).ok());
  auto key = ReadPrivateFile(tmp_ / "key", ::geteuid());
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "secret");

  ASSERT_EQ(::chmod((tmp_ / "key").c_str(), 0640), 0);
  EXPECT_EQ(ReadPrivateFile(tmp_ / "key", ::geteuid()).status().message(),
            tmp_ / "key" + " must not be readable or writable by group or others (chmod 600 " + tmp_ / "key" + ")");
  ASSERT_EQ(::chmod((tmp_ / "key").c_str(), 0600), 0);
  auto stranger = ReadPrivateFile(tmp_ / "key", ::geteuid() + 1);
  EXPECT_EQ(stranger.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(stranger.status().message().find("belongs to uid " + std::to_string(::geteuid())), std::string::npos);

  ASSERT_EQ(::symlink((tmp_ / "key").c_str(), (tmp_ / "link").c_str()), 0);
  EXPECT_EQ(ReadPrivateFile(tmp_ / "link", ::geteuid()).status().message(),
            tmp_ / "link" + " is a symlink; give the file itself");
  ASSERT_EQ(::mkfifo((tmp_ / "fifo").c_str(), 0600), 0);
  EXPECT_EQ(ReadPrivateFile(tmp_ / "fifo", ::geteuid()).status().message(),
            tmp_ / "fifo" + " is a FIFO, not a regular file");
  EXPECT_EQ(ReadPrivateFile(tmp_ / "missing", ::geteuid()).status().code(), StatusCode::kNotFound);
}

TEST_F(FsTest, MakeDirs) {
  mode_t old = ::umask(077);
  ASSERT_TRUE(MakeDirs(tmp_ / "a/b/c/", 0755).ok());
  ::umask(old);
  EXPECT_TRUE(S_ISDIR(Lstat(tmp_ / "a/b/c").st_mode));
  EXPECT_EQ(Lstat(tmp_ / "a/b").st_mode & 07777, 0755u);
  EXPECT_TRUE(MakeDirs(tmp_ / "a/b/c", 0700).ok()) << "existing directories are fine";
  EXPECT_EQ(Lstat(tmp_ / "a/b/c").st_mode & 07777, 0755u) << "and are left alone";
  Touch(tmp_ / "a/file");
  EXPECT_EQ(MakeDirs(tmp_ / "a/file/d", 0755).code(), StatusCode::kFailedPrecondition);
}

TEST_F(FsTest, EnsureDirCreatesAndFixes) {
  FileOwner me{::geteuid(), ::getegid()};
  ASSERT_TRUE(EnsureDir(tmp_ / "home", 0750, me).ok());
  EXPECT_EQ(Lstat(tmp_ / "home").st_mode & 07777, 0750u);
  ASSERT_EQ(::chmod((tmp_ / "home").c_str(), 0777), 0);
  ASSERT_TRUE(EnsureDir(tmp_ / "home", 0700, me).ok());
  EXPECT_EQ(Lstat(tmp_ / "home").st_mode & 07777, 0700u);
  if (::geteuid() == 0) {
    ASSERT_TRUE(EnsureDir(tmp_ / "home", 02770, FileOwner{20001, 20001}).ok());
    struct stat st = Lstat(tmp_ / "home");
    EXPECT_EQ(st.st_uid, 20001u);
    EXPECT_EQ(st.st_gid, 20001u);
    EXPECT_EQ(st.st_mode & 07777, 02770u);
  }
  EXPECT_EQ(EnsureDir(tmp_ / "missing/x", 0700, me).code(), StatusCode::kNotFound);
}

TEST_F(FsTest, EnsureDirRefusesSymlinksAndFiles) {
  FileOwner me{::geteuid(), ::getegid()};
  ASSERT_EQ(::mkdir((tmp_ / "real").c_str(), 0755), 0);
  ASSERT_EQ(::symlink((tmp_ / "real").c_str(), (tmp_ / "link").c_str()), 0);
  Status s = EnsureDir(tmp_ / "link", 0700, me);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("symlink"), std::string::npos) << s;
  EXPECT_EQ(Lstat(tmp_ / "real").st_mode & 07777, 0755u) << "the symlink's target was changed";
  EXPECT_EQ(EnsureDir(tmp_ / "link/", 0700, me).code(), StatusCode::kFailedPrecondition);
  Touch(tmp_ / "file");
  EXPECT_EQ(EnsureDir(tmp_ / "file", 0700, me).code(), StatusCode::kFailedPrecondition);
}

TEST_F(FsTest, RenameNeverReplaces) {
  ASSERT_TRUE(MakeDirs(tmp_ / "from/inside", 0755).ok());
  ASSERT_TRUE(MakeDirs(tmp_ / "taken", 0755).ok());
  Status s = RenameNoReplace(tmp_ / "from", tmp_ / "taken");
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s;
  EXPECT_TRUE(*PathExists(tmp_ / "from/inside")) << "nothing moved";
  EXPECT_EQ(RenameNoReplace(tmp_ / "missing", tmp_ / "x").code(), StatusCode::kNotFound);
  ASSERT_TRUE(RenameNoReplace(tmp_ / "from", tmp_ / "moved").ok());
  EXPECT_TRUE(*PathExists(tmp_ / "moved/inside"));
  EXPECT_FALSE(*PathExists(tmp_ / "from"));
}

TEST_F(FsTest, RemoveTreeRemovesEverything) {
  ASSERT_TRUE(MakeDirs(tmp_ / "tree/a/b/c", 0755).ok());
  Touch(tmp_ / "tree/a/f1");
  Touch(tmp_ / "tree/a/b/c/f2");
  ASSERT_EQ(::mkfifo((tmp_ / "tree/fifo").c_str(), 0600), 0);
  ASSERT_EQ(::symlink("/nonexistent", (tmp_ / "tree/a/dangling").c_str()), 0);
  ASSERT_TRUE(RemoveTree(tmp_ / "tree").ok());
  EXPECT_FALSE(*PathExists(tmp_ / "tree"));
  EXPECT_TRUE(RemoveTree(tmp_ / "tree").ok()) << "absent is OK";
  Touch(tmp_ / "plain");
  EXPECT_TRUE(RemoveTree(tmp_ / "plain").ok());
  EXPECT_FALSE(*PathExists(tmp_ / "plain"));
  EXPECT_EQ(RemoveTree("/").code(), StatusCode::kInvalidArgument);
}

// A chain far deeper than the descriptors the process may open (as an
// instance's root can build one in its channel directory): removed all the
// same, without running out of descriptors or stack.
TEST_F(FsTest, RemoveTreeRemovesATreeDeeperThanTheDescriptorLimit) {
  constexpr int kDepth = 3000;
  ASSERT_TRUE(MakeDirs(tmp_ / "deep", 0755).ok());
  {
    UniqueFd dir(::open((tmp_ / "deep").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dir.valid());
    for (int i = 0; i < kDepth; ++i) {
      ASSERT_EQ(::mkdirat(dir.get(), "d", 0755), 0) << "level " << i;
      if (i % 100 == 0) {
        int file = ::openat(dir.get(), "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_GE(file, 0);
        ::close(file);
      }
      UniqueFd next(::openat(dir.get(), "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      ASSERT_TRUE(next.valid()) << "level " << i;
      dir = std::move(next);
    }
  }
  rlimit before;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  rlimit tight = before;
  tight.rlim_cur = 256;  // well below the depth
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  Status removed = RemoveTree(tmp_ / "deep");
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &before), 0);
  ASSERT_TRUE(removed.ok()) << removed;
  EXPECT_FALSE(*PathExists(tmp_ / "deep"));
}

TEST_F(FsTest, ExistsBeneathNeverLooksThroughASymlink) {
  ASSERT_TRUE(MakeDirs(tmp_ / "home/notebooks", 0755).ok());
  ASSERT_TRUE(MakeDirs(tmp_ / "elsewhere/remote", 0755).ok());
  EXPECT_FALSE(*ExistsBeneath(tmp_ / "home", "notebooks/remote"));
  ASSERT_EQ(::symlink("/nonexistent", (tmp_ / "home/notebooks/remote").c_str()), 0);
  EXPECT_TRUE(*ExistsBeneath(tmp_ / "home", "notebooks/remote")) << "the last component may be a symlink";
  // ~/notebooks swapped for a link to a tree without "remote": seen as
  // something there, not followed (following it would say "missing").
  ASSERT_TRUE(RemoveTree(tmp_ / "home/notebooks").ok());
  ASSERT_TRUE(MakeDirs(tmp_ / "bare", 0755).ok());
  ASSERT_EQ(::symlink((tmp_ / "bare").c_str(), (tmp_ / "home/notebooks").c_str()), 0);
  EXPECT_TRUE(*ExistsBeneath(tmp_ / "home", "notebooks/remote"));
  EXPECT_FALSE(*ExistsBeneath(tmp_ / "home", "nothing/here"));
  EXPECT_FALSE(*ExistsBeneath(tmp_ / "no-such-dir", "x"));
  EXPECT_FALSE(ExistsBeneath(tmp_ / "home", "../elsewhere/remote").ok()) << "never outside the directory";
}

TEST_F(FsTest, SymlinkBeneathLinksOnlyInTheDirectoryItself) {
  ASSERT_TRUE(MakeDirs(tmp_ / "home/notebooks", 0755).ok());
  ASSERT_TRUE(MakeDirs(tmp_ / "elsewhere", 0755).ok());
  const FileOwner owner{::getuid(), ::getgid()};
  ASSERT_TRUE(SymlinkBeneath(tmp_ / "home", "notebooks", "remote", "/mnt/share/notebooks/u", owner).ok());
  char buf[64] = {};
  ASSERT_GT(::readlink((tmp_ / "home/notebooks/remote").c_str(), buf, sizeof buf - 1), 0);
  EXPECT_STREQ(buf, "/mnt/share/notebooks/u");
  Status again = SymlinkBeneath(tmp_ / "home", "notebooks", "remote", "/x", owner);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again;
  // ~/notebooks swapped for a link elsewhere: nothing is made there.
  ASSERT_TRUE(RemoveTree(tmp_ / "home/notebooks").ok());
  ASSERT_EQ(::symlink((tmp_ / "elsewhere").c_str(), (tmp_ / "home/notebooks").c_str()), 0);
  Status swapped = SymlinkBeneath(tmp_ / "home", "notebooks", "remote", "/x", owner);
  EXPECT_EQ(swapped.code(), StatusCode::kNotFound) << swapped;
  EXPECT_FALSE(*PathExists(tmp_ / "elsewhere/remote"));
  EXPECT_EQ(SymlinkBeneath(tmp_ / "home", "../elsewhere", "remote", "/x", owner).code(), StatusCode::kNotFound);
  EXPECT_FALSE(*PathExists(tmp_ / "elsewhere/remote"));
}

TEST_F(FsTest, RemoveTreeDoesNotFollowSymlinks) {
  ASSERT_TRUE(MakeDirs(tmp_ / "outside/sub", 0755).ok());
  Touch(tmp_ / "outside/precious");
  ASSERT_TRUE(MakeDirs(tmp_ / "tree/inner", 0755).ok());
  ASSERT_EQ(::symlink((tmp_ / "outside").c_str(), (tmp_ / "tree/inner/escape").c_str()), 0);
  ASSERT_EQ(::symlink((tmp_ / "outside/precious").c_str(), (tmp_ / "tree/file-link").c_str()), 0);
  ASSERT_TRUE(RemoveTree(tmp_ / "tree").ok());
  EXPECT_FALSE(*PathExists(tmp_ / "tree"));
  EXPECT_EQ(*ReadFile(tmp_ / "outside/precious"), "x");
  EXPECT_TRUE(*PathExists(tmp_ / "outside/sub"));

  // The path itself a symlink: only the link goes.
  ASSERT_EQ(::symlink((tmp_ / "outside").c_str(), (tmp_ / "top-link").c_str()), 0);
  ASSERT_TRUE(RemoveTree(tmp_ / "top-link").ok());
  EXPECT_FALSE(*PathExists(tmp_ / "top-link"));
  EXPECT_EQ(*ReadFile(tmp_ / "outside/precious"), "x");
}

TEST_F(FsTest, RemoveTreeDoesNotCrossMountPoints) {
  if (::geteuid() != 0) DSP_CANNOT_RUN_HERE("mounting needs root");
  const std::string d = tmp_.path();
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
  if (rc == -1) DSP_CANNOT_RUN_HERE("cannot create a mount namespace (EPERM)");
  EXPECT_EQ(rc, 0) << "failed at step " << rc;
  EXPECT_TRUE(*PathExists(tmp_ / "bound-source/keep"));
  EXPECT_FALSE(*PathExists(tmp_ / "tree"));
}

TEST_F(FsTest, PathExists) {
  EXPECT_FALSE(*PathExists(tmp_ / "missing"));
  EXPECT_FALSE(*PathExists(tmp_ / "missing/deeper"));
  Touch(tmp_ / "f");
  EXPECT_TRUE(*PathExists(tmp_ / "f"));
  EXPECT_FALSE(*PathExists(tmp_ / "f/under-a-file"));
  ASSERT_EQ(::symlink("/nonexistent", (tmp_ / "dangling").c_str()), 0);
  EXPECT_TRUE(*PathExists(tmp_ / "dangling"));
}

TEST_F(FsTest, Symlink) {
  ASSERT_TRUE(Symlink("/etc/one", tmp_ / "l").ok());
  EXPECT_EQ(std::filesystem::read_symlink(tmp_ / "l"), "/etc/one");
  ASSERT_TRUE(Symlink("/etc/one", tmp_ / "l").ok());
  ASSERT_TRUE(Symlink("relative/two", tmp_ / "l").ok());
  EXPECT_EQ(std::filesystem::read_symlink(tmp_ / "l"), "relative/two");
  Touch(tmp_ / "file", "data");
  EXPECT_EQ(Symlink("/etc/one", tmp_ / "file").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*ReadFile(tmp_ / "file"), "data");
  EXPECT_EQ(Entries(tmp_.path()), (std::vector<std::string>{"file", "l"}));
}

// A listening Unix socket at `path` (non-blocking: accept says EAGAIN when
// no connection came).
UniqueFd ListenAt(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << path;
  EXPECT_EQ(::listen(fd.get(), 4), 0);
  return fd;
}

// 0 if a connection to `path` succeeds, else the errno.
int ConnectTo(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 ? 0 : errno;
}

TEST_F(FsTest, OpenSocketNoFollowReachesTheSocketItOpened) {
  UniqueFd listener = ListenAt(tmp_ / "control.sock");
  auto fd = OpenSocketNoFollow(tmp_.path(), "control.sock", ::geteuid());
  ASSERT_TRUE(fd.ok()) << fd.status();
  // Swapped for a symlink to another socket after the open: the descriptor
  // still names the first one.
  ASSERT_EQ(::rename((tmp_ / "control.sock").c_str(), (tmp_ / "moved.sock").c_str()), 0);
  UniqueFd other = ListenAt(tmp_ / "other.sock");
  ASSERT_EQ(::symlink((tmp_ / "other.sock").c_str(), (tmp_ / "control.sock").c_str()), 0);
  ASSERT_EQ(ConnectTo(FdPath(fd->get())), 0);
  UniqueFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(accepted.valid()) << "the connection reached the socket that was opened";
  UniqueFd stray(::accept4(other.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_FALSE(stray.valid()) << "and not the symlink's target";
}

TEST_F(FsTest, OpenSocketNoFollowRefusesSymlinksFilesAndStrangers) {
  UniqueFd listener = ListenAt(tmp_ / "real.sock");
  ASSERT_EQ(::symlink((tmp_ / "real.sock").c_str(), (tmp_ / "link.sock").c_str()), 0);
  auto link = OpenSocketNoFollow(tmp_.path(), "link.sock", ::geteuid());
  EXPECT_EQ(link.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(link.status().message(), tmp_ / "link.sock" + " is a symlink, not a socket; refusing to connect");

  Touch(tmp_ / "file.sock");
  EXPECT_EQ(OpenSocketNoFollow(tmp_.path(), "file.sock", ::geteuid()).status().message(),
            tmp_ / "file.sock" + " is a regular file, not a socket; refusing to connect");

  auto stranger = OpenSocketNoFollow(tmp_.path(), "real.sock", ::geteuid() + 1);
  EXPECT_EQ(stranger.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(stranger.status().message().find("belongs to uid " + std::to_string(::geteuid())), std::string::npos)
      << stranger.status();

  EXPECT_EQ(OpenSocketNoFollow(tmp_.path(), "missing.sock", ::geteuid()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(OpenSocketNoFollow(tmp_.path(), "../real.sock", ::geteuid()).status().code(),
            StatusCode::kInvalidArgument);

  // The directory itself may not be a symlink either.
  ASSERT_EQ(::symlink(tmp_.path().c_str(), (tmp_ / "dirlink").c_str()), 0);
  auto via_link = OpenSocketNoFollow(tmp_ / "dirlink", "real.sock", ::geteuid());
  EXPECT_EQ(via_link.status().code(), StatusCode::kFailedPrecondition) << via_link.status();
}

}  // namespace
}  // namespace dspool
