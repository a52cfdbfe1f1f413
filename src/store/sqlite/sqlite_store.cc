#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <string_view>
#include <utility>

#include "base/overloaded.h"

namespace dspool {
namespace {

// Version 1. Pools, instances and users are JSON blobs (the model's storage
// form) plus the columns that are looked up, ordered or checked. Events are
// plain columns: they are read far more often than written, and the model
// has no storage decoder for them. No foreign keys between tables: an
// instance record outlives its pool's until reconcile has destroyed it, as in
// MemoryStore. See store/README.md.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE pools (
  name       TEXT PRIMARY KEY NOT NULL,
  generation INTEGER NOT NULL,
  body       TEXT NOT NULL
) STRICT;
CREATE TABLE instances (
  id   TEXT PRIMARY KEY NOT NULL,
  pool TEXT NOT NULL,
  idx  INTEGER NOT NULL,
  body TEXT NOT NULL
) STRICT;
CREATE INDEX instances_by_pool ON instances (pool, idx, id);
CREATE TABLE users (
  name TEXT PRIMARY KEY NOT NULL,
  uid  INTEGER NOT NULL,
  body TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_by_uid ON users (uid);
CREATE TABLE meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value BLOB NOT NULL
) STRICT;
CREATE TABLE events (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  subject TEXT NOT NULL,
  detail  TEXT NOT NULL
) STRICT;
)sql";

// Version 2: what template deployments keep. Keys are StoreKey forms (names
// and IDs without case, as on Azure); bodies keep the given case, in the
// model's storage form (ordered JSON: outputs keep their order).
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE resource_groups (
  key  TEXT PRIMARY KEY NOT NULL,
  body TEXT NOT NULL
) STRICT;
CREATE TABLE deployments (
  grp     TEXT NOT NULL,
  key     TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  body    TEXT NOT NULL,
  PRIMARY KEY (grp, key)
) STRICT;
CREATE INDEX deployments_by_time ON deployments (grp, time_ms, key);
CREATE TABLE resources (
  key  TEXT PRIMARY KEY NOT NULL,
  grp  TEXT NOT NULL,
  body TEXT NOT NULL
) STRICT;
CREATE INDEX resources_by_group ON resources (grp, key);
)sql";

// Version 3: storage accounts (keyed by StoreKey of the name) and their
// file shares (by account and StoreKey of ShareKey: deleted ones carry
// their version).
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE storage_accounts (
  key  TEXT PRIMARY KEY NOT NULL,
  grp  TEXT NOT NULL,
  body TEXT NOT NULL
) STRICT;
CREATE INDEX storage_accounts_by_group ON storage_accounts (grp, key);
CREATE TABLE file_shares (
  account TEXT NOT NULL,
  key     TEXT NOT NULL,
  body    TEXT NOT NULL,
  PRIMARY KEY (account, key)
) STRICT;
)sql";

// The statements that bring a file of version i to version i + 1.
constexpr const char* kMigrations[] = {kSchemaV1, kSchemaV2, kSchemaV3};
static_assert(std::size(kMigrations) == SqliteStore::kSchemaVersion);

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StatusCode::kUnavailable;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return StatusCode::kResourceExhausted;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return StatusCode::kPermissionDenied;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return StatusCode::kFailedPrecondition;
    default:
      return StatusCode::kInternal;
  }
}

// JSON text of a model value; the only exception dump() throws is for a
// string that is not UTF-8.
template <typename J>
Result<std::string> Dump(const J& json, const std::string& what) {
  try {
    return json.dump();
  } catch (const typename J::exception& e) {
    return InvalidArgument(what + " cannot be stored: " + (e.id == 316 ? "a string is not valid UTF-8" : e.what()));
  }
}

Result<std::string> EncodePool(const Pool& pool) {
  std::string what = "pool '" + pool.name().value() + "'";
  Json json = PoolToJson(pool);
  // PoolFromJson re-validates the spec; refuse now what could not be read.
  if (auto back = PoolFromJson(json); !back.ok()) {
    return InvalidArgument(what + " cannot be stored: " + back.status().message());
  }
  return Dump(json, what);
}

int64_t ClampLimit(size_t limit) {
  return static_cast<int64_t>(std::min<size_t>(limit, std::numeric_limits<int64_t>::max()));
}

// A connection's handle and the path it names in errors.
struct Db {
  sqlite3* handle = nullptr;
  std::string path;

  // "state store '<path>': <what>: <sqlite's message>", code mapped from rc.
  // Call right after the failing call: the message is the connection's last.
  Status Error(std::string_view what, int rc) const {
    const char* msg = handle != nullptr ? sqlite3_errmsg(handle) : sqlite3_errstr(rc);
    return Status(CodeFor(rc), "state store '" + path + "': " + std::string(what) + ": " + msg);
  }
  Status Exec(const char* sql, std::string_view what) const {
    int rc = sqlite3_exec(handle, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : Error(what, rc);
  }
  Status Prepare(const char* sql, StmtPtr* stmt, unsigned flags = 0) const {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(handle, sql, -1, flags, &raw, nullptr);
    stmt->reset(raw);
    return rc == SQLITE_OK ? Status::Ok() : Error(std::string("prepare \"") + sql + "\"", rc);
  }
};

// A prepared statement in use: binds in order, steps, and resets the
// statement when it goes out of scope so it can be used again.
class Query {
 public:
  Query(const Db& db, const StmtPtr& stmt, std::string_view what) : db_(db), stmt_(stmt.get()), what_(what) {}
  ~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& Bind(int64_t v) { return Check(sqlite3_bind_int64(stmt_, ++index_, v)); }
  Query& Bind(std::string_view text) {
    return Check(sqlite3_bind_text64(stmt_, ++index_, NonNull(text), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  Query& BindBlob(std::string_view bytes) {
    return Check(sqlite3_bind_blob64(stmt_, ++index_, NonNull(bytes), bytes.size(), SQLITE_TRANSIENT));
  }

  // True if a row is ready, false when done.
  Result<bool> Step() {
    if (!bind_status_.ok()) return bind_status_;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return db_.Error(what_, rc);
  }
  // Steps to the end, ignoring rows.
  Status Run() {
    while (true) {
      DSP_ASSIGN_OR_RETURN(bool row, Step());
      if (!row) return Status::Ok();
    }
  }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
  }

 private:
  // SQLite binds a null pointer as NULL, not as an empty value.
  static const char* NonNull(std::string_view s) { return s.data() != nullptr ? s.data() : ""; }
  Query& Check(int rc) {
    if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = db_.Error(what_, rc);
    return *this;
  }

  const Db& db_;
  sqlite3_stmt* stmt_;
  std::string_view what_;
  int index_ = 0;
  Status bind_status_;
};

Result<std::vector<Event>> ReadEvents(Query& q) {
  std::vector<Event> out;
  while (true) {
    DSP_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return out;
    out.push_back(Event{.seq = q.Int(0),
                        .time = FromUnixMillis(q.Int(1)),
                        .actor = q.Text(2),
                        .action = q.Text(3),
                        .subject = q.Text(4),
                        .detail = q.Text(5)});
  }
}

// Decodes a JSON body read from `table`; a bad one is Internal and names the
// row.
template <typename T, typename J>
Result<T> Decode(const Db& db, const std::string& body, Result<T> (*from_json)(const J&), const char* table,
                 const std::string& key) {
  J json = J::parse(body, nullptr, /*allow_exceptions=*/false);
  Result<T> value = json.is_discarded() ? Result<T>(InvalidArgument("not JSON")) : from_json(json);
  if (!value.ok()) {
    return Internal("state store '" + db.path + "': " + table + " row '" + key +
                    "' is unreadable: " + value.status().message());
  }
  return value;
}

// Fails unless the file is a dspool store of a version this build reads.
// `has_tables`: the file holds any table.
Status CheckVersion(const std::string& path, int64_t version, bool has_tables) {
  if (version > SqliteStore::kSchemaVersion) {
    return FailedPrecondition("state store '" + path + "' has schema version " + std::to_string(version) +
                              ", newer than this dspool's " + std::to_string(SqliteStore::kSchemaVersion) +
                              "; run a newer dspool");
  }
  if (version <= 0 && has_tables) {
    return FailedPrecondition("state store '" + path +
                              "' is an SQLite database of another program (it has tables but no dspool schema "
                              "version); refusing to change it");
  }
  return Status::Ok();
}

// The file's schema version, after CheckVersion.
Result<int64_t> ReadVersion(const Db& db) {
  StmtPtr v, t;
  Status s = db.Prepare("PRAGMA user_version", &v);
  if (s.ok()) s = db.Prepare("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'", &t);
  // The first read of the file is where SQLite finds it is not a database.
  if (!s.ok() && (sqlite3_errcode(db.handle) & 0xff) == SQLITE_NOTADB) {
    return FailedPrecondition("state store '" + db.path + "' is not an SQLite database; refusing to open it");
  }
  DSP_RETURN_IF_ERROR(s);
  Query vq(db, v, "read schema version");
  DSP_ASSIGN_OR_RETURN(bool row, vq.Step());
  int64_t version = row ? vq.Int(0) : 0;
  Query tq(db, t, "read schema");
  DSP_ASSIGN_OR_RETURN(row, tq.Step());
  DSP_RETURN_IF_ERROR(CheckVersion(db.path, version, row && tq.Int(0) > 0));
  return version;
}

// Brings a checked file to kSchemaVersion. Checks again under the write lock:
// another process may be doing the same.
Status CreateSchema(const Db& db) {
  DSP_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE", "begin schema transaction"));
  Result<int64_t> version = ReadVersion(db);
  Status s = version.status();
  if (s.ok() && *version < SqliteStore::kSchemaVersion) {
    for (int64_t v = *version; s.ok() && v < SqliteStore::kSchemaVersion; ++v) {
      s = db.Exec(kMigrations[v], v == 0 ? "create schema" : "upgrade schema to version " + std::to_string(v + 1));
    }
    if (s.ok()) {
      s = db.Exec(("PRAGMA user_version=" + std::to_string(SqliteStore::kSchemaVersion)).c_str(), "set schema version");
    }
  }
  if (s.ok()) s = db.Exec("COMMIT", "commit schema");
  if (!s.ok() && !sqlite3_get_autocommit(db.handle)) db.Exec("ROLLBACK", "rollback").IgnoreError();
  return s;
}

}  // namespace

// The sqlite3 handle and its prepared statements. Not thread-safe: used only
// under SqliteStore::mu_ (the handle is opened with SQLITE_OPEN_NOMUTEX).
class SqliteStore::Connection {
 public:
  struct Statements {
    StmtPtr begin, commit;
    StmtPtr get_pool, list_pools, pool_generation, insert_pool, update_pool, delete_pool;
    StmtPtr get_instance, list_instances, list_pool_instances, put_instance, delete_instance;
    StmtPtr get_user, list_users, user_uid, uid_taken, insert_user, update_user, delete_user;
    StmtPtr get_meta, put_meta;
    StmtPtr append_event, list_events, tail_events;
    StmtPtr get_group, list_groups, put_group, delete_group, group_resources, delete_group_deployments;
    StmtPtr get_deployment, list_deployments, put_deployment, delete_deployment, count_deployments,
        oldest_deployments;
    StmtPtr get_resource, list_resources, list_group_resources, put_resource, delete_resource;
    StmtPtr get_account, list_accounts, list_group_accounts, put_account, delete_account, group_accounts;
    StmtPtr get_share, list_shares, list_account_shares, put_share, delete_share;
  };

  static Result<std::unique_ptr<Connection>> Open(const std::string& path);
  ~Connection() {
    stmts_ = {};
    sqlite3_close_v2(db_.handle);
  }

  const Db& db() const { return db_; }
  const Statements& stmts() const { return stmts_; }
  int Changes() const { return sqlite3_changes(db_.handle); }
  // Ends the open transaction, if SQLite has not already ended it.
  void Rollback() const {
    if (!sqlite3_get_autocommit(db_.handle)) db_.Exec("ROLLBACK", "rollback").IgnoreError();
  }

 private:
  Connection() = default;
  Status Configure();
  Status PrepareAll();

  Db db_;
  Statements stmts_;
};

Result<std::unique_ptr<SqliteStore::Connection>> SqliteStore::Connection::Open(const std::string& path) {
  // Created here rather than by SQLite so that it never exists with a wider
  // mode, whatever the umask.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    int rc = ::fchmod(fd, 0600);
    int err = errno;
    ::close(fd);
    if (rc != 0) return ErrnoStatus("state store '" + path + "': chmod 0600", err);
  } else if (errno != EEXIST) {
    return ErrnoStatus("cannot create state store '" + path + "'", errno);
  }

  std::unique_ptr<Connection> conn(new Connection());
  conn->db_.path = path;
  int rc = sqlite3_open_v2(path.c_str(), &conn->db_.handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return conn->db_.Error("open", rc);
  sqlite3_extended_result_codes(conn->db_.handle, 1);
  sqlite3_busy_timeout(conn->db_.handle, static_cast<int>(kBusyTimeout.count()));
  // Checked before the first write, so a foreign file is left as it was.
  DSP_RETURN_IF_ERROR(ReadVersion(conn->db_).status());
  DSP_RETURN_IF_ERROR(conn->Configure());
  DSP_RETURN_IF_ERROR(CreateSchema(conn->db_));
  DSP_RETURN_IF_ERROR(conn->PrepareAll());

  // An existing file (an older build, a restored backup) may be readable by
  // others, and it holds password hashes. SQLite gave -wal and -shm the
  // file's mode, so narrow them too.
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string p = path + suffix;
    struct stat st;
    if (::stat(p.c_str(), &st) == 0 && (st.st_mode & 077) != 0 && ::chmod(p.c_str(), 0600) != 0) {
      return ErrnoStatus("state store '" + path + "': chmod 0600 " + p, errno);
    }
  }
  return conn;
}

Status SqliteStore::Connection::Configure() {
  // WAL: readers do not block the writer. synchronous=FULL: a commit is
  // fsynced before Write returns, so an acknowledged change survives a power
  // loss too (with WAL, NORMAL survives only a process crash). Writes are few
  // (API calls, phase changes), and what they record is acted on outside the
  // store at once (a uid comes to own files on the share, a container is
  // created), so forgetting one after a power loss costs more than the fsync.
  StmtPtr wal;
  DSP_RETURN_IF_ERROR(db_.Prepare("PRAGMA journal_mode=WAL", &wal));
  {
    Query q(db_, wal, "set journal mode");
    DSP_ASSIGN_OR_RETURN(bool row, q.Step());
    std::string mode = row ? q.Text(0) : "";
    if (mode != "wal") {
      return FailedPrecondition("state store '" + db_.path + "': cannot use the WAL journal (got '" + mode +
                                "'); is it on a network file system?");
    }
  }
  return db_.Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", "set pragmas");
}

Status SqliteStore::Connection::PrepareAll() {
  Statements& s = stmts_;
  const std::pair<StmtPtr*, const char*> kSql[] = {
      {&s.begin, "BEGIN IMMEDIATE"},
      {&s.commit, "COMMIT"},
      {&s.get_pool, "SELECT name, body FROM pools WHERE name = ?"},
      {&s.list_pools, "SELECT name, body FROM pools ORDER BY name"},
      {&s.pool_generation, "SELECT generation FROM pools WHERE name = ?"},
      {&s.insert_pool, "INSERT INTO pools (name, generation, body) VALUES (?, ?, ?)"},
      {&s.update_pool, "UPDATE pools SET generation = ?, body = ? WHERE name = ?"},
      {&s.delete_pool, "DELETE FROM pools WHERE name = ?"},
      {&s.get_instance, "SELECT id, body FROM instances WHERE id = ?"},
      {&s.list_instances, "SELECT id, body FROM instances ORDER BY pool, idx, id"},
      {&s.list_pool_instances, "SELECT id, body FROM instances WHERE pool = ? ORDER BY idx, id"},
      {&s.put_instance,
       "INSERT INTO instances (id, pool, idx, body) VALUES (?, ?, ?, ?) "
       "ON CONFLICT (id) DO UPDATE SET pool = excluded.pool, idx = excluded.idx, body = excluded.body"},
      {&s.delete_instance, "DELETE FROM instances WHERE id = ?"},
      {&s.get_user, "SELECT name, body FROM users WHERE name = ?"},
      {&s.list_users, "SELECT name, body FROM users ORDER BY uid"},
      {&s.user_uid, "SELECT uid FROM users WHERE name = ?"},
      {&s.uid_taken, "SELECT 1 FROM users WHERE uid = ?"},
      {&s.insert_user, "INSERT INTO users (name, uid, body) VALUES (?, ?, ?)"},
      {&s.update_user, "UPDATE users SET body = ? WHERE name = ?"},
      {&s.delete_user, "DELETE FROM users WHERE name = ?"},
      {&s.get_meta, "SELECT value FROM meta WHERE key = ?"},
      {&s.put_meta,
       "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"},
      {&s.append_event, "INSERT INTO events (time_ms, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)"},
      {&s.list_events,
       "SELECT seq, time_ms, actor, action, subject, detail FROM events WHERE seq > ? ORDER BY seq LIMIT ?"},
      {&s.tail_events,
       "SELECT * FROM (SELECT seq, time_ms, actor, action, subject, detail FROM events ORDER BY seq DESC LIMIT ?) "
       "ORDER BY seq"},
      {&s.get_group, "SELECT key, body FROM resource_groups WHERE key = ?"},
      {&s.list_groups, "SELECT key, body FROM resource_groups ORDER BY key"},
      {&s.put_group,
       "INSERT INTO resource_groups (key, body) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET body = excluded.body"},
      {&s.delete_group, "DELETE FROM resource_groups WHERE key = ?"},
      {&s.group_resources, "SELECT count(*) FROM resources WHERE grp = ?"},
      {&s.delete_group_deployments, "DELETE FROM deployments WHERE grp = ?"},
      {&s.get_deployment, "SELECT key, body FROM deployments WHERE grp = ? AND key = ?"},
      {&s.list_deployments, "SELECT key, body FROM deployments WHERE grp = ? ORDER BY time_ms, key"},
      {&s.put_deployment,
       "INSERT INTO deployments (grp, key, time_ms, body) VALUES (?, ?, ?, ?) "
       "ON CONFLICT (grp, key) DO UPDATE SET time_ms = excluded.time_ms, body = excluded.body"},
      {&s.delete_deployment, "DELETE FROM deployments WHERE grp = ? AND key = ?"},
      {&s.count_deployments, "SELECT count(*) FROM deployments WHERE grp = ?"},
      {&s.oldest_deployments,
       "DELETE FROM deployments WHERE grp = ?1 AND key IN (SELECT key FROM deployments WHERE grp = ?1 AND key <> ?2 "
       "ORDER BY time_ms, key LIMIT ?3)"},
      {&s.get_resource, "SELECT key, body FROM resources WHERE key = ?"},
      {&s.list_resources, "SELECT key, body FROM resources ORDER BY key"},
      {&s.list_group_resources, "SELECT key, body FROM resources WHERE grp = ? ORDER BY key"},
      {&s.put_resource,
       "INSERT INTO resources (key, grp, body) VALUES (?, ?, ?) "
       "ON CONFLICT (key) DO UPDATE SET grp = excluded.grp, body = excluded.body"},
      {&s.delete_resource, "DELETE FROM resources WHERE key = ?"},
      {&s.get_account, "SELECT key, body FROM storage_accounts WHERE key = ?"},
      {&s.list_accounts, "SELECT key, body FROM storage_accounts ORDER BY key"},
      {&s.list_group_accounts, "SELECT key, body FROM storage_accounts WHERE grp = ? ORDER BY key"},
      {&s.put_account,
       "INSERT INTO storage_accounts (key, grp, body) VALUES (?, ?, ?) "
       "ON CONFLICT (key) DO UPDATE SET grp = excluded.grp, body = excluded.body"},
      {&s.delete_account, "DELETE FROM storage_accounts WHERE key = ?"},
      {&s.group_accounts, "SELECT count(*) FROM storage_accounts WHERE grp = ?"},
      {&s.get_share, "SELECT key, body FROM file_shares WHERE account = ? AND key = ?"},
      {&s.list_shares, "SELECT key, body FROM file_shares ORDER BY account, key"},
      {&s.list_account_shares, "SELECT key, body FROM file_shares WHERE account = ? ORDER BY key"},
      {&s.put_share,
       "INSERT INTO file_shares (account, key, body) VALUES (?, ?, ?) "
       "ON CONFLICT (account, key) DO UPDATE SET body = excluded.body"},
      {&s.delete_share, "DELETE FROM file_shares WHERE account = ? AND key = ?"},
  };
  for (const auto& [stmt, sql] : kSql) DSP_RETURN_IF_ERROR(db_.Prepare(sql, stmt, SQLITE_PREPARE_PERSISTENT));
  return Status::Ok();
}

SqliteStore::SqliteStore(std::unique_ptr<Connection> conn) : conn_(std::move(conn)) {}

SqliteStore::~SqliteStore() = default;

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  DSP_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(path));
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(conn)));
}

Result<Pool> SqliteStore::GetPool(const PoolName& name) {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().get_pool, "get pool");
  DSP_ASSIGN_OR_RETURN(bool row, q.Bind(name.value()).Step());
  if (!row) return NotFound("pool '" + name.value() + "' does not exist");
  return Decode(conn_->db(), q.Text(1), &PoolFromJson, "pools", q.Text(0));
}

Result<std::vector<Pool>> SqliteStore::ListPools() {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().list_pools, "list pools");
  std::vector<Pool> out;
  while (true) {
    DSP_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return out;
    DSP_ASSIGN_OR_RETURN(Pool p, Decode(conn_->db(), q.Text(1), &PoolFromJson, "pools", q.Text(0)));
    out.push_back(std::move(p));
  }
}

Result<Instance> SqliteStore::GetInstance(const InstanceId& id) {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().get_instance, "get instance");
  DSP_ASSIGN_OR_RETURN(bool row, q.Bind(id.value()).Step());
  if (!row) return NotFound("instance '" + id.value() + "' does not exist");
  return Decode(conn_->db(), q.Text(1), &InstanceFromJson, "instances", q.Text(0));
}

Result<std::vector<Instance>> SqliteStore::ListInstances(const std::optional<PoolName>& pool) {
  std::lock_guard lock(mu_);
  const Connection::Statements& st = conn_->stmts();
  Query q(conn_->db(), pool ? st.list_pool_instances : st.list_instances, "list instances");
  if (pool) q.Bind(pool->value());
  std::vector<Instance> out;
  while (true) {
    DSP_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return out;
    DSP_ASSIGN_OR_RETURN(Instance i, Decode(conn_->db(), q.Text(1), &InstanceFromJson, "instances", q.Text(0)));
    out.push_back(std::move(i));
  }
}

Result<User> SqliteStore::GetUser(const UserName& name) {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().get_user, "get user");
  DSP_ASSIGN_OR_RETURN(bool row, q.Bind(name.value()).Step());
  if (!row) return NotFound("user '" + name.value() + "' does not exist");
  return Decode(conn_->db(), q.Text(1), &UserFromJson, "users", q.Text(0));
}

Result<std::vector<User>> SqliteStore::ListUsers() {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().list_users, "list users");
  std::vector<User> out;
  while (true) {
    DSP_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return out;
    DSP_ASSIGN_OR_RETURN(User u, Decode(conn_->db(), q.Text(1), &UserFromJson, "users", q.Text(0)));
    out.push_back(std::move(u));
  }
}

Result<std::vector<Event>> SqliteStore::ListEvents(int64_t after_seq, size_t limit) {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().list_events, "list events");
  q.Bind(after_seq).Bind(ClampLimit(limit));
  return ReadEvents(q);
}

Result<std::vector<Event>> SqliteStore::TailEvents(size_t limit) {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().tail_events, "tail events");
  q.Bind(ClampLimit(limit));
  return ReadEvents(q);
}

Result<std::string> SqliteStore::GetMeta(const std::string& key) {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().get_meta, "get meta");
  DSP_ASSIGN_OR_RETURN(bool row, q.Bind(key).Step());
  if (!row) return NotFound("meta key '" + key + "' does not exist");
  return q.Text(0);
}

namespace {

// Every row of `q` (columns: key, body) decoded with `from_json`.
template <typename T, typename J>
Result<std::vector<T>> ReadAll(const Db& db, Query& q, Result<T> (*from_json)(const J&), const char* table) {
  std::vector<T> out;
  while (true) {
    DSP_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return out;
    DSP_ASSIGN_OR_RETURN(T value, Decode(db, q.Text(1), from_json, table, q.Text(0)));
    out.push_back(std::move(value));
  }
}

}  // namespace

Result<ResourceGroup> SqliteStore::GetResourceGroup(const std::string& name) {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().get_group, "get resource group");
  DSP_ASSIGN_OR_RETURN(bool row, q.Bind(StoreKey(name)).Step());
  if (!row) return NotFound("resource group '" + name + "' does not exist");
  return Decode(conn_->db(), q.Text(1), &ResourceGroupFromJson, "resource_groups", q.Text(0));
}

Result<std::vector<ResourceGroup>> SqliteStore::ListResourceGroups() {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().list_groups, "list resource groups");
  return ReadAll(conn_->db(), q, &ResourceGroupFromJson, "resource_groups");
}

Result<Deployment> SqliteStore::GetDeployment(const std::string& group, const std::string& name) {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().get_deployment, "get deployment");
  DSP_ASSIGN_OR_RETURN(bool row, q.Bind(StoreKey(group)).Bind(StoreKey(name)).Step());
  if (!row) return NotFound("deployment '" + name + "' does not exist in resource group '" + group + "'");
  return Decode(conn_->db(), q.Text(1), &DeploymentFromJson, "deployments", q.Text(0));
}

Result<std::vector<Deployment>> SqliteStore::ListDeployments(const std::string& group) {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().list_deployments, "list deployments");
  q.Bind(StoreKey(group));
  return ReadAll(conn_->db(), q, &DeploymentFromJson, "deployments");
}

Result<ArmResource> SqliteStore::GetResource(const std::string& id) {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().get_resource, "get resource");
  DSP_ASSIGN_OR_RETURN(bool row, q.Bind(StoreKey(id)).Step());
  if (!row) return NotFound("resource '" + id + "' does not exist");
  return Decode(conn_->db(), q.Text(1), &ArmResourceFromJson, "resources", q.Text(0));
}

Result<std::vector<ArmResource>> SqliteStore::ListResources(const std::optional<std::string>& group) {
  std::lock_guard lock(mu_);
  const Connection::Statements& st = conn_->stmts();
  Query q(conn_->db(), group ? st.list_group_resources : st.list_resources, "list resources");
  if (group) q.Bind(StoreKey(*group));
  return ReadAll(conn_->db(), q, &ArmResourceFromJson, "resources");
}

Result<StorageAccount> SqliteStore::GetStorageAccount(const std::string& name) {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().get_account, "get storage account");
  DSP_ASSIGN_OR_RETURN(bool row, q.Bind(StoreKey(name)).Step());
  if (!row) return NotFound("storage account '" + name + "' does not exist");
  return Decode(conn_->db(), q.Text(1), &StorageAccountFromJson, "storage_accounts", q.Text(0));
}

Result<std::vector<StorageAccount>> SqliteStore::ListStorageAccounts(const std::optional<std::string>& group) {
  std::lock_guard lock(mu_);
  const Connection::Statements& st = conn_->stmts();
  Query q(conn_->db(), group ? st.list_group_accounts : st.list_accounts, "list storage accounts");
  if (group) q.Bind(StoreKey(*group));
  return ReadAll(conn_->db(), q, &StorageAccountFromJson, "storage_accounts");
}

Result<FileShare> SqliteStore::GetShare(const std::string& account, const std::string& key) {
  std::lock_guard lock(mu_);
  Query q(conn_->db(), conn_->stmts().get_share, "get share");
  DSP_ASSIGN_OR_RETURN(bool row, q.Bind(StoreKey(account)).Bind(StoreKey(key)).Step());
  if (!row) return NotFound("share '" + key + "' does not exist in storage account '" + account + "'");
  return Decode(conn_->db(), q.Text(1), &FileShareFromJson, "file_shares", q.Text(0));
}

Result<std::vector<FileShare>> SqliteStore::ListShares(const std::optional<std::string>& account) {
  std::lock_guard lock(mu_);
  const Connection::Statements& st = conn_->stmts();
  Query q(conn_->db(), account ? st.list_account_shares : st.list_shares, "list shares");
  if (account) q.Bind(StoreKey(*account));
  return ReadAll(conn_->db(), q, &FileShareFromJson, "file_shares");
}

Status SqliteStore::Write(const WriteBatch& batch) {
  if (batch.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  DSP_RETURN_IF_ERROR(Query(conn_->db(), conn_->stmts().begin, "begin transaction").Run());
  Status s;
  for (const auto& op : batch.ops()) {
    s = Apply(op);
    if (!s.ok()) break;
  }
  if (s.ok()) s = Query(conn_->db(), conn_->stmts().commit, "commit").Run();
  if (!s.ok()) conn_->Rollback();
  return s;
}

// REQUIRES: mu_ held, inside Write's transaction. Checks each precondition
// in MemoryStore's order, so both report the same error.
Status SqliteStore::Apply(const WriteBatch::Op& op) {
  const Db& db = conn_->db();
  const Connection::Statements& st = conn_->stmts();
  auto put_instance = [&](const Instance& i) -> Status {
    DSP_ASSIGN_OR_RETURN(std::string body, Dump(InstanceToJson(i), "instance '" + i.id.value() + "'"));
    return Query(db, st.put_instance, "put instance")
        .Bind(i.id.value())
        .Bind(i.pool.value())
        .Bind(i.index)
        .Bind(body)
        .Run();
  };
  auto group_exists = [&](const std::string& group, const char* what) -> Status {
    Query q(db, st.get_group, what);
    DSP_ASSIGN_OR_RETURN(bool exists, q.Bind(StoreKey(group)).Step());
    return exists ? Status::Ok() : NotFound("resource group '" + group + "' does not exist");
  };
  return std::visit(
      Overloaded{
          [&](const WriteBatch::CreatePool& o) -> Status {
            const std::string& name = o.pool.name().value();
            {
              Query q(db, st.pool_generation, "create pool");
              DSP_ASSIGN_OR_RETURN(bool exists, q.Bind(name).Step());
              if (exists) return AlreadyExists("pool '" + name + "' already exists");
            }
            DSP_ASSIGN_OR_RETURN(std::string body, EncodePool(o.pool));
            return Query(db, st.insert_pool, "create pool").Bind(name).Bind(o.pool.generation).Bind(body).Run();
          },
          [&](const WriteBatch::UpdatePool& o) -> Status {
            const std::string& name = o.pool.name().value();
            {
              Query q(db, st.pool_generation, "update pool");
              DSP_ASSIGN_OR_RETURN(bool exists, q.Bind(name).Step());
              if (!exists) return NotFound("pool '" + name + "' does not exist");
              if (q.Int(0) != o.expected_generation) {
                return Aborted("pool '" + name + "' was changed concurrently; retry");
              }
            }
            DSP_ASSIGN_OR_RETURN(std::string body, EncodePool(o.pool));
            return Query(db, st.update_pool, "update pool").Bind(o.pool.generation).Bind(body).Bind(name).Run();
          },
          [&](const WriteBatch::DeletePool& o) -> Status {
            DSP_RETURN_IF_ERROR(Query(db, st.delete_pool, "delete pool").Bind(o.name.value()).Run());
            if (conn_->Changes() == 0) return NotFound("pool '" + o.name.value() + "' does not exist");
            return Status::Ok();
          },
          [&](const WriteBatch::PutInstance& o) -> Status { return put_instance(o.instance); },
          [&](const WriteBatch::UpdateInstance& o) -> Status {
            const std::string& id = o.instance.id.value();
            {
              Query q(db, st.get_instance, "update instance");
              DSP_ASSIGN_OR_RETURN(bool exists, q.Bind(id).Step());
              if (!exists) return NotFound("instance '" + id + "' does not exist");
              DSP_ASSIGN_OR_RETURN(Instance stored, Decode(db, q.Text(1), &InstanceFromJson, "instances", id));
              if (!(stored == o.expected)) return Aborted("instance '" + id + "' was changed concurrently; retry");
            }
            return put_instance(o.instance);
          },
          [&](const WriteBatch::DeleteInstance& o) -> Status {
            DSP_RETURN_IF_ERROR(Query(db, st.delete_instance, "delete instance").Bind(o.id.value()).Run());
            if (conn_->Changes() == 0) return NotFound("instance '" + o.id.value() + "' does not exist");
            return Status::Ok();
          },
          [&](const WriteBatch::CreateUser& o) -> Status {
            const std::string& name = o.user.name.value();
            {
              Query q(db, st.user_uid, "create user");
              DSP_ASSIGN_OR_RETURN(bool exists, q.Bind(name).Step());
              if (exists) return AlreadyExists("user '" + name + "' already exists");
            }
            {
              Query q(db, st.uid_taken, "create user");
              DSP_ASSIGN_OR_RETURN(bool taken, q.Bind(o.user.uid).Step());
              if (taken) return AlreadyExists("uid " + std::to_string(o.user.uid) + " is taken");
            }
            DSP_ASSIGN_OR_RETURN(std::string body, Dump(UserToJson(o.user), "user '" + name + "'"));
            return Query(db, st.insert_user, "create user").Bind(name).Bind(o.user.uid).Bind(body).Run();
          },
          [&](const WriteBatch::UpdateUser& o) -> Status {
            const std::string& name = o.user.name.value();
            {
              Query q(db, st.user_uid, "update user");
              DSP_ASSIGN_OR_RETURN(bool exists, q.Bind(name).Step());
              if (!exists) return NotFound("user '" + name + "' does not exist");
              if (q.Int(0) != o.user.uid) return InvalidArgument("a user's uid never changes");
            }
            DSP_ASSIGN_OR_RETURN(std::string body, Dump(UserToJson(o.user), "user '" + name + "'"));
            return Query(db, st.update_user, "update user").Bind(body).Bind(name).Run();
          },
          [&](const WriteBatch::DeleteUser& o) -> Status {
            DSP_RETURN_IF_ERROR(Query(db, st.delete_user, "delete user").Bind(o.name.value()).Run());
            if (conn_->Changes() == 0) return NotFound("user '" + o.name.value() + "' does not exist");
            return Status::Ok();
          },
          [&](const WriteBatch::PutMeta& o) -> Status {
            return Query(db, st.put_meta, "put meta").Bind(o.key).BindBlob(o.value).Run();
          },
          [&](const WriteBatch::AppendEvent& o) -> Status {
            const Event& e = o.event;
            return Query(db, st.append_event, "append event")
                .Bind(ToUnixMillis(e.time))
                .Bind(e.actor)
                .Bind(e.action)
                .Bind(e.subject)
                .Bind(e.detail)
                .Run();
          },
          [&](const WriteBatch::PutResourceGroup& o) -> Status {
            const std::string what = "resource group '" + o.group.name + "'";
            DSP_ASSIGN_OR_RETURN(std::string body, Dump(ResourceGroupToJson(o.group), what));
            return Query(db, st.put_group, "put resource group").Bind(StoreKey(o.group.name)).Bind(body).Run();
          },
          [&](const WriteBatch::DeleteResourceGroup& o) -> Status {
            const std::string key = StoreKey(o.name);
            DSP_RETURN_IF_ERROR(group_exists(o.name, "delete resource group"));
            {
              Query q(db, st.group_resources, "delete resource group");
              DSP_RETURN_IF_ERROR(q.Bind(key).Step().status());
              int64_t held = q.Int(0);
              Query accounts(db, st.group_accounts, "delete resource group");
              DSP_RETURN_IF_ERROR(accounts.Bind(key).Step().status());
              held += accounts.Int(0);
              if (held > 0) {
                return FailedPrecondition("resource group '" + o.name + "' still holds " + std::to_string(held) +
                                          " resources");
              }
            }
            DSP_RETURN_IF_ERROR(Query(db, st.delete_group_deployments, "delete resource group").Bind(key).Run());
            return Query(db, st.delete_group, "delete resource group").Bind(key).Run();
          },
          [&](const WriteBatch::PutDeployment& o) -> Status {
            const Deployment& d = o.deployment;
            DSP_RETURN_IF_ERROR(group_exists(d.group, "put deployment"));
            const std::string group = StoreKey(d.group), key = StoreKey(d.name);
            DSP_ASSIGN_OR_RETURN(std::string body, Dump(DeploymentToJson(d), "deployment '" + d.name + "'"));
            bool is_new;
            {
              Query q(db, st.get_deployment, "put deployment");
              DSP_ASSIGN_OR_RETURN(bool exists, q.Bind(group).Bind(key).Step());
              is_new = !exists;
            }
            DSP_RETURN_IF_ERROR(Query(db, st.put_deployment, "put deployment")
                                    .Bind(group)
                                    .Bind(key)
                                    .Bind(ToUnixMillis(d.timestamp))
                                    .Bind(body)
                                    .Run());
            if (!is_new) return Status::Ok();
            int64_t count;
            {
              Query q(db, st.count_deployments, "put deployment");
              DSP_RETURN_IF_ERROR(q.Bind(group).Step().status());
              count = q.Int(0);
            }
            const auto cap = static_cast<int64_t>(kMaxDeploymentsPerGroup);
            if (count <= cap) return Status::Ok();
            return Query(db, st.oldest_deployments, "put deployment").Bind(group).Bind(key).Bind(count - cap).Run();
          },
          [&](const WriteBatch::DeleteDeployment& o) -> Status {
            DSP_RETURN_IF_ERROR(Query(db, st.delete_deployment, "delete deployment")
                                    .Bind(StoreKey(o.group))
                                    .Bind(StoreKey(o.name))
                                    .Run());
            if (conn_->Changes() == 0) {
              return NotFound("deployment '" + o.name + "' does not exist in resource group '" + o.group + "'");
            }
            return Status::Ok();
          },
          [&](const WriteBatch::PutResource& o) -> Status {
            const ArmResource& r = o.resource;
            DSP_RETURN_IF_ERROR(group_exists(r.group, "put resource"));
            DSP_ASSIGN_OR_RETURN(std::string body, Dump(ArmResourceToJson(r), "resource '" + r.id + "'"));
            return Query(db, st.put_resource, "put resource").Bind(StoreKey(r.id)).Bind(StoreKey(r.group)).Bind(body).Run();
          },
          [&](const WriteBatch::DeleteResource& o) -> Status {
            DSP_RETURN_IF_ERROR(Query(db, st.delete_resource, "delete resource").Bind(StoreKey(o.id)).Run());
            if (conn_->Changes() == 0) return NotFound("resource '" + o.id + "' does not exist");
            return Status::Ok();
          },
          [&](const WriteBatch::PutStorageAccount& o) -> Status {
            const StorageAccount& a = o.account;
            DSP_RETURN_IF_ERROR(group_exists(a.group, "put storage account"));
            DSP_ASSIGN_OR_RETURN(std::string body, Dump(StorageAccountToJson(a), "storage account '" + a.name + "'"));
            return Query(db, st.put_account, "put storage account")
                .Bind(StoreKey(a.name))
                .Bind(StoreKey(a.group))
                .Bind(body)
                .Run();
          },
          [&](const WriteBatch::DeleteStorageAccount& o) -> Status {
            DSP_RETURN_IF_ERROR(Query(db, st.delete_account, "delete storage account").Bind(StoreKey(o.name)).Run());
            if (conn_->Changes() == 0) return NotFound("storage account '" + o.name + "' does not exist");
            return Status::Ok();
          },
          [&](const WriteBatch::PutShare& o) -> Status {
            const FileShare& sh = o.share;
            if (!sh.deleted()) {
              Query q(db, st.get_account, "put share");
              DSP_ASSIGN_OR_RETURN(bool exists, q.Bind(StoreKey(sh.account)).Step());
              if (!exists) return NotFound("storage account '" + sh.account + "' does not exist");
            }
            DSP_ASSIGN_OR_RETURN(std::string body, Dump(FileShareToJson(sh), "share '" + sh.name + "'"));
            return Query(db, st.put_share, "put share")
                .Bind(StoreKey(sh.account))
                .Bind(StoreKey(ShareKey(sh)))
                .Bind(body)
                .Run();
          },
          [&](const WriteBatch::DeleteShare& o) -> Status {
            DSP_RETURN_IF_ERROR(
                Query(db, st.delete_share, "delete share").Bind(StoreKey(o.account)).Bind(StoreKey(o.key)).Run());
            if (conn_->Changes() == 0) {
              return NotFound("share '" + o.key + "' does not exist in storage account '" + o.account + "'");
            }
            return Status::Ok();
          },
      },
      op);
}

}  // namespace dspool
