// Unix-domain socket pairs, stream sockets with framed messages, and
// descriptor passing (SCM_RIGHTS): how the agent talks to its Jupyter
// zygote, how the server drives its gateway process, and how a process
// hands open sockets to another.
//
// Every descriptor made here is close-on-exec; errors name what was done.
//
// Thread safety: the functions may be called concurrently (on different
// sockets).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
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

// A connected pair of SOCK_STREAM sockets (frames, and descriptors sent
// with SendWithFds: each message's descriptors come with its first byte).
Result<std::pair<UniqueFd, UniqueFd>> MakeStreamPair(const std::string& what);

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

// A listening Unix stream socket at `path` with `mode`, set before anyone
// can connect. A socket file nobody accepts on (left by a dead process) is
// replaced; one that answers is FailedPrecondition; anything else at the
// path is left alone (FailedPrecondition).
Result<UniqueFd> ListenUnixStream(const std::string& path, mode_t mode);
// Connects to the Unix stream socket at `path` (blocking). Unavailable
// when nobody listens there (no file, or refused).
Result<UniqueFd> ConnectUnixStream(const std::string& path);

// Waits for a connection on `listener` (a listening Unix stream socket)
// or for `cancel` to become readable (nullopt then). EINTR and a
// connection aborted before it was taken are waited through.
Result<std::optional<UniqueFd>> AcceptUnixStream(int listener, int cancel);

// SO_SNDTIMEO and SO_RCVTIMEO of a blocking socket (zero: none): a send or
// receive that waits longer fails with EAGAIN.
Status SetIoTimeouts(int socket, std::chrono::milliseconds send, std::chrono::milliseconds receive);
// shutdown(SHUT_RDWR): ends the socket's blocked reads and writes in every
// thread (the descriptor stays open until closed).
void ShutdownSocket(int socket);

// Framed messages on a stream socket (blocking): a 4-byte big-endian
// length, then that many bytes. WriteFrame never raises SIGPIPE; ReadFrame
// returns Unavailable("closed") when the peer closed at a frame boundary,
// and InvalidArgument for a frame longer than `max_size` (the stream is
// then useless: close it).
Status WriteFrame(int socket, std::string_view payload);
Result<std::string> ReadFrame(int socket, size_t max_size);

}  // namespace dspool
