#include "server/notebook_culler.h"

#include <algorithm>
#include <set>

#include "base/log.h"
#include "reconcile/planner.h"

namespace dspool {
namespace {

constexpr const char* kLog = "culler";

}  // namespace

void NotebookCuller::Check(const std::vector<Pool>& pools) {
  std::map<InstanceId, std::vector<JupyterServer>> reported;
  const MonoTime now = clock_.Monotonic();
  const std::vector<CullerHooks::Notebook> notebooks = hooks_.Notebooks();
  {
    // The figures of a server the gateway forgot (it went with its
    // instance) are not a new server's.
    std::set<std::pair<PoolName, std::string>> ready;
    for (const CullerHooks::Notebook& n : notebooks) {
      if (n.session.state == NotebookSession::State::kReady) ready.insert({n.pool, n.session.user});
    }
    std::lock_guard lock(mu_);
    std::erase_if(activity_, [&](const auto& kv) { return !ready.count(kv.first); });
  }
  for (const CullerHooks::Notebook& n : notebooks) {
    if (n.session.state != NotebookSession::State::kReady) continue;
    auto pool = std::find_if(pools.begin(), pools.end(), [&](const Pool& p) { return p.name() == n.pool; });
    if (pool == pools.end() || !pool->spec.jupyter) continue;
    const InstanceId& id = n.session.instance;
    const std::string& user = n.session.user;
    if (!reported.count(id)) {
      auto list = hooks_.ListServers(id);
      if (!list.ok()) {
        // Its agent does not answer now: ask again next round. Or the
        // instance is gone, and its servers with it: the gateway forgets
        // those when the instance leaves its routing table.
        if (hooks_.InstanceExists(id)) DSP_LOG(kWarning, kLog) << "idle check of " << id << ": " << list.status();
        continue;
      }
      reported[id] = std::move(*list);
    }
    const auto& servers = reported[id];
    auto server = std::find_if(servers.begin(), servers.end(), [&](const JupyterServer& s) {
      return s.user == user && s.state != JupyterState::kExited;
    });
    if (server == servers.end()) {
      ForgetSession(n.pool, user);
      continue;
    }
    {
      std::lock_guard lock(mu_);
      activity_[{n.pool, user}] = *server;
    }
    const auto cull = std::chrono::minutes(pool->spec.jupyter->cull_idle_minutes);
    if (!NotebookIdle(n.session.last_traffic, *server, now, cull)) continue;
    DSP_LOG(kInfo, kLog) << "culling the notebook server of " << user << " in pool " << n.pool << ": idle for "
                         << cull.count() << " min (no traffic, no activity, no busy kernel or terminal)";
    if (Status s = hooks_.StopServer(id, user); !s.ok()) {
      DSP_LOG(kWarning, kLog) << "culling the notebook server of " << user << ": " << s;
      continue;
    }
    ForgetSession(n.pool, user);
    ++culled_;
  }
}

std::optional<JupyterServer> NotebookCuller::Activity(const PoolName& pool, const std::string& user) const {
  std::lock_guard lock(mu_);
  auto it = activity_.find({pool, user});
  if (it == activity_.end()) return std::nullopt;
  return it->second;
}

void NotebookCuller::Forget(const PoolName& pool, const std::string& user) {
  std::lock_guard lock(mu_);
  activity_.erase({pool, user});
}

void NotebookCuller::ForgetSession(const PoolName& pool, const std::string& user) {
  hooks_.ForgetSession(pool, user);
  Forget(pool, user);
}

}  // namespace dspool
