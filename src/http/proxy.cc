// ProxyServer's public face: listeners by port, the workers' start and
// stop, the counters. The workers (proxy_worker.h) run on net's Reactors;
// the connections (proxy_connection.h) are coroutines on them. Worker 0
// exists from Create, so listeners may come before Start; it holds every
// listener and deals the connections out.
#include "http/proxy.h"

#include <algorithm>
#include <mutex>

#include "base/log.h"
#include "http/proxy_internal.h"
#include "http/proxy_worker.h"
#include "net/socket.h"
#include "net/stream.h"

namespace dspool {

namespace {

// listen(2)'s backlog: the kernel caps it at net.core.somaxconn.
constexpr int kListenBacklog = 4096;

}  // namespace

class ProxyServer::Impl {
 public:
  Impl(ProxyRouter& router, ProxyOptions options) : shared_(router, std::move(options)) {}

  ~Impl() {
    Stop();
    workers_.clear();
  }

  Status Init() {
    DSP_ASSIGN_OR_RETURN(auto first, ProxyWorker::Create(shared_, 0));
    acceptor_ = first.get();
    workers_.push_back(std::move(first));
    return Status::Ok();
  }

  Result<uint16_t> Listen(const std::string& address, uint16_t port, const TlsCertificate* certificate) {
    auto listener = std::make_shared<ProxyListener>();
    if (certificate != nullptr) {
      DSP_ASSIGN_OR_RETURN(listener->tls, TlsServerContext::Create(*certificate));
    }
    DSP_ASSIGN_OR_RETURN(listener->fd, ListenTcp(address, port, kListenBacklog, &listener->port));
    listener->tag = std::to_string(listener->port);
    const uint16_t bound = listener->port;
    // Not run if the loop is stopping.
    Status added = FailedPrecondition("the proxy is stopping");
    acceptor_->RunOnLoop([&] { added = acceptor_->AddListener(listener); });
    if (!added.ok()) return added.WithPrefix("listen on " + address + ":" + std::to_string(bound));
    return bound;
  }

  void Unlisten(uint16_t port) {
    acceptor_->RunOnLoop([this, port] { acceptor_->RemoveListener(port); });
  }

  void Start(int threads) {
    std::lock_guard lock(start_mu_);
    if (started_) return;
    started_ = true;
    while (workers_.size() < static_cast<size_t>(std::max(threads, 1))) {
      auto worker = ProxyWorker::Create(shared_, workers_.size());
      if (!worker.ok()) {
        DSP_LOG(kError, "proxy") << "running " << workers_.size() << " of " << threads
                                 << " threads: " << worker.status();
        break;
      }
      workers_.push_back(std::move(*worker));
    }
    std::vector<ProxyWorker*> peers;
    for (auto& w : workers_) peers.push_back(w.get());
    for (auto& w : workers_) w->Start(peers);
  }

  void Stop() {
    std::lock_guard lock(start_mu_);
    for (auto& w : workers_) w->Stop();
    for (auto& w : workers_) w->Join();
  }

  void Wake() {
    std::lock_guard lock(start_mu_);
    for (auto& w : workers_) w->Wake();
  }

  void RoutesChanged() {
    std::lock_guard lock(start_mu_);
    for (auto& w : workers_) w->ReleaseHolds();
  }

  ProxyStats stats() const {
    const ProxyCounters& c = shared_.counters;
    ProxyStats s;
    s.connections_accepted = c.accepted;
    s.connections_active = c.active;
    s.requests = c.requests;
    s.forwarded = c.forwarded;
    s.upstream_connects = c.upstream_connects;
    s.upstream_errors = c.upstream_errors;
    s.tunnels = c.tunnels;
    s.tls_handshake_failures = c.tls_failures;
    s.refused = c.refused;
    return s;
  }

 private:
  ProxyShared shared_;
  // Workers are added by Start (under start_mu_) and live until the end;
  // worker 0, the acceptor, from Init on.
  std::mutex start_mu_;
  bool started_ = false;
  std::vector<std::unique_ptr<ProxyWorker>> workers_;
  // Worker 0: it holds the listeners (and closes them when it stops).
  ProxyWorker* acceptor_ = nullptr;
};

Result<std::unique_ptr<ProxyServer>> ProxyServer::Create(ProxyRouter& router, ProxyOptions options) {
  auto impl = std::make_unique<Impl>(router, std::move(options));
  DSP_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<ProxyServer>(new ProxyServer(std::move(impl)));
}

ProxyServer::ProxyServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProxyServer::~ProxyServer() = default;
Result<uint16_t> ProxyServer::Listen(const std::string& address, uint16_t port) {
  return impl_->Listen(address, port, nullptr);
}

Result<uint16_t> ProxyServer::ListenTls(const std::string& address, uint16_t port, const TlsCertificate& certificate) {
  return impl_->Listen(address, port, &certificate);
}
void ProxyServer::Unlisten(uint16_t port) { impl_->Unlisten(port); }
void ProxyServer::Start(int threads) { impl_->Start(threads); }
void ProxyServer::Stop() { impl_->Stop(); }
void ProxyServer::Wake() { impl_->Wake(); }
void ProxyServer::RoutesChanged() { impl_->RoutesChanged(); }
ProxyStats ProxyServer::stats() const { return impl_->stats(); }

}  // namespace dspool
