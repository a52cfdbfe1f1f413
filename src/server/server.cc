#include "server/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <random>
#include <sstream>

#include "base/log.h"
#include "base/metrics.h"
#include "base/version.h"
#include "gateway/routing_table.h"
#include "http/endpoint.h"
#include "identity/session.h"
#include "os/fs.h"
#include "provider/lxc/lxc_provider.h"
#include "server/pool_server.h"
#include "store/sqlite/sqlite_store.h"

namespace dspool {
namespace {

constexpr const char* kLog = "server";

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
  DeploymentOptions deployments{.host = options.deploy_host};
  if (!options.catalog_file.empty()) {
    DSP_ASSIGN_OR_RETURN(std::string text, ReadFile(options.catalog_file));
    Json json;
    DSP_RETURN_IF_ERROR(ParseJsonText(text, options.catalog_file, &json));
    DSP_RETURN_IF_ERROR(deployments.catalog.AddFromJson(json).WithPrefix("--catalog " + options.catalog_file));
  }
  if (!ParseIpv4(options.deploy_host.front_address)) {
    return InvalidArgument("--front-address: '" + options.deploy_host.front_address + "' is not an IPv4 address");
  }
  DSP_RETURN_IF_ERROR(MakeDirs(options.storage_root, 0755).WithPrefix("--storage-root"));
  DSP_ASSIGN_OR_RETURN(auto store, SqliteStore::Open(options.data_dir + "/state.db"));
  DSP_RETURN_IF_ERROR(AssignIdBlocks(*store));
  DSP_ASSIGN_OR_RETURN(auto provider, LxcProvider::Create(options.data_dir + "/lxc"));
  GatewayProcessOptions gateway_options;
  gateway_options.data_dir = options.data_dir;
  gateway_options.log_level = options.log_level;
  // The gateway reads it when it starts; checked (or made) here too, so a
  // broken key is named when the server starts, not when a gateway does.
  DSP_RETURN_IF_ERROR(LoadSessionKey(options.data_dir + "/session.key").status());
  gateway_options.gateway = options.gateway;
  gateway_options.gateway.transparent_connect = provider->transparent_connect().ok();
  DSP_ASSIGN_OR_RETURN(std::string self, SelfExecutable());
  DSP_ASSIGN_OR_RETURN(uint64_t descriptors, RaiseDescriptorLimit());
  DSP_LOG(kDebug, kLog) << "open descriptor limit " << descriptors;
  *out = std::make_unique<PoolServer>(options, std::move(listen), std::move(store), std::move(provider), gateway_options,
                                      self, token, std::move(deployments));
  return Status::Ok();
}

}  // namespace

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

Status PoolServer::Start() {
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
  gateway_ = std::make_unique<GatewayClient>(
      GatewayClientOptions{options_.data_dir + "/gateway.sock", [this] { return SpawnGatewayProcess(); }}, *this);
  DSP_RETURN_IF_ERROR(gateway_->Start().WithPrefix("gateway"));
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

void PoolServer::RequestStop() {
  DSP_LOG(kInfo, kLog) << "stop requested through the API";
  ::kill(::getpid(), SIGTERM);
}

void PoolServer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  if (router_.joinable()) router_.join();
  reconciler_.Stop();
  http_.Stop();
  // The gateway process goes on: the sessions it relays are not the
  // server's to end.
  if (gateway_) gateway_->Stop();
  ReapGateways();
}

Result<Json> PoolServer::DescribeGateway() {
  DSP_ASSIGN_OR_RETURN(dspool::GatewayInfo info, gateway_->Info());
  return GatewayInfoToJson(info);
}

Status PoolServer::StopGateway() {
  DSP_LOG(kInfo, kLog) << "stopping the gateway by request (its connections end)";
  return gateway_->StopGateway();
}

Result<Json> PoolServer::UpgradeGateway(const std::string& binary) {
  DSP_ASSIGN_OR_RETURN(dspool::GatewayInfo before, gateway_->Info());
  const std::string program = binary.empty() ? self_binary_ : binary;
  DSP_ASSIGN_OR_RETURN(int64_t pid, gateway_->Upgrade(GatewayArgv(program, gateway_options_)));
  DSP_LOG(kInfo, kLog) << "gateway upgraded: pid " << before.pid << " handed over to pid " << pid << " (" << program
                       << ")";
  return Json{{"previousPid", before.pid}, {"pid", pid}, {"binary", program}};
}

Status PoolServer::SpawnGatewayProcess() {
  ReapGateways();
  DSP_ASSIGN_OR_RETURN(pid_t pid, SpawnGateway(GatewayArgv(self_binary_, gateway_options_), std::chrono::seconds(30)));
  DSP_LOG(kInfo, kLog) << "started the gateway (pid " << pid << ")";
  std::lock_guard lock(spawned_mu_);
  spawned_.push_back(pid);
  return Status::Ok();
}

void PoolServer::ReapGateways() {
  std::lock_guard lock(spawned_mu_);
  std::erase_if(spawned_, [](pid_t pid) { return ::waitpid(pid, nullptr, WNOHANG) != 0; });
}

std::string PoolServer::ExtraMetrics() {
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
  return out.str() + gateway_->Metrics().value_or("");
}

void PoolServer::RoutesChanged() {
  {
    std::lock_guard lock(mu_);
    routes_dirty_ = true;
    ++record_writes_;
  }
  cv_.notify_all();
}

void PoolServer::RouteLoop() {
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
    auto users = store_->ListUsers();
    Status s = !pools.ok()       ? pools.status()
               : !instances.ok() ? instances.status()
               : !users.ok()     ? users.status()
                                 : Status::Ok();
    if (s.ok()) {
      ReservePorts(BuildRoutingTable(*pools, *instances));
      // The gateway checks Jupyter logins against these, also while this
      // server is down.
      std::map<std::string, std::string> passwords;
      for (const User& u : *users) {
        if (!u.password_hash.empty()) passwords[u.name.value()] = u.password_hash;
      }
      s = gateway_->Apply(*pools, *instances, passwords);
    }
    // Said once per change of error, not on every write.
    if (!s.ok() && s.message() != last_error) DSP_LOG(kError, kLog) << s;
    last_error = s.ok() ? "" : s.message();
  }
}

void PoolServer::ReservePorts(const RoutingTable& table) {
  std::set<uint16_t> want;
  for (const Listener& l : table.listeners) want.insert(l.port);
  for (const WebListener& w : table.web) want.insert(w.port);
  auto said = reserved_ports_.Apply(want);
  if (!said.ok()) {
    if (said.status().message() != reserve_error_) {
      DSP_LOG(kWarning, kLog) << "cannot keep the pools' ports out of the kernel's ephemeral range: "
                              << said.status();
    }
    reserve_error_ = said.status().message();
    return;
  }
  reserve_error_.clear();
  if (!said->empty()) DSP_LOG(kInfo, kLog) << "ports (net.ipv4.ip_local_reserved_ports): " << *said;
}

void PoolServer::SweepLoop() {
  constexpr Duration kSweepInterval = std::chrono::seconds(2);
  // Deleted shares expire by the day: a look a minute is plenty.
  constexpr Duration kPurgeInterval = std::chrono::minutes(1);
  MonoTime next_sweep = clock_.Monotonic() + kSweepInterval;
  MonoTime next_purge = clock_.Monotonic();
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
    if (now >= next_purge) {
      for (const Status& s : api_.PurgeExpiredShares()) DSP_LOG(kWarning, kLog) << s;
      next_purge = now + kPurgeInterval;
    }
    if (now >= next_cull) {
      if (auto pools = store_->ListPools(); pools.ok()) culler_.Check(*pools);
      next_cull = clock_.Monotonic() + options_.cull_check_interval;
    }
  }
}


int RunServer(const ServerOptions& options) {
  SetLogLevel(options.log_level);
  // Signals are taken by sigwait below, on this thread only.
  const sigset_t set = BlockStopSignals();

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
