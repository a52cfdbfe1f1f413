// GatewayService: a Gateway as a process of its own (`dspool gateway`),
// driven by `dspool server` over the control channel (control.h). The
// relayed connections and the notebook WebSockets live here, so the server
// can be stopped, killed or upgraded while they go on; the gateway keeps
// routing with the last table it was given, keeps the users' password
// hashes for Jupyter logins, and asks the next server for what it asked the
// last one and got no answer to (a notebook server's start). Wakes are asked
// for again every second anyway while connections wait (gateway.h).
//
//   controller (server) ──connect──► hello ─► pending startNotebook again
//        │  apply / health / ... ──► Gateway
//        ◄── wake, startNotebook ─── GatewayHooks
//
// Only root may connect (the socket is 0600, and the peer's uid is checked).
// One controller at a time: a new one replaces the old, whose calls end.
//
// Thread safety: Start and Stop from one thread; the rest is internal.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "base/result.h"
#include "gateway/control.h"
#include "gateway/gateway.h"
#include "os/unique_fd.h"

namespace dspool {

struct GatewayServiceOptions {
  // The server's data directory: a pool's Jupyter certificate and key are
  // pools/<pool>/jupyter.{crt,key} there unless its spec names its own.
  std::string data_dir;
  // What `info` says of this process.
  GatewayInfo info;
  // A controller asked the gateway to stop (the `stop` call). Called on the
  // controller's thread after the answer went out.
  std::function<void()> on_stop;
  // <data dir>/gateway.lock, held by this process: an upgrade hands it on.
  int lock_fd = -1;
};

class GatewayService final : private GatewayHooks {
 public:
  static Result<std::unique_ptr<GatewayService>> Create(GatewayOptions gateway, GatewayServiceOptions options);
  ~GatewayService() override;
  GatewayService(const GatewayService&) = delete;
  GatewayService& operator=(const GatewayService&) = delete;

  // Starts the gateway, then serves controllers on `listener` (a listening
  // Unix stream socket).
  Status Start(UniqueFd listener);
  // Stops serving controllers and the gateway (closing every connection).
  void Stop();

  // The successor's side of an upgrade (handoff.h): after Start on the
  // handed control socket, with the listeners adopted (net/socket.h
  // AdoptListeners), takes the old gateway's state: applies its records,
  // and takes its notebook sessions and unanswered starts.
  Status TakeOver(const Json& state);
  // Whether this gateway handed over to a successor (an `upgrade` call
  // succeeded): it listens no more and serves no controller, and is done
  // once gateway().OpenConnections() is zero.
  bool handed_over() const { return handed_over_.load(); }

  Gateway& gateway() { return *gateway_; }

 private:
  struct Controller;
  explicit GatewayService(GatewayServiceOptions options) : options_(std::move(options)) {}

  void AcceptLoop();
  void Serve(std::shared_ptr<Controller> c);
  // The answer to one call (a result, or the error).
  Result<Json> Handle(const Json& call);
  // `upgrade`: starts `argv` with --takeover-fd, hands over (handoff.h);
  // the new process's pid.
  Result<Json> Upgrade(std::vector<std::string> argv);
  // Sends `message` to the current controller, if any; a controller that
  // cannot take it is dropped.
  void Send(const Json& message);

  // ---- GatewayHooks ----
  void WakePool(const PoolName& pool) override;
  std::optional<std::string> PasswordHash(const std::string& user) override;
  void StartNotebook(const PoolName& pool, const std::string& user, const std::string& token) override;

  GatewayServiceOptions options_;
  std::unique_ptr<Gateway> gateway_;
  UniqueFd listener_;
  UniqueFd stop_read_, stop_write_;  // a pipe: the accept loop's wake-up
  std::thread acceptor_;
  std::thread controller_thread_;  // serving the current controller (accept loop and Stop only)

  std::mutex mu_;
  std::shared_ptr<Controller> current_;  // guarded by mu_
  std::map<std::string, std::string> passwords_;  // guarded by mu_; user → crypt(3) hash
  Json last_apply_;  // guarded by mu_: the last apply call's arguments, for a successor
  std::atomic<bool> handed_over_{false};
  std::atomic<int64_t> upgrades_{0};  // GatewayInfo::upgrades
  // startNotebook sent and not yet answered, by (pool, user): the token.
  std::map<std::pair<PoolName, std::string>, std::string> pending_starts_;  // guarded by mu_
};

}  // namespace dspool
