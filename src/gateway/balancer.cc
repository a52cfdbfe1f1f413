#include "gateway/balancer.h"

namespace dspool {
namespace {

// SplitMix64 finaliser: a well-mixed 64-bit score from a 64-bit input.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t HashBytes(std::string_view s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a, then mixed
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return Mix(h);
}

uint64_t FlowHash(Distribution mode, const FlowKey& f) {
  uint64_t h = Mix((uint64_t{f.src_ip} << 32) | f.dst_ip);
  switch (mode) {
    case Distribution::kDefault:
      h = Mix(h ^ ((uint64_t{f.src_port} << 24) | (uint64_t{f.dst_port} << 8) | static_cast<uint8_t>(f.protocol)));
      break;
    case Distribution::kSourceIPProtocol:
      h = Mix(h ^ static_cast<uint8_t>(f.protocol));
      break;
    case Distribution::kSourceIP:
    case Distribution::kLeastConnections:
      break;
  }
  return h;
}

bool Eligible(const Backend& b) { return b.in_rotation && !b.draining; }

}  // namespace

std::optional<InstanceId> PickBackend(Distribution mode, const FlowKey& flow, const std::vector<Backend>& backends) {
  const Backend* best = nullptr;
  if (mode == Distribution::kLeastConnections) {
    for (const Backend& b : backends) {
      if (!Eligible(b)) continue;
      if (best == nullptr || b.active_connections < best->active_connections ||
          (b.active_connections == best->active_connections && b.index < best->index)) {
        best = &b;
      }
    }
  } else {
    uint64_t key = FlowHash(mode, flow);
    uint64_t best_score = 0;
    for (const Backend& b : backends) {
      if (!Eligible(b)) continue;
      uint64_t score = Mix(key ^ HashBytes(b.id.value()));
      if (best == nullptr || score > best_score || (score == best_score && b.id < best->id)) {
        best = &b;
        best_score = score;
      }
    }
  }
  if (best == nullptr) return std::nullopt;
  return best->id;
}

}  // namespace dspool
