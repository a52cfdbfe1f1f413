// http_echo: the small backend of bench/jupyter.sh. It stands in for a
// user's Jupyter Notebook server (dspool server --jupyter-program), so that
// the proxies in front of it, not the notebook, are what is measured.
//
//   http_echo --ip=ADDRESS --port=PORT [--NotebookApp.base_url=/user/NAME/] [ignored...]
//
// Takes the Notebook 6.4 command line the agent gives (other arguments, and
// the token in the environment, are ignored: every request is answered).
// One thread, epoll, HTTP/1.1 with keep-alive and pipelining:
//   GET <base>api/status     {"last_activity": now, "started": ..., "connections": 0, "kernels": 0}
//   GET <base>api/kernels    []          (also api/terminals; any query)
//   anything else            200, a small text body (a request body is read and dropped)
//   any request with "Upgrade: websocket"  the RFC 6455 handshake, then every
//                            data frame is echoed (unmasked, same opcode),
//                            ping → pong, close → close.
// Runs until SIGTERM or SIGINT. Addresses are IPv4.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

#include "net/socket.h"

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

constexpr size_t kMaxHead = 64 * 1024;
constexpr size_t kMaxFrame = 16 * 1024 * 1024;

std::string IsoNow() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
           t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000);
  return buf;
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool IContains(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    if (IEquals(hay.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string WebSocketAccept(std::string_view key) {
  std::string in(key);
  in += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

struct Conn {
  int fd = -1;
  std::string in;
  std::string out;
  size_t body_left = 0;  // request body bytes still to drop
  bool websocket = false;
  bool close_after_write = false;
  bool want_out = false;  // EPOLLOUT registered
};

class Server {
 public:
  explicit Server(std::string base) : base_(std::move(base)), started_(IsoNow()) {}

  int Run(const std::string& ip, int port) {
    auto listener = dspool::ListenTcp(ip, static_cast<uint16_t>(port), 4096, nullptr);
    if (!listener.ok()) {
      fprintf(stderr, "http_echo: %s\n", listener.status().message().c_str());
      return listener.status().code() == dspool::StatusCode::kInvalidArgument ? 2 : 1;
    }
    const int lfd = listener->release();
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(ep_, EPOLL_CTL_ADD, lfd, &ev);
    printf("http_echo: listening on %s:%d, base %s\n", ip.c_str(), port, base_.c_str());
    fflush(stdout);
    epoll_event events[256];
    while (!g_stop) {
      int n = epoll_wait(ep_, events, 256, 1000);
      if (n < 0 && errno != EINTR) return 1;
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == lfd) {
          Accept(lfd);
          continue;
        }
        auto it = conns_.find(fd);
        if (it == conns_.end()) continue;
        Conn& c = it->second;
        bool ok = true;
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ok = ReadAll(c);
        if (ok && !c.out.empty()) ok = Flush(c);
        if (!ok) Close(fd);
      }
    }
    printf("http_echo: stopped\n");
    return 0;
  }

 private:
  void Accept(int lfd) {
    for (;;) {
      int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      epoll_event ev = {};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
      conns_[fd].fd = fd;
    }
  }

  void Close(int fd) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns_.erase(fd);
  }

  // Reads what is there and handles it; false: close the connection.
  bool ReadAll(Conn& c) {
    char buf[65536];
    for (;;) {
      ssize_t n = read(c.fd, buf, sizeof(buf));
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        if (static_cast<size_t>(n) < sizeof(buf)) break;
        continue;
      }
      if (n == 0) return false;
      if (errno == EAGAIN || errno == EINTR) break;
      return false;
    }
    return c.websocket ? HandleFrames(c) : HandleRequests(c);
  }

  bool Flush(Conn& c) {
    while (!c.out.empty()) {
      ssize_t n = write(c.fd, c.out.data(), c.out.size());
      if (n > 0) {
        c.out.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      return false;
    }
    bool want = !c.out.empty();
    if (want != c.want_out) {
      epoll_event ev = {};
      ev.events = EPOLLIN | EPOLLRDHUP | (want ? uint32_t{EPOLLOUT} : 0u);
      ev.data.fd = c.fd;
      epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_out = want;
    }
    return !(c.out.empty() && c.close_after_write);
  }

  void Reply(Conn& c, int status, std::string_view type, std::string_view body, bool keep_alive) {
    char head[256];
    snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\n%s\r\n", status,
             status == 200 ? "OK" : "Bad Request", static_cast<int>(type.size()), type.data(), body.size(),
             keep_alive ? "" : "Connection: close\r\n");
    c.out += head;
    c.out += body;
    if (!keep_alive) c.close_after_write = true;
  }

  bool HandleRequests(Conn& c) {
    size_t pos = 0;
    while (!c.close_after_write) {
      if (c.body_left > 0) {
        size_t take = std::min(c.body_left, c.in.size() - pos);
        pos += take;
        c.body_left -= take;
        if (c.body_left > 0) break;
      }
      size_t end = c.in.find("\r\n\r\n", pos);
      if (end == std::string::npos) {
        if (c.in.size() - pos > kMaxHead) return false;
        break;
      }
      std::string_view head(c.in.data() + pos, end - pos);
      pos = end + 4;
      size_t line_end = head.find("\r\n");
      std::string_view line = head.substr(0, line_end);
      size_t sp1 = line.find(' ');
      size_t sp2 = line.rfind(' ');
      if (sp1 == std::string_view::npos || sp2 <= sp1) return false;
      std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
      bool http10 = line.substr(sp2 + 1) == "HTTP/1.0";
      bool keep_alive = !http10;
      bool upgrade = false;
      std::string_view ws_key;
      size_t content_length = 0;
      for (size_t at = line_end; at != std::string_view::npos && at < head.size();) {
        size_t next = head.find("\r\n", at + 2);
        std::string_view h = head.substr(at + 2, (next == std::string_view::npos ? head.size() : next) - at - 2);
        at = next;
        size_t colon = h.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view name = h.substr(0, colon), value = Trim(h.substr(colon + 1));
        if (IEquals(name, "content-length")) {
          content_length = strtoull(std::string(value).c_str(), nullptr, 10);
        } else if (IEquals(name, "connection")) {
          if (IContains(value, "close")) keep_alive = false;
          if (IContains(value, "keep-alive")) keep_alive = true;
        } else if (IEquals(name, "upgrade")) {
          upgrade = IContains(value, "websocket");
        } else if (IEquals(name, "sec-websocket-key")) {
          ws_key = value;
        }
      }
      if (upgrade) {
        if (ws_key.empty()) {
          Reply(c, 400, "text/plain", "no Sec-WebSocket-Key\n", false);
          break;
        }
        c.out += "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: " +
                 WebSocketAccept(ws_key) + "\r\n\r\n";
        c.websocket = true;
        c.in.erase(0, pos);
        return HandleFrames(c);
      }
      c.body_left = content_length;
      std::string_view path = target.substr(0, target.find('?'));
      if (path.size() > base_.size() && path.compare(0, base_.size(), base_) == 0) {
        std::string_view rest = path.substr(base_.size());
        if (rest == "api/status") {
          std::string body = "{\"last_activity\": \"" + IsoNow() + "\", \"started\": \"" + started_ +
                             "\", \"connections\": 0, \"kernels\": 0}";
          Reply(c, 200, "application/json", body, keep_alive);
          continue;
        }
        if (rest == "api/kernels" || rest == "api/terminals") {
          Reply(c, 200, "application/json", "[]", keep_alive);
          continue;
        }
      }
      Reply(c, 200, "text/plain", "http_echo: ok\n", keep_alive);
    }
    c.in.erase(0, pos);
    return true;
  }

  void Frame(Conn& c, uint8_t first, const char* payload, size_t len) {
    c.out += static_cast<char>(first);
    if (len < 126) {
      c.out += static_cast<char>(len);
    } else if (len < 65536) {
      c.out += static_cast<char>(126);
      c.out += static_cast<char>(len >> 8);
      c.out += static_cast<char>(len & 0xff);
    } else {
      c.out += static_cast<char>(127);
      for (int i = 7; i >= 0; --i) c.out += static_cast<char>((static_cast<uint64_t>(len) >> (8 * i)) & 0xff);
    }
    c.out.append(payload, len);
  }

  bool HandleFrames(Conn& c) {
    size_t pos = 0;
    while (!c.close_after_write) {
      const size_t avail = c.in.size() - pos;
      if (avail < 2) break;
      const auto* p = reinterpret_cast<const uint8_t*>(c.in.data() + pos);
      uint8_t first = p[0];
      bool masked = p[1] & 0x80;
      uint64_t len = p[1] & 0x7f;
      size_t hdr = 2;
      if (len == 126) {
        if (avail < 4) break;
        len = (static_cast<uint64_t>(p[2]) << 8) | p[3];
        hdr = 4;
      } else if (len == 127) {
        if (avail < 10) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
        hdr = 10;
      }
      if (len > kMaxFrame) return false;
      size_t total = hdr + (masked ? 4 : 0) + len;
      if (avail < total) break;
      char* payload = c.in.data() + pos + hdr + (masked ? 4 : 0);
      if (masked) {
        const uint8_t* key = p + hdr;
        for (uint64_t i = 0; i < len; ++i) payload[i] = static_cast<char>(payload[i] ^ key[i & 3]);
      }
      uint8_t opcode = first & 0x0f;
      if (opcode == 0x8) {  // close: answer with the same code, then close
        Frame(c, 0x88, payload, std::min<uint64_t>(len, 2));
        c.close_after_write = true;
      } else if (opcode == 0x9) {  // ping
        Frame(c, static_cast<uint8_t>(0x80 | 0xA), payload, len);
      } else if (opcode != 0xA) {  // data (text, binary, continuation): echo
        Frame(c, first, payload, len);
      }
      pos += total;
    }
    c.in.erase(0, pos);
    return true;
  }

  std::string base_;
  std::string started_;
  int ep_ = -1;
  std::unordered_map<int, Conn> conns_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string ip = "127.0.0.1", base = "/";
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view flag) -> const char* {
      return a.substr(0, flag.size()) == flag ? argv[i] + flag.size() : nullptr;
    };
    if (const char* v = value("--ip=")) ip = v;
    else if (const char* v2 = value("--port=")) port = atoi(v2);
    else if (const char* v3 = value("--NotebookApp.base_url=")) base = v3;
  }
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "usage: http_echo --ip=ADDRESS --port=PORT [--NotebookApp.base_url=/user/NAME/]\n");
    return 2;
  }
  if (base.empty() || base.back() != '/') base += '/';
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return Server(base).Run(ip, port);
}
