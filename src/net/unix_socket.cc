#include "net/unix_socket.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/status.h"
#include "net/socket.h"

namespace dspool {

Result<std::pair<UniqueFd, UniqueFd>> MakeSeqPacketPair(const std::string& what) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return ErrnoStatus("socketpair for " + what, errno);
  return std::make_pair(UniqueFd(fds[0]), UniqueFd(fds[1]));
}

Result<std::pair<UniqueFd, UniqueFd>> MakeStreamPair(const std::string& what) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return ErrnoStatus("socketpair for " + what, errno);
  return std::make_pair(UniqueFd(fds[0]), UniqueFd(fds[1]));
}

Status SendWithFd(int socket, std::string_view text, int fd) { return SendWithFds(socket, text, {&fd, 1}); }

Status SendWithFds(int socket, std::string_view text, std::span<const int> fds) {
  if (text.empty()) return InvalidArgument("sendmsg: a message with descriptors needs at least one byte");
  if (fds.size() > kMaxFdsPerMessage) {
    return InvalidArgument("sendmsg: " + std::to_string(fds.size()) + " descriptors in one message; at most " +
                           std::to_string(kMaxFdsPerMessage));
  }
  iovec iov{const_cast<char*>(text.data()), text.size()};
  std::vector<char> control(fds.empty() ? 0 : CMSG_SPACE(fds.size() * sizeof(int)));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  ssize_t n;
  while ((n = ::sendmsg(socket, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (n < 0) return ErrnoStatus("sendmsg", errno);
  if (static_cast<size_t>(n) != text.size()) return Internal("sendmsg: sent " + std::to_string(n) + " of " +
                                                              std::to_string(text.size()) + " bytes");
  return Status::Ok();
}

Result<MessageWithFds> ReceiveWithFds(int socket, char* buf, size_t n, size_t max_fds) {
  iovec iov{buf, n};
  std::vector<char> control(CMSG_SPACE(std::max<size_t>(max_fds, 1) * sizeof(int)));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t got;
  while ((got = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (got < 0) return ErrnoStatus("recvmsg", errno);
  MessageWithFds out;
  out.size = static_cast<size_t>(got);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      out.fds.emplace_back(fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    return InvalidArgument("recvmsg: more than " + std::to_string(max_fds) + " descriptors came; the rest were lost");
  }
  if (msg.msg_flags & MSG_TRUNC) return InvalidArgument("recvmsg: the message was longer than " + std::to_string(n) + " bytes");
  if (out.fds.size() > max_fds) {
    return InvalidArgument("recvmsg: " + std::to_string(out.fds.size()) + " descriptors came; at most " +
                    std::to_string(max_fds) + " were expected");
  }
  return out;
}

Result<size_t> ReceiveMessage(int socket, char* buf, size_t n) {
  for (;;) {
    ssize_t got = ::recv(socket, buf, n, 0);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno != EINTR) return ErrnoStatus("recv", errno);
  }
}

namespace {

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() > kMaxUnixSocketPath) {
    return InvalidArgument("socket path '" + path + "' is empty or longer than " +
                           std::to_string(kMaxUnixSocketPath) + " bytes");
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

}  // namespace

Result<UniqueFd> ConnectUnixStream(const std::string& path) {
  DSP_ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("socket for " + path, errno);
  int r;
  while ((r = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr))) != 0 && errno == EINTR) {
  }
  if (r != 0) {
    const int err = errno;
    Status s = ErrnoStatus("connect unix:" + path, err);
    if (err == ENOENT || err == ECONNREFUSED) return Unavailable(s.message());
    return s;
  }
  return fd;
}

Result<UniqueFd> ListenUnixStream(const std::string& path, mode_t mode) {
  DSP_ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return FailedPrecondition("refusing to listen on " + path + ": it is not a socket");
    auto live = ConnectUnixStream(path);
    if (live.ok()) return FailedPrecondition("cannot listen on unix:" + path + ": a process accepts connections there");
    if (live.status().code() != StatusCode::kUnavailable) return live.status();
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("remove stale socket " + path, errno);
  } else if (errno != ENOENT) {
    return ErrnoStatus("stat " + path, errno);
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("socket for " + path, errno);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus("bind unix:" + path, errno);
  }
  // Bound, not yet listening: nobody connects while the file has the
  // umask's mode.
  if (::chmod(path.c_str(), mode) != 0) {
    Status s = ErrnoStatus("chmod " + path, errno);
    ::unlink(path.c_str());
    return s;
  }
  if (::listen(fd.get(), 64) != 0) {
    Status s = ErrnoStatus("listen unix:" + path, errno);
    ::unlink(path.c_str());
    return s;
  }
  return fd;
}

Result<std::optional<UniqueFd>> AcceptUnixStream(int listener, int cancel) {
  for (;;) {
    pollfd fds[2] = {{listener, POLLIN, 0}, {cancel, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("poll", errno);
    }
    if (fds[1].revents != 0) return std::optional<UniqueFd>();
    UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    if (fd.valid()) return std::optional<UniqueFd>(std::move(fd));
    if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) return ErrnoStatus("accept", errno);
  }
}

Status SetIoTimeouts(int socket, std::chrono::milliseconds send, std::chrono::milliseconds receive) {
  auto tv = [](std::chrono::milliseconds d) {
    return timeval{static_cast<time_t>(d.count() / 1000), static_cast<suseconds_t>(d.count() % 1000 * 1000)};
  };
  timeval s = tv(send), r = tv(receive);
  if (::setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &s, sizeof(s)) != 0) return ErrnoStatus("SO_SNDTIMEO", errno);
  if (::setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &r, sizeof(r)) != 0) return ErrnoStatus("SO_RCVTIMEO", errno);
  return Status::Ok();
}

void ShutdownSocket(int socket) { ::shutdown(socket, SHUT_RDWR); }

Status WriteFrame(int socket, std::string_view payload) {
  if (payload.size() > UINT32_MAX) return InvalidArgument("frame of " + std::to_string(payload.size()) + " bytes");
  const uint32_t n = static_cast<uint32_t>(payload.size());
  const char header[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                          static_cast<char>(n)};
  iovec iov[2] = {{const_cast<char*>(header), 4}, {const_cast<char*>(payload.data()), payload.size()}};
  size_t left = 4 + payload.size();
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  while (left > 0) {
    ssize_t sent = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("send", errno);
    }
    left -= static_cast<size_t>(sent);
    // Skip what went out.
    size_t done = static_cast<size_t>(sent);
    while (done > 0 && msg.msg_iovlen > 0) {
      size_t step = std::min(done, msg.msg_iov[0].iov_len);
      msg.msg_iov[0].iov_base = static_cast<char*>(msg.msg_iov[0].iov_base) + step;
      msg.msg_iov[0].iov_len -= step;
      done -= step;
      if (msg.msg_iov[0].iov_len == 0) {
        ++msg.msg_iov;
        --msg.msg_iovlen;
      }
    }
  }
  return Status::Ok();
}

namespace {

// Reads exactly `n` bytes; `at_boundary`: an end before the first byte is
// a clean close.
Status ReadExactly(int socket, char* buf, size_t n, bool at_boundary) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(socket, buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("recv", errno);
    }
    if (r == 0) return got == 0 && at_boundary ? Unavailable("closed") : Unavailable("closed in the middle of a frame");
    got += static_cast<size_t>(r);
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ReadFrame(int socket, size_t max_size) {
  unsigned char header[4];
  DSP_RETURN_IF_ERROR(ReadExactly(socket, reinterpret_cast<char*>(header), 4, true));
  const size_t n = (size_t{header[0]} << 24) | (size_t{header[1]} << 16) | (size_t{header[2]} << 8) | header[3];
  if (n > max_size) {
    return InvalidArgument("frame of " + std::to_string(n) + " bytes; at most " + std::to_string(max_size));
  }
  std::string out(n, '\0');
  DSP_RETURN_IF_ERROR(ReadExactly(socket, out.data(), n, false));
  return out;
}

}  // namespace dspool
