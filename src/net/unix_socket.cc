#include "net/unix_socket.h"

#include <errno.h>
#include <sys/socket.h>

#include <cstring>

#include "base/status.h"

namespace dspool {

Result<std::pair<UniqueFd, UniqueFd>> MakeSeqPacketPair(const std::string& what) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return ErrnoStatus("socketpair for " + what, errno);
  return std::make_pair(UniqueFd(fds[0]), UniqueFd(fds[1]));
}

Status SendWithFd(int socket, std::string_view text, int fd) {
  iovec iov{const_cast<char*>(text.data()), text.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t n;
  while ((n = ::sendmsg(socket, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (n < 0) return ErrnoStatus("sendmsg", errno);
  return Status::Ok();
}

Result<size_t> ReceiveMessage(int socket, char* buf, size_t n) {
  for (;;) {
    ssize_t got = ::recv(socket, buf, n, 0);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno != EINTR) return ErrnoStatus("recv", errno);
  }
}

}  // namespace dspool
