#include "net/unix_socket.h"

#include <errno.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "base/status.h"

namespace dspool {

Result<std::pair<UniqueFd, UniqueFd>> MakeSeqPacketPair(const std::string& what) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return ErrnoStatus("socketpair for " + what, errno);
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

}  // namespace dspool
