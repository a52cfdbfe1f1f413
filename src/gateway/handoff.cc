#include "gateway/handoff.h"

#include <algorithm>

#include "gateway/control.h"
#include "net/unix_socket.h"

namespace dspool {

namespace {

constexpr size_t kListenersPerMessage = 200;

}  // namespace

Status SendHandoff(int socket, const Handoff& h) {
  DSP_RETURN_IF_ERROR(WriteFrame(socket, h.state.dump()));
  std::vector<int> fds;
  for (const UniqueFd& fd : h.listeners) fds.push_back(fd.get());
  for (size_t at = 0; at < fds.size(); at += kListenersPerMessage) {
    const size_t n = std::min(kListenersPerMessage, fds.size() - at);
    DSP_RETURN_IF_ERROR(SendWithFds(socket, "L", std::span<const int>(fds.data() + at, n)));
  }
  const int last[2] = {h.control.get(), h.lock.get()};
  return SendWithFds(socket, "C", last);
}

Result<Handoff> ReceiveHandoff(int socket) {
  Handoff h;
  DSP_ASSIGN_OR_RETURN(std::string state, ReadFrame(socket, kMaxControlFrame));
  h.state = Json::parse(state, nullptr, false);
  if (!h.state.is_object()) return InvalidArgument("handoff: the state is no JSON object");
  for (;;) {
    char mark = 0;
    DSP_ASSIGN_OR_RETURN(MessageWithFds m, ReceiveWithFds(socket, &mark, 1, kListenersPerMessage));
    if (m.size == 0) return Unavailable("handoff: the old gateway closed before it was done");
    if (mark == 'L') {
      for (UniqueFd& fd : m.fds) h.listeners.push_back(std::move(fd));
    } else if (mark == 'C' && m.fds.size() == 2) {
      h.control = std::move(m.fds[0]);
      h.lock = std::move(m.fds[1]);
      return h;
    } else {
      return InvalidArgument("handoff: unexpected message '" + std::string(1, mark) + "' with " +
                             std::to_string(m.fds.size()) + " descriptors");
    }
  }
}

}  // namespace dspool
