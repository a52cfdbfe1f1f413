// WebDispatch: every pool's Jupyter address on one http/ProxyServer. The
// proxy asks one ProxyRouter; this one finds the pool by the port the
// client came in on and hands the request to that pool's WebEntry
// (web_entry.h), which calls back into the gateway's hooks bound to the
// pool (PoolWeb).
//
// Thread safety: WebDispatch's methods may be called from any thread (the
// proxy's workers, the gateway's control thread).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "gateway/gateway.h"
#include "gateway/web_entry.h"
#include "http/proxy.h"

namespace dspool {

// One pool's web entry, with the hooks it calls bound to the pool.
class PoolWeb final : public WebHooks {
 public:
  PoolWeb(PoolName pool, GatewayHooks& hooks, const Clock& clock, const std::string& key)
      : pool_(std::move(pool)), hooks_(hooks), entry(clock, *this, key, WebEntryOptions{}) {}
  std::optional<std::string> PasswordHash(const std::string& user) override { return hooks_.PasswordHash(user); }
  void StartServer(const std::string& user, const std::string& token) override {
    hooks_.StartNotebook(pool_, user, token);
  }
  // The pool's network security groups (RouteSecurity); null: none.
  void SetSecurity(std::shared_ptr<const RouteSecurity> security) {
    std::lock_guard lock(mu_);
    security_ = std::move(security);
  }
  // Whether a client from address:port may reach the pool's Jupyter
  // (kJupyterBackendPort, as the pool's rules see it).
  bool Admits(uint32_t address, uint16_t port) {
    std::shared_ptr<const RouteSecurity> security;
    {
      std::lock_guard lock(mu_);
      security = security_;
    }
    return !security || security->Inbound(address, port, kJupyterBackendPort).allowed;
  }

 private:
  const PoolName pool_;
  GatewayHooks& hooks_;
  std::mutex mu_;
  std::shared_ptr<const RouteSecurity> security_;  // guarded by mu_

 public:
  WebEntry entry;
};

// The ProxyRouter of all pools' web listeners: picks the pool's WebEntry by
// the port the client came in on. Activity tags carry the port in their
// upper half, so two pools' tags never meet.
class WebDispatch final : public ProxyRouter {
 public:
  ProxyRoute Decide(const Request& head) override {
    uint16_t port = 0;
    std::shared_ptr<PoolWeb> web = Find(head.listener_tag, &port);
    if (!web) return ProxyReply{JsonResponse(503, JsonErrorBody("Unavailable", "this address serves no pool now"))};
    ProxyRoute route = web->entry.Decide(head);
    if (auto* f = std::get_if<ProxyForward>(&route)) f->tag |= static_cast<uint64_t>(port) << 32;
    return route;
  }
  Response Serve(const Request& request) override {
    std::shared_ptr<PoolWeb> web = Find(request.listener_tag, nullptr);
    if (!web) return JsonResponse(503, JsonErrorBody("Unavailable", "this address serves no pool now"));
    return web->entry.Serve(request);
  }
  void Activity(uint64_t tag) override {
    std::shared_ptr<PoolWeb> web = Find(std::to_string(tag >> 32), nullptr);
    if (web) web->entry.Activity(tag & 0xffffffffu);
  }
  std::optional<Response> Unreachable(const Request& head, const ProxyForward& forward) override {
    std::shared_ptr<PoolWeb> web = Find(head.listener_tag, nullptr);
    if (!web) return std::nullopt;
    ProxyForward theirs = forward;
    theirs.tag &= 0xffffffffu;
    return web->entry.Unreachable(head, theirs);
  }
  bool Admit(uint32_t address, uint16_t port, uint16_t listener_port) override {
    std::shared_ptr<PoolWeb> web = Find(std::to_string(listener_port), nullptr);
    return !web || web->Admits(address, port);
  }
  void Set(uint16_t port, std::shared_ptr<PoolWeb> web) {
    std::lock_guard lock(mu_);
    if (web) {
      by_port_[port] = std::move(web);
    } else {
      by_port_.erase(port);
    }
  }

 private:
  std::shared_ptr<PoolWeb> Find(const std::string& tag, uint16_t* port_out) {
    uint16_t port = static_cast<uint16_t>(std::atoi(tag.c_str()));
    if (port_out) *port_out = port;
    std::lock_guard lock(mu_);
    auto it = by_port_.find(port);
    return it == by_port_.end() ? nullptr : it->second;
  }
  std::mutex mu_;
  std::map<uint16_t, std::shared_ptr<PoolWeb>> by_port_;
};

}  // namespace dspool
