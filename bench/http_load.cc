// http_load: the HTTP load tool of bench/http_proxy.sh. One binary, three
// modes, each against one URL (http:// or https://, an IPv4 address):
//
//   http_load open URL --rate=R --seconds=S [--conns=C] [--threads=T] [--warmup=W] [--targets=FILE]
//       Open loop, as wrk2 measures: requests fall due at a constant rate R
//       per second (over all threads), whether or not the earlier ones have
//       been answered. A due request goes out on an idle keep-alive
//       connection of its thread (C connections, default 64, over T threads,
//       default 1) or waits for one. Its latency runs from when it fell due,
//       not from when it went out, so a stalled proxy cannot hide its stall
//       by slowing the client down (coordinated omission). Requests due in
//       the first W seconds (default 1) warm up and are not counted. Prints
//       one line:
//         "open rate=R seconds=S due=.. answered=.. errors=.. late=..
//          achieved=.. p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.."
//       late: requests still unanswered 2 s after the last fell due; they
//       enter the percentiles with their age at that moment.
//
//   http_load handshakes URL --seconds=S [--conns=C] [--threads=T] [--resume]
//       C clients in a closed loop: connect, TLS handshake, one request,
//       close (with close_notify). With --resume each client offers the
//       session its previous connection was given (a TLS 1.3 ticket). Prints
//         "handshakes per_sec=.. resumed=.. errors=.. p50_us=.. p99_us=.."
//       (resumed: the share of handshakes the server resumed; latency:
//       connect() until the response).
//
//   http_load hold URL --conns=N [--targets=FILE]
//       Opens N keep-alive connections (at most 256 being set up at once),
//       makes one request on each, prints "ready held=H failed=F", then
//       holds them idle until SIGTERM or SIGINT and prints
//       "held=H dropped=D" (D: closed by the far side meanwhile).
//
// --targets=FILE: one request per line, "PATH [COOKIE]" (COOKIE: the value
// of a Cookie header). Request k takes line k mod n, so every connection
// carries many users' cookies. Without it, every request is a GET of the
// URL's path with no cookie. A response other than 2xx counts as an error.
//
// Self-contained (POSIX and OpenSSL): a load tool should not share code with
// what it measures. No certificate is verified (the benches use self-signed
// ones). Raises RLIMIT_NOFILE as far as it may.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "http_load: %s\n", what.c_str());
  std::exit(2);
}

enum class Mode { kOpen, kHandshakes, kHold };

struct Options {
  Mode mode = Mode::kOpen;
  sockaddr_in to = {};
  bool tls = false;
  std::string host;  // for the Host header
  std::vector<std::string> requests;  // whole requests, taken in turn
  double rate = 0;
  double seconds = 10;
  double warmup = 1;
  int conns = 64;
  int threads = 1;
  bool resume = false;
};

// "http(s)://A.B.C.D:PORT/path" into `o`; the path is returned.
std::string ParseUrl(const std::string& url, Options* o) {
  size_t rest;
  if (url.rfind("https://", 0) == 0) {
    o->tls = true;
    rest = 8;
  } else if (url.rfind("http://", 0) == 0) {
    rest = 7;
  } else {
    Die("URL '" + url + "' is not http:// or https://");
  }
  size_t slash = url.find('/', rest);
  std::string authority = url.substr(rest, slash == std::string::npos ? std::string::npos : slash - rest);
  std::string path = slash == std::string::npos ? "/" : url.substr(slash);
  size_t colon = authority.rfind(':');
  std::string ip = authority.substr(0, colon);
  long port = colon == std::string::npos ? (o->tls ? 443 : 80)
                                         : std::strtol(authority.c_str() + colon + 1, nullptr, 10);
  o->to.sin_family = AF_INET;
  if (inet_pton(AF_INET, ip.c_str(), &o->to.sin_addr) != 1 || port < 1 || port > 65535) {
    Die("URL '" + url + "': the address must be an IPv4 address and a port");
  }
  o->to.sin_port = htons(static_cast<uint16_t>(port));
  o->host = authority;
  return path;
}

std::string BuildRequest(const std::string& host, const std::string& path, const std::string& cookie) {
  std::string r = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: http_load\r\n";
  if (!cookie.empty()) r += "Cookie: " + cookie + "\r\n";
  return r + "\r\n";
}

double NumberFlag(const std::string& arg, const char* name, double min) {
  char* end = nullptr;
  double v = std::strtod(arg.c_str() + std::strlen(name) + 3, &end);
  if (*end != '\0' || !(v >= min)) {
    Die("--" + std::string(name) + " must be a number of at least " + std::to_string(min));
  }
  return v;
}

Options ParseArgs(int argc, char** argv) {
  if (argc < 3) {
    Die("usage: http_load open|handshakes|hold URL [--rate=R] [--seconds=S] [--conns=C] [--threads=T] "
        "[--warmup=W] [--targets=FILE] [--resume]");
  }
  Options o;
  std::string mode = argv[1];
  if (mode == "open") o.mode = Mode::kOpen;
  else if (mode == "handshakes") o.mode = Mode::kHandshakes;
  else if (mode == "hold") o.mode = Mode::kHold;
  else Die("unknown mode '" + mode + "'");
  std::string path = ParseUrl(argv[2], &o);
  std::string targets;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    auto is = [&](const char* name) { return a.rfind(std::string("--") + name + "=", 0) == 0; };
    if (is("rate")) o.rate = NumberFlag(a, "rate", 1);
    else if (is("seconds")) o.seconds = NumberFlag(a, "seconds", 0.1);
    else if (is("warmup")) o.warmup = NumberFlag(a, "warmup", 0);
    else if (is("conns")) o.conns = static_cast<int>(NumberFlag(a, "conns", 1));
    else if (is("threads")) o.threads = static_cast<int>(NumberFlag(a, "threads", 1));
    else if (is("targets")) targets = a.substr(10);
    else if (a == "--resume") o.resume = true;
    else Die("unknown argument '" + a + "'");
  }
  if (o.mode == Mode::kOpen && o.rate <= 0) Die("open needs --rate");
  if (o.resume && !o.tls) Die("--resume needs an https:// URL");
  if (o.mode == Mode::kHold) o.threads = 1;
  o.threads = std::min(o.threads, o.conns);
  if (targets.empty()) {
    o.requests.push_back(BuildRequest(o.host, path, ""));
  } else {
    std::ifstream in(targets);
    if (!in) Die("cannot read --targets file '" + targets + "'");
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.empty()) continue;
      size_t space = line.find(' ');
      std::string p = line.substr(0, space);
      if (p.empty() || p[0] != '/') Die(targets + ":" + std::to_string(n) + ": the path must start with '/'");
      o.requests.push_back(BuildRequest(o.host, p, space == std::string::npos ? "" : line.substr(space + 1)));
    }
    if (o.requests.empty()) Die("--targets file '" + targets + "' has no line");
  }
  return o;
}

void RaiseNoFile() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// The value of header `name` (lower case) in the head [0, end), or "".
std::string HeaderValue(const std::string& in, size_t end, const char* name) {
  size_t n = std::strlen(name);
  for (size_t line = in.find("\r\n") + 2; line < end; line = in.find("\r\n", line) + 2) {
    size_t i = 0;
    while (i < n && line + i < end && Lower(in[line + i]) == name[i]) ++i;
    if (i == n && in[line + n] == ':') {
      size_t v = line + n + 1, e = in.find("\r\n", v);
      while (v < e && (in[v] == ' ' || in[v] == '\t')) ++v;
      return in.substr(v, e - v);
    }
  }
  return "";
}

// One response at the start of `in`: 1 complete (its length in *length, its
// status in *status), 0 incomplete, -1 malformed.
int ParseResponse(const std::string& in, size_t* length, int* status) {
  size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return in.size() > 65536 ? -1 : 0;
  if (in.compare(0, 9, "HTTP/1.1 ") != 0 && in.compare(0, 9, "HTTP/1.0 ") != 0) return -1;
  *status = std::atoi(in.c_str() + 9);
  size_t body = head_end + 4;
  if (*status == 204 || *status == 304 || (*status >= 100 && *status < 200)) {
    *length = body;
    return 1;
  }
  std::string te = HeaderValue(in, head_end + 2, "transfer-encoding");
  if (te.find("chunked") != std::string::npos) {
    size_t at = body;
    for (;;) {
      size_t eol = in.find("\r\n", at);
      if (eol == std::string::npos) return 0;
      char* end = nullptr;
      unsigned long size = std::strtoul(in.c_str() + at, &end, 16);
      if (end == in.c_str() + at) return -1;
      if (size == 0) {  // no trailers expected: the final CRLF follows
        if (in.size() < eol + 4) return 0;
        *length = eol + 4;
        return 1;
      }
      at = eol + 2 + size + 2;
      if (in.size() < at) return 0;
    }
  }
  std::string cl = HeaderValue(in, head_end + 2, "content-length");
  if (cl.empty()) return -1;  // a body to the close: not from a keep-alive proxy
  size_t total = body + std::strtoull(cl.c_str(), nullptr, 10);
  if (in.size() < total) return 0;
  *length = total;
  return 1;
}

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  enum State { kConnecting, kHandshake, kIdle, kBusy } state = kConnecting;
  std::string out;
  size_t out_off = 0;
  std::string in;
  int64_t due_ns = 0;      // open: when the request in flight fell due
  int64_t started_ns = 0;  // handshakes: when connect() was called
  bool counted = false;    // open: the request in flight is measured
  bool wants_out = false;  // registered for EPOLLOUT
};

struct Totals {
  uint64_t due = 0, answered = 0, errors = 0, late = 0, resumed = 0, dropped = 0, failed = 0;
  std::vector<uint32_t> latencies_us;
};

class Worker {
 public:
  Worker(const Options& o, SSL_CTX* ctx, int conns, double rate, int64_t phase_ns, size_t first_request)
      : o_(o), ctx_(ctx), conns_(conns), rate_(rate), phase_ns_(phase_ns), next_request_(first_request) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) Die("epoll_create1: " + std::string(std::strerror(errno)));
  }
  ~Worker() {
    for (auto& c : pool_) Close(c.get());
    if (session_) SSL_SESSION_free(session_);
    close(epoll_);
  }

  Totals& totals() { return t_; }

  // open, after Connect: runs from `start_ns` (the same on every thread).
  void RunOpen(int64_t start_ns) {
    const int64_t interval = static_cast<int64_t>(1e9 / rate_);
    const int64_t measure_from = start_ns + static_cast<int64_t>(o_.warmup * 1e9);
    const int64_t last_due = measure_from + static_cast<int64_t>(o_.seconds * 1e9);
    const int64_t give_up = last_due + 2000000000;
    int64_t next_due = start_ns + phase_ns_;
    std::deque<std::pair<int64_t, bool>> waiting;  // due time, counted
    int64_t in_flight = 0;
    for (;;) {
      int64_t now = NowNs();
      for (; next_due < last_due && next_due <= now; next_due += interval) {
        bool counted = next_due >= measure_from;
        if (counted) ++t_.due;
        waiting.emplace_back(next_due, counted);
      }
      while (!waiting.empty() && !idle_.empty()) {
        Conn* c = idle_.back();
        idle_.pop_back();
        c->due_ns = waiting.front().first;
        c->counted = waiting.front().second;
        waiting.pop_front();
        Send(c);
        ++in_flight;
      }
      if (next_due >= last_due && waiting.empty() && in_flight == 0) break;
      if (now >= give_up || g_stop) {
        for (auto& [due, counted] : waiting) Late(due, counted, now);
        for (auto& c : pool_) {
          if (c->state == Conn::kBusy) Late(c->due_ns, c->counted, now);
        }
        break;
      }
      int64_t wait_ns = next_due < last_due ? std::max<int64_t>(0, next_due - now) : 100000000;
      wait_ns = std::min<int64_t>(wait_ns, give_up - now);
      Poll(wait_ns, [&](Conn* c, int status, int64_t at) {
        if (c->counted) {
          if (status >= 200 && status < 300) {
            ++t_.answered;
            t_.latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>((at - c->due_ns) / 1000, UINT32_MAX)));
          } else {
            ++t_.errors;
          }
        }
        --in_flight;
        idle_.push_back(c);
      }, [&](Conn* c) {  // lost: a request in flight is an error
        if (c->state == Conn::kBusy) {
          if (c->counted) ++t_.errors;
          --in_flight;
        }
        Reopen(c);
      });
    }
  }

  void RunHandshakes(int64_t end_ns) {
    for (int i = 0; i < conns_; ++i) Open();
    while (NowNs() < end_ns && !g_stop) {
      Poll(std::min<int64_t>(100000000, end_ns - NowNs()), [&](Conn* c, int status, int64_t at) {
        if (status >= 200 && status < 300) {
          ++t_.answered;
          if (SSL_session_reused(c->ssl)) ++t_.resumed;
          t_.latencies_us.push_back(static_cast<uint32_t>((at - c->started_ns) / 1000));
          if (o_.resume) {
            SSL_SESSION* s = SSL_get1_session(c->ssl);
            if (s && SSL_SESSION_is_resumable(s)) {
              if (session_) SSL_SESSION_free(session_);
              session_ = s;
            } else if (s) {
              SSL_SESSION_free(s);
            }
          }
          SSL_shutdown(c->ssl);
        } else {
          ++t_.errors;
        }
        Reopen(c);
      }, [&](Conn* c) {
        ++t_.errors;
        Reopen(c);
      });
    }
  }

  void RunHold() {
    int opened = 0, settled = 0;
    auto top_up = [&] {
      while (opened < conns_ && opened - settled < 256) {
        ++opened;
        Open();
      }
    };
    top_up();
    while (settled < conns_ && !g_stop) {
      Poll(100000000, [&](Conn* c, int status, int64_t) {
        if (status >= 200 && status < 300) ++t_.answered;
        else ++t_.failed;
        c->state = Conn::kIdle;
        ++settled;
        top_up();
      }, [&](Conn* c) {
        ++t_.failed;
        Close(c);
        ++settled;
        top_up();
      });
    }
    std::printf("ready held=%llu failed=%llu\n", static_cast<unsigned long long>(t_.answered),
                static_cast<unsigned long long>(t_.failed));
    std::fflush(stdout);
    while (!g_stop) {
      Poll(200000000, [&](Conn*, int, int64_t) {}, [&](Conn* c) {
        ++t_.dropped;
        Close(c);
      });
    }
    std::printf("held=%llu dropped=%llu\n", static_cast<unsigned long long>(t_.answered - t_.dropped),
                static_cast<unsigned long long>(t_.dropped));
    for (auto& c : pool_) {  // reset: no TIME_WAIT left to blur the next measurement
      if (c->fd < 0) continue;
      linger l = {1, 0};
      setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
  }

  // open: sets up every connection, idle, before the clock starts.
  bool Connect() {
    const int n = conns_;
    for (int i = 0; i < n; ++i) Open();
    int64_t deadline = NowNs() + 30000000000;
    while (idle_.size() < static_cast<size_t>(n)) {
      if (NowNs() > deadline || g_stop) {
        std::fprintf(stderr, "http_load: only %zu of %d connections set up in 30 s\n", idle_.size(), n);
        return false;
      }
      Poll(100000000, [](Conn*, int, int64_t) {}, [&](Conn* c) { Reopen(c); });
    }
    return true;
  }

 private:
  Conn* Open() {
    pool_.push_back(std::make_unique<Conn>());
    Conn* c = pool_.back().get();
    Start(c);
    return c;
  }

  void Start(Conn* c) {
    c->state = Conn::kConnecting;
    c->in.clear();
    c->out.clear();
    c->out_off = 0;
    c->started_ns = NowNs();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) Die("socket: " + std::string(std::strerror(errno)));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, reinterpret_cast<const sockaddr*>(&o_.to), sizeof(o_.to)) != 0 && errno != EINPROGRESS) {
      Die("connect: " + std::string(std::strerror(errno)));
    }
    epoll_event ev = {};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    c->wants_out = true;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, c->fd, &ev);
  }

  void Close(Conn* c) {
    if (c->ssl) SSL_free(c->ssl);
    c->ssl = nullptr;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
  }

  void Reopen(Conn* c) {
    idle_.erase(std::remove(idle_.begin(), idle_.end(), c), idle_.end());
    Close(c);
    Start(c);
  }

  void Send(Conn* c) {
    c->out = o_.requests[next_request_++ % o_.requests.size()];
    c->out_off = 0;
    c->state = Conn::kBusy;
    Flush(c);
  }

  void WantOut(Conn* c, bool on) {
    if (c->wants_out == on) return;
    c->wants_out = on;
    epoll_event ev = {};
    ev.events = on ? EPOLLIN | EPOLLOUT : EPOLLIN;
    ev.data.ptr = c;
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c->fd, &ev);
  }

  // Writes what is pending; false if the connection failed.
  bool Flush(Conn* c) {
    while (c->out_off < c->out.size()) {
      const char* p = c->out.data() + c->out_off;
      int len = static_cast<int>(c->out.size() - c->out_off);
      if (c->ssl) {
        int n = SSL_write(c->ssl, p, len);
        if (n > 0) {
          c->out_off += n;
          continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
        return false;
      }
      ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
      if (n > 0) {
        c->out_off += n;
        continue;
      }
      if (n < 0 && errno == EAGAIN) break;
      return false;
    }
    WantOut(c, c->out_off < c->out.size());
    return true;
  }

  // Reads what has arrived; false on the peer's close or an error.
  bool Fill(Conn* c) {
    char buf[16384];
    for (;;) {
      if (c->ssl) {
        int n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n > 0) {
          c->in.append(buf, n);
          continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ) return true;
        if (e == SSL_ERROR_WANT_WRITE) {
          WantOut(c, true);
          return true;
        }
        return false;
      }
      ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
      if (n > 0) {
        c->in.append(buf, n);
        continue;
      }
      return n < 0 && errno == EAGAIN;
    }
  }

  // Drives the connection's set-up; false if it failed.
  bool Advance(Conn* c) {
    if (c->state == Conn::kConnecting) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return false;
      if (!o_.tls) {
        c->state = Conn::kIdle;
        return true;
      }
      c->ssl = SSL_new(ctx_);
      SSL_set_fd(c->ssl, c->fd);
      SSL_set_tlsext_host_name(c->ssl, "localhost");
      if (session_) SSL_set_session(c->ssl, session_);
      c->state = Conn::kHandshake;
    }
    int r = SSL_connect(c->ssl);
    if (r == 1) {
      c->state = Conn::kIdle;
      WantOut(c, false);
      return true;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) WantOut(c, false);
    else if (e == SSL_ERROR_WANT_WRITE) WantOut(c, true);
    else return false;
    return true;
  }

  // One epoll_wait of at most `wait_ns`. answered(conn, status, time) for each
  // complete response; lost(conn) for each connection that failed or closed.
  template <typename Answered, typename Lost>
  void Poll(int64_t wait_ns, Answered answered, Lost lost) {
    epoll_event events[256];
    timespec ts = {static_cast<time_t>(wait_ns / 1000000000), static_cast<long>(wait_ns % 1000000000)};
    int n = epoll_pwait2(epoll_, events, 256, &ts, nullptr);
    int64_t now = NowNs();
    for (int i = 0; i < n; ++i) {
      Conn* c = static_cast<Conn*>(events[i].data.ptr);
      if (c->fd < 0) continue;
      if (c->state == Conn::kConnecting || c->state == Conn::kHandshake) {
        if (!Advance(c)) {
          lost(c);
          continue;
        }
        if (c->state != Conn::kIdle) continue;
        if (o_.mode == Mode::kOpen) {
          idle_.push_back(c);
        } else {
          Send(c);
        }
        continue;
      }
      if ((events[i].events & EPOLLOUT) && !Flush(c)) {
        lost(c);
        continue;
      }
      bool open = Fill(c);
      if (c->state == Conn::kBusy && !c->in.empty()) {
        size_t length = 0;
        int status = 0;
        int r = ParseResponse(c->in, &length, &status);
        if (r < 0) {
          lost(c);
          continue;
        }
        if (r > 0) {
          c->in.erase(0, length);
          c->state = Conn::kIdle;
          answered(c, status, now);
          continue;
        }
      }
      if (!open) lost(c);
    }
  }

  void Late(int64_t due, bool counted, int64_t now) {
    if (!counted) return;
    ++t_.late;
    t_.latencies_us.push_back(static_cast<uint32_t>((now - due) / 1000));
  }

  const Options& o_;
  SSL_CTX* ctx_;
  int conns_;
  double rate_;
  int64_t phase_ns_;
  size_t next_request_;
  int epoll_;
  std::vector<std::unique_ptr<Conn>> pool_;
  std::vector<Conn*> idle_;
  SSL_SESSION* session_ = nullptr;
  Totals t_;
};

uint32_t Percentile(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  RaiseNoFile();
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  SSL_CTX* ctx = nullptr;
  if (o.tls) {
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof(kAlpn));
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  }

  std::vector<std::unique_ptr<Worker>> workers;
  const int64_t interval = o.rate > 0 ? static_cast<int64_t>(1e9 / o.rate) : 0;
  for (int i = 0; i < o.threads; ++i) {
    int conns = o.conns / o.threads + (i < o.conns % o.threads ? 1 : 0);
    // Thread i's requests fall due at phase i/T of the overall interval, so
    // together they arrive evenly rather than in bursts of T.
    workers.push_back(std::make_unique<Worker>(o, ctx, conns, o.rate / o.threads, interval * i,
                                               o.requests.size() * i / o.threads));
  }
  if (o.mode == Mode::kHold) {
    workers[0]->RunHold();
    return 0;
  }
  auto on_each = [&](auto body) {
    std::vector<std::thread> threads;
    for (auto& w : workers) threads.emplace_back([&, w = w.get()] { body(w); });
    for (auto& t : threads) t.join();
  };
  if (o.mode == Mode::kOpen) {  // every connection set up before the clock starts
    std::atomic<bool> connected{true};
    on_each([&](Worker* w) {
      if (!w->Connect()) connected = false;
    });
    if (!connected) Die("could not set up the connections");
  }
  const int64_t start = NowNs();
  on_each([&](Worker* w) {
    if (o.mode == Mode::kOpen) w->RunOpen(start);
    else w->RunHandshakes(start + static_cast<int64_t>(o.seconds * 1e9));
  });
  const double elapsed = static_cast<double>(NowNs() - start) / 1e9;

  Totals all;
  for (auto& w : workers) {
    Totals& t = w->totals();
    all.due += t.due;
    all.answered += t.answered;
    all.errors += t.errors;
    all.late += t.late;
    all.resumed += t.resumed;
    all.latencies_us.insert(all.latencies_us.end(), t.latencies_us.begin(), t.latencies_us.end());
  }
  std::sort(all.latencies_us.begin(), all.latencies_us.end());
  auto& l = all.latencies_us;
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  if (o.mode == Mode::kOpen) {
    std::printf("open rate=%.0f seconds=%.1f due=%llu answered=%llu errors=%llu late=%llu achieved=%.0f "
                "p50_us=%u p90_us=%u p99_us=%u p999_us=%u max_us=%u\n",
                o.rate, o.seconds, u(all.due), u(all.answered), u(all.errors), u(all.late),
                static_cast<double>(all.answered) / o.seconds, Percentile(l, 0.5), Percentile(l, 0.9),
                Percentile(l, 0.99), Percentile(l, 0.999), l.empty() ? 0 : l.back());
  } else {
    std::printf("handshakes per_sec=%.0f resumed=%.3f errors=%llu p50_us=%u p99_us=%u\n",
                static_cast<double>(all.answered) / elapsed,
                all.answered ? static_cast<double>(all.resumed) / static_cast<double>(all.answered) : 0.0,
                u(all.errors), Percentile(l, 0.5), Percentile(l, 0.99));
  }
  if (ctx) SSL_CTX_free(ctx);
  return all.errors == 0 && all.late == 0 ? 0 : 1;
}
