// What the parts of one ProxyServer (proxy.h) share: the router, the
// options and the counters. Internal to the proxy's files:
//
//   proxy.cc             ProxyServer: listeners, Start and Stop, stats
//   proxy_worker.cc      ProxyWorker: a thread and its Reactor, accepting
//                        and handing off, the buffer and upstream pools
//   proxy_connection.cc  ClientConnection, the client side: TLS, request
//                        heads, routing, local answers, lingering close
//   proxy_forward.cc     ClientConnection, the upstream side: forwarding,
//                        bodies, responses, tunnels
//   response_writer.cc   the responses the proxy writes itself
//
// Thread safety: the router is called from every worker at once (it is
// thread-safe, proxy.h says so); options are immutable; counters atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

#include "http/proxy.h"

namespace dspool {

struct ProxyCounters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> active{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> forwarded{0};
  std::atomic<uint64_t> upstream_connects{0};
  std::atomic<uint64_t> upstream_errors{0};
  std::atomic<uint64_t> tunnels{0};
  std::atomic<uint64_t> tls_failures{0};
  std::atomic<uint64_t> refused{0};
};

struct ProxyShared {
  ProxyShared(ProxyRouter& r, ProxyOptions o) : router(r), options(std::move(o)) {}
  ProxyRouter& router;
  const ProxyOptions options;
  ProxyCounters counters;
};

}  // namespace dspool
