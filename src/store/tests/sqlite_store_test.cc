#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <thread>

#include "base/testing/temp_dir.h"
#include "model/ipv4.h"
#include "store/testing/conformance.h"
#include "store/forwarding_store.h"

namespace dspool {
namespace {

// A SqliteStore whose file lives, and goes, with it.
class ScratchSqliteStore final : public ForwardingStore {
 public:
  static std::unique_ptr<StateStore> Make() {
    auto dir = std::make_unique<TempDir>("dspool-store");
    if (dir->path().empty()) {
      ADD_FAILURE() << "cannot make a temporary directory";
      return nullptr;
    }
    auto store = SqliteStore::Open(*dir / "state.db");
    if (!store.ok()) {
      ADD_FAILURE() << store.status();
      return nullptr;
    }
    return std::unique_ptr<StateStore>(new ScratchSqliteStore(std::move(dir), std::move(*store)));
  }

 private:
  ScratchSqliteStore(std::unique_ptr<TempDir> dir, std::unique_ptr<SqliteStore> store)
      : ForwardingStore(*store), dir_(std::move(dir)), store_(std::move(store)) {}

  std::unique_ptr<TempDir> dir_;  // outlives store_
  std::unique_ptr<SqliteStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, StateStoreConformance,
                         ::testing::Values(StateStoreFactory(&ScratchSqliteStore::Make)));

// ---------------------------------------------------------------- SQLite only

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

bool Exists(const std::string& path) { return std::filesystem::exists(path); }

// Permission bits, or -1 if `path` does not exist.
int Mode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

// Writes PRAGMA user_version where the file format keeps it: bytes 60-63 of
// the header, big-endian. REQUIRES: no connection open (no -wal file).
void SetUserVersion(const std::string& path, uint32_t version) {
  std::string bytes = ReadFile(path);
  ASSERT_GE(bytes.size(), 100u);
  ASSERT_EQ(bytes.compare(0, 16, std::string("SQLite format 3\0", 16)), 0);
  for (int i = 0; i < 4; ++i) bytes[60 + i] = static_cast<char>((version >> (8 * (3 - i))) & 0xff);
  WriteFile(path, bytes);
}

Pool SomePool(const std::string& name) {
  Pool p;
  p.spec.name = PoolName(name);
  p.spec.network.subnet = *ParseIpv4Subnet("10.232.0.0/24");
  p.spec.share.source = "/srv/share";
  p.spec.admin.name = "dsvmuser";
  p.spec.admin.password_hash = "$6$salt$hash";
  p.created_at = FromUnixMillis(1'700'000'000'123);
  p.updated_at = p.created_at;
  return p;
}

Event SomeEvent(const std::string& action) {
  return Event{.time = FromUnixMillis(1'700'000'000'456), .actor = "root", .action = action, .subject = "pool/a"};
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(tmp_.path().empty()); }
  std::unique_ptr<SqliteStore> OpenOk() {
    auto store = SqliteStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  TempDir tmp_{"dspool-store"};
  const std::string path_ = tmp_ / "state.db";
};

TEST_F(SqliteStoreTest, EverythingSurvivesCloseAndReopen) {
  User alice{.name = UserName("alice"),
             .uid = 2000,
             .ssh_keys = {"ssh-ed25519 AAAA alice"},
             .password_hash = "$6$s$h",
             .admin = true,
             .created_at = FromUnixMillis(1'700'000'000'789)};
  Instance inst{.id = InstanceId("a-0-x1"),
                .pool = PoolName("a"),
                .index = 0,
                .phase = InstancePhase::kReady,
                .address = "10.232.0.2",
                .created_at = FromUnixMillis(1),
                .phase_since = FromUnixMillis(2)};
  std::vector<Event> events;
  {
    auto store = OpenOk();
    ASSERT_NE(store, nullptr);
    ASSERT_EQ(store->Write(WriteBatch()
                               .Add(WriteBatch::CreatePool{SomePool("a")})
                               .Add(WriteBatch::PutInstance{inst})
                               .Add(WriteBatch::CreateUser{alice})
                               .Add(WriteBatch::PutMeta{"uid.next", "2001"})
                               .Add(WriteBatch::AppendEvent{SomeEvent("one")})
                               .Add(WriteBatch::AppendEvent{SomeEvent("two")})),
              Status::Ok());
    events = store->ListEvents(0, 100).value_or({});
    ASSERT_EQ(events.size(), 2u);
  }
  EXPECT_FALSE(Exists(path_ + "-wal")) << "the last close checkpoints and removes the WAL";

  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->GetPool(PoolName("a")).value_or({}), SomePool("a"));
  EXPECT_EQ(store->ListInstances(std::nullopt).value_or({}), std::vector<Instance>{inst});
  EXPECT_EQ(store->ListUsers().value_or({}), std::vector<User>{alice});
  EXPECT_EQ(store->GetMeta("uid.next").value_or("?"), "2001");
  EXPECT_EQ(store->ListEvents(0, 100).value_or({}), events);

  // Seqs continue after the old ones.
  ASSERT_EQ(store->Write(WriteBatch().Add(WriteBatch::AppendEvent{SomeEvent("three")})), Status::Ok());
  auto tail = store->TailEvents(1);
  ASSERT_TRUE(tail.ok()) << tail.status();
  ASSERT_EQ(tail->size(), 1u);
  EXPECT_EQ((*tail)[0].action, "three");
  EXPECT_GT((*tail)[0].seq, events.back().seq);
}

class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

TEST_F(SqliteStoreTest, FilesAreOnlyReadableByTheOwnerWhateverTheUmask) {
  ScopedUmask umask(0);
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(store->Write(WriteBatch().Add(WriteBatch::PutMeta{"k", "v"})), Status::Ok());
  EXPECT_EQ(Mode(path_), 0600);
  ASSERT_TRUE(Exists(path_ + "-wal"));
  EXPECT_EQ(Mode(path_ + "-wal"), 0600);
  EXPECT_EQ(Mode(path_ + "-shm"), 0600);
}

TEST_F(SqliteStoreTest, NarrowsTheModeOfAnExistingFile) {
  OpenOk().reset();
  ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Mode(path_), 0600);
  EXPECT_EQ(Mode(path_ + "-wal"), 0600);
  EXPECT_EQ(Mode(path_ + "-shm"), 0600);
}

TEST_F(SqliteStoreTest, RefusesANewerSchemaVersionAndLeavesTheFileAlone) {
  OpenOk().reset();
  SetUserVersion(path_, SqliteStore::kSchemaVersion + 1);
  std::string bytes = ReadFile(path_);

  auto store = SqliteStore::Open(path_);
  ASSERT_FALSE(store.ok());
  const int v = SqliteStore::kSchemaVersion;
  EXPECT_EQ(store.status(), FailedPrecondition("state store '" + path_ + "' has schema version " + std::to_string(v + 1) +
                                               ", newer than this dspool's " + std::to_string(v) +
                                               "; run a newer dspool"));
  EXPECT_EQ(ReadFile(path_), bytes);
}

TEST_F(SqliteStoreTest, RefusesAnotherProgramsDatabase) {
  OpenOk().reset();
  SetUserVersion(path_, 0);  // tables, but no dspool version
  std::string bytes = ReadFile(path_);

  auto store = SqliteStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.status().message(), "state store '" + path_ +
                                          "' is an SQLite database of another program (it has tables but no dspool "
                                          "schema version); refusing to change it");
  EXPECT_EQ(ReadFile(path_), bytes);
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotSqliteNamingItAndLeavesItAlone) {
  for (const std::string& bytes : {std::string("name: team\ninstances: 2\n"), std::string(8192, '\x5a')}) {
    SCOPED_TRACE(bytes.size());
    WriteFile(path_, bytes);
    ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);

    auto store = SqliteStore::Open(path_);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status(),
              FailedPrecondition("state store '" + path_ + "' is not an SQLite database; refusing to open it"));
    EXPECT_EQ(ReadFile(path_), bytes);
    EXPECT_EQ(Mode(path_), 0644);
    EXPECT_FALSE(Exists(path_ + "-wal"));
    EXPECT_FALSE(Exists(path_ + "-shm"));
  }
}

TEST_F(SqliteStoreTest, AMissingDirectoryIsNotFoundNamingThePath) {
  std::string path = tmp_ / "no/such/dir/state.db";
  auto store = SqliteStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound);
  EXPECT_NE(store.status().message().find("'" + path + "'"), std::string::npos) << store.status();
}

TEST_F(SqliteStoreTest, RefusesAPoolItCouldNotReadBack) {
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  Pool pool = SomePool("a");
  pool.spec.admin.password_hash.clear();
  pool.spec.admin.password = "hunter2";  // never stored, so nothing would log in
  Status s = store->Write(
      WriteBatch().Add(WriteBatch::AppendEvent{SomeEvent("pool.create")}).Add(WriteBatch::CreatePool{pool}));
  EXPECT_EQ(s, InvalidArgument("pool 'a' cannot be stored: adminUser: needs sshPublicKey, password or passwordHash"));
  EXPECT_TRUE(store->ListPools().value_or({SomePool("x")}).empty());
  EXPECT_TRUE(store->TailEvents(10).value_or({SomeEvent("x")}).empty());
}

TEST_F(SqliteStoreTest, RefusesStringsThatAreNotUtf8) {
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  User bob{.name = UserName("bob"), .uid = 2000, .ssh_keys = {"ssh-ed25519 \xff\xfe"}};
  EXPECT_EQ(store->Write(WriteBatch().Add(WriteBatch::CreateUser{bob})),
            InvalidArgument("user 'bob' cannot be stored: a string is not valid UTF-8"));
  EXPECT_EQ(store->GetUser(UserName("bob")).status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, TwoStoresOnOneFileShareItAndWaitForEachOther) {
  auto a = OpenOk();
  auto b = OpenOk();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(a->Write(WriteBatch().Add(WriteBatch::CreatePool{SomePool("a")})), Status::Ok());
  EXPECT_EQ(b->GetPool(PoolName("a")).value_or({}), SomePool("a"));

  constexpr int kPerStore = 100;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (SqliteStore* s : {a.get(), b.get()}) {
    threads.emplace_back([s, &failures] {
      for (int i = 0; i < kPerStore; ++i) {
        if (!s->Write(WriteBatch().Add(WriteBatch::AppendEvent{SomeEvent("e")})).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto events = a->ListEvents(0, 1000);
  ASSERT_TRUE(events.ok()) << events.status();
  std::set<int64_t> seqs;
  for (const Event& e : *events) seqs.insert(e.seq);
  EXPECT_EQ(seqs.size(), size_t{2 * kPerStore});
  EXPECT_EQ(b->ListEvents(0, 1000).value_or({}), *events);
}

// A file of schema version 1 (pools, instances, users, meta, events: this
// build's schema without what versions 2 and 3 added) keeps its data and
// gains the deployments' and the storage accounts' tables.
TEST_F(SqliteStoreTest, UpgradesAVersion1File) {
  {
    auto store = OpenOk();
    ASSERT_NE(store, nullptr);
    ASSERT_EQ(store->Write(WriteBatch().Add(WriteBatch::CreatePool{SomePool("alpha")})), Status::Ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TABLE resource_groups; DROP TABLE deployments; DROP TABLE resources; "
                         "DROP TABLE storage_accounts; DROP TABLE file_shares; PRAGMA user_version=1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);

  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->GetPool(PoolName("alpha")).value_or({}), SomePool("alpha"));
  ResourceGroup g{"rg1", "local", {}, FromUnixMillis(1'700'000'000'000)};
  ASSERT_EQ(store->Write(WriteBatch().Add(WriteBatch::PutResourceGroup{g})), Status::Ok());
  EXPECT_EQ(store->GetResourceGroup("rg1").value_or({}), g);
  StorageAccount a;
  a.group = "rg1";
  a.name = "files";
  ASSERT_EQ(store->Write(WriteBatch().Add(WriteBatch::PutStorageAccount{a})), Status::Ok());
  EXPECT_EQ(store->GetStorageAccount("files").value_or({}), a);
  store.reset();

  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  int version = -1;
  sqlite3_exec(
      db, "PRAGMA user_version",
      [](void* out, int, char** values, char**) {
        *static_cast<int*>(out) = std::atoi(values[0]);
        return 0;
      },
      &version, nullptr);
  sqlite3_close(db);
  EXPECT_EQ(version, SqliteStore::kSchemaVersion);
}

}  // namespace
}  // namespace dspool
