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

#include <string>
#include <string_view>
#include <utility>

#include "base/result.h"
#include "os/unique_fd.h"

namespace dspool {

// A connected pair of SOCK_SEQPACKET sockets (messages keep their
// boundaries). `what` names the pair in errors.
Result<std::pair<UniqueFd, UniqueFd>> MakeSeqPacketPair(const std::string& what);

// Sends one message, `text`, with descriptor `fd` attached (the receiver
// gets its own copy). Retries on EINTR; never raises SIGPIPE.
Status SendWithFd(int socket, std::string_view text, int fd);

// Receives one message into `buf` (at most `n` bytes): its length, 0 when
// the peer closed, or the error. Retries on EINTR.
Result<size_t> ReceiveMessage(int socket, char* buf, size_t n);

}  // namespace dspool
