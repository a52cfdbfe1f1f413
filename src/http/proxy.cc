// The proxy on its own epoll reactors, with OpenSSL driven directly. Shape:
//
//   Impl      owns the workers, the listeners (by port) and the counters.
//   Worker    one thread, one epoll set (edge-triggered sockets), its idle
//             upstream connections, a pool of I/O buffers, and the list of
//             waits in progress, scanned for expired deadlines when the
//             earliest one is due, at most every kTick (no syscall and no
//             heap work per wait; a worker whose connections all idle sleeps
//             until the first of them times out).
//   Listener  a listening socket in worker 0's epoll set (level-triggered).
//             Worker 0 accepts and hands each socket to the next worker,
//             round robin (a queue under a mutex and an eventfd write, per
//             connection, never per request). A connection stays on that
//             worker for life. (Why not SO_REUSEPORT per thread: Listen may
//             come before Start, when the thread count is unknown, and the
//             kernel's hash would not balance 32 long-lived connections as
//             evenly as round robin does.)
//   Sock      a non-blocking socket (and its SSL for a TLS client) with
//             readiness flags; coroutines wait on it for readable/writable
//             with a deadline (Wait), the loop resumes them.
//   Serve     one coroutine per client connection, written top to bottom
//             (the diagram in proxy.h): TLS handshake, then request after
//             request, each head parsed in place (http1_parser.h) in the
//             connection's buffer; Forward streams bodies through in
//             buffer-sized steps and tunnels after a 101.
//
// The coroutines are plain C++20 ones on the tiny Task type below: a task
// starts when awaited and resumes its awaiter when it ends; Detached runs
// by itself (a connection). Nothing is ever resumed from another thread.
#include "http/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <coroutine>
#include <cstring>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "base/log.h"
#include "base/thread_name.h"
#include "http/http1_parser.h"
#include "os/unique_fd.h"

namespace dspool {

namespace {

using Clock = std::chrono::steady_clock;
using http1::EqualsIgnoreCase;

constexpr std::string_view kLog = "proxy";
constexpr size_t kHeadLimit = http1::kMaxHeadSize;
constexpr size_t kBufferSize = 32 * 1024;
constexpr size_t kSpareBuffers = 256;
constexpr size_t kKeepTlsBuffers = 256;
constexpr auto kTick = std::chrono::milliseconds(20);
constexpr auto kActivityEvery = std::chrono::seconds(1);

// Results of reads and waits: >0 bytes, 0 end of stream, or one of these.
constexpr long kFailed = -1;
constexpr long kTimedOut = -2;

// ---- coroutine plumbing -------------------------------------------------

template <class T>
class [[nodiscard]] Task {
 public:
  struct promise_type {
    std::optional<T> value;
    std::exception_ptr error;
    std::coroutine_handle<> continuation;
    Task get_return_object() { return Task(std::coroutine_handle<promise_type>::from_promise(*this)); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        auto c = h.promise().continuation;
        return c ? c : std::noop_coroutine();
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    template <class U>
    void return_value(U&& v) {
      value.emplace(std::forward<U>(v));
    }
    void unhandled_exception() { error = std::current_exception(); }
  };
  explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task(const Task&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> c) noexcept {
    h_.promise().continuation = c;
    return h_;
  }
  T await_resume() {
    if (h_.promise().error) std::rethrow_exception(h_.promise().error);
    return std::move(*h_.promise().value);
  }

 private:
  std::coroutine_handle<promise_type> h_;
};

struct Detached {
  struct promise_type {
    Detached get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() {
      try {
        throw;
      } catch (const std::exception& e) {
        DSP_LOG(kError, kLog) << "connection ended by an exception: " << e.what();
      } catch (...) {
        DSP_LOG(kError, kLog) << "connection ended by an exception";
      }
    }
  };
};

// ---- small helpers ------------------------------------------------------

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

Response ErrorResponse(int status, std::string_view message) {
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::string(message) + "\n";
  return r;
}

// "name: value\r\n" appended to `out`.
void AppendHeader(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out += ": ";
  out.append(value);
  out += "\r\n";
}

// `response` on the wire into `out` (appended): checked, Content-Length on
// all but 204 and 304, no body for HEAD.
void SerializeResponse(Response response, int version_minor, bool head, bool keep_alive, std::string& out) {
  if (std::optional<Response> replacement = CheckResponse(response)) response = std::move(*replacement);
  out += version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(response.status);
  out += ' ';
  out += ReasonPhrase(response.status);
  out += "\r\n";
  if (!response.content_type.empty()) AppendHeader(out, "Content-Type", response.content_type);
  for (const auto& [name, value] : response.headers) AppendHeader(out, name, value);
  const bool has_body = response.status != 204 && response.status != 304;
  if (has_body) {
    out += "Content-Length: ";
    out += std::to_string(response.body.size());
    out += "\r\n";
  }
  if (!keep_alive) out += "Connection: close\r\n";
  else if (version_minor == 0) out += "Connection: keep-alive\r\n";
  out += "\r\n";
  if (has_body && !head) out += response.body;
}

bool IsHopByHop(std::string_view name) {
  return EqualsIgnoreCase(name, "connection") || EqualsIgnoreCase(name, "keep-alive") ||
         EqualsIgnoreCase(name, "proxy-connection");
}

}  // namespace

class ProxyServer::Impl {
 public:
  Impl(ProxyRouter& router, ProxyOptions options) : router_(router), options_(std::move(options)) {
    workers_.push_back(std::make_unique<Worker>(this, 0));
  }

  ~Impl() {
    Stop();
    std::lock_guard lock(mu_);
    for (auto& [port, listener] : listeners_) CloseListener(*listener);
    listeners_.clear();
    workers_.clear();
  }

  bool ok() const { return workers_[0]->epfd.valid() && workers_[0]->evfd.valid(); }

  Result<uint16_t> Listen(const std::string& address, uint16_t port, const std::string& certificate_file,
                          const std::string& key_file) {
    const std::string where = address + ":" + std::to_string(port);
    auto listener = std::make_shared<Listener>();
    if (!certificate_file.empty() || !key_file.empty()) {
      SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
      if (!ctx) return Internal("TLS: cannot make a context");
      listener->ctx = ctx;
      SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
      SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
      SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
      SSL_CTX_set_read_ahead(ctx, 1);
      if (SSL_CTX_use_certificate_chain_file(ctx, certificate_file.c_str()) != 1) {
        ERR_clear_error();
        return InvalidArgument("TLS certificate " + certificate_file + ": cannot be read");
      }
      if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
          SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        return InvalidArgument("TLS key " + key_file + ": cannot be read or does not match the certificate");
      }
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) {
      return InvalidArgument("listen: invalid IPv4 address '" + address + "'");
    }
    listener->fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const int fd = listener->fd.get();
    if (fd < 0) return Unavailable("listen " + where + ": " + std::strerror(errno));
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      return Unavailable("listen " + where + ": " + std::strerror(errno));
    }
    socklen_t len = sizeof(sa);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    uint16_t bound = ntohs(sa.sin_port);
    listener->port = bound;
    listener->tag = std::to_string(bound);
    {
      std::lock_guard lock(mu_);
      listeners_[bound] = listener;
    }
    Worker& w0 = *workers_[0];
    w0.Run([&w0, listener] { w0.AddListener(listener); });
    return bound;
  }

  void Unlisten(uint16_t port) {
    std::shared_ptr<Listener> listener;
    {
      std::lock_guard lock(mu_);
      auto it = listeners_.find(port);
      if (it == listeners_.end()) return;
      listener = it->second;
      listeners_.erase(it);
    }
    Worker& w0 = *workers_[0];
    w0.Run([&w0, listener] { w0.RemoveListener(*listener); });
  }

  void Start(int threads) {
    std::lock_guard lock(start_mu_);
    if (started_) return;
    started_ = true;
    while (workers_.size() < static_cast<size_t>(std::max(threads, 1))) {
      workers_.push_back(std::make_unique<Worker>(this, workers_.size()));
    }
    for (auto& w : workers_) w->Begin();
  }

  void Stop() {
    std::lock_guard lock(start_mu_);
    for (auto& w : workers_) w->RequestStop();
    for (auto& w : workers_) w->Join();
  }

  ProxyStats stats() const {
    ProxyStats s;
    s.connections_accepted = accepted_;
    s.connections_active = active_;
    s.requests = requests_;
    s.forwarded = forwarded_;
    s.upstream_connects = upstream_connects_;
    s.upstream_errors = upstream_errors_;
    s.tunnels = tunnels_;
    s.tls_handshake_failures = tls_failures_;
    return s;
  }

 private:
  struct Worker;
  struct Sock;

  struct Listener {
    UniqueFd fd;
    SSL_CTX* ctx = nullptr;
    uint16_t port = 0;
    std::string tag;
    uint32_t slot = 0;
    bool registered = false;
    ~Listener() {
      if (ctx) SSL_CTX_free(ctx);
    }
  };

  static void CloseListener(Listener& l) { l.fd.reset(); }

  // A coroutine waiting for a socket, in its socket's list and its worker's.
  struct Waiter {
    Waiter* prev = nullptr;  // worker's list
    Waiter* next = nullptr;
    Waiter* sock_next = nullptr;
    Sock* sock = nullptr;
    uint32_t events = 0;  // EPOLLIN or EPOLLOUT
    Clock::time_point deadline;
    std::coroutine_handle<> handle;
    long result = 0;
  };

  // A non-blocking socket registered (edge-triggered) in its worker's epoll
  // set, with its SSL if it is a TLS client connection. Owned by one
  // coroutine frame, or by the idle pool (upstreams).
  struct Sock {
    Sock(Worker& worker, UniqueFd socket_fd) : w(worker), fd(std::move(socket_fd)) { w.Register(this); }
    ~Sock() { Close(); }
    Sock(const Sock&) = delete;
    void Close() {
      if (!fd.valid()) return;
      Cancel();
      w.Unregister(this);
      if (ssl) SSL_free(ssl);
      ssl = nullptr;
      fd.reset();
    }
    // Ends every wait on this socket (they fail) and every later one.
    void Cancel() {
      canceled = true;
      while (waiters) {
        Waiter* x = waiters;
        waiters = x->sock_next;
        w.Unlink(x);
        x->result = kFailed;
        w.ready.push_back(x->handle);
      }
    }
    bool HasInput() const { return readable || (ssl && SSL_has_pending(ssl)); }

    Worker& w;
    UniqueFd fd;
    SSL* ssl = nullptr;
    uint32_t slot = 0;
    bool readable = false;
    bool writable = false;
    bool peer_closed = false;
    bool canceled = false;
    Waiter* waiters = nullptr;
  };

  // co_await Wait{sock, EPOLLIN or EPOLLOUT, deadline}: 0 when ready,
  // kTimedOut, or kFailed (canceled, stopping).
  struct Wait {
    Sock& s;
    uint32_t events;
    Clock::time_point deadline;
    Waiter node;
    bool await_ready() {
      if (s.canceled || s.w.stopping) {
        node.result = kFailed;
        return true;
      }
      return (events == EPOLLIN && s.readable) || (events == EPOLLOUT && s.writable);
    }
    void await_suspend(std::coroutine_handle<> h) {
      node.handle = h;
      node.sock = &s;
      node.events = events;
      node.deadline = deadline;
      node.sock_next = s.waiters;
      s.waiters = &node;
      s.w.Link(&node);
    }
    long await_resume() const { return node.result; }
  };

  // A buffer from the worker's pool, given back whenever it is empty and
  // the connection waits (an idle connection holds none).
  struct Buffer {
    explicit Buffer(Worker& worker) : w(worker) {}
    ~Buffer() { Drop(); }
    Buffer(const Buffer&) = delete;
    size_t size() const { return end - begin; }
    char* ptr() const { return data + begin; }
    std::string_view view() const { return {data + begin, end - begin}; }
    void Consume(size_t n) {
      begin += n;
      if (begin == end) begin = end = 0;
    }
    // Room to read into, compacting first; acquires the memory.
    size_t Room() {
      if (!data) data = w.TakeBuffer();
      if (begin > 0 && end == kBufferSize) {
        std::memmove(data, data + begin, end - begin);
        end -= begin;
        begin = 0;
      }
      return kBufferSize - end;
    }
    void ReleaseIfEmpty() {
      if (data && begin == end) Drop();
    }
    void Drop() {
      if (data) w.GiveBuffer(data);
      data = nullptr;
      begin = end = 0;
    }
    Worker& w;
    char* data = nullptr;
    size_t begin = 0;
    size_t end = 0;
  };

  using UpstreamKey = uint64_t;  // address << 16 | port

  struct Handoff {
    UniqueFd fd;
    Peer peer;
    std::shared_ptr<Listener> listener;
  };

  struct Worker {
    Worker(Impl* owner, size_t worker_index) : impl(owner), index(worker_index) {
      epfd.reset(::epoll_create1(EPOLL_CLOEXEC));
      evfd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = 0;
      ::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, evfd.get(), &ev);
      slots.push_back({});  // slot 0 is the eventfd
      sentinel.prev = sentinel.next = &sentinel;
      now = Clock::now();
    }
    ~Worker() {
      Join();
      idle.clear();
      for (char* b : spare) delete[] b;
    }

    // ---- thread control
    void Begin() {
      thread = std::thread([this] {
        SetThreadName("web-proxy-" + std::to_string(index));
        Loop();
      });
    }
    void RequestStop() {
      Post([this] { BeginStopping(); });
    }
    void Join() {
      if (thread.joinable()) thread.join();
    }
    // Runs fn on the loop: now if the loop is not running (before Start),
    // else posted and waited for (unless on the loop thread itself).
    void Run(std::function<void()> fn) {
      if (!thread.joinable()) {
        std::lock_guard lock(mu);
        if (!running) {
          fn();
          return;
        }
      }
      if (std::this_thread::get_id() == thread.get_id()) {
        fn();
        return;
      }
      auto done = std::make_shared<std::promise<void>>();
      auto future = done->get_future();
      if (!Post([fn = std::move(fn), done] {
            fn();
            done->set_value();
          })) {
        return;
      }
      future.wait();
    }
    bool Post(std::function<void()> fn) {
      {
        std::lock_guard lock(mu);
        if (exited) return false;
        tasks.push_back(std::move(fn));
      }
      Wake();
      return true;
    }
    void Wake() {
      uint64_t one = 1;
      (void)!::write(evfd.get(), &one, sizeof(one));
    }
    void HandOff(Handoff h) {
      {
        std::lock_guard lock(mu);
        if (exited) {
          --impl->active_;
          return;
        }
        handoffs.push_back(std::move(h));
      }
      Wake();
    }

    // ---- registration
    // A free slot of the table epoll's events point into.
    uint32_t TakeSlot() {
      if (!free_slots.empty()) {
        uint32_t slot = free_slots.back();
        free_slots.pop_back();
        return slot;
      }
      slots.push_back({});
      return static_cast<uint32_t>(slots.size() - 1);
    }
    void Register(Sock* s) {
      uint32_t slot = TakeSlot();
      slots[slot].sock = s;
      slots[slot].listener = nullptr;
      s->slot = slot;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.u64 = (static_cast<uint64_t>(slots[slot].generation) << 32) | slot;
      if (::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, s->fd.get(), &ev) != 0) s->canceled = true;
    }
    void Unregister(Sock* s) {
      ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, s->fd.get(), nullptr);
      FreeSlot(s->slot);
    }
    void FreeSlot(uint32_t slot) {
      slots[slot].sock = nullptr;
      slots[slot].listener = nullptr;
      ++slots[slot].generation;
      free_slots.push_back(slot);
    }
    void AddListener(const std::shared_ptr<Listener>& l) {
      if (!l->fd.valid() || l->registered) return;
      uint32_t slot = TakeSlot();
      slots[slot].listener = l.get();
      l->slot = slot;
      l->registered = true;
      listeners.push_back(l);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = (static_cast<uint64_t>(slots[slot].generation) << 32) | slot;
      ::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, l->fd.get(), &ev);
    }
    void RemoveListener(Listener& l) {
      if (l.registered) {
        ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, l.fd.get(), nullptr);
        FreeSlot(l.slot);
        l.registered = false;
      }
      l.fd.reset();
      std::erase_if(listeners, [&](const auto& p) { return p.get() == &l; });
    }

    // ---- waits
    void Link(Waiter* x) {
      if (x->deadline < earliest) earliest = x->deadline;
      x->next = &sentinel;
      x->prev = sentinel.prev;
      sentinel.prev->next = x;
      sentinel.prev = x;
    }
    void Unlink(Waiter* x) {
      x->prev->next = x->next;
      x->next->prev = x->prev;
      x->prev = x->next = nullptr;
    }
    static void RemoveFromSock(Waiter* x) {
      Waiter** p = &x->sock->waiters;
      while (*p && *p != x) p = &(*p)->sock_next;
      if (*p) *p = x->sock_next;
    }

    void Dispatch(Sock* s, uint32_t events) {
      if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->readable = true;
      if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s->writable = true;
      if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->peer_closed = true;
      Waiter* ready_now[4];
      int n = 0;
      Waiter** p = &s->waiters;
      while (*p) {
        Waiter* x = *p;
        bool go = (x->events == EPOLLIN && s->readable) || (x->events == EPOLLOUT && s->writable);
        if (go) {
          *p = x->sock_next;
          Unlink(x);
          x->result = 0;
          if (n < 4) ready_now[n++] = x;
          else ready.push_back(x->handle);  // never in practice: at most two wait on a socket
        } else {
          p = &x->sock_next;
        }
      }
      for (int i = 0; i < n; ++i) ready_now[i]->handle.resume();
    }

    void ExpireWaits(bool all) {
      std::vector<Waiter*> due;
      earliest = Clock::time_point::max();
      for (Waiter* x = sentinel.next; x != &sentinel; x = x->next) {
        if (all || x->deadline <= now) {
          due.push_back(x);
        } else if (x->deadline < earliest) {
          earliest = x->deadline;
        }
      }
      for (Waiter* x : due) {
        Unlink(x);
        RemoveFromSock(x);
        x->result = all ? kFailed : kTimedOut;
        ready.push_back(x->handle);
      }
    }

    // When the waits are next scanned: at the earliest deadline, but no
    // sooner than kTick after the last scan (deadlines are coarse).
    Clock::time_point NextScan(Clock::time_point last_scan) const { return std::max(earliest, last_scan + kTick); }

    void BeginStopping() {
      stopping = true;
      for (auto& l : std::vector<std::shared_ptr<Listener>>(listeners)) RemoveListener(*l);
      ExpireWaits(true);
      idle.clear();
    }

    // ---- the loop
    void Loop() {
      {
        std::lock_guard lock(mu);
        running = true;
      }
      sigset_t pipe_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
      epoll_event events[256];
      Clock::time_point last_scan = Clock::now();
      for (;;) {
        RunTasks();
        DrainReady();
        if (stopping && live == 0) break;
        int timeout = -1;
        if (!ready.empty()) {
          timeout = 0;
        } else if (sentinel.next != &sentinel) {
          auto ms = std::chrono::ceil<std::chrono::milliseconds>(NextScan(last_scan) - now).count();
          timeout = static_cast<int>(std::clamp<int64_t>(ms, 0, INT_MAX));
        }
        int n = ::epoll_wait(epfd.get(), events, 256, timeout);
        now = Clock::now();
        for (int i = 0; i < n; ++i) {
          uint64_t data = events[i].data.u64;
          if (data == 0) {
            uint64_t count;
            (void)!::read(evfd.get(), &count, sizeof(count));
            continue;
          }
          uint32_t slot = static_cast<uint32_t>(data);
          uint32_t generation = static_cast<uint32_t>(data >> 32);
          if (slot >= slots.size() || slots[slot].generation != generation) continue;
          if (slots[slot].listener) {
            Accept(*slots[slot].listener);
          } else if (slots[slot].sock) {
            Dispatch(slots[slot].sock, events[i].events);
          }
        }
        if (sentinel.next != &sentinel && now >= NextScan(last_scan)) {
          ExpireWaits(false);
          last_scan = now;
        }
      }
      idle.clear();
      std::lock_guard lock(mu);
      exited = true;
      running = false;
      impl->active_ -= handoffs.size();
      handoffs.clear();
    }

    void RunTasks() {
      std::vector<std::function<void()>> todo;
      std::vector<Handoff> adopted;
      {
        std::lock_guard lock(mu);
        todo.swap(tasks);
        adopted.swap(handoffs);
      }
      for (auto& fn : todo) fn();
      for (Handoff& h : adopted) Spawn(std::move(h));
    }

    void DrainReady() {
      while (!ready.empty()) {
        std::vector<std::coroutine_handle<>> batch;
        batch.swap(ready);
        for (auto h : batch) h.resume();
      }
    }

    void Accept(Listener& l) {
      for (int i = 0; i < 64 && l.fd.valid(); ++i) {
        sockaddr_in sa{};
        socklen_t len = sizeof(sa);
        UniqueFd fd(::accept4(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd.valid()) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) return;
          DSP_LOG(kWarning, kLog) << "accept on port " << l.port << ": " << std::strerror(errno);
          return;  // EMFILE and friends: the next turn tries again
        }
        if (impl->active_ >= impl->options_.max_connections) continue;  // closes it
        ++impl->accepted_;
        ++impl->active_;
        Handoff h{std::move(fd), Peer{}, nullptr};
        char text[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, &sa.sin_addr, text, sizeof(text));
        h.peer.address = text;
        h.peer.port = ntohs(sa.sin_port);
        for (auto& p : listeners) {
          if (p.get() == &l) h.listener = p;
        }
        Worker& target = *impl->workers_[impl->next_worker_++ % impl->workers_.size()];
        if (&target == this) Spawn(std::move(h));
        else target.HandOff(std::move(h));
      }
    }

    void Spawn(Handoff h) {
      if (stopping) {
        --impl->active_;
        return;  // closes it
      }
      ++live;
      impl->ServeConnection(*this, std::move(h.fd), std::move(h.peer), std::move(h.listener));
    }

    // ---- pools
    char* TakeBuffer() {
      if (spare.empty()) return new char[kBufferSize];
      char* b = spare.back();
      spare.pop_back();
      return b;
    }
    void GiveBuffer(char* b) {
      if (spare.size() < kSpareBuffers) spare.push_back(b);
      else delete[] b;
    }
    std::unique_ptr<Sock> TakeIdle(UpstreamKey key) {
      auto it = idle.find(key);
      if (it == idle.end()) return nullptr;
      while (!it->second.empty()) {
        std::unique_ptr<Sock> s = std::move(it->second.back());
        it->second.pop_back();
        if (!s->peer_closed && !s->canceled) return s;
      }
      return nullptr;
    }
    void GiveBack(UpstreamKey key, std::unique_ptr<Sock> s) {
      if (stopping) return;
      auto& v = idle[key];
      if (v.size() < impl->options_.max_idle_upstream) v.push_back(std::move(s));
    }

    struct Slot {
      Sock* sock = nullptr;
      Listener* listener = nullptr;
      uint32_t generation = 1;
    };

    Impl* impl;
    size_t index;
    UniqueFd epfd;
    UniqueFd evfd;
    std::thread thread;
    std::mutex mu;
    std::vector<std::function<void()>> tasks;  // guarded by mu
    std::vector<Handoff> handoffs;             // guarded by mu
    bool running = false;                      // guarded by mu
    bool exited = false;                       // guarded by mu
    // Loop thread only (or before Start).
    bool stopping = false;
    size_t live = 0;  // connection coroutines
    Clock::time_point now;
    std::vector<Slot> slots;
    std::vector<uint32_t> free_slots;
    Waiter sentinel;
    // No later than the earliest deadline in the list: Link lowers it, a
    // scan recomputes it; a wait that ends before its deadline leaves it
    // early, which costs one scan that finds nothing due.
    Clock::time_point earliest = Clock::time_point::max();
    std::vector<std::coroutine_handle<>> ready;
    std::vector<std::shared_ptr<Listener>> listeners;
    std::unordered_map<UpstreamKey, std::vector<std::unique_ptr<Sock>>> idle;
    std::vector<char*> spare;
  };

  // ---- I/O primitives -----------------------------------------------------

  // Reads what is there (waiting for it until `deadline`): bytes, 0 at the
  // end of the stream (a TLS close_notify, or a TCP FIN), kFailed, kTimedOut.
  static Task<long> ReadSome(Sock& s, char* buf, size_t n, Clock::time_point deadline) {
    for (;;) {
      if (s.canceled || s.w.stopping) co_return kFailed;
      if (!s.HasInput()) {
        long r = co_await Wait{s, EPOLLIN, deadline};
        if (r != 0) co_return r;
      }
      if (s.ssl) {
        ERR_clear_error();
        int r = SSL_read(s.ssl, buf, static_cast<int>(std::min<size_t>(n, INT_MAX)));
        if (r > 0) co_return r;
        int e = SSL_get_error(s.ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
          s.readable = false;
          continue;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
          s.writable = false;
          long w = co_await Wait{s, EPOLLOUT, deadline};
          if (w != 0) co_return w;
          continue;
        }
        if (e == SSL_ERROR_ZERO_RETURN) co_return 0;
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && r == 0) co_return 0;  // FIN without close_notify
        ERR_clear_error();
        co_return kFailed;
      }
      ssize_t r = ::recv(s.fd.get(), buf, n, 0);
      if (r >= 0) {
        if (r == 0) s.readable = true;  // stays at end of stream
        // A short read drained the socket: the next edge sets the flag
        // again. Not if the FIN was already reported: no edge follows it.
        else if (static_cast<size_t>(r) < n && !s.peer_closed) s.readable = false;
        co_return r;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s.readable = false;
        continue;
      }
      if (errno == EINTR) continue;
      co_return kFailed;
    }
  }

  // Reads into `b`; releases its memory first if it is empty and nothing
  // has arrived yet.
  static Task<long> ReadInto(Sock& s, Buffer& b, Clock::time_point deadline) {
    if (b.size() == 0 && !s.HasInput()) {
      b.Drop();
      long r = co_await Wait{s, EPOLLIN, deadline};
      if (r != 0) co_return r;
    }
    size_t room = b.Room();
    if (room == 0) co_return kFailed;
    long n = co_await ReadSome(s, b.data + b.end, room, deadline);
    if (n > 0) b.end += static_cast<size_t>(n);
    co_return n;
  }

  static Task<bool> WriteAll(Sock& s, const char* p, size_t n, Clock::time_point deadline) {
    while (n > 0) {
      if (s.canceled || s.w.stopping) co_return false;
      if (s.ssl) {
        ERR_clear_error();
        int r = SSL_write(s.ssl, p, static_cast<int>(std::min<size_t>(n, INT_MAX)));
        if (r > 0) {
          p += r;
          n -= static_cast<size_t>(r);
          continue;
        }
        int e = SSL_get_error(s.ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) {
          s.writable = false;
          if (co_await Wait{s, EPOLLOUT, deadline} != 0) co_return false;
          continue;
        }
        if (e == SSL_ERROR_WANT_READ) {
          s.readable = false;
          if (co_await Wait{s, EPOLLIN, deadline} != 0) co_return false;
          continue;
        }
        ERR_clear_error();
        co_return false;
      }
      ssize_t r = ::send(s.fd.get(), p, n, MSG_NOSIGNAL);
      if (r >= 0) {
        p += r;
        n -= static_cast<size_t>(r);
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s.writable = false;
        if (co_await Wait{s, EPOLLOUT, deadline} != 0) co_return false;
        continue;
      }
      if (errno == EINTR) continue;
      co_return false;
    }
    co_return true;
  }

  // Sends a TLS close_notify if it can go at once; never waits.
  static void SendCloseNotify(Sock& s) {
    if (!s.ssl || !s.fd.valid() || (SSL_get_shutdown(s.ssl) & SSL_SENT_SHUTDOWN)) return;
    ERR_clear_error();
    SSL_shutdown(s.ssl);
    ERR_clear_error();
  }

  Task<std::unique_ptr<Sock>> Connect(Worker& w, uint32_t address, uint16_t port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) co_return nullptr;
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (const std::string& cc = options_.upstream_congestion_control; !cc.empty()) {
      (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_CONGESTION, cc.data(), cc.size());
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(address);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 && errno != EINPROGRESS) {
      co_return nullptr;
    }
    auto s = std::make_unique<Sock>(w, std::move(fd));
    if (co_await Wait{*s, EPOLLOUT, w.now + options_.connect_timeout} != 0) co_return nullptr;
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(s->fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) co_return nullptr;
    ++upstream_connects_;
    co_return std::move(s);
  }

  // ---- bodies -------------------------------------------------------------

  using BodyKind = http1::BodyScanner::Kind;

  enum StreamResult { kStreamed = 0, kReadFailed = 1, kWriteFailed = 2, kBadFraming = 3 };

  // Writes `prefix` (a head; may be empty) and then the body from `from`
  // (its first bytes already in `buf`) to `to`, in buffer-sized steps; the
  // prefix goes out with the first body bytes, in one write. A kUntilClose
  // body ends at the end of `from`'s stream. On kBadFraming (the body's
  // framing is broken) a prefix still in `prefix` was not sent.
  Task<int> StreamBody(Sock& from, Buffer& buf, http1::BodyScanner& body, Sock& to, std::string& prefix) {
    Worker& w = from.w;
    for (;;) {
      if (buf.size() > 0 && !body.done()) {
        long take = body.Take(buf.ptr(), buf.size());
        if (take < 0) co_return kBadFraming;
        if (!prefix.empty()) {
          prefix.append(buf.ptr(), static_cast<size_t>(take));
        } else if (!co_await WriteAll(to, buf.ptr(), static_cast<size_t>(take), w.now + options_.io_timeout)) {
          co_return kWriteFailed;
        }
        buf.Consume(static_cast<size_t>(take));
      }
      if (!prefix.empty()) {
        bool ok = co_await WriteAll(to, prefix.data(), prefix.size(), w.now + options_.io_timeout);
        prefix.clear();
        if (!ok) co_return kWriteFailed;
      }
      if (body.done()) co_return kStreamed;
      long n = co_await ReadInto(from, buf, w.now + options_.io_timeout);
      if (n == 0 && body.kind() == BodyKind::kUntilClose) {
        body.EndOfStream();
        co_return kStreamed;
      }
      if (n <= 0) co_return kReadFailed;
    }
  }

  // ---- a client connection --------------------------------------------------

  struct Conn {
    Conn(Worker& worker, UniqueFd fd) : w(worker), client(worker, std::move(fd)), in(worker) {}
    Worker& w;
    Sock client;
    Buffer in;
    std::string out;  // heads on their way; keeps its capacity
    // The current request's and response's heads: here rather than in a
    // coroutine frame, which would be a few KiB allocated per request.
    http1::RequestHead req_head;
    http1::ResponseHead resp_head;
    Peer peer;
    std::string tag;
  };

  struct ActiveGuard {
    Impl& impl;
    Worker& w;
    ~ActiveGuard() {
      --impl.active_;
      --w.live;
    }
  };

  Detached ServeConnection(Worker& w, UniqueFd fd, Peer peer, std::shared_ptr<Listener> listener) {
    ActiveGuard guard{*this, w};
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Conn c(w, std::move(fd));
    c.peer = std::move(peer);
    c.tag = listener ? listener->tag : std::string();
    if (listener && listener->ctx) {
      c.client.ssl = SSL_new(listener->ctx);
      if (!c.client.ssl) co_return;
      // OpenSSL's own buffers (about 34 KiB) are given back whenever they
      // empty only past kKeepTlsBuffers connections on this worker: the
      // malloc and free of each per request cost a third of the p99
      // (bench/http_proxy.sh), while many connections are mostly idle ones.
      if (w.live > kKeepTlsBuffers) SSL_set_mode(c.client.ssl, SSL_MODE_RELEASE_BUFFERS);
      SSL_set_fd(c.client.ssl, c.client.fd.get());
      BIO* rbio = SSL_get_rbio(c.client.ssl);
      BIO_set_callback_arg(rbio, reinterpret_cast<char*>(&c.client));
      BIO_set_callback_ex(rbio, &ObserveTlsRead);
      SSL_set_accept_state(c.client.ssl);
      if (!co_await Handshake(c.client, w.now + options_.header_read_timeout)) {
        ++tls_failures_;
        co_return;
      }
    }
    listener.reset();
    bool first = true;
    for (;;) {
      auto deadline = w.now + (first ? options_.header_read_timeout : options_.idle_timeout);
      first = false;
      if (!co_await ServeRequest(c, deadline)) break;
    }
    SendCloseNotify(c.client);
    // A lingering close: our FIN goes out now, and what the client still
    // sends (an unread body) is read and dropped for a while, so that it
    // reads our last answer rather than a reset.
    if (!c.client.canceled && !w.stopping) {
      ::shutdown(c.client.fd.get(), SHUT_WR);
      auto until = w.now + std::chrono::seconds(2);
      size_t drained = 0;
      while (drained < (1u << 20)) {
        c.in.Consume(c.in.size());
        long n = co_await ReadInto(c.client, c.in, until);
        if (n <= 0) break;
        drained += static_cast<size_t>(n);
      }
    }
  }

  // The socket BIO's reads, seen from outside: a short one drained the
  // socket, so the next SSL_read need not try (and get EAGAIN) before the
  // next edge, as for plain sockets in ReadSome.
  static long ObserveTlsRead(BIO* bio, int oper, const char*, size_t len, int, long, int ret, size_t* processed) {
    if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed && *processed < len) {
      auto* s = reinterpret_cast<Sock*>(BIO_get_callback_arg(bio));
      if (!s->peer_closed) s->readable = false;
    }
    return ret;
  }

  static Task<bool> Handshake(Sock& s, Clock::time_point deadline) {
    for (;;) {
      ERR_clear_error();
      int r = SSL_do_handshake(s.ssl);
      if (r == 1) co_return true;
      int e = SSL_get_error(s.ssl, r);
      if (e == SSL_ERROR_WANT_READ) {
        s.readable = false;
        if (co_await Wait{s, EPOLLIN, deadline} != 0) co_return false;
      } else if (e == SSL_ERROR_WANT_WRITE) {
        s.writable = false;
        if (co_await Wait{s, EPOLLOUT, deadline} != 0) co_return false;
      } else {
        ERR_clear_error();
        co_return false;
      }
    }
  }

  Task<bool> Reply(Conn& c, Response response, int version_minor, bool head, bool keep_alive) {
    c.out.clear();
    SerializeResponse(std::move(response), version_minor, head, keep_alive, c.out);
    bool ok = co_await WriteAll(c.client, c.out.data(), c.out.size(), c.w.now + options_.io_timeout);
    c.out.clear();
    co_return ok;
  }

  // Reads, routes and answers one request. True if the connection may
  // carry another.
  Task<bool> ServeRequest(Conn& c, Clock::time_point deadline) {
    http1::RequestHead& head = c.req_head;
    for (;;) {
      if (c.in.size() > 0) {
        http1::ParseResult r = http1::ParseRequestHead(c.in.view(), kHeadLimit, &head);
        if (r == http1::ParseResult::kComplete) break;
        if (r == http1::ParseResult::kError) {
          ++requests_;
          co_await Reply(c, ErrorResponse(400, "bad request"), 1, false, false);
          co_return false;
        }
      }
      long n = co_await ReadInto(c.client, c.in, deadline);
      if (n <= 0) co_return false;  // closed, timed out, failed: nothing to answer
    }
    ++requests_;
    const bool head_request = head.method == "HEAD";
    const int minor = head.version_minor;
    bool keep_alive = minor == 1 ? !head.framing.connection_close : head.framing.connection_keep_alive;

    Result<Target> target = ParseTarget(head.target);
    if (!target.ok()) {
      co_await Reply(c, ErrorResponse(400, "bad request target"), minor, head_request, false);
      co_return false;
    }
    Request request;
    request.method.assign(head.method);
    request.target.assign(head.target);
    request.path = std::move(target->path);
    request.query = std::move(target->query);
    std::string name;
    for (size_t i = 0; i < head.num_headers; ++i) {
      const http1::Header& h = head.headers[i];
      name.assign(h.name);
      for (char& ch : name) ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch;
      auto [it, inserted] = request.headers.try_emplace(name, h.value);
      if (!inserted) {
        it->second += ", ";
        it->second += h.value;
      }
    }
    request.peer = c.peer;
    request.listener_tag = c.tag;

    http1::BodyScanner body = http1::BodyScanner::ForRequest(head.framing);

    ProxyRoute route = router_.Decide(request);
    if (auto* reply = std::get_if<ProxyReply>(&route)) {
      c.in.Consume(head.head_size);
      bool keep = keep_alive && body.kind() == BodyKind::kNone;  // an unread body ends the connection
      bool ok = co_await Reply(c, std::move(reply->response), minor, head_request, keep);
      co_return ok && keep;
    }
    if (std::holds_alternative<ProxyLocal>(route)) {
      c.in.Consume(head.head_size);
      if (body.kind() == BodyKind::kLength && body.remaining() > options_.max_local_body) {
        co_await Reply(c, ErrorResponse(413, "request body too large"), minor, head_request, false);
        co_return false;
      }
      if (head.framing.expect_continue && !body.done() && c.in.size() == 0 && minor == 1) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        if (!co_await WriteAll(c.client, kContinue.data(), kContinue.size(), c.w.now + options_.io_timeout)) {
          co_return false;
        }
      }
      while (!body.done()) {
        if (c.in.size() > 0) {
          long take = body.Take(c.in.ptr(), c.in.size(), &request.body);
          if (take < 0) {
            co_await Reply(c, ErrorResponse(400, "bad request"), minor, head_request, false);
            co_return false;
          }
          c.in.Consume(static_cast<size_t>(take));
          if (body.consumed() > options_.max_local_body) {
            co_await Reply(c, ErrorResponse(413, "request body too large"), minor, head_request, false);
            co_return false;
          }
          continue;
        }
        if (co_await ReadInto(c.client, c.in, c.w.now + options_.io_timeout) <= 0) co_return false;
      }
      bool ok = co_await Reply(c, router_.Serve(request), minor, head_request, keep_alive);
      co_return ok && keep_alive;
    }
    ProxyForward& forward = std::get<ProxyForward>(route);
    co_return co_await Forward(c, head, body, forward, keep_alive, head_request);
  }

  // The request head for the upstream, into c.out.
  static void UpstreamHead(Conn& c, const http1::RequestHead& head, const ProxyForward& forward, bool upgrade) {
    std::string& out = c.out;
    out.clear();
    out.append(head.method);
    out += ' ';
    out += forward.target;
    out += head.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
    for (size_t i = 0; i < head.num_headers; ++i) {
      const http1::Header& h = head.headers[i];
      if (!upgrade && IsHopByHop(h.name)) continue;
      bool drop = false;
      for (const std::string& r : forward.remove_headers) drop = drop || EqualsIgnoreCase(h.name, r);
      for (const auto& s : forward.set_headers) drop = drop || EqualsIgnoreCase(h.name, s.first);
      if (drop) continue;
      AppendHeader(out, h.name, h.value);
    }
    for (const auto& [name, value] : forward.set_headers) AppendHeader(out, name, value);
    if (!upgrade && head.version_minor == 0) out += "Connection: keep-alive\r\n";
    out += "\r\n";
  }

  // Forwards one request and its response. True if the client connection
  // may carry another request.
  Task<bool> Forward(Conn& c, const http1::RequestHead& head, http1::BodyScanner& body, const ProxyForward& forward,
                     bool client_keep_alive, bool head_request) {
    Worker& w = c.w;
    ++forwarded_;
    router_.Activity(forward.tag);
    const int minor = head.version_minor;
    // RFC 9110 7.8: Upgrade in an HTTP/1.0 request is ignored.
    const bool upgrade = head.framing.has_upgrade && head.framing.connection_upgrade && minor == 1;
    UpstreamHead(c, head, forward, upgrade);
    c.in.Consume(head.head_size);  // the head's views are not used after this

    // A body that is all here already can be sent again on a second
    // upstream connection; a streamed one cannot.
    http1::BodyScanner probe = body;
    long buffered = probe.Take(c.in.ptr(), c.in.size());
    if (buffered < 0) {
      co_await Reply(c, ErrorResponse(400, "bad request"), minor, head_request, false);
      co_return false;
    }
    const bool body_buffered = probe.done();
    const size_t buffered_body = body_buffered ? static_cast<size_t>(buffered) : 0;
    if (body_buffered) body = probe;
    // RFC 9110 10.1.1: Expect is for HTTP/1.1 requests only.
    const bool wait_for_continue = head.framing.expect_continue && !body_buffered && minor == 1;

    const UpstreamKey key = (static_cast<uint64_t>(forward.address) << 16) | forward.port;
    std::unique_ptr<Sock> up;
    Buffer resp(w);
    http1::ResponseHead& rh = c.resp_head;
    bool sent_continue = false;
    for (int attempt = 0;; ++attempt) {
      up = attempt == 0 ? w.TakeIdle(key) : nullptr;
      const bool reused = up != nullptr;
      if (!up) up = co_await Connect(w, forward.address, forward.port);
      if (!up) {
        ++upstream_errors_;
        co_await Reply(c, ErrorResponse(502, "bad gateway"), minor, head_request, false);
        co_return false;
      }
      // Again for a retry: the head's bytes are still in c.in's memory, as
      // nothing was read into it since (the body was all there).
      if (attempt > 0) UpstreamHead(c, head, forward, upgrade);
      bool sent;
      if (body_buffered) {
        c.out.append(c.in.ptr(), buffered_body);
        sent = co_await WriteAll(*up, c.out.data(), c.out.size(), w.now + options_.io_timeout);
        c.out.clear();
      } else if (wait_for_continue) {
        sent = co_await WriteAll(*up, c.out.data(), c.out.size(), w.now + options_.io_timeout);
        c.out.clear();
      } else {
        int r = co_await StreamBody(c.client, c.in, body, *up, c.out);
        if (r == kBadFraming) {
          co_await Reply(c, ErrorResponse(400, "bad request"), minor, head_request, false);
          co_return false;
        }
        if (r == kReadFailed) co_return false;  // the client went away
        sent = r == kStreamed;
      }
      const bool may_retry = reused && body_buffered && attempt == 0;
      if (!sent) {
        if (may_retry) continue;
        ++upstream_errors_;
        co_await Reply(c, ErrorResponse(502, "bad gateway"), minor, head_request, false);
        co_return false;
      }
      // The response head: 1xx ones are passed on, to HTTP/1.1 clients only
      // (an HTTP/1.0 one waits for the final response, RFC 9110 15.2), and
      // the body is sent after a 100 when the client waits for it.
      int got = co_await ReadResponseHead(*up, resp, &rh);
      if (got == 1 && wait_for_continue && !sent_continue && rh.status == 100) {
        sent_continue = true;
        if (!co_await WriteAll(c.client, resp.ptr(), rh.head_size, w.now + options_.io_timeout)) co_return false;
        resp.Consume(rh.head_size);
        std::string none;
        int r = co_await StreamBody(c.client, c.in, body, *up, none);
        if (r == kBadFraming) {
          co_await Reply(c, ErrorResponse(400, "bad request"), minor, head_request, false);
          co_return false;
        }
        if (r == kReadFailed) co_return false;
        if (r != kStreamed) got = -1;
        else got = co_await ReadResponseHead(*up, resp, &rh);
      }
      while (got == 1 && rh.status >= 100 && rh.status < 200 && rh.status != 101) {
        if (minor == 1 && !co_await WriteAll(c.client, resp.ptr(), rh.head_size, w.now + options_.io_timeout)) {
          co_return false;
        }
        resp.Consume(rh.head_size);
        got = co_await ReadResponseHead(*up, resp, &rh);
      }
      if (got == 0 && may_retry) continue;  // a kept-alive connection closed before answering
      if (got != 1) {
        ++upstream_errors_;
        co_await Reply(c, ErrorResponse(502, "bad gateway"), minor, head_request, false);
        co_return false;
      }
      break;
    }
    if (body_buffered) c.in.Consume(buffered_body);
    if (wait_for_continue && !body.done()) client_keep_alive = false;  // the body was never read

    if (rh.status == 101) {
      if (!upgrade) {
        ++upstream_errors_;
        co_await Reply(c, ErrorResponse(502, "bad gateway"), minor, head_request, false);
        co_return false;
      }
      if (!co_await WriteAll(c.client, resp.ptr(), rh.head_size, w.now + options_.io_timeout)) co_return false;
      resp.Consume(rh.head_size);
      ++tunnels_;
      co_await Tunnel(c, *up, resp, forward.tag);
      co_return false;
    }

    http1::BodyScanner rbody = http1::BodyScanner::ForResponse(rh.framing, rh.status, head_request);
    const bool upstream_keep = rbody.kind() != BodyKind::kUntilClose && !upgrade &&
                               (rh.version_minor == 1 ? !rh.framing.connection_close
                                                      : rh.framing.connection_keep_alive);
    const bool keep = client_keep_alive && !upgrade && rbody.kind() != BodyKind::kUntilClose;

    // The response head for the client: as received, but for the
    // connection's own fields.
    std::string& out = c.out;
    out.clear();
    std::string_view raw = resp.view();
    size_t line_end = raw.find('\n');
    out.append(raw.substr(0, line_end + 1));
    for (size_t i = 0; i < rh.num_headers; ++i) {
      const http1::Header& h = rh.headers[i];
      if (IsHopByHop(h.name)) continue;
      AppendHeader(out, h.name, h.value);
    }
    if (!keep) out += "Connection: close\r\n";
    else if (minor == 0) out += "Connection: keep-alive\r\n";
    out += "\r\n";
    resp.Consume(rh.head_size);

    int r = co_await StreamBody(*up, resp, rbody, c.client, out);
    if (r != kStreamed) {
      ++upstream_errors_;
      // Broken framing before the head went out gives a 502; once the
      // response is under way, all we can do is close.
      if (r == kBadFraming && !out.empty()) {
        co_await Reply(c, ErrorResponse(502, "bad gateway"), minor, head_request, false);
      }
      out.clear();
      co_return false;
    }
    out.clear();
    if (upstream_keep && resp.size() == 0) w.GiveBack(key, std::move(up));
    co_return keep;
  }

  // 1 with a response head parsed in `resp`; 0 if the upstream closed (or
  // reset) before any byte of it; -1 on other failures.
  Task<int> ReadResponseHead(Sock& up, Buffer& resp, http1::ResponseHead* rh) {
    bool any = resp.size() > 0;
    for (;;) {
      if (resp.size() > 0) {
        http1::ParseResult r = http1::ParseResponseHead(resp.view(), kHeadLimit, rh);
        if (r == http1::ParseResult::kComplete) co_return 1;
        if (r == http1::ParseResult::kError) co_return -1;
      }
      long n = co_await ReadInto(up, resp, up.w.now + options_.io_timeout);
      if (n > 0) {
        any = true;
        continue;
      }
      if ((n == 0 || n == kFailed) && !any && !up.w.stopping) co_return 0;
      co_return -1;
    }
  }

  // ---- tunnels --------------------------------------------------------------

  struct TunnelState {
    Clock::time_point last;
    bool other_done = false;
    std::coroutine_handle<> waiting;
  };

  struct WaitOther {
    TunnelState& st;
    bool await_ready() const noexcept { return st.other_done; }
    void await_suspend(std::coroutine_handle<> h) noexcept { st.waiting = h; }
    void await_resume() const noexcept {}
  };

  // Copies bytes from `from` to `to` until either ends.
  Task<bool> Pump(Sock& from, Sock& to, Buffer& buf, TunnelState& st, uint64_t tag) {
    Worker& w = from.w;
    auto last_report = w.now - kActivityEvery;
    for (;;) {
      if (buf.size() > 0) {
        if (!co_await WriteAll(to, buf.ptr(), buf.size(), w.now + options_.io_timeout)) co_return false;
        buf.Consume(buf.size());
        st.last = w.now;
        if (w.now - last_report >= kActivityEvery) {
          last_report = w.now;
          router_.Activity(tag);
        }
      }
      long n = co_await ReadInto(from, buf, st.last + options_.tunnel_idle_timeout);
      if (n == kTimedOut && w.now < st.last + options_.tunnel_idle_timeout) continue;  // the other way moved
      if (n <= 0) co_return true;
    }
  }

  Detached PumpDetached(Sock& from, Sock& to, Buffer& buf, TunnelState& st, uint64_t tag, Sock& a, Sock& b) {
    co_await Pump(from, to, buf, st, tag);
    a.Cancel();
    b.Cancel();
    st.other_done = true;
    if (st.waiting) {
      auto h = std::exchange(st.waiting, {});
      h.resume();
    }
  }

  Task<bool> Tunnel(Conn& c, Sock& up, Buffer& resp, uint64_t tag) {
    TunnelState st;
    st.last = c.w.now;
    PumpDetached(up, c.client, resp, st, tag, up, c.client);
    co_await Pump(c.client, up, c.in, st, tag);
    // Tell the client the stream ended cleanly, then close both.
    SendCloseNotify(c.client);
    c.client.Cancel();
    up.Cancel();
    co_await WaitOther{st};
    SendCloseNotify(c.client);
    co_return true;
  }

  ProxyRouter& router_;
  const ProxyOptions options_;
  std::atomic<uint64_t> accepted_{0}, active_{0}, requests_{0}, forwarded_{0}, upstream_connects_{0},
      upstream_errors_{0}, tunnels_{0}, tls_failures_{0};
  std::atomic<size_t> next_worker_{0};
  std::mutex start_mu_;
  bool started_ = false;
  mutable std::mutex mu_;
  std::map<uint16_t, std::shared_ptr<Listener>> listeners_;  // guarded by mu_
  std::vector<std::unique_ptr<Worker>> workers_;
};

Result<std::unique_ptr<ProxyServer>> ProxyServer::Create(ProxyRouter& router, ProxyOptions options) {
  auto impl = std::make_unique<Impl>(router, std::move(options));
  if (!impl->ok()) return Internal("proxy: cannot make an epoll set");
  return std::unique_ptr<ProxyServer>(new ProxyServer(std::move(impl)));
}

ProxyServer::ProxyServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProxyServer::~ProxyServer() = default;
Result<uint16_t> ProxyServer::Listen(const std::string& address, uint16_t port, const std::string& certificate_file,
                                     const std::string& key_file) {
  return impl_->Listen(address, port, certificate_file, key_file);
}
void ProxyServer::Unlisten(uint16_t port) { impl_->Unlisten(port); }
void ProxyServer::Start(int threads) { impl_->Start(threads); }
void ProxyServer::Stop() { impl_->Stop(); }
ProxyStats ProxyServer::stats() const { return impl_->stats(); }

}  // namespace dspool
