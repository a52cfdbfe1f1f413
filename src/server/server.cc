#include "server/server.h"

#include <signal.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <climits>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "api/api.h"
#include "base/metrics.h"
#include "base/thread_name.h"
#include "base/version.h"
#include "gateway/gateway.h"
#include "gateway/routing_table.h"
#include "http/client.h"
#include "model/jupyter.h"
#include "http/endpoint.h"
#include "http/server.h"
#include "net/tls.h"
#include "os/children.h"
#include "os/fs.h"
#include "os/net.h"
#include "os/process.h"
#include "provider/lxc/lxc_provider.h"
#include "reconcile/reconciler.h"
#include "server/agent_channels.h"
#include "server/notebook_culler.h"
#include "store/forwarding_store.h"
#include "store/sqlite/sqlite_store.h"

namespace dspool {
namespace {

constexpr const char* kLog = "server";
// Where the agent finds the dspool binary in an instance.
constexpr const char* kInstanceBinary = "/usr/local/lib/dspool/dspool";
// The programs the server runs, by absolute path (never looked up in PATH).
constexpr const char* kSshKeygen = "/usr/bin/ssh-keygen";
constexpr const char* kOpenssl = "/usr/bin/openssl";

// A fixed set of threads running provider calls (which block in liblxc).
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, i] {
        SetThreadName("provider-" + std::to_string(i));
        Work();
      });
    }
  }
  ~WorkerPool() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Run(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;  // stopping, and nothing left
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

std::string RandomHex(size_t bytes) {
  std::random_device rd;
  std::string out;
  static const char* kHex = "0123456789abcdef";
  for (size_t i = 0; i < bytes; ++i) {
    unsigned v = rd() & 0xff;
    out += kHex[v >> 4];
    out += kHex[v & 15];
  }
  return out;
}

// The state store, telling the server after every committed write (the
// gateway's routing table follows the records).
class NotifyingStore final : public ForwardingStore {
 public:
  NotifyingStore(std::unique_ptr<StateStore> inner, std::function<void()> on_write)
      : ForwardingStore(*inner), inner_(std::move(inner)), on_write_(std::move(on_write)) {}
  Status Write(const WriteBatch& batch) override {
    Status s = ForwardingStore::Write(batch);
    if (s.ok()) on_write_();
    return s;
  }

 private:
  std::unique_ptr<StateStore> inner_;
  std::function<void()> on_write_;
};

// A self-signed certificate and its key (ECDSA P-256, 825 days), made by the
// openssl program unless `certificate` exists; the key is the owner's alone.
Status EnsureSelfSignedPair(const std::string& certificate, const std::string& key, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(bool exists, PathExists(certificate));
  if (exists) return Status::Ok();
  RunOptions opts;
  opts.timeout = std::chrono::seconds(30);
  DSP_RETURN_IF_ERROR(RunChecked({kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                  "ec_paramgen_curve:prime256v1", "-nodes", "-days", "825", "-subj", "/CN=" + name,
                                  "-keyout", key, "-out", certificate},
                                 opts));
  if (::chmod(key.c_str(), 0600) != 0) return ErrnoStatus("chmod " + key, errno);
  return Status::Ok();
}

// The TCP API's listener (--listen), checked and read before the server
// starts. `tls` is empty only for a loopback address with --no-tls.
struct TcpApi {
  std::string host;
  uint16_t port = 0;
  std::optional<TlsCertificate> tls;
  std::string certificate_file;
  std::string fingerprint;  // of the certificate, for the log
};

class PoolServer final : public ApiHooks, public GatewayHooks, public CullerHooks {
 public:
  PoolServer(const ServerOptions& options, std::optional<TcpApi> listen, std::unique_ptr<StateStore> store,
             std::unique_ptr<ComputeProvider> provider, GatewayOptions gateway_options, std::string self_binary,
             std::string token)
      : options_(options),
        listen_(std::move(listen)),
        store_(std::make_unique<NotifyingStore>(std::move(store), [this] { RoutesChanged(); })),
        provider_(std::move(provider)),
        gateway_options_(std::move(gateway_options)),
        self_binary_(std::move(self_binary)),
        workers_(8),
        reconciler_(*store_, *provider_, clock_,
                    [this](const Pool& p, const Instance& i) { return BuildRequest(p, i); },
                    [this](std::function<void()> task) { workers_.Run(std::move(task)); },
                    [] { return RandomHex(3); }, ReconcilerOptions{}),
        api_(*store_, clock_, *this, ApiOptions{{options.uid_first, options.uid_last}, token, options.data_dir,
                                               provider_->Name()}),
        http_([this](const Request& r) { return api_.Handle(r); }, HttpServerOptions{}),
        channels_(options.data_dir, http_) {}

  Status Start() {
    DSP_RETURN_IF_ERROR(http_.ListenUnix(options_.data_dir + "/api.sock", 0600, "api"));
    if (listen_ && listen_->tls) {
      TlsCertificate certificate = std::move(*listen_->tls);  // ListenTls wipes the key
      listen_->tls.reset();
      auto bound = http_.ListenTls(listen_->host, listen_->port, std::move(certificate), "api-tcp");
      if (!bound.ok()) return bound.status().WithPrefix("--listen " + options_.listen_tcp);
      DSP_LOG(kInfo, kLog) << "API on " << Endpoint::Tls(listen_->host, *bound).ToString()
                           << " (bearer token; certificate " << listen_->certificate_file
                           << ", SHA-256 fingerprint " << listen_->fingerprint << ")";
    } else if (listen_) {
      auto bound = http_.ListenTcp(listen_->host, listen_->port, "api-tcp");
      if (!bound.ok()) return bound.status().WithPrefix("--listen " + options_.listen_tcp);
      DSP_LOG(kInfo, kLog) << "API on " << Endpoint::Tcp(listen_->host, *bound).ToString()
                           << " (bearer token, no TLS: loopback only)";
    }
    // Channels of the instances that already exist, before the agents retry.
    DSP_RETURN_IF_ERROR(channels_.Prepare().WithPrefix("--data-dir " + options_.data_dir));
    SweepChannels();
    DSP_ASSIGN_OR_RETURN(gateway_, Gateway::Create(gateway_options_, *this));
    DSP_RETURN_IF_ERROR(gateway_->Start());
    RoutesChanged();
    router_ = std::thread([this] {
      SetThreadName("routes");
      RouteLoop();
    });
    http_.Start(2);
    reconciler_.Start();
    sweeper_ = std::thread([this] {
      SetThreadName("sweeper");
      SweepLoop();
    });
    DSP_LOG(kInfo, kLog) << "dspool " << kVersion << " serving on unix:" << options_.data_dir << "/api.sock with the "
                         << provider_->Name() << " provider";
    return Status::Ok();
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (sweeper_.joinable()) sweeper_.join();
    if (router_.joinable()) router_.join();
    reconciler_.Stop();
    http_.Stop();
    if (gateway_) gateway_->Stop();
  }

  // ---- ApiHooks ----

  Status CheckPoolHost(const PoolSpec& spec, const std::vector<Pool>& existing) override {
    DSP_RETURN_IF_ERROR(CheckFrontendPorts(spec, existing));
    DSP_RETURN_IF_ERROR(gateway_->CheckListen(spec));
    for (const Pool& p : existing) {
      if (p.spec.network.subnet.Overlaps(spec.network.subnet)) {
        return InvalidArgument("network.subnet: " + spec.network.subnet.ToString() + " overlaps pool '" +
                               p.name().value() + "' (" + p.spec.network.subnet.ToString() + ")");
      }
    }
    DSP_ASSIGN_OR_RETURN(auto routes, ListIpv4Routes());
    for (const RouteEntry& r : routes) {
      if (r.destination.prefix == 0) continue;  // the default route covers everything by design
      if (r.destination.Overlaps(spec.network.subnet)) {
        return InvalidArgument("network.subnet: " + spec.network.subnet.ToString() +
                               " collides with the host route " + r.destination.ToString() +
                               (r.interface.empty() ? "" : " on " + r.interface));
      }
    }
    struct stat st;
    if (::stat(spec.share.source.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return InvalidArgument("share.source: " + spec.share.source + " is not an existing directory on the host");
    }
    char resolved[PATH_MAX];
    if (::realpath(spec.share.source.c_str(), resolved) == nullptr) {
      return InvalidArgument("share.source: " + spec.share.source + ": " + std::strerror(errno));
    }
    char data_dir[PATH_MAX];
    if (::realpath(options_.data_dir.c_str(), data_dir) == nullptr) return ErrnoStatus(options_.data_dir, errno);
    return CheckShareSource(spec.share.source, resolved, data_dir);
  }

  Status PreparePool(const PoolName& pool) override {
    std::string dir = PoolDir(pool);
    DSP_RETURN_IF_ERROR(MakeDirs(dir, 0700));
    RunOptions opts;
    opts.timeout = std::chrono::seconds(30);
    std::string key = dir + "/ssh_host_ed25519_key";
    DSP_ASSIGN_OR_RETURN(bool exists, PathExists(key));
    if (!exists) {
      // ssh-keygen writes the private key with mode 0600 itself.
      DSP_RETURN_IF_ERROR(RunChecked(
          {kSshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", "dspool pool " + pool.value(), "-f", key}, opts));
    }
    // The Jupyter address's certificate when the spec names none: self-signed.
    DSP_RETURN_IF_ERROR(EnsureSelfSignedPair(dir + "/jupyter.crt", dir + "/jupyter.key", pool.value() + " (dspool)")
                            .WithPrefix("self-signed certificate for pool " + pool.value()));
    // What the generators made (or a restore put there) is checked as it
    // will be read: root's own files, no link, nothing for others.
    DSP_RETURN_IF_ERROR(ReadPrivateFile(key).status());
    return ReadPrivateFile(dir + "/jupyter.key").status();
  }

  Result<HostKey> ReadHostKey(const PoolName& pool) override {
    HostKey key;
    std::string base = PoolDir(pool) + "/ssh_host_ed25519_key";
    DSP_ASSIGN_OR_RETURN(key.private_key, ReadPrivateFile(base));
    DSP_ASSIGN_OR_RETURN(key.public_key, ReadFile(base + ".pub"));
    return key;
  }

  void PoolsChanged() override { reconciler_.Poke(); }
  void RecordReport(const InstanceId& id, const InstanceReport& r) override { reconciler_.RecordReport(id, r); }
  std::optional<InstanceReport> LastReport(const InstanceId& id) override { return reconciler_.LastReport(id); }
  std::optional<dspool::InstanceHealth> InstanceHealth(const InstanceId& id) override { return gateway_->Health(id); }

  std::vector<NotebookSessionInfo> NotebookSessions() override {
    std::vector<NotebookSessionInfo> out;
    for (const auto& n : gateway_->Notebooks()) {
      NotebookSessionInfo info{n.pool.value(),
                               n.session.user,
                               n.session.instance.value(),
                               std::string(NotebookStateName(n.session.state)),
                               n.session.error,
                               n.session.started,
                               n.session.last_activity};
      if (auto activity = culler_.Activity(n.pool, n.session.user)) {
        info.busy_kernels = activity->busy_kernels;
        info.busy_terminals = activity->busy_terminals;
        info.kernels = activity->kernels;
      }
      out.push_back(std::move(info));
    }
    return out;
  }

  Status StopNotebookSession(const PoolName& pool, const std::string& user) override {
    for (const auto& n : gateway_->Notebooks()) {
      if (n.pool != pool || n.session.user != user) continue;
      if (n.session.state == NotebookSession::State::kReady) {
        Status stopped = StopAgentServer(n.session.instance, user);
        // An instance that is gone took its servers with it.
        if (!stopped.ok() && store_->GetInstance(n.session.instance).ok()) return stopped;
      }
      ForgetNotebook(pool, user);
      DSP_LOG(kInfo, kLog) << "notebook server of " << user << " in pool " << pool << " stopped by request";
      return Status::Ok();
    }
    return NotFound("user '" + user + "' has no notebook server in pool '" + pool.value() + "'");
  }

  // ---- GatewayHooks ----

  std::optional<std::string> PasswordHash(const std::string& user) override {
    auto u = store_->GetUser(UserName(user));
    if (!u.ok() || u->password_hash.empty()) return std::nullopt;
    return u->password_hash;
  }

  void StartNotebook(const PoolName& pool, const std::string& user, const std::string& token) override {
    workers_.Run([this, pool, user, token] {
      auto started = StartNotebookNow(pool, user, token);
      if (!started.ok()) {
        DSP_LOG(kWarning, kLog) << "notebook server of " << user << " in pool " << pool << ": " << started.status();
        gateway_->NotebookFailed(pool, user, started.status().message());
        return;
      }
      DSP_LOG(kInfo, kLog) << "notebook server of " << user << " ready on " << started->instance << " ("
                           << started->server.address << ":" << started->server.port << ")";
      gateway_->NotebookReady(pool, user, started->instance, ParseIpv4(started->server.address).value_or(0),
                              static_cast<uint16_t>(started->server.port));
    });
  }

  // Off the gateway's thread: the store write may wait for the disk.
  void WakePool(const PoolName& pool) override {
    workers_.Run([this, pool] {
      if (Status s = RaiseFromZero(pool); !s.ok()) DSP_LOG(kWarning, kLog) << "wake pool " << pool << ": " << s;
    });
  }

  std::string ExtraMetrics() override {
    ReconcilerCounters c = reconciler_.counters();
    HttpServerStats h = http_.stats();
    std::ostringstream out;
    auto counter = [&](const char* name, const char* help, int64_t v) { WriteMetric(out, name, "counter", help, v); };
    counter("dspool_reconcile_passes_total", "Reconcile passes run.", c.passes);
    counter("dspool_reconcile_actions_total", "Steps taken by the reconcile loop.", c.actions);
    counter("dspool_provider_errors_total", "Provider calls that failed.", c.provider_errors);
    counter("dspool_instances_created_total", "Instance records created.", c.instances_created);
    counter("dspool_instances_failed_total", "Instances that failed.", c.instances_failed);
    counter("dspool_instances_destroyed_total", "Instances destroyed.", c.instances_destroyed);
    counter("dspool_orphans_destroyed_total", "Provider instances without a record, destroyed.", c.orphans_destroyed);
    counter("dspool_http_requests_total", "HTTP requests served (API and agents).",
            static_cast<int64_t>(h.requests));
    counter("dspool_pool_wakeups_total", "Pools raised from zero (or from all-draining) by a waiting connection.",
            wakeups_.load());
    counter("dspool_notebooks_culled_total", "Idle notebook servers stopped.", culler_.culled());
    return out.str() + GatewayMetrics(gateway_->counters());
  }

 private:
  std::string PoolDir(const PoolName& pool) const { return options_.data_dir + "/pools/" + pool.value(); }
  // The host uid of instance `id`'s root: its pool's id block.
  Result<uid_t> InstanceRoot(const InstanceId& id) {
    DSP_ASSIGN_OR_RETURN(Instance instance, store_->GetInstance(id));
    DSP_ASSIGN_OR_RETURN(Pool pool, store_->GetPool(instance.pool));
    if (pool.id_base < kFirstIdBase) return FailedPrecondition("pool '" + pool.name().value() + "' has no id block");
    return static_cast<uid_t>(pool.id_base);
  }

  // The users' directories on a pool's share, made on the host: homes and
  // notebooks/<user> (0700, the user's), and ~/notebooks/remote pointing at
  // the latter as instances see it. The instances' root cannot write the
  // share (its ids are not mapped there), so this is the server's job.
  // Parts inside a user's home are made as that user, so a symlink the user
  // planted is never followed with root's rights.
  Status EnsureShareLayout(const Pool& pool, const std::vector<User>& users) {
    const std::string& share = pool.spec.share.source;
    // Root's, so that the names made in them below cannot be swapped.
    DSP_RETURN_IF_ERROR(EnsureDir(share + "/home", 0755, FileOwner{0, 0}));
    DSP_RETURN_IF_ERROR(EnsureDir(share + "/notebooks", 0755, FileOwner{0, 0}));
    for (const User& u : users) {
      auto id = static_cast<uid_t>(u.uid);
      const std::string name = u.name.value();
      for (const std::string& dir : {share + "/home/" + name, share + "/notebooks/" + name}) {
        DSP_ASSIGN_OR_RETURN(bool exists, PathExists(dir));
        if (!exists) DSP_RETURN_IF_ERROR(EnsureDir(dir, 0700, FileOwner{id, id}));
      }
      std::string home = share + "/home/" + name;
      std::string link_target = pool.spec.share.mount_path + "/notebooks/" + name;
      DSP_ASSIGN_OR_RETURN(bool linked, PathExists(home + "/notebooks/remote"));
      if (linked) continue;
      DSP_RETURN_IF_ERROR(RunAs(id, id, [&]() -> Status {
        DSP_RETURN_IF_ERROR(MakeDirs(home + "/notebooks", 0755));
        return Symlink(link_target, home + "/notebooks/remote");
      }));
    }
    return Status::Ok();
  }

  // Host paths no instance may see through its image: the server's data,
  // host users' and root's homes, temporary files, logs, host SSH keys and
  // shadow files, and every pool's share source (a share is seen only at
  // its mount path, with its own id mapping).
  std::vector<std::string> MaskedPaths() {
    std::vector<std::string> paths = {options_.data_dir, "/var/lib/dspool", "/root", "/home", "/tmp", "/var/tmp",
                                      "/var/log", "/var/lib/lxc",
                                      "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-",
                                      "/etc/subuid", "/etc/subgid"};
    if (auto ssh = ListDir("/etc/ssh"); ssh.ok()) {
      for (const std::string& f : *ssh) {
        if (f.rfind("ssh_host_", 0) == 0) paths.push_back("/etc/ssh/" + f);
      }
    }
    if (auto pools = store_->ListPools(); pools.ok()) {
      for (const Pool& p : *pools) paths.push_back(p.spec.share.source);
    }
    return paths;
  }

  Result<InstanceRequest> BuildRequest(const Pool& pool, const Instance& instance) {
    if (pool.id_base < kFirstIdBase) return FailedPrecondition("pool '" + pool.name().value() + "' has no id block");
    DSP_RETURN_IF_ERROR(channels_.Open(instance.id, static_cast<uid_t>(pool.id_base)));
    DSP_ASSIGN_OR_RETURN(auto users, store_->ListUsers());
    DSP_RETURN_IF_ERROR(EnsureShareLayout(pool, users).WithPrefix("share of pool " + pool.name().value()));
    InstanceRequest req;
    req.id = instance.id;
    req.pool = pool.name();
    req.index = instance.index;
    req.hostname = InstanceHostname(pool.name(), instance.index);
    req.size = pool.spec.size;
    req.network = PoolNetwork{pool.name(), BridgeName(pool.name()), GatewayAddress(pool.spec.network),
                              pool.spec.network.subnet.prefix};
    req.address = InstanceAddress(pool.spec.network, instance.index);
    req.mounts = {
        {pool.spec.share.source, pool.spec.share.mount_path, false, MountIds::kUsers},
        // sshd runs it as AuthorizedKeysCommand: it must belong to root.
        {self_binary_, kInstanceBinary, true, MountIds::kImage},
    };
    for (BindMount& m : channels_.Mounts(instance.id)) req.mounts.push_back(std::move(m));
    req.init_command = {kInstanceBinary, "agent"};
    req.root_host_id = pool.id_base;
    req.user_id_first = options_.uid_first;
    req.user_id_last = options_.uid_last;
    req.masked_paths = MaskedPaths();
    return req;
  }

  // Keeps agent channels and per-pool files in step with the records: opens
  // the channel of every instance record, closes and removes those of
  // instances that are gone, and removes the key directory of deleted pools.
  void SweepChannels() {
    // What is open now, before the records are read: a channel opened after
    // this point (for a record written meanwhile) is never taken for a
    // leftover.
    const std::set<InstanceId> channels_before = channels_.OpenChannels();
    auto pool_dirs = ListDir(options_.data_dir + "/pools");
    auto records = store_->ListInstances({});
    auto pools = store_->ListPools();
    if (!records.ok() || !pools.ok()) return;
    std::map<PoolName, const Pool*> by_name;
    for (const Pool& p : *pools) by_name[p.name()] = &p;
    std::set<InstanceId> live;
    for (const Instance& r : *records) {
      live.insert(r.id);
      auto pool = by_name.find(r.pool);
      if (r.phase != InstancePhase::kDeleting && pool != by_name.end()) {
        if (Status s = channels_.Open(r.id, static_cast<uid_t>(pool->second->id_base)); !s.ok()) {
          DSP_LOG(kWarning, kLog) << "channel of " << r.id << ": " << s;
        }
      }
    }
    // Users added since an instance started get their directories here.
    if (auto users = store_->ListUsers(); users.ok()) {
      for (const Pool& p : *pools) {
        if (p.state != PoolState::kActive) continue;
        if (Status s = EnsureShareLayout(p, *users); !s.ok()) {
          DSP_LOG(kWarning, kLog) << "share of pool " << p.name() << ": " << s;
        }
      }
    }
    channels_.Sweep(channels_before, live);
    // A pool's key directory is made just before its record is written, so
    // one without a record is a leftover only once sweeps have found it so
    // for a minute (monotonic: a step of the wall clock removes nothing).
    if (pool_dirs.ok()) {
      const MonoTime now = clock_.Monotonic();
      std::map<std::string, MonoTime> unknown;
      for (const std::string& e : *pool_dirs) {
        bool known = std::any_of(pools->begin(), pools->end(), [&](const Pool& p) { return p.name().value() == e; });
        if (known) continue;
        auto seen = unknown_pool_dirs_.find(e);
        unknown[e] = seen == unknown_pool_dirs_.end() ? now : seen->second;
        if (now - unknown[e] > std::chrono::minutes(1)) {
          RemoveTree(options_.data_dir + "/pools/" + e).IgnoreError();
          unknown.erase(e);
        }
      }
      unknown_pool_dirs_ = std::move(unknown);
    }
  }

  // A request to instance `id`'s agent (AgentChannels::Call).
  Result<Json> CallAgent(const InstanceId& id, const std::string& method, const std::string& path,
                         const std::string& body, std::chrono::seconds timeout) {
    auto owner = InstanceRoot(id);
    if (!owner.ok()) return Unavailable("instance " + id.value() + ": " + owner.status().message());
    return channels_.Call(id, *owner, method, path, body, timeout);
  }

  // Stops `user`'s Jupyter server on instance `id`; OK also when the agent
  // no longer has it.
  Status StopAgentServer(const InstanceId& id, const std::string& user) {
    auto stopped = CallAgent(id, "DELETE", "/v1/jupyter/servers/" + user, "", std::chrono::seconds(15));
    if (!stopped.ok() && stopped.status().code() != StatusCode::kNotFound) return stopped.status();
    return Status::Ok();
  }

  // The gateway forgets the session, and the culler the agent's counts.
  void ForgetNotebook(const PoolName& pool, const std::string& user) {
    gateway_->NotebookGone(pool, user);
    culler_.Forget(pool, user);
  }

  struct StartedNotebook {
    InstanceId instance;
    JupyterServer server;
  };

  // Picks an instance for `user`'s notebook server (Ready, not draining, in
  // rotation if the gateway probes it, fewest notebook servers), waking the
  // pool if it has none, and asks its agent to start the server.
  Result<StartedNotebook> StartNotebookNow(const PoolName& pool, const std::string& user, const std::string& token) {
    const MonoTime deadline = clock_.Monotonic() + options_.hold_timeout;
    // The user's home and notebooks on the share, if the sweep has not made
    // them yet (a user added a moment ago).
    DSP_ASSIGN_OR_RETURN(Pool spec, store_->GetPool(pool));
    DSP_ASSIGN_OR_RETURN(auto users, store_->ListUsers());
    DSP_RETURN_IF_ERROR(EnsureShareLayout(spec, users).WithPrefix("share of pool " + pool.value()));
    for (;;) {
      DSP_ASSIGN_OR_RETURN(auto instances, store_->ListInstances(pool));
      std::map<InstanceId, int> load;
      for (const auto& n : gateway_->Notebooks()) {
        if (n.pool == pool && n.session.state != NotebookSession::State::kFailed) load[n.session.instance]++;
      }
      const Instance* best = nullptr;
      for (const Instance& i : instances) {
        if (i.phase != InstancePhase::kReady || i.draining) continue;
        if (auto health = gateway_->Health(i.id); health && !health->in_rotation && health->state != "unprobed") {
          continue;
        }
        if (!best || load[i.id] < load[best->id]) best = &i;
      }
      if (best) {
        Json body = JupyterStartRequestToJson(JupyterStartRequest{user, token, options_.jupyter_program});
        DSP_ASSIGN_OR_RETURN(Json json, CallAgent(best->id, "POST", "/v1/jupyter/servers", body.dump(),
                                                  std::chrono::seconds(90)));
        DSP_ASSIGN_OR_RETURN(JupyterServer server, ParseJupyterServer(json));
        return StartedNotebook{best->id, server};
      }
      if (clock_.Monotonic() >= deadline) {
        return Unavailable("no instance of pool " + pool.value() + " became ready");
      }
      if (Status s = RaiseFromZero(pool); !s.ok()) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  // ---- CullerHooks ----

  std::vector<Notebook> Notebooks() override {
    std::vector<Notebook> out;
    for (auto& n : gateway_->Notebooks()) out.push_back({std::move(n.pool), std::move(n.session)});
    return out;
  }
  Result<std::vector<JupyterServer>> ListServers(const InstanceId& id) override {
    DSP_ASSIGN_OR_RETURN(Json json, CallAgent(id, "GET", "/v1/jupyter/servers", "", std::chrono::seconds(10)));
    return ParseJupyterServerList(json);
  }
  bool InstanceExists(const InstanceId& id) override { return store_->GetInstance(id).ok(); }
  Status StopServer(const InstanceId& id, const std::string& user) override { return StopAgentServer(id, user); }
  void ForgetSession(const PoolName& pool, const std::string& user) override { gateway_->NotebookGone(pool, user); }

  // A connection waits on `name` and no instance can take it: make the
  // pool want one instance that is not draining (CountToWake).
  Status RaiseFromZero(const PoolName& name) {
    std::lock_guard lock(wake_mu_);
    DSP_ASSIGN_OR_RETURN(Pool pool, store_->GetPool(name));
    DSP_ASSIGN_OR_RETURN(auto instances, store_->ListInstances(name));
    std::optional<int64_t> count = CountToWake(pool, instances);
    if (!count) return Status::Ok();
    Pool updated = pool;
    updated.spec.instance_count = *count;
    if (auto cap = pool.spec.load_balancer ? NatCapacity(*pool.spec.load_balancer) : std::nullopt;
        cap && updated.spec.instance_count > *cap) {
      return FailedPrecondition("the NAT pools address only " + std::to_string(*cap) + " instances");
    }
    updated.generation++;
    updated.updated_at = clock_.Now();
    WriteBatch batch;
    batch.Add(WriteBatch::UpdatePool{updated, pool.generation});
    batch.Add(WriteBatch::AppendEvent{Event{0, clock_.Now(), "gateway", "pool.wake",
                                            "pool/" + name.value(),
                                            "a connection is waiting: " + std::to_string(pool.spec.instance_count) +
                                                " → " + std::to_string(updated.spec.instance_count) + " instances"}});
    DSP_RETURN_IF_ERROR(store_->Write(batch));
    wakeups_++;
    DSP_LOG(kInfo, kLog) << "pool " << name << " woken by a waiting connection: "
                         << pool.spec.instance_count << " → " << updated.spec.instance_count << " instances";
    reconciler_.Poke();
    return Status::Ok();
  }

  // The records changed: rebuild the gateway's routing table soon.
  void RoutesChanged() {
    {
      std::lock_guard lock(mu_);
      routes_dirty_ = true;
    }
    cv_.notify_all();
  }

  void RouteLoop() {
    std::string last_error;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || routes_dirty_; });
        if (stopping_) return;
        routes_dirty_ = false;
      }
      auto pools = store_->ListPools();
      auto instances = store_->ListInstances({});
      Status s = !pools.ok() ? pools.status() : !instances.ok() ? instances.status() : Status::Ok();
      if (s.ok()) {
        RoutingTable table = BuildRoutingTable(*pools, *instances);
        for (WebListener& w : table.web) {
          if (w.certificate_file.empty()) {
            w.certificate_file = PoolDir(w.pool) + "/jupyter.crt";
            w.key_file = PoolDir(w.pool) + "/jupyter.key";
          }
        }
        s = gateway_->Apply(std::move(table));
      }
      // Said once per change of error, not on every write.
      if (!s.ok() && s.message() != last_error) DSP_LOG(kError, kLog) << s;
      last_error = s.ok() ? "" : s.message();
    }
  }

  // Channels and share layouts every 2 s; idle notebook servers every
  // cull_check_interval.
  void SweepLoop() {
    constexpr Duration kSweepInterval = std::chrono::seconds(2);
    MonoTime next_sweep = clock_.Monotonic() + kSweepInterval;
    MonoTime next_cull = clock_.Monotonic() + options_.cull_check_interval;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait_until(lock, std::min(next_sweep, next_cull), [this] { return stopping_; });
        if (stopping_) return;
      }
      const MonoTime now = clock_.Monotonic();
      if (now >= next_sweep) {
        SweepChannels();
        next_sweep = now + kSweepInterval;
      }
      if (now >= next_cull) {
        if (auto pools = store_->ListPools(); pools.ok()) culler_.Check(*pools);
        next_cull = clock_.Monotonic() + options_.cull_check_interval;
      }
    }
  }

  ServerOptions options_;
  std::optional<TcpApi> listen_;  // the TCP API, if any; its key is moved out at Start
  RealClock clock_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<ComputeProvider> provider_;
  GatewayOptions gateway_options_;
  std::unique_ptr<Gateway> gateway_;  // made by Start
  std::string self_binary_;
  WorkerPool workers_;
  Reconciler reconciler_;
  Api api_;
  HttpServer http_;
  NotebookCuller culler_{clock_, *this};
  AgentChannels channels_;  // after http_, which serves them
  // Pool directories without a pool record, and since when (SweepChannels).
  std::map<std::string, MonoTime> unknown_pool_dirs_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool routes_dirty_ = false;  // guarded by mu_
  std::thread sweeper_;
  std::thread router_;
  std::mutex wake_mu_;
  std::atomic<int64_t> wakeups_{0};
};

Result<std::string> ReadToken(const std::string& path) {
  Result<std::string> read = ReadPrivateFile(path);
  if (!read.ok()) return read.status().WithPrefix("--token-file");
  std::string token = std::move(*read);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) return InvalidArgument("--token-file " + path + ": the token needs at least 16 characters");
  return token;
}

// --listen's address, TLS and certificate, checked and read. Plain TCP only
// on loopback: elsewhere the bearer token would cross the network in clear.
Result<TcpApi> PrepareTcpApi(const ServerOptions& options) {
  const std::string flag = "--listen " + options.listen_tcp;
  auto endpoint = ParseEndpoint("tcp:" + options.listen_tcp);
  if (!endpoint.ok()) {
    return InvalidArgument(flag + ": expected ADDRESS:PORT (" + endpoint.status().message() + ")");
  }
  if (options.token_file.empty()) return InvalidArgument("--listen needs --token-file");
  TcpApi api{endpoint->host, endpoint->port, std::nullopt, "", ""};
  std::string certificate = options.tls_certificate_file;
  std::string key = options.tls_key_file;
  if (options.no_tls) {
    if (!certificate.empty() || !key.empty()) return InvalidArgument("--no-tls excludes --tls-cert and --tls-key");
    if (!IsLoopbackAddress(api.host)) {
      return InvalidArgument(flag + " --no-tls: plain TCP is served on loopback addresses only (127.0.0.1, ::1); "
                             "elsewhere the API token would cross the network in clear. Drop --no-tls to serve TLS");
    }
    return api;
  }
  if (certificate.empty() != key.empty()) {
    return InvalidArgument("give --tls-cert and --tls-key together, or neither (the server then makes a "
                           "self-signed pair in --data-dir)");
  }
  const bool own = certificate.empty();
  if (own) {
    certificate = options.data_dir + "/api.crt";
    key = options.data_dir + "/api.key";
    DSP_RETURN_IF_ERROR(EnsureSelfSignedPair(certificate, key, "dspool API")
                            .WithPrefix("self-signed certificate for the TCP API"));
  }
  Result<std::string> chain = ReadFile(certificate);
  if (!chain.ok()) return chain.status().WithPrefix(own ? "the TCP API's certificate" : "--tls-cert");
  Result<std::string> key_pem = ReadPrivateFile(key);
  if (!key_pem.ok()) return key_pem.status().WithPrefix(own ? "the TCP API's key" : "--tls-key");
  Result<std::string> fingerprint = CertificateFingerprint(*chain);
  if (!fingerprint.ok()) {
    return fingerprint.status().WithPrefix((own ? "the TCP API's certificate " : "--tls-cert ") + certificate);
  }
  api.tls = TlsCertificate{std::move(*chain), std::move(*key_pem)};
  api.certificate_file = certificate;
  api.fingerprint = std::move(*fingerprint);
  return api;
}

// Pools recorded before instances got user namespaces have no id block:
// give them one.
Status AssignIdBlocks(StateStore& store) {
  DSP_ASSIGN_OR_RETURN(auto pools, store.ListPools());
  for (Pool& p : pools) {
    if (p.id_base >= kFirstIdBase) continue;
    DSP_ASSIGN_OR_RETURN(p.id_base, AllocateIdBase(pools));
    Pool updated = p;
    updated.generation++;
    WriteBatch batch;
    batch.Add(WriteBatch::UpdatePool{updated, p.generation});
    batch.Add(WriteBatch::AppendEvent{Event{0, std::chrono::system_clock::now(), "server", "pool.idblock",
                                            "pool/" + p.name().value(), "ids from " + std::to_string(p.id_base)}});
    DSP_RETURN_IF_ERROR(store.Write(batch));
    p.generation = updated.generation;
  }
  return Status::Ok();
}

Status Prepare(const ServerOptions& options, std::unique_ptr<PoolServer>* out, int* lock_fd) {
  if (!options.jupyter_program.empty()) {
    DSP_RETURN_IF_ERROR(ValidateNotebookProgram(options.jupyter_program).WithPrefix("--jupyter-program"));
  }
  if (geteuid() != 0) return PermissionDenied("dspool server must run as root");
  DSP_RETURN_IF_ERROR(MakeDirs(options.data_dir, 0711).WithPrefix("--data-dir " + options.data_dir));
  // Traversable (instances reach their channel and root through it), not
  // listable; everything inside has its own, narrower mode.
  ::chmod(options.data_dir.c_str(), 0711);
  std::string lock_path = options.data_dir + "/server.lock";
  *lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (*lock_fd < 0) return ErrnoStatus(lock_path, errno);
  if (::flock(*lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return FailedPrecondition("another dspool server is running on " + options.data_dir);
  }
  std::string token;
  std::optional<TcpApi> listen;
  if (!options.listen_tcp.empty()) {
    DSP_ASSIGN_OR_RETURN(listen, PrepareTcpApi(options));
    DSP_ASSIGN_OR_RETURN(token, ReadToken(options.token_file));
  } else if (options.no_tls || !options.tls_certificate_file.empty() || !options.tls_key_file.empty()) {
    return InvalidArgument("--no-tls, --tls-cert and --tls-key are for the TCP API: give --listen too");
  }
  // pools/ holds host keys: root only. (instances/: AgentChannels.)
  DSP_RETURN_IF_ERROR(MakeDirs(options.data_dir + "/pools", 0700));
  if (options.uid_first < 1000 || options.uid_last >= 65534 || options.uid_first > options.uid_last) {
    return InvalidArgument("--uid-range " + std::to_string(options.uid_first) + "-" + std::to_string(options.uid_last) +
                           ": must lie within 1000-65533 (instances map ids 0-65535; 65534 is nobody)");
  }
  DSP_ASSIGN_OR_RETURN(auto store, SqliteStore::Open(options.data_dir + "/state.db"));
  DSP_RETURN_IF_ERROR(AssignIdBlocks(*store));
  DSP_ASSIGN_OR_RETURN(auto provider, LxcProvider::Create(options.data_dir + "/lxc"));
  GatewayOptions gateway_options;
  gateway_options.relay_threads = options.gateway_threads > 0
                                      ? options.gateway_threads
                                      : static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
  gateway_options.web_threads = gateway_options.relay_threads;
  gateway_options.backend_congestion_control = options.gateway_congestion_control;
  gateway_options.hold_timeout = options.hold_timeout;
  gateway_options.max_held = static_cast<size_t>(options.hold_max);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return ErrnoStatus("readlink /proc/self/exe", errno);
  self[n] = '\0';
  DSP_ASSIGN_OR_RETURN(uint64_t descriptors, RaiseDescriptorLimit());
  DSP_LOG(kDebug, kLog) << "open descriptor limit " << descriptors;
  *out = std::make_unique<PoolServer>(options, std::move(listen), std::move(store), std::move(provider), gateway_options,
                                      self, token);
  return Status::Ok();
}

}  // namespace

int RunServer(const ServerOptions& options) {
  SetLogLevel(options.log_level);
  // Signals are taken by sigwait below, on this thread only.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<PoolServer> server;
  int lock_fd = -1;
  Status s = Prepare(options, &server, &lock_fd);
  if (s.ok()) s = server->Start();
  if (!s.ok()) {
    std::cerr << "dspool server: " << s.message() << "\n";
    if (server) server->Stop();
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  DSP_LOG(kInfo, kLog) << "signal " << sig << ": shutting down (instances keep running)";
  server->Stop();
  server.reset();
  if (lock_fd >= 0) ::close(lock_fd);
  DSP_LOG(kInfo, kLog) << "stopped";
  return 0;
}

}  // namespace dspool
