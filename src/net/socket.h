// TCP sockets for the gateway's data path: listen, accept, and connect with a
// deadline.
//
// Every descriptor these functions return is non-blocking and close-on-exec,
// ready to be registered in a Reactor (reactor.h). IPv4 only for
// now; addresses are in host byte order (as model/ipv4.h).
//
// Errors name the address, so a person can tell which endpoint failed:
//   "connect 10.0.0.2:22: Connection refused"             (Unavailable)
//   "connect 10.0.0.2:22: timed out after 3000 ms"        (DeadlineExceeded)
//   "listen 127.0.0.1:8022: Address already in use"       (Unavailable)
//   "listen: invalid IPv4 address 'localhost'"            (InvalidArgument)
//
// Thread safety: every function may be called concurrently from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include <string_view>

#include "base/result.h"
#include "os/unique_fd.h"

namespace dspool {

// Connects to ipv4:port, waiting at most `timeout` for the handshake.
// Returns the connected socket (non-blocking, close-on-exec).
// Errors: InvalidArgument if timeout <= 0; Unavailable when the peer refuses
// or is unreachable; DeadlineExceeded when the timeout passes first (the
// attempt is abandoned); others as ErrnoStatus maps them.
Result<UniqueFd> ConnectTcp(uint32_t ipv4_host_order, uint16_t port, std::chrono::milliseconds timeout);

// Starts connecting to ipv4:port without waiting: the socket becomes
// writable when the attempt ends, and FinishConnect says how it ended. The
// socket has TCP_NODELAY (what dspool's relays and proxies want; set here,
// where the socket is made, rather than by each user).
// Errors that are known at once (no route, refused on loopback) come back
// here, as ConnectTcp's do. `congestion_control` names the socket's TCP
// congestion control algorithm (TCP_CONGESTION, say "cubic"); empty: the
// host's default. One the kernel refuses is an InvalidArgument (see
// CheckCongestionControl).
// `transparent_source`: the connection leaves from that address (any, not
// only this host's: IP_TRANSPARENT, which needs CAP_NET_ADMIN) and a port
// the kernel picks at connect (IP_BIND_ADDRESS_NO_PORT). The gateway uses
// it so an instance sees its client's address; the answers to a
// non-local address reach this socket only if the host routes them to
// itself (the lxc provider's transparent routing, docs/architecture.md).
// A refusal (no capability: PermissionDenied; an address that cannot be a
// source, such as loopback towards another link: the connect's error)
// comes back here or from FinishConnect.
Result<UniqueFd> StartConnectTcp(uint32_t ipv4_host_order, uint16_t port, const std::string& congestion_control = {},
                                 std::optional<uint32_t> transparent_source = std::nullopt);
// The outcome of a StartConnectTcp once its socket is writable: OK, or the
// error ConnectTcp would give.
Status FinishConnect(int fd, uint32_t ipv4_host_order, uint16_t port);
// The Status of a connect(2) that failed with `err`: ErrnoStatus's, with the
// "peer is not there" errors mapped to Unavailable (the caller may retry
// elsewhere or later).
Status ConnectError(const std::string& what, int err);

// OK if a TCP socket may use congestion control `name` on this host;
// otherwise InvalidArgument naming the algorithms it may use
// (/proc/sys/net/ipv4/tcp_allowed_congestion_control for an unprivileged
// process, tcp_available_congestion_control for root).
Status CheckCongestionControl(const std::string& name);

// Binds a listening socket to address:port ("0.0.0.0" for all addresses;
// port 0 lets the kernel pick one) with SO_REUSEADDR, and listens with
// `backlog`. If `bound_port` is not null it receives the port actually bound.
// Returns the listener (non-blocking, close-on-exec), with TCP_NODELAY,
// which the connections it accepts inherit (one system call per listener,
// not per connection).
// Errors: InvalidArgument for an address that is not dotted-quad IPv4 or a
// negative backlog; Unavailable if the address is in use; PermissionDenied
// for a privileged port without the capability.
Result<UniqueFd> ListenTcp(const std::string& address, uint16_t port, int backlog, uint16_t* bound_port);

// Listening sockets handed over by another process (a gateway's upgrade,
// net/unix_socket.h passes them): from now on ListenTcp returns the one
// bound to the address and port it is asked for, if any, instead of
// binding anew, so connections waiting in its backlog are kept. Sockets
// that are not listening TCP/IPv4 are closed. Thread-safe.
void AdoptListeners(std::vector<UniqueFd> fds);
// Closes the adopted listeners ListenTcp has not taken; returns how many.
size_t DropUnclaimedListeners();
// Duplicates of every listening TCP/IPv4 socket this process holds (found
// among its open descriptors), for a successor to adopt.
Result<std::vector<UniqueFd>> DuplicateListeners();

// Accepts one connection from `listener`, waiting at most `timeout` (zero:
// only take one that is already pending). Returns the accepted socket
// (non-blocking, close-on-exec).
// Errors: DeadlineExceeded if none arrived in time; others from accept4(2).
Result<UniqueFd> AcceptTcp(const UniqueFd& listener, std::chrono::milliseconds timeout);

// An IPv4 endpoint (host byte order).
struct TcpEndpoint {
  uint32_t ip = 0;
  uint16_t port = 0;
};

// Accepts one pending connection, without waiting: nullopt when none is
// pending. The socket is non-blocking and close-on-exec, and has
// TCP_NODELAY if the listener has it (a ListenTcp listener does). If `peer` is not
// null it receives the client's address (from accept4 itself: no extra call).
Result<std::optional<UniqueFd>> TryAcceptTcp(const UniqueFd& listener, TcpEndpoint* peer = nullptr);

// Non-blocking send and receive on a connected socket, for the few bytes
// the gateway exchanges itself (HTTP probes). TrySend returns the bytes
// taken (0 if the buffer is full); TryRecv the bytes read, 0 at EOF, nullopt
// if nothing is there yet. Never raise SIGPIPE.
Result<size_t> TrySend(const UniqueFd& fd, std::string_view data);
Result<std::optional<size_t>> TryRecv(const UniqueFd& fd, char* buffer, size_t size);
// TryRecv that leaves the bytes in the socket (MSG_PEEK): the next read,
// or a splice, gets them still. For the gateway's wait for a client's first
// bytes.
Result<std::optional<size_t>> TryPeek(const UniqueFd& fd, char* buffer, size_t size);

// The local end of a connected TCP socket: for a socket accepted on a
// listener bound to all addresses, the address the client connected to.
Result<TcpEndpoint> LocalEndpoint(const UniqueFd& fd);

// "10.0.0.2:22".
std::string FormatEndpoint(uint32_t ipv4_host_order, uint16_t port);

// Unix-domain sockets.
// The longest path a Unix socket may have (sockaddr_un's sun_path, less
// its terminating NUL).
inline constexpr size_t kMaxUnixSocketPath = 107;
// The credentials of the process at the other end of a connected Unix
// socket, as the kernel recorded them at connect() (SO_PEERCRED): they
// cannot be forged by the peer.
struct UnixPeer {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  pid_t pid = 0;
};
Result<UnixPeer> UnixPeerCredentials(int fd);

// Turns Nagle's algorithm off (TCP_NODELAY): request/response and
// interactive traffic must not wait for more bytes. Nothing happens to a
// socket that is not TCP (a Unix stream socket).
void SetNoDelay(const UniqueFd& fd);

// Closes a TCP connection with a reset (SO_LINGER 0) instead of an orderly
// end: the peer learns at once that it was turned away.
void CloseWithReset(UniqueFd fd);

}  // namespace dspool
