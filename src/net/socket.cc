#include "net/socket.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>

#include "model/ipv4.h"

namespace dspool {
namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in MakeAddress(uint32_t ipv4_host_order, uint16_t port) {
  sockaddr_in sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(ipv4_host_order);
  return sa;
}

}  // namespace

Status ConnectError(const std::string& what, int err) {
  Status s = ErrnoStatus(what, err);
  switch (err) {
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case ECONNABORTED:
      return Status(StatusCode::kUnavailable, s.message());
    default:
      return s;
  }
}

namespace {

// Waits until `fd` reports one of `events` or `deadline` passes. Returns the
// revents (0 on timeout), or -errno.
int PollUntil(int fd, short events, Clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    pollfd p = {fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT32_MAX)));
    if (n > 0) return p.revents;
    if (n == 0) {
      if (Clock::now() >= deadline) return 0;
      continue;
    }
    if (errno != EINTR) return -errno;
  }
}

// The algorithms a socket of this process may choose: all that are loaded
// for root, the allowed ones for others (what TCP_CONGESTION accepts).
std::string UsableCongestionControls() {
  const char* file = ::geteuid() == 0 ? "/proc/sys/net/ipv4/tcp_available_congestion_control"
                                      : "/proc/sys/net/ipv4/tcp_allowed_congestion_control";
  std::ifstream in(file);
  std::string list;
  std::getline(in, list);
  return list.empty() ? "unknown" : list;
}

// `what` prefixes the error ("connect 10.0.0.2:22: "), if any.
Status SetCongestionControl(const UniqueFd& fd, const std::string& name, const std::string& what) {
  if (::setsockopt(fd.get(), IPPROTO_TCP, TCP_CONGESTION, name.data(), name.size()) == 0) return Status::Ok();
  if (errno == ENOENT || errno == EPERM || errno == EINVAL) {
    return InvalidArgument(what + "TCP congestion control '" + name + "' is not available here (this host offers: " +
                           UsableCongestionControls() + ")");
  }
  return ErrnoStatus(what + "TCP_CONGESTION " + name, errno);
}

}  // namespace

std::string FormatEndpoint(uint32_t ipv4_host_order, uint16_t port) {
  return FormatIpv4(ipv4_host_order) + ":" + std::to_string(port);
}

Result<UniqueFd> StartConnectTcp(uint32_t ipv4_host_order, uint16_t port, const std::string& congestion_control,
                                 std::optional<uint32_t> transparent_source) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("connect " + FormatEndpoint(ipv4_host_order, port) + ": socket", errno);
  SetNoDelay(fd);
  if (!congestion_control.empty()) {
    DSP_RETURN_IF_ERROR(
        SetCongestionControl(fd, congestion_control, "connect " + FormatEndpoint(ipv4_host_order, port) + ": "));
  }
  if (transparent_source) {
    const std::string what =
        "connect " + FormatEndpoint(ipv4_host_order, port) + " from " + FormatIpv4(*transparent_source) + ": ";
    int one = 1;
    if (::setsockopt(fd.get(), SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) != 0) {
      return ErrnoStatus(what + "IP_TRANSPARENT", errno);
    }
    // The port is picked at connect, for the whole 4-tuple: one client
    // address may have as many connections as the kernel has ports per
    // instance, not per host.
    if (::setsockopt(fd.get(), SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) != 0) {
      return ErrnoStatus(what + "IP_BIND_ADDRESS_NO_PORT", errno);
    }
    sockaddr_in source = MakeAddress(*transparent_source, 0);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&source), sizeof(source)) != 0) {
      return ErrnoStatus(what + "bind", errno);
    }
  }
  sockaddr_in sa = MakeAddress(ipv4_host_order, port);
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EINPROGRESS) {
    return ConnectError("connect " + FormatEndpoint(ipv4_host_order, port), errno);
  }
  return fd;
}

Status CheckCongestionControl(const std::string& name) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("TCP congestion control " + name + ": socket", errno);
  return SetCongestionControl(fd, name, "");
}

Status FinishConnect(int fd, uint32_t ipv4_host_order, uint16_t port) {
  int err = 0;
  socklen_t len = sizeof(err);
  const std::string what = "connect " + FormatEndpoint(ipv4_host_order, port);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return ErrnoStatus(what, errno);
  if (err != 0) return ConnectError(what, err);
  return Status::Ok();
}

Result<UniqueFd> ConnectTcp(uint32_t ipv4_host_order, uint16_t port, std::chrono::milliseconds timeout) {
  const std::string what = "connect " + FormatEndpoint(ipv4_host_order, port);
  if (timeout.count() <= 0) return InvalidArgument(what + ": timeout must be positive");
  const Clock::time_point deadline = Clock::now() + timeout;
  DSP_ASSIGN_OR_RETURN(UniqueFd fd, StartConnectTcp(ipv4_host_order, port));
  int revents = PollUntil(fd.get(), POLLOUT, deadline);
  if (revents < 0) return ErrnoStatus(what + ": poll", -revents);
  if (revents == 0) {
    return DeadlineExceeded(what + ": timed out after " + std::to_string(timeout.count()) + " ms");
  }
  DSP_RETURN_IF_ERROR(FinishConnect(fd.get(), ipv4_host_order, port));
  return fd;
}

namespace {

std::mutex adopted_mu;
std::map<std::pair<uint32_t, uint16_t>, UniqueFd> adopted;  // guarded by adopted_mu; by address, port

// The address and port a listening TCP/IPv4 socket is bound to; nullopt
// for any other descriptor.
std::optional<std::pair<uint32_t, uint16_t>> ListeningAddress(int fd) {
  int listening = 0;
  socklen_t len = sizeof(listening);
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) return std::nullopt;
  sockaddr_in sa{};
  len = sizeof(sa);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0 || sa.sin_family != AF_INET) return std::nullopt;
  int type = 0;
  len = sizeof(type);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) return std::nullopt;
  return std::make_pair(ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port));
}

}  // namespace

void AdoptListeners(std::vector<UniqueFd> fds) {
  std::lock_guard lock(adopted_mu);
  for (UniqueFd& fd : fds) {
    if (auto where = ListeningAddress(fd.get())) adopted[*where] = std::move(fd);
  }
}

size_t DropUnclaimedListeners() {
  std::lock_guard lock(adopted_mu);
  size_t n = adopted.size();
  adopted.clear();
  return n;
}

Result<std::vector<UniqueFd>> DuplicateListeners() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return ErrnoStatus("opendir /proc/self/fd", errno);
  std::vector<int> candidates;
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && fd != ::dirfd(dir)) candidates.push_back(static_cast<int>(fd));
  }
  ::closedir(dir);
  std::vector<UniqueFd> out;
  for (int fd : candidates) {
    if (!ListeningAddress(fd)) continue;
    UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!copy.valid()) return ErrnoStatus("dup a listener", errno);
    out.push_back(std::move(copy));
  }
  return out;
}

Result<UniqueFd> ListenTcp(const std::string& address, uint16_t port, int backlog, uint16_t* bound_port) {
  std::optional<uint32_t> ip = ParseIpv4(address);
  if (!ip) return InvalidArgument("listen: invalid IPv4 address '" + address + "'");
  const std::string what = "listen " + FormatEndpoint(*ip, port);
  if (backlog < 0) return InvalidArgument(what + ": negative backlog " + std::to_string(backlog));
  if (port != 0) {
    std::lock_guard lock(adopted_mu);
    if (auto it = adopted.find({*ip, port}); it != adopted.end()) {
      UniqueFd fd = std::move(it->second);
      adopted.erase(it);
      SetNoDelay(fd);  // a predecessor's listener may predate it
      if (bound_port != nullptr) *bound_port = port;
      return fd;
    }
  }

  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(what + ": socket", errno);
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return ErrnoStatus(what + ": SO_REUSEADDR", errno);
  }
  sockaddr_in sa = MakeAddress(*ip, port);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
    return ErrnoStatus(what, errno);
  }
  if (::listen(fd.get(), backlog) != 0) return ErrnoStatus(what, errno);
  SetNoDelay(fd);  // inherited by every accepted connection
  if (bound_port != nullptr) {
    sockaddr_in bound;
    socklen_t len = sizeof(bound);
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
      return ErrnoStatus(what + ": getsockname", errno);
    }
    *bound_port = ntohs(bound.sin_port);
  }
  return fd;
}

Result<UniqueFd> AcceptTcp(const UniqueFd& listener, std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    DSP_ASSIGN_OR_RETURN(std::optional<UniqueFd> fd, TryAcceptTcp(listener));
    if (fd) return std::move(*fd);
    int revents = PollUntil(listener.get(), POLLIN, deadline);
    if (revents < 0) return ErrnoStatus("accept: poll", -revents);
    if (revents == 0) {
      return DeadlineExceeded("accept: no connection within " + std::to_string(timeout.count()) + " ms");
    }
  }
}

Result<std::optional<UniqueFd>> TryAcceptTcp(const UniqueFd& listener, TcpEndpoint* peer) {
  while (true) {
    sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = ::accept4(listener.get(), reinterpret_cast<sockaddr*>(&sa), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (peer != nullptr) *peer = sa.sin_family == AF_INET ? TcpEndpoint{ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)}
                                                            : TcpEndpoint{};
      return std::optional<UniqueFd>(UniqueFd(fd));
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN) return std::optional<UniqueFd>();
    return ErrnoStatus("accept", errno);
  }
}

Result<size_t> TrySend(const UniqueFd& fd, std::string_view data) {
  while (true) {
    ssize_t n = ::send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return size_t{0};
    return ErrnoStatus("send", errno);
  }
}

namespace {

Result<std::optional<size_t>> TryRecvWith(const UniqueFd& fd, char* buffer, size_t size, int flags) {
  while (true) {
    ssize_t n = ::recv(fd.get(), buffer, size, MSG_DONTWAIT | flags);
    if (n >= 0) return std::optional<size_t>(static_cast<size_t>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return std::optional<size_t>();
    return ErrnoStatus("recv", errno);
  }
}

}  // namespace

Result<std::optional<size_t>> TryRecv(const UniqueFd& fd, char* buffer, size_t size) {
  return TryRecvWith(fd, buffer, size, 0);
}

Result<std::optional<size_t>> TryPeek(const UniqueFd& fd, char* buffer, size_t size) {
  return TryRecvWith(fd, buffer, size, MSG_PEEK);
}

void SetNoDelay(const UniqueFd& fd) {
  int one = 1;
  (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void CloseWithReset(UniqueFd fd) {
  linger now{1, 0};
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &now, sizeof(now));
  fd.reset();
}

Result<TcpEndpoint> LocalEndpoint(const UniqueFd& fd) {
  sockaddr_in local;
  socklen_t len = sizeof(local);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return ErrnoStatus("getsockname", errno);
  }
  if (local.sin_family != AF_INET) return InvalidArgument("getsockname: not an IPv4 socket");
  return TcpEndpoint{ntohl(local.sin_addr.s_addr), ntohs(local.sin_port)};
}

static_assert(kMaxUnixSocketPath == sizeof(sockaddr_un{}.sun_path) - 1);

Result<UnixPeer> UnixPeerCredentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return ErrnoStatus("SO_PEERCRED", errno);
  return UnixPeer{cred.uid, cred.gid, cred.pid};
}

}  // namespace dspool
