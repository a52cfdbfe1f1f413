// GatewayClient: the server's end of the gateway's control channel
// (control.h). It connects to the gateway process of the data directory,
// starting one if none answers, and keeps the link: when the gateway goes
// (killed, crashed, replaced by an upgrade) it connects again, starting a
// new one if need be, and gives it the last records applied, so the
// routing table is never stale for longer than a reconnect.
//
//   Start ─► connect ──refused/none──► spawn (SpawnGateway) ─► wait for its socket
//              │ hello (protocol checked)
//              ▼
//           linked ── calls (Apply, Health, ...) ◄─► answers
//              │      events (wake, startNotebook) ─► GatewayEvents
//              └─ link lost ─► calls fail (Unavailable) ─► connect again
//
// Calls made while the link is down fail at once with Unavailable, except
// Apply, whose records are kept and sent on the next link.
//
// Thread safety: every method may be called from any thread; events are
// delivered on the client's link thread, one at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "gateway/control.h"
#include "gateway/gateway.h"
#include "model/instance.h"
#include "model/pool.h"
#include "os/unique_fd.h"

namespace dspool {

// What the gateway asks of the server (GatewayHooks' WakePool and
// StartNotebook, across the process boundary). Must not block for long.
class GatewayEvents {
 public:
  virtual ~GatewayEvents() = default;
  virtual void WakePool(const PoolName& pool) = 0;
  virtual void StartNotebook(const PoolName& pool, const std::string& user, const std::string& token) = 0;
};

struct GatewayClientOptions {
  std::string socket_path;
  // Starts a gateway process when none answers on socket_path; returns once
  // it serves (or why it could not start).
  std::function<Status()> spawn;
  std::chrono::milliseconds call_timeout{15000};
  // Between attempts to link again.
  std::chrono::milliseconds retry_interval{200};
};

class GatewayClient {
 public:
  GatewayClient(GatewayClientOptions options, GatewayEvents& events);
  ~GatewayClient();  // Stop()s
  GatewayClient(const GatewayClient&) = delete;
  GatewayClient& operator=(const GatewayClient&) = delete;

  // Links to the gateway (starting one if need be) and keeps the link.
  // Fails if no gateway answers and none could be started.
  Status Start();
  void Stop();

  // The records the routing table is built from, and the users' password
  // hashes; kept and given to every gateway linked later.
  Status Apply(const std::vector<Pool>& pools, const std::vector<Instance>& instances,
               const std::map<std::string, std::string>& passwords);
  Status CheckListen(const PoolSpec& spec);
  std::optional<InstanceHealth> Health(const InstanceId& id);
  Result<std::string> Metrics();
  void NotebookReady(const PoolName& pool, const std::string& user, const InstanceId& instance, uint32_t address,
                     uint16_t port);
  void NotebookFailed(const PoolName& pool, const std::string& user, const std::string& error);
  void NotebookGone(const PoolName& pool, const std::string& user);
  // Gateway::NotebookLost across the channel; false also when the gateway
  // could not be asked (logged).
  bool NotebookLost(const PoolName& pool, const std::string& user, const InstanceId& instance, uint16_t port,
                    const std::string& why);
  Result<std::vector<Gateway::PoolNotebook>> Notebooks();
  Result<std::vector<RelayedConnection>> Connections();
  Result<GatewayInfo> Info();
  // Asks the gateway to stop (closing its connections); none is started
  // again by this client. / Hands over to the process `argv` starts
  // (control.h, `upgrade`): the new process's pid, once it serves.
  Status StopGateway();
  Result<int64_t> Upgrade(const std::vector<std::string>& argv);

 private:
  struct Waiter {
    bool done = false;
    Result<Json> result = Unavailable("no answer");
  };
  Result<Json> Call(const std::string& name, Json arguments);
  Result<Json> Call(const std::string& name, Json arguments, std::chrono::milliseconds timeout);
  // Connects (spawning a gateway if none answers) and reads the hello.
  Status Link();
  void LinkLoop();
  // Reads answers and events until the link breaks.
  Status ReadLoop(int fd);
  void Unlinked(const Status& why);

  const GatewayClientOptions options_;
  GatewayEvents& events_;
  std::thread link_thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;         // guarded by mu_
  bool linked_ = false;           // guarded by mu_
  bool may_spawn_ = true;         // guarded by mu_; false after StopGateway
  Status first_link_;             // guarded by mu_: how the first attempt went
  bool first_link_done_ = false;  // guarded by mu_
  std::shared_ptr<UniqueFd> fd_;  // guarded by mu_; the link
  std::mutex write_mu_;           // one frame at a time on fd_
  uint64_t next_id_ = 1;          // guarded by mu_
  std::map<uint64_t, std::shared_ptr<Waiter>> waiters_;  // guarded by mu_
  std::optional<Json> last_apply_;  // guarded by mu_: the arguments of the last Apply
  std::optional<GatewayInfo> info_;  // guarded by mu_: the hello of the gateway linked now
};

}  // namespace dspool
