// http_proxy: ProxyServer alone, for bench/http_proxy.sh. Every request is
// forwarded, target unchanged, to one upstream on 127.0.0.1.
//
//   http_proxy --port=PORT --upstream-port=PORT [--cert=PEM --key=PEM] [--threads=N]
//
// Without --cert/--key it listens without TLS. Runs until SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "http/proxy.h"
#include "os/fs.h"

namespace {

class ForwardAll : public dspool::ProxyRouter {
 public:
  explicit ForwardAll(uint16_t port) : port_(port) {}
  dspool::ProxyRoute Decide(const dspool::Request& head) override {
    dspool::ProxyForward f;
    f.address = 0x7f000001;
    f.port = port_;
    f.target = head.target;
    return f;
  }
  dspool::Response Serve(const dspool::Request&) override { return {}; }
  void Activity(uint64_t) override {}

 private:
  uint16_t port_;
};

std::string Flag(int argc, char** argv, const char* name, const char* fallback) {
  std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) return argv[i] + prefix.size();
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  int port = std::atoi(Flag(argc, argv, "port", "0").c_str());
  int upstream = std::atoi(Flag(argc, argv, "upstream-port", "0").c_str());
  int threads = std::atoi(Flag(argc, argv, "threads", "2").c_str());
  std::string cert = Flag(argc, argv, "cert", ""), key = Flag(argc, argv, "key", "");
  if (port <= 0 || upstream <= 0) {
    std::fprintf(stderr, "usage: http_proxy --port=PORT --upstream-port=PORT [--cert=PEM --key=PEM] [--threads=N]\n");
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // the proxy's threads inherit it
  ForwardAll router(static_cast<uint16_t>(upstream));
  auto proxy = dspool::ProxyServer::Create(router, dspool::ProxyOptions{});
  if (!proxy.ok()) return 1;
  dspool::Result<uint16_t> bound = 0;
  if (cert.empty()) {
    bound = (*proxy)->Listen("127.0.0.1", static_cast<uint16_t>(port));
  } else {
    auto chain = dspool::ReadFile(cert);
    auto key_pem = dspool::ReadFile(key);
    if (!chain.ok() || !key_pem.ok()) {
      std::fprintf(stderr, "http_proxy: cannot read --cert or --key\n");
      return 1;
    }
    bound = (*proxy)->ListenTls("127.0.0.1", static_cast<uint16_t>(port), dspool::TlsCertificate{*chain, *key_pem});
  }
  if (!bound.ok()) {
    std::fprintf(stderr, "http_proxy: listen failed\n");
    return 1;
  }
  (*proxy)->Start(threads);
  sigdelset(&set, SIGPIPE);
  int sig = 0;
  sigwait(&set, &sig);
  (*proxy)->Stop();
  return 0;
}
