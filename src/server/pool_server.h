// The server's insides: PoolServer, the object `dspool server` is, and the
// pieces it is wired from. Internal to the server module; each role in a
// file of its own:
//
//   server.cc      RunServer and its preparation (data directory, lock, TCP
//                  API, store, provider); PoolServer's start and stop, its
//                  loops (routes for the gateway, the sweeper) and metrics
//   pools.cc       a pool's host side: checks against the host, its keys and
//                  certificate, waking it from zero
//   instances.cc   what an instance is made of: the provider's request, the
//                  masked host paths, the share's layout, the channels' sweep
//   notebooks.cc   the users' notebook servers: starting one on an instance's
//                  agent, stopping, listing; the culler's hooks
//
// Thread safety: PoolServer's hooks are called from the API's, the
// gateway's and the workers' threads; what they share is guarded as marked.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/api.h"
#include "base/clock.h"
#include "base/thread_name.h"
#include "gateway/client.h"
#include "gateway/gateway.h"
#include "http/server.h"
#include "net/tls.h"
#include "os/net.h"
#include "os/process.h"
#include "provider/compute_provider.h"
#include "reconcile/reconciler.h"
#include "server/agent_channels.h"
#include "server/notebook_culler.h"
#include "server/gateway_process.h"
#include "server/port_reservation.h"
#include "server/server.h"
#include "store/forwarding_store.h"

namespace dspool {

// Where the agent finds the dspool binary in an instance.
inline constexpr const char* kInstanceBinary = "/usr/local/lib/dspool/dspool";
// The programs the server runs, by absolute path (never looked up in PATH).
inline constexpr const char* kSshKeygen = "/usr/bin/ssh-keygen";
inline constexpr const char* kOpenssl = "/usr/bin/openssl";

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
Status EnsureSelfSignedPair(const std::string& certificate, const std::string& key, const std::string& name);

// The TCP API's listener (--listen), checked and read before the server
// starts. `tls` is empty only for a loopback address with --no-tls.
struct TcpApi {
  std::string host;
  uint16_t port = 0;
  std::optional<TlsCertificate> tls;
  std::string certificate_file;
  std::string fingerprint;  // of the certificate, for the log
};

// A short random string of 2 * `bytes` hex digits (instance id suffixes).
std::string RandomHex(size_t bytes);

// `dspool server`: the store, provider, reconciler, API, the link to the
// gateway process and the culler wired together, and the hooks through
// which they reach each other.
class PoolServer final : public ApiHooks, public GatewayEvents, public CullerHooks {
 public:
  PoolServer(const ServerOptions& options, std::optional<TcpApi> listen, std::unique_ptr<StateStore> store,
             std::unique_ptr<ComputeProvider> provider, GatewayProcessOptions gateway_options, std::string self_binary,
             std::string token, DeploymentOptions deployments)
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
                    [] { return RandomHex(3); },
                    [this](const std::vector<InstanceId>& ids) { return OpenSessions(ids); }, ReconcilerOptions{}),
        api_(*store_, clock_, *this,
             ApiOptions{{options.uid_first, options.uid_last}, token, options.data_dir, provider_->Name(), kVersion,
                        std::move(deployments)}),
        http_([this](const Request& r) { return api_.Handle(r); },
              HttpServerOptions{.max_body_bytes = kMaxApiRequestBytes}),
        channels_(options.data_dir, http_) {}

  Status Start();
  void Stop();

  // ---- ApiHooks ----

  Status CheckPoolHost(const PoolSpec& spec, const std::vector<Pool>& existing) override;
  static Status CheckJupyterCertificate(const JupyterSpec& jupyter);
  Result<std::vector<std::vector<ExtensionFile>>> FetchExtensionFiles(const std::vector<ExtensionSpec>& extensions,
                                                                      const ExtensionArtifacts& artifacts) override;
  Status PreparePool(const PoolSpec& spec, const std::vector<std::vector<ExtensionFile>>& files) override;
  Result<std::vector<ExtensionFile>> ReadExtensionFiles(const PoolName& pool, const ExtensionSpec& extension) override;
  Status MakeShareData(const std::string& account, const std::string& key) override;
  Status MoveShareData(const std::string& account, const std::string& from, const std::string& to) override;
  Status RemoveShareData(const std::string& account, const std::string& key) override;
  Status AttachShare(const InstanceId& id, const std::string& account, const std::string& share,
                     const std::string& target, bool read_only) override;
  // Where a storage share's data is on the host, by ShareKey.
  std::string ShareDataPath(const std::string& account, const std::string& key) const;
  Result<HostKey> ReadHostKey(const PoolName& pool) override;
  void PoolsChanged() override { reconciler_.Poke(); }
  void RecordReport(const InstanceId& id, const InstanceReport& r) override { reconciler_.RecordReport(id, r); }
  std::optional<InstanceReport> LastReport(const InstanceId& id) override { return reconciler_.LastReport(id); }
  std::optional<dspool::InstanceHealth> InstanceHealth(const InstanceId& id) override { return gateway_->Health(id); }

  std::vector<NotebookSessionInfo> NotebookSessions() override;
  std::vector<RelayedSessionInfo> RelayedSessions() override;
  // Open SSH sessions and notebook servers on each of `ids` whose agent has
  // reported since the server started: by the agent's count or the
  // gateway's (relayed connections, notebook sessions), whichever is more,
  // so neither an agent that undercounts nor a connection the agent has not
  // seen yet lets scale-in end a session.
  std::map<InstanceId, int64_t> OpenSessions(const std::vector<InstanceId>& ids) override;
  Status StopNotebookSession(const PoolName& pool, const std::string& user) override;
  std::vector<std::string> PushUsersChange(int64_t version) override;
  // SIGTERM to this process: RunServer's sigwait takes it, and the
  // shutdown is the signal's (Stop lets the request's answer out first).
  void RequestStop() override;
  Result<Json> DescribeGateway() override;
  Status StopGateway() override;
  Result<Json> UpgradeGateway(const std::string& binary) override;
  // Out of memory: the gateway fails the user's session with why (the
  // event is the API's). Other exits: left to the gateway (a refused
  // connection) and the culler.
  void NotebookExited(const PoolName& pool, const InstanceId& instance, const NotebookExit& exit,
                      const std::string& description) override;

  // ---- GatewayEvents ----

  void StartNotebook(const PoolName& pool, const std::string& user, const std::string& token) override;

  // Off the gateway's thread: the store write may wait for the disk.
  void WakePool(const PoolName& pool) override;
  std::string ExtraMetrics() override;

 private:
  std::string PoolDir(const PoolName& pool) const { return options_.data_dir + "/pools/" + pool.value(); }
  // The host uid of instance `id`'s root: its pool's id block.
  Result<uid_t> InstanceRoot(const InstanceId& id);

  // The users' directories on a pool's share, made on the host: homes and
  // notebooks/<user> (0700, the user's), and ~/notebooks/remote pointing at
  // the latter as instances see it. The instances' root cannot write the
  // share (its ids are not mapped there), so this is the server's job.
  // Parts inside a user's home are made as that user, so a symlink the user
  // planted is never followed with root's rights.
  Status EnsureShareLayout(const Pool& pool, const std::vector<User>& users);
  // <parent> (root's, 0755) and <parent>/<user> (the user's, 0700) for
  // every user; a user's existing folder is left as it is.
  static Status EnsureUserFolders(const std::string& parent, const std::vector<User>& users);
  // EnsureShareLayout for every active pool, and notebooks/<user> on every
  // storage share an instance has mounted, with every user; the errors,
  // each naming its pool or share.
  std::vector<Status> EnsureShares(const std::vector<Pool>& pools);

  // Host paths no instance may see through its image: the server's data,
  // host users' and root's homes, temporary files, logs, host SSH keys and
  // shadow files, and every pool's share source (a share is seen only at
  // its mount path, with its own id mapping).
  std::vector<std::string> MaskedPaths();
  Result<InstanceRequest> BuildRequest(const Pool& pool, const Instance& instance);

  // Keeps agent channels and per-pool files in step with the records: opens
  // the channel of every instance record, closes and removes those of
  // instances that are gone, and removes the key directory of deleted pools.
  void SweepChannels();

  // A request to instance `id`'s agent (AgentChannels::Call).
  Result<Json> CallAgent(const InstanceId& id, const std::string& method, const std::string& path,
                         const std::string& body, std::chrono::seconds timeout);

  // Stops `user`'s Jupyter server on instance `id`; OK also when the agent
  // no longer has it.
  Status StopAgentServer(const InstanceId& id, const std::string& user);

  // The gateway forgets the session, and the culler the agent's counts.
  void ForgetNotebook(const PoolName& pool, const std::string& user);
  struct StartedNotebook {
    InstanceId instance;
    JupyterServer server;
  };

  // Picks an instance for `user`'s notebook server (Ready, open to new ones, in
  // rotation if the gateway probes it, fewest notebook servers), waking the
  // pool if it has none, and asks its agent to start the server. While there
  // is none, it looks again after every write of the records (an instance
  // turning Ready) and every 200 ms (the gateway's probes), for at most the
  // hold timeout.
  Result<StartedNotebook> StartNotebookNow(const PoolName& pool, const std::string& user, const std::string& token);
  // Committed writes of the records so far (RoutesChanged counts them).
  uint64_t RecordWrites();
  // Waits until a write after `seen`, or `until`; false if the server is
  // stopping.
  bool AwaitRecordWrite(uint64_t seen, MonoTime until);

  // ---- CullerHooks ----

  std::vector<Notebook> Notebooks() override;
  Result<std::vector<JupyterServer>> ListServers(const InstanceId& id) override;
  bool InstanceExists(const InstanceId& id) override { return store_->GetInstance(id).ok(); }
  Status StopServer(const InstanceId& id, const std::string& user) override { return StopAgentServer(id, user); }
  void ForgetSession(const PoolName& pool, const std::string& user) override { gateway_->NotebookGone(pool, user); }

  // A connection waits on `name` and no instance can take it: make the
  // pool want one instance that is not draining (CountToWake).
  Status RaiseFromZero(const PoolName& name);

  // The records changed: rebuild the gateway's routing table soon.
  void RoutesChanged();
  // The table's frontend ports become the ones this server reserves
  // (server/port_reservation.h); a failure is logged once, and the pools
  // work on, as they did before reservations.
  void ReservePorts(const RoutingTable& table);
  std::string reserve_error_;  // the last one logged; routes thread only
  void RouteLoop();

  // Channels and share layouts every 2 s; idle notebook servers every
  // cull_check_interval.
  void SweepLoop();
  ServerOptions options_;
  std::optional<TcpApi> listen_;  // the TCP API, if any; its key is moved out at Start
  PortReserver reserved_ports_{options_.data_dir + "/reserved-ports", kReservedPortsPath,
                               kReservedPortsLock};  // routes thread only
  RealClock clock_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<ComputeProvider> provider_;
  GatewayProcessOptions gateway_options_;  // of a gateway process the server starts
  std::unique_ptr<GatewayClient> gateway_;  // made by Start
  // Gateway processes this server started, reaped once they exit.
  std::mutex spawned_mu_;
  std::vector<pid_t> spawned_;  // guarded by spawned_mu_
  Status SpawnGatewayProcess();
  void ReapGateways();
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
  uint64_t record_writes_ = 0;  // guarded by mu_; RoutesChanged
  std::thread sweeper_;
  std::thread router_;
  std::mutex wake_mu_;
  std::atomic<int64_t> wakeups_{0};
};

}  // namespace dspool
