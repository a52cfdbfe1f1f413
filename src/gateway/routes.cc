#include "gateway/gateway_impl.h"

#include <string.h>

#include "base/log.h"
#include "model/ipv4.h"

namespace dspool {

using namespace gateway_internal;

Status Gateway::Impl::ApplyOnLoop(RoutingTable table) {
  // Handed over to a successor, which routes from now on.
  if (listening_stopped_) return Status::Ok();
  std::vector<std::string> errors;
  std::map<ListenerKey, Listener> wanted;
  for (const Listener& l : table.listeners) wanted[{l.address, l.port}] = l;
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (wanted.count(it->first)) {
      it->second->spec = wanted[it->first];
      ++it;
      continue;
    }
    DSP_LOG(kInfo, kLog) << "stops listening on " << Where(it->first);
    loop_->Unwatch(it->second->fd.get());
    loop_->Cancel(it->second->resume);
    it = listeners_.erase(it);
  }
  for (const auto& [key, spec] : wanted) {
    if (listeners_.count(key)) continue;
    auto fd = ListenTcp(FormatIpv4(key.first), key.second, options_.backlog, nullptr);
    if (!fd.ok()) {
      errors.push_back(fd.status().message() + " (pool " + spec.pool.value() + ")");
      continue;
    }
    auto open = std::make_unique<OpenListener>(OpenListener{spec, std::move(*fd)});
    if (Status s = WatchListener(*open); !s.ok()) {
      errors.push_back(Where(key) + ": " + s.message());
      continue;
    }
    listeners_[key] = std::move(open);
    DSP_LOG(kInfo, kLog) << "listening on " << Where(key) << " for pool " << spec.pool << " ("
                         << (spec.rule ? "rule " + spec.rule->name : "NAT slot " + std::to_string(*spec.nat_index))
                         << " → port " << spec.backend_port << ")";
  }
  ApplyWeb(table, errors);
  {
    std::lock_guard lock(mu_);
    open_keys_.clear();
    for (const auto& [key, l] : listeners_) open_keys_.insert(key);
    for (const auto& [key, l] : web_open_) open_keys_.insert(key);
  }

  // Pools and backends.
  std::set<PoolName> in_table;
  for (const auto& [name, backends] : table.backends) in_table.insert(name);
  for (auto it = pools_.begin(); it != pools_.end();) {
    if (in_table.count(it->first)) {
      ++it;
      continue;
    }
    for (auto& [id, b] : it->second.backends) RetireBackend(*b);
    std::set<uint64_t> held = it->second.held;
    for (uint64_t id : held) CloseConn(id);
    loop_->Cancel(it->second.wake_timer);
    it = pools_.erase(it);
  }
  for (const auto& [name, routes] : table.backends) {
    PoolRoutes& pool = pools_[name];
    pool.probes = table.probes[name];
    auto security = table.security.find(name);
    pool.security = security == table.security.end() ? nullptr : security->second;
    pool.rules.clear();
    for (const Listener& l : table.listeners) {
      if (l.pool == name && l.rule) pool.rules.push_back(*l.rule);
    }
    std::set<InstanceId> seen;
    for (const RouteBackend& r : routes) {
      seen.insert(r.id);
      auto& slot = pool.backends[r.id];
      if (!slot) slot = std::make_unique<Backend>();
      Backend& b = *slot;
      b.route = r;
      SyncProbes(name, b, pool.probes);
    }
    for (auto it = pool.backends.begin(); it != pool.backends.end();) {
      if (seen.count(it->first)) {
        ++it;
        continue;
      }
      DSP_LOG(kInfo, kLog) << "instance " << it->first << " leaves pool " << name << "'s rotation";
      RetireBackend(*it->second);
      it = pool.backends.erase(it);
    }
  }
  PublishHealth();
  ForgetLostNotebooks(table);
  for (auto& [name, pool] : pools_) RetryHeld(name);

  if (errors.empty()) return Status::Ok();
  std::string message = "gateway cannot listen on";
  for (const std::string& e : errors) message += " " + e + ";";
  message.pop_back();
  return Unavailable(message);
}

Result<uint16_t> Gateway::Impl::ListenWeb(const ListenerKey& key, const WebListener& w) {
  if (w.certificate_file.empty()) return web_->Listen(FormatIpv4(key.first), key.second);
  DSP_ASSIGN_OR_RETURN(TlsCertificate certificate, ReadTlsCertificate(w.certificate_file, w.key_file));
  auto port = web_->ListenTls(FormatIpv4(key.first), key.second, certificate);
  explicit_bzero(certificate.key_pem.data(), certificate.key_pem.size());
  return port;
}

void Gateway::Impl::ApplyWeb(const RoutingTable& table, std::vector<std::string>& errors) {
  std::map<ListenerKey, WebListener> wanted;
  for (const WebListener& w : table.web) wanted[{w.address, w.port}] = w;
  for (auto it = web_open_.begin(); it != web_open_.end();) {
    auto want = wanted.find(it->first);
    if (want != wanted.end() && want->second == it->second) {
      ++it;
      continue;
    }
    DSP_LOG(kInfo, kLog) << "stops serving Jupyter on " << Where(it->first);
    web_->Unlisten(it->first.second);
    dispatch_.Set(it->first.second, nullptr);
    it = web_open_.erase(it);
  }
  std::set<PoolName> pools;
  auto security_of = [&](const PoolName& pool) -> std::shared_ptr<const RouteSecurity> {
    auto it = table.security.find(pool);
    return it == table.security.end() ? nullptr : it->second;
  };
  {
    // Before any new port opens: its first client meets today's rules.
    std::lock_guard lock(web_mu_);
    for (const auto& [name, web] : web_pools_) web->SetSecurity(security_of(name));
  }
  for (const auto& [key, w] : wanted) {
    pools.insert(w.pool);
    if (web_open_.count(key)) continue;
    auto port = ListenWeb(key, w);
    if (!port.ok()) {
      errors.push_back(port.status().message() + " (Jupyter of pool " + w.pool.value() + ")");
      continue;
    }
    std::lock_guard lock(web_mu_);
    auto& web = web_pools_[w.pool];
    if (!web) {
      web = std::make_shared<PoolWeb>(w.pool, hooks_, *options_.clock, session_key_);
      web->SetSecurity(security_of(w.pool));
    }
    dispatch_.Set(key.second, web);
    web_open_[key] = w;
    DSP_LOG(kInfo, kLog) << "serving Jupyter for pool " << w.pool << " on " << Where(key)
                         << (w.certificate_file.empty() ? " (no TLS)" : " (TLS)");
  }
  std::lock_guard lock(web_mu_);
  std::erase_if(web_pools_, [&](const auto& kv) { return !pools.count(kv.first); });
}

void Gateway::Impl::ForgetLostNotebooks(const RoutingTable& table) {
  std::lock_guard lock(web_mu_);
  for (const auto& [pool, web] : web_pools_) {
    std::set<InstanceId> ready;
    if (auto it = table.backends.find(pool); it != table.backends.end()) {
      for (const RouteBackend& b : it->second) {
        if (b.ready) ready.insert(b.id);
      }
    }
    for (const std::string& user : web->entry.KeepServersOn(ready)) {
      DSP_LOG(kInfo, kLog) << "the notebook server of " << user << " in pool " << pool
                           << " went with its instance: forgotten, the next request starts a new one";
    }
  }
}

void Gateway::Impl::RetireBackend(Backend& b) {
  // Relayed connections go on; their entries in relayed_ keep the count.
  for (auto& [name, probe] : b.probes) StopProbe(*probe);
}

void Gateway::Impl::SyncProbes(const PoolName& pool, Backend& b, const std::vector<ProbeSpec>& specs) {
  for (auto it = b.probes.begin(); it != b.probes.end();) {
    auto spec = std::find_if(specs.begin(), specs.end(), [&](const ProbeSpec& s) { return s.name == it->first; });
    if (b.route.ready && !b.route.draining && spec != specs.end() && *spec == it->second->spec) {
      ++it;
      continue;
    }
    StopProbe(*it->second);
    it = b.probes.erase(it);
  }
  // A draining instance gets nothing new: no need to know its health.
  if (!b.route.ready || b.route.draining) return;
  for (const ProbeSpec& s : specs) {
    if (b.probes.count(s.name)) continue;
    auto& probe = b.probes[s.name] = std::make_unique<Probe>(s);
    ScheduleProbe(pool, b.route.id, *probe, std::chrono::milliseconds(0));
  }
}

}  // namespace dspool
