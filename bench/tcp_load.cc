// tcp_load: the TCP load tool of bench/gateway.sh. One binary, three modes:
//
//   tcp_load serve PORT
//       A backend. Writes one byte (the greeting) to every connection it
//       accepts, then holds the connection until the peer closes it, and
//       closes its side then. Runs until SIGTERM or SIGINT.
//
//   tcp_load hold ADDR:PORT N [SETUP_SECONDS]
//       Opens N connections (at most 256 connecting at a time), reads each
//       one's greeting, and prints "ready greeted=G failed=F" once every
//       attempt has ended. Then holds them, idle, until SIGTERM or SIGINT,
//       and prints "held=H dropped=D" (D: closed by the far side meanwhile).
//       The connections are reset (RST) at the end, so no TIME_WAIT is left
//       to blur the next measurement. Exits 1 if any attempt failed or setup
//       took longer than SETUP_SECONDS (default 60).
//
//   tcp_load rate ADDR:PORT CLIENTS SECONDS [THREADS]
//       CLIENTS concurrent clients, each in a loop: connect, read the
//       greeting, close (FIN). Prints one line:
//       "rate conns=N seconds=S per_sec=R errors=E p50_us=.. p99_us=.."
//       (latency: connect() until the greeting arrived). Connections still
//       open at the deadline are not counted.
//
// Single-purpose and self-contained (POSIX only): a load tool should not
// share code with what it measures. Every mode raises RLIMIT_NOFILE as far
// as it may. Addresses are IPv4.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "net/socket.h"

namespace {

volatile sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

void InstallSignals() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Raises the soft descriptor limit to `want` (root: the hard one too) or as
// far as the hard limit allows; warns if that is below `want`.
void RaiseNoFile(rlim_t want) {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_max < want) {
    rlimit more = {want, want};
    if (setrlimit(RLIMIT_NOFILE, &more) == 0) return;
  }
  rl.rlim_cur = std::min(std::max(rl.rlim_cur, want), rl.rlim_max);
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < want) {
    std::fprintf(stderr, "tcp_load: descriptor limit %llu is below the %llu wanted\n",
                 static_cast<unsigned long long>(rl.rlim_cur), static_cast<unsigned long long>(want));
  }
}

bool ParseEndpoint(const std::string& s, sockaddr_in* out) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  std::memset(out, 0, sizeof(*out));
  out->sin_family = AF_INET;
  if (inet_pton(AF_INET, s.substr(0, colon).c_str(), &out->sin_addr) != 1) return false;
  char* end = nullptr;
  long port = std::strtol(s.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 1 || port > 65535) return false;
  out->sin_port = htons(static_cast<uint16_t>(port));
  return true;
}

bool ParseInt(const char* s, long min, long max, long* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

// A non-blocking socket with a connect to `to` started. -1 if the connect
// failed at once (errno says why).
int StartConnect(const sockaddr_in& to) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0 && errno != EINPROGRESS) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

void ResetAndClose(int fd) {
  linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

// ---- serve ----

int Serve(long port) {
  RaiseNoFile(65536);
  auto listener = dspool::ListenTcp("0.0.0.0", static_cast<uint16_t>(port), 65535, nullptr);
  if (!listener.ok()) {
    std::fprintf(stderr, "tcp_load serve: %s\n", listener.status().message().c_str());
    return 1;
  }
  const int lfd = listener->release();
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::printf("serving port=%ld\n", port);
  std::fflush(stdout);

  uint64_t accepted = 0, open = 0;
  bool warned = false;
  epoll_event events[256];
  char buf[4096];
  while (!g_stop) {
    int n = epoll_wait(ep, events, 256, 500);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) {
            if (errno != EAGAIN && errno != EINTR && !warned) {
              std::fprintf(stderr, "tcp_load serve: accept: %s\n", std::strerror(errno));
              warned = true;
            }
            break;
          }
          ++accepted;
          ++open;
          (void)!send(c, "g", 1, MSG_NOSIGNAL);
          epoll_event cev = {};
          cev.events = EPOLLIN | EPOLLRDHUP;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof(buf));
      if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EINTR))) continue;
      close(fd);  // EOF or error: the peer is done
      --open;
    }
  }
  std::printf("served accepted=%llu open=%llu\n", static_cast<unsigned long long>(accepted),
              static_cast<unsigned long long>(open));
  return 0;
}

// ---- hold ----

int Hold(const sockaddr_in& to, long count, long setup_seconds) {
  constexpr long kWindow = 256;
  RaiseNoFile(static_cast<rlim_t>(count) + 64);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<int> fds(count, -1);
  std::vector<bool> greeted(count, false);
  long started = 0, connecting = 0, ok = 0, failed = 0, dropped = 0;
  int64_t deadline = NowNs() + setup_seconds * 1000000000LL;
  epoll_event events[256];
  char buf[64];

  auto end_attempt = [&](long i, bool success) {
    --connecting;
    if (success) {
      greeted[i] = true;
      ++ok;
      // From now on only a close by the far side is of interest.
      epoll_event ev = {};
      ev.events = EPOLLRDHUP;
      ev.data.u64 = static_cast<uint64_t>(i);
      epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &ev);
    } else {
      ++failed;
      close(fds[i]);
      fds[i] = -1;
    }
  };

  while (!g_stop && ok + failed < count) {
    while (connecting < kWindow && started < count) {
      long i = started++;
      int fd = StartConnect(to);
      if (fd < 0) {
        ++failed;
        continue;
      }
      fds[i] = fd;
      ++connecting;
      epoll_event ev = {};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = static_cast<uint64_t>(i);
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    if (NowNs() > deadline) {
      std::printf("timeout greeted=%ld failed=%ld connecting=%ld\n", ok, failed, connecting);
      return 1;
    }
    int n = epoll_wait(ep, events, 256, 100);
    for (int k = 0; k < n; ++k) {
      long i = static_cast<long>(events[k].data.u64);
      if (greeted[i]) {  // a held connection closed by the far side
        close(fds[i]);
        fds[i] = -1;
        greeted[i] = false;
        ++dropped;
        continue;
      }
      ssize_t r = read(fds[i], buf, sizeof(buf));
      if (r > 0) {
        end_attempt(i, true);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        end_attempt(i, false);
      }
    }
  }
  std::printf("ready greeted=%ld failed=%ld\n", ok, failed);
  std::fflush(stdout);

  while (!g_stop) {
    int n = epoll_wait(ep, events, 256, 500);
    for (int k = 0; k < n; ++k) {
      long i = static_cast<long>(events[k].data.u64);
      if (fds[i] < 0) continue;
      close(fds[i]);
      fds[i] = -1;
      ++dropped;
    }
  }
  long held = 0;
  for (int fd : fds) {
    if (fd < 0) continue;
    ++held;
    ResetAndClose(fd);
  }
  std::printf("held=%ld dropped=%ld\n", held, dropped);
  return failed == 0 ? 0 : 1;
}

// ---- rate ----

struct RateResult {
  uint64_t conns = 0;
  uint64_t errors = 0;
  std::vector<uint32_t> latency_us;
};

void RateThread(const sockaddr_in& to, long clients, int64_t end_ns, RateResult* out) {
  struct Slot {
    int fd = -1;
    int64_t started = 0;
  };
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Slot> slots(clients);
  std::vector<long> idle;  // slots whose connect failed at once: retried after a pause
  int64_t last_retry = 0;
  out->latency_us.reserve(1 << 20);

  auto begin = [&](long i) {
    Slot& s = slots[i];
    s.started = NowNs();
    s.fd = StartConnect(to);
    if (s.fd < 0) {
      ++out->errors;
      idle.push_back(i);
      return;
    }
    epoll_event ev = {};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = static_cast<uint64_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev);
  };
  for (long i = 0; i < clients; ++i) begin(i);

  epoll_event events[256];
  char buf[64];
  while (!g_stop) {
    int64_t now = NowNs();
    if (now >= end_ns) break;
    int timeout_ms = idle.empty() ? static_cast<int>((end_ns - now) / 1000000 + 1) : 1;
    int n = epoll_wait(ep, events, 256, timeout_ms);
    for (int k = 0; k < n; ++k) {
      long i = static_cast<long>(events[k].data.u64);
      Slot& s = slots[i];
      ssize_t r = read(s.fd, buf, sizeof(buf));
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r > 0) {
        ++out->conns;
        out->latency_us.push_back(static_cast<uint32_t>((NowNs() - s.started) / 1000));
      } else {
        ++out->errors;  // closed or reset before the greeting
      }
      close(s.fd);
      s.fd = -1;
      if (NowNs() < end_ns) begin(i);
    }
    if (!idle.empty() && NowNs() - last_retry >= 1000000) {
      last_retry = NowNs();
      std::vector<long> retry;
      retry.swap(idle);
      for (long i : retry) begin(i);
    }
  }
  for (Slot& s : slots) {
    if (s.fd >= 0) ResetAndClose(s.fd);
  }
  close(ep);
}

int Rate(const sockaddr_in& to, long clients, long seconds, long threads) {
  RaiseNoFile(static_cast<rlim_t>(clients) * 2 + 64);
  int64_t start = NowNs();
  int64_t end = start + seconds * 1000000000LL;
  std::vector<RateResult> results(threads);
  std::vector<std::thread> workers;
  for (long t = 0; t < threads; ++t) {
    long share = clients / threads + (t < clients % threads ? 1 : 0);
    workers.emplace_back(RateThread, std::cref(to), share, end, &results[t]);
  }
  for (auto& w : workers) w.join();
  double elapsed = static_cast<double>(std::max<int64_t>(NowNs(), end) - start) / 1e9;
  RateResult all;
  for (RateResult& r : results) {
    all.conns += r.conns;
    all.errors += r.errors;
    all.latency_us.insert(all.latency_us.end(), r.latency_us.begin(), r.latency_us.end());
  }
  std::sort(all.latency_us.begin(), all.latency_us.end());
  auto pct = [&](double p) -> uint32_t {
    if (all.latency_us.empty()) return 0;
    return all.latency_us[static_cast<size_t>(p * static_cast<double>(all.latency_us.size() - 1))];
  };
  std::printf("rate conns=%llu seconds=%.2f per_sec=%.0f errors=%llu p50_us=%u p99_us=%u\n",
              static_cast<unsigned long long>(all.conns), elapsed, static_cast<double>(all.conns) / elapsed,
              static_cast<unsigned long long>(all.errors), pct(0.5), pct(0.99));
  return 0;
}

int Usage() {
  std::fprintf(stderr,
               "usage: tcp_load serve PORT\n"
               "       tcp_load hold ADDR:PORT N [SETUP_SECONDS]\n"
               "       tcp_load rate ADDR:PORT CLIENTS SECONDS [THREADS]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  InstallSignals();
  std::string mode = argv[1];
  if (mode == "serve") {
    long port;
    if (argc != 3 || !ParseInt(argv[2], 1, 65535, &port)) return Usage();
    return Serve(port);
  }
  sockaddr_in to;
  if (!ParseEndpoint(argv[2], &to)) return Usage();
  if (mode == "hold") {
    long n, setup = 60;
    if (argc < 4 || argc > 5 || !ParseInt(argv[3], 1, 1000000, &n)) return Usage();
    if (argc == 5 && !ParseInt(argv[4], 1, 3600, &setup)) return Usage();
    return Hold(to, n, setup);
  }
  if (mode == "rate") {
    long clients, seconds, threads = 1;
    if (argc < 5 || argc > 6 || !ParseInt(argv[3], 1, 100000, &clients) || !ParseInt(argv[4], 1, 3600, &seconds)) {
      return Usage();
    }
    if (argc == 6 && !ParseInt(argv[5], 1, 64, &threads)) return Usage();
    threads = std::min(threads, clients);
    return Rate(to, clients, seconds, threads);
  }
  return Usage();
}
