#include "gateway/gateway_impl.h"

#include "base/log.h"
#include "model/ipv4.h"

namespace dspool {

using namespace gateway_internal;

void Gateway::Impl::ScheduleProbe(const PoolName& pool, const InstanceId& id, Probe& p, std::chrono::milliseconds delay) {
  p.next = loop_->RunAfter(delay, [this, pool, id, name = p.spec.name] { RunProbe(pool, id, name); });
}

Gateway::Impl::Probe* Gateway::Impl::FindProbeFor(const PoolName& pool, const InstanceId& id, const std::string& name) {
  Backend* b = FindBackend(pool, id);
  if (!b) return nullptr;
  auto it = b->probes.find(name);
  return it == b->probes.end() ? nullptr : it->second.get();
}

void Gateway::Impl::RunProbe(const PoolName& pool, const InstanceId& id, const std::string& name) {
  Backend* b = FindBackend(pool, id);
  Probe* p = FindProbeFor(pool, id, name);
  if (!b || !p) return;
  p->next = 0;
  p->started = loop_->now();
  auto port = static_cast<uint16_t>(p->spec.port);
  // As on Azure, a probe is a flow from the load balancer (the
  // AzureLoadBalancer tag): a rule that denies it fails the probe.
  if (auto routes = pools_.find(pool); routes != pools_.end() && routes->second.security) {
    const RouteSecurity& security = *routes->second.security;
    SecurityVerdict verdict = security.Inbound(security.tags.load_balancer, kProbeSourcePort, p->spec.port);
    if (!verdict.allowed) {
      DSP_LOG(kDebug, kLog) << "probe " << p->spec.name << " of instance " << id << ": " << verdict.Explain();
      return ProbeDone(pool, id, *p, false);
    }
  }
  auto fd = StartConnectTcp(b->route.address, port);
  if (!fd.ok()) return ProbeDone(pool, id, *p, false);
  p->fd = std::move(*fd);
  p->reply.clear();
  auto timeout = std::min<std::chrono::milliseconds>(std::chrono::seconds(p->spec.interval_seconds),
                                                     kMaxProbeTimeout);
  Status s = loop_->Watch(p->fd.get(), Reactor::kWritable,
                          [this, pool, id, name](uint32_t events) { ProbeEvent(pool, id, name, events); });
  if (!s.ok()) return ProbeDone(pool, id, *p, false);
  p->next = loop_->RunAfter(timeout, [this, pool, id, name] {
    if (Probe* probe = FindProbeFor(pool, id, name)) {
      probe->next = 0;
      ProbeDone(pool, id, *probe, false);
    }
  });
}

void Gateway::Impl::ProbeEvent(const PoolName& pool, const InstanceId& id, const std::string& name, uint32_t events) {
  Backend* b = FindBackend(pool, id);
  Probe* p = FindProbeFor(pool, id, name);
  if (!b || !p || !p->fd.valid()) return;
  if (p->reply.empty() && (events & Reactor::kWritable)) {
    // The handshake ended.
    if (!FinishConnect(p->fd.get(), b->route.address, static_cast<uint16_t>(p->spec.port)).ok()) {
      return ProbeDone(pool, id, *p, false);
    }
    if (p->spec.protocol == ProbeProtocol::kTcp) return ProbeDone(pool, id, *p, true);
    std::string request = "GET " + p->spec.path + " HTTP/1.1\r\nHost: " + FormatIpv4(b->route.address) +
                          "\r\nUser-Agent: dspool-probe\r\nConnection: close\r\n\r\n";
    // A few dozen bytes into an empty socket buffer: one write takes them.
    auto sent = TrySend(p->fd, request);
    if (!sent.ok() || *sent != request.size()) return ProbeDone(pool, id, *p, false);
    p->reply = " ";  // marks "request sent"; the reply is appended after it
    if (!loop_->Change(p->fd.get(), Reactor::kReadable).ok()) return ProbeDone(pool, id, *p, false);
    return;
  }
  char buf[512];
  auto n = TryRecv(p->fd, buf, sizeof(buf));
  if (n.ok() && !*n) return;  // nothing yet
  if (!n.ok() || **n == 0) return ProbeDone(pool, id, *p, false);
  p->reply.append(buf, **n);
  size_t eol = p->reply.find("\r\n");
  if (eol == std::string::npos) {
    if (p->reply.size() > kMaxHttpStatusLine) ProbeDone(pool, id, *p, false);
    return;
  }
  // " HTTP/1.1 200 OK": Azure counts only 200 as healthy.
  std::string_view line(p->reply.data() + 1, eol - 1);
  bool ok = line.rfind("HTTP/1.", 0) == 0 && line.size() >= 12 && line.substr(8, 5) == " 200 ";
  ok = ok || (line.size() == 12 && line.substr(8) == " 200");
  ProbeDone(pool, id, *p, ok);
}

void Gateway::Impl::ProbeDone(const PoolName& pool_name, const InstanceId& id, Probe& p, bool success) {
  if (p.fd.valid()) {
    loop_->Unwatch(p.fd.get());
    p.fd.reset();
  }
  if (p.next) loop_->Cancel(p.next);
  p.next = 0;
  bool changed = p.tracker.Record(success);
  if (changed) {
    Count(&GatewayCounters::probe_transitions);
    DSP_LOG(kInfo, kLog) << "instance " << id << " of pool " << pool_name << " is "
                         << (p.tracker.in_rotation() ? "in rotation" : "out of rotation") << " (probe "
                         << p.spec.name << ", " << (success ? "answered" : "no answer") << ")";
    PublishHealth();
  }
  // Counted once its outcome is published: a reader that sees the count
  // sees the health it led to.
  {
    std::lock_guard lock(mu_);
    ++counters_.probes;
    if (!success) ++counters_.probe_failures;
  }
  // Probes start every interval, however long each took.
  std::chrono::milliseconds next = options_.fast_probe_interval;
  if (p.tracker.ever_succeeded()) {
    auto due = p.started + std::chrono::seconds(p.spec.interval_seconds);
    next = std::max(std::chrono::milliseconds(0),
                    std::chrono::ceil<std::chrono::milliseconds>(due - loop_->now()));
  }
  ScheduleProbe(pool_name, id, p, next);
  if (changed && p.tracker.in_rotation()) RetryHeld(pool_name);
}

void Gateway::Impl::StopProbe(Probe& p) {
  if (p.fd.valid()) {
    loop_->Unwatch(p.fd.get());
    p.fd.reset();
  }
  if (p.next) loop_->Cancel(p.next);
  p.next = 0;
  p.tracker.Remove();
}

}  // namespace dspool
