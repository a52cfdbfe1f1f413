// NotebookCuller: stops users' notebook servers that have been idle for
// their pool's jupyter.cullIdleMinutes, and keeps the agents' last word on
// each server (kernels, busy kernels and terminals) for `session list`.
//
// One Check() per cull interval (the server's sweeper calls it):
//
//   every notebook the gateway has Ready ──► its instance's agent lists its
//   servers (one call per instance; no answer: next round) ──► the user's
//   server there?
//        no (exited) ──► forget the session
//        yes ──► remember its figures ──► NotebookIdle (reconcile/planner.h):
//                no gateway traffic and no activity of its own for the
//                cull time, no busy kernel or terminal ──► stop it, forget it
//
// Idleness is measured on the monotonic clock only: the gateway's last
// traffic (NotebookSession::last_traffic) and the agent's idle_for, so a
// step of the wall clock culls nothing. Tests drive Check() on a
// SimulatedClock with fake hooks.
//
// Thread safety: Check() runs on one thread at a time; Activity() may be
// called from any thread.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "gateway/web_entry.h"
#include "model/jupyter.h"
#include "model/pool.h"

namespace dspool {

// What the culler needs from the rest of the server.
class CullerHooks {
 public:
  virtual ~CullerHooks() = default;
  struct Notebook {
    PoolName pool;
    NotebookSession session;
  };
  // The gateway's notebook sessions, every pool.
  virtual std::vector<Notebook> Notebooks() = 0;
  // Instance `id`'s agent's listing of its servers; an error when it does
  // not answer.
  virtual Result<std::vector<JupyterServer>> ListServers(const InstanceId& id) = 0;
  // Whether instance `id` has a record (an agent that does not answer is
  // worth a warning only then; the gateway forgets the sessions of an
  // instance that is gone).
  virtual bool InstanceExists(const InstanceId& id) = 0;
  // Stops `user`'s server on instance `id` (OK when it is gone already).
  virtual Status StopServer(const InstanceId& id, const std::string& user) = 0;
  // The gateway forgets `user`'s session in `pool` (the next request starts
  // a new server).
  virtual void ForgetSession(const PoolName& pool, const std::string& user) = 0;
};

class NotebookCuller {
 public:
  // `clock` and `hooks` must outlive this object.
  NotebookCuller(const Clock& clock, CullerHooks& hooks) : clock_(clock), hooks_(hooks) {}

  // One round, for `pools` as recorded (cullIdleMinutes from each spec).
  void Check(const std::vector<Pool>& pools);

  // The agent's last listing of `user`'s server in `pool`, if any.
  std::optional<JupyterServer> Activity(const PoolName& pool, const std::string& user) const;
  // The culler no longer reports on `user`'s server in `pool` (the session
  // was stopped by request).
  void Forget(const PoolName& pool, const std::string& user);

  int64_t culled() const { return culled_.load(); }

 private:
  void ForgetSession(const PoolName& pool, const std::string& user);

  const Clock& clock_;
  CullerHooks& hooks_;
  mutable std::mutex mu_;
  std::map<std::pair<PoolName, std::string>, JupyterServer> activity_;  // guarded by mu_
  std::atomic<int64_t> culled_{0};
};

}  // namespace dspool
