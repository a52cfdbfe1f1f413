// Unix-domain socket pairs and descriptor passing (SCM_RIGHTS): how the
// agent talks to its Jupyter zygote, and how a process hands open sockets
// to another.
//
// Every descriptor made here is close-on-exec; errors name what was done.
//
// Thread safety: the functions may be called concurrently (on different
// sockets).
#pragma once

#include <sys/types.h>

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "os/unique_fd.h"

namespace dspool {

// A connected pair of SOCK_SEQPACKET sockets (messages keep their
// boundaries). `what` names the pair in errors.
Result<std::pair<UniqueFd, UniqueFd>> MakeSeqPacketPair(const std::string& what);

// The most descriptors one message carries (the kernel's SCM_MAX_FD).
inline constexpr size_t kMaxFdsPerMessage = 253;

// Sends one message, `text`, with descriptor `fd` attached (the receiver
// gets its own copy). Retries on EINTR; never raises SIGPIPE.
Status SendWithFd(int socket, std::string_view text, int fd);
// The same with `fds` attached (at most kMaxFdsPerMessage; none is fine).
// `text` must not be empty: a message with only descriptors cannot be told
// from the end of the stream on a stream socket.
Status SendWithFds(int socket, std::string_view text, std::span<const int> fds);

// Receives one message into `buf` (at most `n` bytes): its length, 0 when
// the peer closed, or the error. Retries on EINTR.
Result<size_t> ReceiveMessage(int socket, char* buf, size_t n);

// One message and the descriptors that came with it (close-on-exec, owned).
struct MessageWithFds {
  size_t size = 0;  // bytes in the buffer; 0: the peer closed
  std::vector<UniqueFd> fds;
};
// Receives one message into `buf` (at most `n` bytes) with up to `max_fds`
// descriptors. A message cut short (more bytes than `n` on a datagram or
// seqpacket socket, or more descriptors than `max_fds`) is the sender's
// error: InvalidArgument, and the descriptors that did come are closed.
// Retries on EINTR.
Result<MessageWithFds> ReceiveWithFds(int socket, char* buf, size_t n, size_t max_fds);

}  // namespace dspool
